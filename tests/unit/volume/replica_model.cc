#include "replica_model.h"

#include <algorithm>
#include <sstream>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"

namespace cairn::volume::testing {

ReplicaSetModel::ReplicaSetModel(int replicas, pb::NoQuorumPolicy policy) : policy_(policy) {
  pb::ReplicaSetSpec set;
  for (int i = 0; i < replicas; ++i) {
    auto* brick = set.add_bricks();
    brick->set_host("h" + std::to_string(i));
    brick->set_path("/b");
    bricks_.push_back(ModelBrick{});
    bricks_.back().id = BrickId(*brick);
  }
  CAIRN_CHECK(store_.Txn(InitialReplicaSet(kVolume, set).txn));
  Committed();
}

size_t ReplicaSetModel::IndexOf(const std::string& id) const {
  for (size_t i = 0; i < bricks_.size(); ++i) {
    if (bricks_[i].id == id) return i;
  }
  Panic("unknown brick " + id, __FILE__, __LINE__);
}

void ReplicaSetModel::Fail(const std::string& what) {
  if (failure_.empty()) failure_ = what;
}

void ReplicaSetModel::Log(const std::string& event) {
  trace_.push_back("t=" + std::to_string(store_.now_ms()) + " " + event);
  if (trace_.size() > 80) trace_.pop_front();
}

std::string ReplicaSetModel::Report() const {
  std::ostringstream out;
  out << failure_ << "\nlast events:\n";
  for (const auto& line : trace_) out << "  " << line << "\n";
  return out.str();
}

void ReplicaSetModel::Committed() {
  record_ = store_.ReadSet(kVolume, 0);
  const auto& state = record_.state;
  in_sync_by_epoch_[state.epoch()] = {state.in_sync().begin(), state.in_sync().end()};
}

bool ReplicaSetModel::CanAct(const ModelBrick& brick) const {
  return brick.primary && brick.reachable() && brick.lease.Valid(Now());
}

int ReplicaSetModel::ActivePrimary() const {
  int found = -1;
  for (size_t i = 0; i < bricks_.size(); ++i) {
    if (bricks_[i].primary && bricks_[i].lease.Valid(Now())) found = static_cast<int>(i);
  }
  return found;
}

bool ReplicaSetModel::ClientWrite(size_t index) {
  ModelBrick& primary = bricks_[index];
  if (!CanAct(primary) || !primary.ready) return false;
  const uint64_t epoch = primary.view.state.epoch();
  if (primary.epoch_seen > epoch) {  // a newer configuration exists: this view is stale
    primary.primary = false;
    return false;
  }
  const int write = next_write_++;
  primary.Append(write);
  bool all = true;
  for (const auto& id : primary.view.state.in_sync()) {
    if (id == primary.id) continue;
    ModelBrick& backup = bricks_[IndexOf(id)];
    // A backup applies in order and refuses primaries of epochs older than it has seen.
    if (!backup.reachable() || backup.epoch_seen > epoch || backup.log.size() + 1 != primary.log.size()) {
      all = false;
      continue;
    }
    backup.epoch_seen = epoch;
    backup.Append(write);
  }
  if (!all) {
    Log(primary.id + " write " + std::to_string(write) + " not acknowledged (a backup missed it)");
    return false;
  }
  auto [it, inserted] = acking_primary_.emplace(epoch, primary.id);
  if (!inserted && it->second != primary.id) {
    Fail("two primaries acknowledged writes in epoch " + std::to_string(epoch) + ": " + it->second + " and " +
         primary.id);
  }
  for (const auto& id : in_sync_by_epoch_[epoch]) {
    if (!bricks_[IndexOf(id)].has.count(write)) {
      Fail("write " + std::to_string(write) + " acknowledged in epoch " + std::to_string(epoch) +
           " is missing on in-sync replica " + id);
    }
  }
  acked_.push_back(write);
  ++counts_["ack"];
  Log(primary.id + " acked write " + std::to_string(write) + " epoch " + std::to_string(epoch));
  return true;
}

void ReplicaSetModel::KeepAlive(size_t index) {
  ModelBrick& brick = bricks_[index];
  if (!brick.primary || !brick.reachable()) return;
  if (store_.KeepAlive(brick.lease_id)) {
    brick.lease.Renewed(Now());  // sent and applied in the same instant here
  } else {
    brick.lease.Lost();
    brick.primary = false;
    brick.ready = false;
    Log(brick.id + " lost its lease, steps down");
  }
}

void ReplicaSetModel::DropBackup(size_t index, bool false_suspicion) {
  ModelBrick& primary = bricks_[index];
  if (!CanAct(primary)) return;
  const uint64_t epoch = primary.view.state.epoch();
  std::string target;
  for (const auto& id : primary.view.state.in_sync()) {
    if (id == primary.id) continue;
    const ModelBrick& backup = bricks_[IndexOf(id)];
    bool lagging = backup.log.size() != primary.log.size() || backup.epoch_seen > epoch;
    if (false_suspicion || !backup.reachable() || (primary.ready && lagging)) {
      target = id;
      break;
    }
  }
  if (target.empty()) return;
  const auto& record = Record();
  auto change = volume::DropBackup(kVolume, record, primary.id, target);
  if (!change.ok() || !store_.Txn(change->txn)) {
    primary.primary = false;  // the record moved on without us: re-read before doing anything
    primary.ready = false;
    Log(primary.id + " failed to drop " + target + ", steps down");
    return;
  }
  Committed();
  primary.view = Record();
  primary.epoch_seen = std::max(primary.epoch_seen, primary.view.state.epoch());
  ++counts_[false_suspicion ? "drop_suspected" : "drop"];
  Log(primary.id + " dropped " + target + " -> epoch " + std::to_string(primary.view.state.epoch()));
}

void ReplicaSetModel::Reconcile(size_t index) {
  ModelBrick& primary = bricks_[index];
  if (!CanAct(primary) || primary.ready) return;
  const uint64_t epoch = primary.view.state.epoch();
  for (const auto& id : primary.view.state.in_sync()) {
    const ModelBrick& backup = bricks_[IndexOf(id)];
    if (!backup.reachable() || backup.epoch_seen > epoch) return;  // drop it first
  }
  // A new primary brings every in-sync backup to its own log: extra entries there were never
  // acknowledged (an acknowledged write is on every in-sync replica, so also on this primary).
  for (const auto& id : primary.view.state.in_sync()) {
    ModelBrick& backup = bricks_[IndexOf(id)];
    backup.epoch_seen = epoch;
    if (&backup != &primary) backup.SetLog(primary.log);
  }
  primary.ready = true;
  Log(primary.id + " reconciled epoch " + std::to_string(epoch));
}

void ReplicaSetModel::TakeOver(size_t initiator) {
  ModelBrick& self = bricks_[initiator];
  if (!self.reachable() || self.primary) return;
  // No check that the primary's lease key is gone: a failure detector may suspect a live
  // primary, and the transaction's guard alone must refuse it.
  const auto& record = Record();
  std::vector<ReplicaReport> reports;
  for (const auto& brick : bricks_) {
    if (brick.reachable()) reports.push_back({brick.id, brick.log.size()});
  }
  const int64_t lease = store_.Grant(kTtlMs);
  const int64_t granted_at = store_.now_ms();
  auto change = TakeOverPrimary(kVolume, record, reports, lease, kTtlMs);
  if (!change.ok()) {
    store_.Revoke(lease);
    auto fallback = EnterNoQuorum(kVolume, record, policy_, reports);
    if (fallback.ok() && store_.Txn(fallback->txn)) {
      Committed();
      ++counts_["no_quorum"];
      Log(self.id + " applied the no-quorum policy -> epoch " + std::to_string(fallback->next.epoch()));
    }
    return;
  }
  if (!store_.Txn(change->txn)) {
    store_.Revoke(lease);
    return;
  }
  Committed();
  ModelBrick& chosen = bricks_[IndexOf(change->next.primary())];
  chosen.primary = true;
  chosen.ready = false;
  chosen.view = Record();
  chosen.lease_id = lease;
  chosen.lease.Lost();
  chosen.lease.Renewed(TimePoint(std::chrono::milliseconds(granted_at)));
  chosen.epoch_seen = std::max(chosen.epoch_seen, chosen.view.state.epoch());
  ++counts_["take_over"];
  Log(self.id + " installed primary " + chosen.id + " epoch " + std::to_string(chosen.view.state.epoch()));
}

void ReplicaSetModel::Refresh(size_t index) {
  ModelBrick& brick = bricks_[index];
  if (!brick.reachable()) return;
  const auto& record = Record();
  brick.epoch_seen = std::max(brick.epoch_seen, record.state.epoch());
  if (!brick.primary) return;
  if (record.state.primary() != brick.id || record.state.primary_lease_id() != brick.lease_id) {
    brick.primary = false;
    brick.ready = false;
    Log(brick.id + " sees it is no longer primary");
    return;
  }
  brick.view = record;
}

void ReplicaSetModel::Heal(size_t index, size_t target_index, size_t copied) {
  ModelBrick& primary = bricks_[index];
  ModelBrick& target = bricks_[target_index];
  if (!CanAct(primary) || !primary.ready || !target.reachable()) return;
  if (IsInSync(primary.view.state, target.id)) return;
  copied = std::min(copied, primary.log.size());
  target.SetLog(std::vector<int>(primary.log.begin(), primary.log.begin() + static_cast<long>(copied)));
  target.epoch_seen = std::max(target.epoch_seen, primary.view.state.epoch());
  pb::HealCheckpoint checkpoint;
  checkpoint.set_brick(target.id);
  checkpoint.set_set_id(0);
  checkpoint.set_epoch(primary.view.state.epoch());
  checkpoint.set_files_left(primary.log.size() - copied);
  checkpoint.set_healed_through(primary.log.size());
  heal_checkpoints_[target.id] = checkpoint;
  Log(primary.id + " healed " + target.id + " " + std::to_string(copied) + "/" +
      std::to_string(primary.log.size()));
}

void ReplicaSetModel::Readmit(size_t index, size_t target_index) {
  ModelBrick& primary = bricks_[index];
  ModelBrick& target = bricks_[target_index];
  if (!CanAct(primary) || !primary.ready) return;
  if (IsInSync(primary.view.state, target.id)) return;
  pb::HealCheckpoint checkpoint;
  if (auto it = heal_checkpoints_.find(target.id); it != heal_checkpoints_.end()) {
    checkpoint = it->second;
  } else {
    checkpoint.set_brick(target.id);  // never healed
  }
  auto change = ReadmitReplica(kVolume, Record(), primary.id, checkpoint, primary.log.size(), 0);
  if (!change.ok()) {
    ++counts_["readmit_refused"];
    return;
  }
  if (target.log != primary.log) {
    Fail("ReadmitReplica accepted " + target.id + " whose log differs from the primary's");
  }
  if (!store_.Txn(change->txn)) {
    primary.primary = false;
    primary.ready = false;
    return;
  }
  Committed();
  primary.view = Record();
  target.epoch_seen = std::max(target.epoch_seen, primary.view.state.epoch());
  ++counts_["readmit"];
  Log(primary.id + " readmitted " + target.id + " -> epoch " + std::to_string(primary.view.state.epoch()));
}

void ReplicaSetModel::Crash(size_t index) {
  ModelBrick& brick = bricks_[index];
  if (!brick.alive) return;
  brick.alive = false;
  brick.primary = false;
  brick.ready = false;
  brick.lease_id = 0;
  brick.lease.Lost();
  Log(brick.id + " crashed");
}

void ReplicaSetModel::Restart(size_t index) {
  if (bricks_[index].alive) return;
  bricks_[index].alive = true;
  Log(bricks_[index].id + " restarted");
}

void ReplicaSetModel::Silence(size_t index) {
  if (!bricks_[index].alive || bricks_[index].silent) return;
  bricks_[index].silent = true;
  Log(bricks_[index].id + " went silent");
}

void ReplicaSetModel::Resume(size_t index) {
  if (!bricks_[index].silent) return;
  bricks_[index].silent = false;
  Log(bricks_[index].id + " resumed");
}

void ReplicaSetModel::AdvanceTime(int64_t ms) {
  store_.Advance(ms);
  store_.ExpireLeases();
}

void ReplicaSetModel::RandomStep(Random& random) {
  const size_t n = bricks_.size();
  // Clients and the failure detector mostly talk to whoever believes it is primary, stale or not.
  size_t a = random.Uniform(n);
  for (size_t i = 0; i < n && !random.OneIn(5); ++i) {
    if (bricks_[i].primary) a = i;
  }
  const size_t b = random.Uniform(n);
  const uint64_t roll = random.Uniform(100);
  if (roll < 35) {
    ClientWrite(a);
  } else if (roll < 47) {
    KeepAlive(a);
  } else if (roll < 52) {
    DropBackup(a, random.OneIn(10));
  } else if (roll < 58) {
    Reconcile(a);
  } else if (roll < 65) {
    TakeOver(b);
  } else if (roll < 70) {
    Refresh(b);
  } else if (roll < 75) {
    size_t size = bricks_[a].log.size();
    Heal(a, b, random.OneIn(4) ? random.Uniform(size + 1) : size);
  } else if (roll < 80) {
    Readmit(a, b);
  } else if (roll < 82) {
    Crash(b);
  } else if (roll < 86) {
    Restart(b);
  } else if (roll < 88) {
    Silence(b);
  } else if (roll < 91) {
    Resume(b);
  } else {
    AdvanceTime(50 + static_cast<int64_t>(random.Uniform(1500)));
  }
  CheckInvariants();
}

void ReplicaSetModel::CheckInvariants() {
  int accepting = 0;
  for (const auto& brick : bricks_) {
    if (brick.primary && brick.lease.Valid(Now())) ++accepting;
  }
  if (accepting > 1) Fail(std::to_string(accepting) + " bricks can accept writes at the same time");
  const auto& state = Record().state;
  if (state.epoch() < last_epoch_) Fail("epoch went backwards");
  last_epoch_ = state.epoch();
  if (state.in_sync_size() == 0) Fail("the in-sync set is empty");
  if (!state.primary().empty() && state.mode() == pb::REPLICA_SET_NORMAL && !IsInSync(state, state.primary())) {
    Fail("primary " + state.primary() + " is not in the in-sync set");
  }
  for (const auto& id : state.in_sync()) {
    const ModelBrick& brick = bricks_[IndexOf(id)];
    for (int write : acked_) {
      if (!brick.has.count(write)) {
        Fail("acknowledged write " + std::to_string(write) + " is missing on in-sync replica " + id +
             " in epoch " + std::to_string(state.epoch()));
        return;
      }
    }
  }
}

void ReplicaSetModel::Stabilize() {
  const auto stored = store_.ReadSet(kVolume, 0);
  if (stored.mod_revision != record_.mod_revision ||
      stored.state.SerializeAsString() != record_.state.SerializeAsString()) {
    Fail("the cached record differs from the store's");
  }
  const size_t n = bricks_.size();
  for (size_t i = 0; i < n; ++i) {
    Resume(i);
    Restart(i);
  }
  for (int round = 0; round < 20 && !failed(); ++round) {
    for (size_t i = 0; i < n; ++i) Refresh(i);
    for (size_t i = 0; i < n; ++i) KeepAlive(i);
    int primary = ActivePrimary();
    if (primary < 0) {
      AdvanceTime(kTtlMs + 100);  // let any orphaned lease run out
      for (size_t i = 0; i < n && ActivePrimary() < 0; ++i) TakeOver(i);
      CheckInvariants();
      continue;
    }
    const auto p = static_cast<size_t>(primary);
    DropBackup(p, false);
    Reconcile(p);
    for (size_t t = 0; t < n; ++t) {
      Heal(p, t, bricks_[p].log.size());
      Readmit(p, t);
    }
    CheckInvariants();
    if (bricks_[p].ready && static_cast<size_t>(Record().state.in_sync_size()) == n) {
      for (const auto& brick : bricks_) {
        if (brick.log != bricks_[p].log) Fail("replica " + brick.id + " differs from the primary after heal");
      }
      ClientWrite(p);  // and the set takes writes again
      if (acked_.empty() || bricks_[p].log.back() != acked_.back()) Fail("a stabilized set refused a write");
      return;
    }
  }
  Fail("the replica set did not converge with every brick back");
}

}  // namespace cairn::volume::testing
