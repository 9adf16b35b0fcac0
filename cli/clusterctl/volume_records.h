// The volume records the `clusterctl volume` verbs read and write, gathered from the store
// (docs/volumes.md, "Records in the store"): a volume's spec, its replica-set records, the primary
// lease keys, the brick address keys and the heal checkpoints, all read at one revision.
//
// Parse*/Check*/Missing* are pure and thread-safe. Read*/UpdateVolume call the store through the
// given client (blocking, within the client's timeout) and so share its threading rule: one
// thread per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"

namespace cairn::clusterctl {

namespace vpb = ::cairn::proto::volume;

// What the store holds about one volume at one revision.
struct VolumeView {
  volume::VolumeRecord record;                         // the spec and its mod_revision
  std::map<uint32_t, volume::ReplicaSetRecord> sets;   // by set id; a set of the spec may lack one
  std::map<uint32_t, std::string> primary_keys;        // set id -> brick id held by the primary lease key
  std::map<std::string, std::string> addresses;        // brick id -> "ip:port" where it is served now
  std::map<std::string, vpb::HealCheckpoint> checkpoints;  // brick id -> its latest heal checkpoint
  std::optional<vpb::HealCheckpoint> rebalance;        // the rebalance mover's progress (RebalanceKey)
  std::string rebalance_owner;                         // the node running the mover ("" when none)
  std::vector<std::string> problems;                   // records that did not parse, for display

  const vpb::VolumeSpec& spec() const { return record.spec; }
};

// Builds the view of volume `name` from every key-value under VolumePrefix(name). Keys it does
// not know are ignored (newer writers may add some). Errors: NotFound when there is no spec key
// (the message says how to list volumes); Corruption when the spec does not parse or validate.
// A set record or checkpoint that does not parse is listed in `problems` instead.
Result<VolumeView> ParseVolumeView(std::string_view name, const std::vector<etcd::KeyValue>& kvs);

// Reads the view of one volume with one linearizable range request. Errors: InvalidArgument for a
// malformed name, the errors of ParseVolumeView, store errors.
Result<VolumeView> ReadVolume(etcdclient::EtcdClient& client, std::string_view name);

// Every volume, sorted by name. A volume whose spec is corrupt is left out and named in *problems.
Result<std::vector<VolumeView>> ReadAllVolumes(etcdclient::EtcdClient& client, std::vector<std::string>* problems);

// The change a verb makes to a spec (start, stop, set, add-brick, ...). It may refuse with the
// error to print.
using SpecChange = std::function<Result<vpb::VolumeSpec>(const vpb::VolumeSpec&)>;

// Reads the volume, applies change, commits the result with volume::UpdateVolumeTxn. When another
// writer changed the spec in between (the txn's mod_revision compare failed), reads it again and
// applies change to the new spec, up to 5 times. Returns the committed spec. Errors: those of
// ReadVolume and change, Aborted when the spec kept changing, store errors.
Result<vpb::VolumeSpec> UpdateVolume(etcdclient::EtcdClient& client, std::string_view name, const SpecChange& change);

// Refuses a brick of `spec` that is, contains or lies inside a brick of another volume on the same
// host (their files would mix). Errors: FailedPrecondition naming both bricks and the other volume.
Status CheckBricksNotInOtherVolumes(const vpb::VolumeSpec& spec, const std::vector<VolumeView>& volumes);

// What keeps a started volume from serving, one line each: bricks without an address key (the
// reason: host not a cluster member, or its clusterd has not published it), sets without a live
// primary, sets in a no-quorum mode. Empty when every brick is served and every set has a primary.
// members: the cluster's member names (empty: unknown, the host reason is then left out).
std::vector<std::string> MissingForService(const VolumeView& view, const std::vector<std::string>& members);

// The hosts of `spec`'s bricks that are not among `members`, in brick order, each once.
std::vector<std::string> UnknownHosts(const vpb::VolumeSpec& spec, const std::vector<std::string>& members);

// The names of the store's members (those that started and have a name). Errors: store errors.
Result<std::vector<std::string>> MemberNames(etcdclient::EtcdClient& client);

// A --wait value: a duration ("15s", "500ms") or "0" (do not wait). Errors: InvalidArgument.
Result<std::chrono::nanoseconds> ParseWait(std::string_view text);

// Every brick id of the spec, in order.
std::vector<std::string> BrickIds(const vpb::VolumeSpec& spec);

}  // namespace cairn::clusterctl
