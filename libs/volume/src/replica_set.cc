#include "cairn/volume/replica_set.h"

#include <algorithm>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"

namespace cairn::volume {
namespace {

std::string Serialize(const pb::ReplicaSetState& state) {
  std::string bytes;
  CAIRN_CHECK(state.SerializeToString(&bytes));
  return bytes;
}

// The next record: same set, epoch + 1.
pb::ReplicaSetState NextEpoch(const pb::ReplicaSetState& state) {
  pb::ReplicaSetState next = state;
  next.set_epoch(state.epoch() + 1);
  return next;
}

void RemoveInSync(pb::ReplicaSetState* state, std::string_view brick) {
  auto* in_sync = state->mutable_in_sync();
  in_sync->erase(std::remove(in_sync->begin(), in_sync->end(), brick), in_sync->end());
}

// Changes made by the primary while it holds its lease.
Transition PrimaryTransition(std::string_view volume, const ReplicaSetRecord& current,
                             pb::ReplicaSetState next) {
  Transition transition;
  const uint32_t id = current.state.set_id();
  *transition.txn.add_compare() = ModRevisionEquals(SetKey(volume, id), current.mod_revision);
  *transition.txn.add_compare() = LeaseEquals(PrimaryKey(volume, id), current.state.primary_lease_id());
  *transition.txn.add_success() = PutOp(SetKey(volume, id), Serialize(next));
  transition.next = std::move(next);
  return transition;
}

Status CheckCallerIsPrimary(const ReplicaSetRecord& current, std::string_view caller) {
  if (current.state.mode() != pb::REPLICA_SET_NORMAL || current.state.primary() != caller) {
    return FailedPreconditionError(std::string(caller) + " is not the primary of set " +
                                   std::to_string(current.state.set_id()) + " in epoch " +
                                   std::to_string(current.state.epoch()));
  }
  return Status::Ok();
}

// The report of the freshest reachable brick, restricted to the in-sync set when asked.
const ReplicaReport* Freshest(const pb::ReplicaSetState& state, const std::vector<ReplicaReport>& reachable,
                              bool in_sync_only) {
  const ReplicaReport* best = nullptr;
  auto rank = [&state](const std::string& brick) {
    auto it = std::find(state.in_sync().begin(), state.in_sync().end(), brick);
    return it - state.in_sync().begin();
  };
  for (const auto& report : reachable) {
    if (in_sync_only && !IsInSync(state, report.brick)) continue;
    auto position = [](const ReplicaReport& r) { return std::make_pair(r.last_epoch, r.last_sequence); };
    if (best == nullptr || position(report) > position(*best) ||
        (position(report) == position(*best) && rank(report.brick) < rank(best->brick))) {
      best = &report;
    }
  }
  return best;
}

}  // namespace

Result<ReplicaSetRecord> ParseReplicaSetRecord(const etcd::KeyValue& kv) {
  ReplicaSetRecord record;
  if (!record.state.ParseFromString(kv.value())) {
    return CorruptionError("replica-set record at " + kv.key() + " does not parse");
  }
  record.mod_revision = kv.mod_revision();
  return record;
}

bool IsInSync(const pb::ReplicaSetState& state, std::string_view brick) {
  return std::find(state.in_sync().begin(), state.in_sync().end(), brick) != state.in_sync().end();
}

std::vector<std::string> OutOfSyncBricks(const pb::ReplicaSetSpec& set, const pb::ReplicaSetState& state) {
  std::vector<std::string> out;
  for (const auto& brick : set.bricks()) {
    std::string id = BrickId(brick);
    if (!IsInSync(state, id)) out.push_back(std::move(id));
  }
  return out;
}

Transition InitialReplicaSet(std::string_view volume, const pb::ReplicaSetSpec& set) {
  Transition transition;
  transition.next.set_set_id(set.id());
  transition.next.set_epoch(1);
  for (const auto& brick : set.bricks()) transition.next.add_in_sync(BrickId(brick));
  *transition.txn.add_compare() = KeyAbsent(SetKey(volume, set.id()));
  *transition.txn.add_success() = PutOp(SetKey(volume, set.id()), Serialize(transition.next));
  return transition;
}

Result<Transition> DropBackup(std::string_view volume, const ReplicaSetRecord& current,
                              std::string_view caller, std::string_view failed) {
  CAIRN_RETURN_IF_ERROR(CheckCallerIsPrimary(current, caller));
  if (failed == caller) return InvalidArgumentError("the primary cannot drop itself; let its lease expire");
  if (!IsInSync(current.state, failed)) {
    return FailedPreconditionError(std::string(failed) + " is not in the in-sync set of set " +
                                   std::to_string(current.state.set_id()));
  }
  pb::ReplicaSetState next = NextEpoch(current.state);
  RemoveInSync(&next, failed);
  return PrimaryTransition(volume, current, std::move(next));
}

Result<Transition> TakeOverPrimary(std::string_view volume, const ReplicaSetRecord& current,
                                   const std::vector<ReplicaReport>& reachable, int64_t lease_id,
                                   int64_t lease_ttl_ms, OthersAfterTakeOver others) {
  if (lease_id == 0 || lease_ttl_ms <= 0) {
    return InvalidArgumentError("a new primary needs a granted store lease (id and TTL)");
  }
  const ReplicaReport* candidate = Freshest(current.state, reachable, /*in_sync_only=*/true);
  if (candidate == nullptr) {
    return UnavailableError("no in-sync replica of set " + std::to_string(current.state.set_id()) +
                            " is reachable; apply the volume's no-quorum policy");
  }
  pb::ReplicaSetState next = NextEpoch(current.state);
  if (!current.state.primary().empty() && current.state.primary() != candidate->brick) {
    RemoveInSync(&next, current.state.primary());  // it may hold writes nobody acknowledged: heal it
  }
  if (others == OthersAfterTakeOver::kKeepOnlyMatching) {
    auto matches = [&](const std::string& brick) {
      if (brick == candidate->brick) return true;
      for (const auto& report : reachable) {
        if (report.brick == brick) {
          return report.last_epoch == candidate->last_epoch && report.last_sequence == candidate->last_sequence;
        }
      }
      return false;  // did not answer: it may be behind
    };
    auto* in_sync = next.mutable_in_sync();
    in_sync->erase(std::remove_if(in_sync->begin(), in_sync->end(), [&](const std::string& b) { return !matches(b); }),
                   in_sync->end());
  }
  next.set_primary(candidate->brick);
  next.set_primary_lease_id(lease_id);
  next.set_primary_lease_ttl_ms(lease_ttl_ms);
  next.set_mode(pb::REPLICA_SET_NORMAL);
  next.clear_read_source();

  Transition transition;
  const uint32_t id = current.state.set_id();
  *transition.txn.add_compare() = ModRevisionEquals(SetKey(volume, id), current.mod_revision);
  *transition.txn.add_compare() = KeyAbsent(PrimaryKey(volume, id));
  *transition.txn.add_success() = PutOp(SetKey(volume, id), Serialize(next));
  *transition.txn.add_success() = PutOp(PrimaryKey(volume, id), candidate->brick, lease_id);
  transition.next = std::move(next);
  return transition;
}

Result<Transition> EnterNoQuorum(std::string_view volume, const ReplicaSetRecord& current,
                                 pb::NoQuorumPolicy policy, const std::vector<ReplicaReport>& reachable) {
  if (Freshest(current.state, reachable, /*in_sync_only=*/true) != nullptr) {
    return FailedPreconditionError("an in-sync replica of set " + std::to_string(current.state.set_id()) +
                                   " is reachable; it should take over instead");
  }
  pb::ReplicaSetState next = NextEpoch(current.state);
  next.clear_read_source();
  if (policy == pb::NO_QUORUM_READONLY) {
    next.set_mode(pb::REPLICA_SET_NO_QUORUM_READONLY);
    if (const ReplicaReport* source = Freshest(current.state, reachable, false)) {
      next.set_read_source(source->brick);
    }
  } else {
    next.set_mode(pb::REPLICA_SET_NO_QUORUM_EIO);
  }
  if (next.mode() == current.state.mode() && next.read_source() == current.state.read_source()) {
    return FailedPreconditionError("set " + std::to_string(current.state.set_id()) +
                                   " is already in this no-quorum mode");
  }
  Transition transition;
  const uint32_t id = current.state.set_id();
  *transition.txn.add_compare() = ModRevisionEquals(SetKey(volume, id), current.mod_revision);
  *transition.txn.add_compare() = KeyAbsent(PrimaryKey(volume, id));
  *transition.txn.add_success() = PutOp(SetKey(volume, id), Serialize(next));
  transition.next = std::move(next);
  return transition;
}

Result<Transition> ReadmitReplica(std::string_view volume, const ReplicaSetRecord& current,
                                  std::string_view caller, const pb::HealCheckpoint& heal,
                                  uint64_t primary_sequence, int64_t heal_mod_revision) {
  CAIRN_RETURN_IF_ERROR(CheckCallerIsPrimary(current, caller));
  const std::string& brick = heal.brick();
  if (brick.empty() || IsInSync(current.state, brick)) {
    return FailedPreconditionError("brick \"" + brick + "\" is already in sync or unnamed");
  }
  if (heal.set_id() != current.state.set_id() || heal.epoch() != current.state.epoch()) {
    return FailedPreconditionError("the heal of " + brick + " ran in epoch " + std::to_string(heal.epoch()) +
                                   ", the set is in epoch " + std::to_string(current.state.epoch()) +
                                   "; run a heal round in the current epoch first");
  }
  if (heal.files_left() != 0 || heal.bytes_left() != 0) {
    return FailedPreconditionError("the heal of " + brick + " is not finished (" +
                                   std::to_string(heal.files_left()) + " files left)");
  }
  if (heal.healed_through() != primary_sequence) {
    return FailedPreconditionError("the heal of " + brick + " covered mutations up to " +
                                   std::to_string(heal.healed_through()) + ", the primary is at " +
                                   std::to_string(primary_sequence) + "; run a final round with writes held");
  }
  pb::ReplicaSetState next = NextEpoch(current.state);
  next.add_in_sync(brick);
  Transition transition = PrimaryTransition(volume, current, std::move(next));
  *transition.txn.add_compare() = ModRevisionEquals(HealKey(volume, brick), heal_mod_revision);
  return transition;
}

}  // namespace cairn::volume
