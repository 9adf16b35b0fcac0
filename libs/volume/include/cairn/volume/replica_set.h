// Replica-set configuration changes as store transactions (PacificA-style primary-backup with the
// coordination store as the configuration manager). See docs/volumes.md, "Replication".
//
// Each function takes the record as read from the store (with its mod_revision) and returns the
// next record plus the etcd TxnRequest that installs it. The txn always compares the record's
// mod_revision, so of two changes computed from the same record at most one commits; callers
// check TxnResponse.succeeded and, on false, re-read and decide again.
//
// The primary lease: the key PrimaryKey(volume, set) holds the primary's brick id and is attached
// to a store lease the primary keeps alive. While that key exists only its holder changes the
// record (DropBackup and ReadmitReplica compare the key's lease id). TakeOverPrimary and
// EnterNoQuorum require the key to be absent, that is, the store revoked the lease after its TTL:
// the old primary stopped accepting writes by then, because it accepts a write only while
// now < (time it sent its last successful keep-alive) + TTL on its own monotonic clock.
//
// Pure and thread-safe. Errors: InvalidArgument / FailedPrecondition for a change that is not
// allowed from this record (the message says why); Unavailable when TakeOverPrimary finds no
// reachable in-sync replica (apply EnterNoQuorum instead).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volume {

namespace pb = ::cairn::proto::volume;

struct ReplicaSetRecord {
  pb::ReplicaSetState state;
  int64_t mod_revision = 0;  // of SetKey(volume, state.set_id)
};

struct Transition {
  pb::ReplicaSetState next;
  etcd::TxnRequest txn;
};

// A replica the caller reached just now, and the position of the last mutation it applied:
// the epoch it was applied in, then its sequence within that epoch's primary stream. Positions
// compare by epoch first, because a new primary may restart sequence numbers.
struct ReplicaReport {
  std::string brick;
  uint64_t last_sequence = 0;
  uint64_t last_epoch = 0;
};

// Errors: Corruption when the value does not parse.
Result<ReplicaSetRecord> ParseReplicaSetRecord(const etcd::KeyValue& kv);
bool IsInSync(const pb::ReplicaSetState& state, std::string_view brick);
// The set's bricks that are not in the in-sync set, in the set's order (they need a heal; the
// primary journals changes for them).
std::vector<std::string> OutOfSyncBricks(const pb::ReplicaSetSpec& set, const pb::ReplicaSetState& state);

// The record of a new set: epoch 1, no primary, every brick in sync (all are empty). The txn
// succeeds only if the set key does not exist yet. The first primary comes from TakeOverPrimary.
Transition InitialReplicaSet(std::string_view volume, const pb::ReplicaSetSpec& set);

// The primary removes an unresponsive backup from the in-sync set (epoch + 1) so writes go on.
// `caller` must be the record's primary, `failed` an in-sync backup.
Result<Transition> DropBackup(std::string_view volume, const ReplicaSetRecord& current,
                              std::string_view caller, std::string_view failed);

// Installs a new primary once the old one's lease is gone (also the first primary, and the return
// of the last in-sync replica after EnterNoQuorum). The candidate is the reachable in-sync replica
// with the highest (last_epoch, last_sequence) (ties: earlier in the in-sync list). The old primary leaves the
// in-sync set unless it is the candidate. `lease_id` is a store lease the new primary was granted.
//
// `others`: what happens to the other in-sync replicas. kKeepOthers leaves them in the in-sync set
// (the new primary must reconcile them). kKeepOnlyMatching keeps only those that reported exactly
// the candidate's position: a replica that is behind (missed a mutation the old primary never
// acknowledged), or that did not answer, leaves the in-sync set and is healed. This is what
// clusterd uses, because the brick service does not reconcile backups to a new primary's log.
enum class OthersAfterTakeOver { kKeepOthers, kKeepOnlyMatching };
Result<Transition> TakeOverPrimary(std::string_view volume, const ReplicaSetRecord& current,
                                   const std::vector<ReplicaReport>& reachable, int64_t lease_id,
                                   int64_t lease_ttl_ms,
                                   OthersAfterTakeOver others = OthersAfterTakeOver::kKeepOthers);

// The volume's no-quorum policy once no in-sync replica is reachable and the primary lease is gone:
// NO_QUORUM_EIO refuses all I/O; NO_QUORUM_READONLY serves stale reads from the reachable replica
// with the highest last_sequence. The in-sync set is kept: only its members may later take over.
Result<Transition> EnterNoQuorum(std::string_view volume, const ReplicaSetRecord& current,
                                 pb::NoQuorumPolicy policy, const std::vector<ReplicaReport>& reachable);

// The primary readmits a replica whose heal finished in the current epoch (files_left and
// bytes_left zero) and covered every mutation so far (heal.healed_through == primary_sequence,
// the primary's last mutation sequence): the primary holds writes from the heal's last round
// until this txn commits, so the replica misses nothing. heal_mod_revision is the store revision
// of the checkpoint the caller read (0: none stored): the txn fails if it changed since, because
// a newer heal round writes its checkpoint before it clears the journal and copies, and a caller
// deciding from an older "nothing left" copy would readmit a replica mid-copy.
Result<Transition> ReadmitReplica(std::string_view volume, const ReplicaSetRecord& current,
                                  std::string_view caller, const pb::HealCheckpoint& heal,
                                  uint64_t primary_sequence, int64_t heal_mod_revision);

}  // namespace cairn::volume
