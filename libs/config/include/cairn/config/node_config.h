// NodeConfig: one host's node.yaml, the file clusterd reads at start. The schema is documented in
// docs/config.md; examples live in config/.
//
// Loading validates everything that can be checked without the network: field names and types,
// DNS-label names, absolute paths, host:port syntax, duplicate names and addresses, that a static
// initial_cluster contains this node, that join and initial_cluster are not both set. Every error
// reads "FILE:LINE:COLUMN: FIELD.PATH: what is wrong" (see yaml_reader.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/logging.h"
#include "cairn/common/status.h"
#include "cairn/common/strings.h"

namespace cairn::config {

// A voter takes part in elections and holds data; a witness only votes (the third host of a
// two-data-host cluster keeps the store's majority).
enum class Role { kVoter, kWitness };
std::string_view RoleName(Role role);

// How this node comes up the first time (later starts recover from data_dir).
enum class BootstrapMode {
  kSingleNode,  // neither initial_cluster nor join: a new one-member cluster
  kStatic,      // initial_cluster: every founding member is listed in every node's file
  kJoin,        // join: ask a running cluster to add this node
};
std::string_view BootstrapModeName(BootstrapMode mode);

// Same host text and port. No name resolution: "localhost:1" and "127.0.0.1:1" differ.
bool SameAddress(const HostPort& a, const HostPort& b);

struct InitialMember {
  std::string name;
  HostPort peer_address;
  // Field by field (HostPort has no operator== of its own).
  friend bool operator==(const InitialMember& a, const InitialMember& b);
};

struct JoinConfig {
  HostPort address;   // client (HTTP API) address of any running member
  std::string token;  // join token printed by the cluster's first node
  // Field by field (HostPort has no operator== of its own).
  friend bool operator==(const JoinConfig& a, const JoinConfig& b);
};

// Peer authentication with the cluster key (docs/operations.md "Security").
enum class PeerAuth {
  kAuto,      // on when the cluster key file exists (a joined node received it), off otherwise
  kRequired,  // on; a single-node cluster creates the key when missing, other nodes refuse to start without it
  kOff,       // off even when a key file exists
};
std::string_view PeerAuthName(PeerAuth mode);

struct AuthConfig {
  PeerAuth peer = PeerAuth::kAuto;
  std::string cluster_key_file;  // absolute path; empty: DATA_DIR/cluster.key
  // Absolute path of a file whose first line is the HTTP API's bearer token; empty: no token needed.
  std::string api_token_file;
  friend bool operator==(const AuthConfig&, const AuthConfig&) = default;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  log::Format format = log::Format::kText;
  std::string file;            // absolute path; empty means stderr
  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

struct NodeConfig {
  std::string name;
  std::string data_dir;
  // Listen addresses. Port 0 picks a free port (tests); the real port is logged at start.
  HostPort peer_address{"127.0.0.1", 2380};
  HostPort client_address{"127.0.0.1", 2379};
  // What other nodes and clients should dial when the listen address is a wildcard or behind NAT.
  std::optional<HostPort> advertise_peer_address;
  std::optional<HostPort> advertise_client_address;
  std::vector<InitialMember> initial_cluster;  // empty unless static bootstrap
  std::optional<JoinConfig> join;
  LogConfig log;
  AuthConfig auth;
  Role role = Role::kVoter;

  BootstrapMode bootstrap_mode() const;
  // advertise_*_address when set, the listen address otherwise.
  HostPort AdvertisedPeerAddress() const;
  HostPort AdvertisedClientAddress() const;
  // auth.cluster_key_file, or DATA_DIR/cluster.key.
  std::string ClusterKeyPath() const;

  // Field by field (HostPort has no operator== of its own).
  friend bool operator==(const NodeConfig& a, const NodeConfig& b);
};

// Parses and validates node.yaml text; filename is used in error messages only.
// Errors: InvalidArgument with "FILE:LINE:COLUMN: FIELD.PATH: what".
Result<NodeConfig> ParseNodeConfig(std::string_view text, std::string_view filename);

// Reads path and calls ParseNodeConfig. Errors: NotFound/IoError/PermissionDenied when the file
// cannot be read, InvalidArgument as above.
Result<NodeConfig> LoadNodeConfig(const std::string& path);

// Writes a config back as node.yaml text that ParseNodeConfig reads to an equal NodeConfig.
// Defaults are written out explicitly so the output is a complete, reviewable file.
std::string NodeConfigToYaml(const NodeConfig& config);

// Checks a node name: 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter
// or digit (a DNS label, so names work as host names and in URLs). The message says what is wrong.
Status ValidateNodeName(std::string_view name);

}  // namespace cairn::config
