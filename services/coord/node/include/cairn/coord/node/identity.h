// Member and cluster identity: ids derived deterministically from the static configuration, and
// the identity file a node keeps in its data dir.
//
// Ids: a member id is a 64-bit FNV-1a hash of its advertised peer URL ("host:port"), so every
// node derives the same ids from the same initial_cluster, and MemberAdd derives the new member's
// id from the peer URL it is given. The cluster id hashes the sorted "name=peer_url" list of the
// initial cluster. Zero is never returned (Raft reserves it).
//
// Identity file (DATA_DIR/coord/member): "cluster_id=<16 hex>\nmember_id=<16 hex>\nname=<name>\n",
// written once when the node first starts, checked on every later start: a node that finds its
// file disagreeing with its configuration refuses to start rather than join under a wrong identity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/env/env.h"

namespace cairn::coord {

struct MemberSeed {
  std::string name;
  std::string peer_url;  // "host:port" as other nodes dial it
};

uint64_t DeriveMemberId(std::string_view peer_url);
uint64_t DeriveClusterId(std::vector<MemberSeed> initial_cluster);

struct Identity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::string name;
  friend bool operator==(const Identity&, const Identity&) = default;
};

std::string FormatIdentity(const Identity& identity);
// Errors: Corruption naming the line for a file that does not parse.
Result<Identity> ParseIdentity(std::string_view text);

// Reads `path`; std::nullopt when it does not exist. Errors: I/O, Corruption.
Result<std::optional<Identity>> LoadIdentity(env::Env* env, const std::string& path);
// Writes `path` durably (temp file, fsync, rename, dir fsync).
Status SaveIdentity(env::Env* env, const std::string& path, const Identity& identity);

// Compares a stored identity with the configured one. Errors: FailedPrecondition with a message
// saying which field differs and what to do (restore the right data dir, or `clusterctl member
// replace`).
Status CheckIdentity(const Identity& stored, const Identity& configured, const std::string& path);

}  // namespace cairn::coord
