// A deterministic model of one replica set: bricks that apply an ordered log of writes, a primary
// that forwards and acknowledges, clients that write to whoever believes it is primary (stale
// views included), and the coordination store (a real kv::KvStateMachine) changed only through
// the libs/volume transitions. Bricks crash (losing everything but their log and fenced epoch),
// go silent (SIGSTOP or cut off: they keep their stale beliefs) and return; time moves and the
// store revokes expired leases.
//
// Invariants checked after every step (the first violation is kept with a trace):
//  - at most one brick can accept writes at any time (believes it is primary with a live lease);
//  - at most one primary gets acknowledgements per epoch;
//  - an acknowledged write is on every replica of its epoch's in-sync set when acknowledged, and
//    on every replica of the current in-sync set at every later step (so no replica rejoins
//    without healing, and no sequence of failures produces divergent acknowledged writes);
//  - the store record is well formed (primary in sync, in-sync set never empty, epochs grow).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/volume/primary_lease.h"
#include "cairn/volume/replica_set.h"
#include "store_harness.h"

namespace cairn::volume::testing {

struct ModelBrick {
  std::string id;
  bool alive = true;
  bool silent = false;
  // Durable: survive a crash.
  uint64_t epoch_seen = 0;  // newest epoch heard of; older primaries are refused
  std::vector<int> log;
  std::unordered_set<int> has;
  // Volatile: lost on a crash.
  bool primary = false;
  bool ready = false;  // reconciled every in-sync backup in this epoch
  ReplicaSetRecord view;
  int64_t lease_id = 0;
  PrimaryLease lease{std::chrono::milliseconds(2000), std::chrono::milliseconds(50)};

  bool reachable() const { return alive && !silent; }
  void SetLog(std::vector<int> entries) {
    log = std::move(entries);
    has = std::unordered_set<int>(log.begin(), log.end());
  }
  void Append(int write) {
    log.push_back(write);
    has.insert(write);
  }
};

class ReplicaSetModel {
 public:
  static constexpr int64_t kTtlMs = 2000;  // as ModelBrick::lease

  ReplicaSetModel(int replicas, pb::NoQuorumPolicy policy);

  // Actions. Each does nothing when its preconditions do not hold, like a real node would.
  // Returns true when a write was acknowledged.
  bool ClientWrite(size_t brick);
  void KeepAlive(size_t brick);
  void DropBackup(size_t primary, bool false_suspicion);
  void Reconcile(size_t primary);
  void TakeOver(size_t initiator);
  void Refresh(size_t brick);
  void Heal(size_t primary, size_t target, size_t copied);  // copied >= log size: complete
  void Readmit(size_t primary, size_t target);
  void Crash(size_t brick);
  void Restart(size_t brick);
  void Silence(size_t brick);
  void Resume(size_t brick);
  void AdvanceTime(int64_t ms);

  void RandomStep(Random& random);
  // Every brick back, then drive the set until all replicas are in sync (or report why not).
  void Stabilize();
  void CheckInvariants();

  bool failed() const { return !failure_.empty(); }
  std::string Report() const;
  const std::vector<ModelBrick>& bricks() const { return bricks_; }
  const std::vector<int>& acked() const { return acked_; }
  // How often each kind of transition committed, to show the schedules exercise them all.
  const std::map<std::string, int>& counts() const { return counts_; }
  // The set's record as the store holds it (cached: only this model's txns change it).
  const ReplicaSetRecord& Record() const { return record_; }
  // The brick that believes it is primary with a live lease, or -1.
  int ActivePrimary() const;

  static constexpr char kVolume[] = "model";

 private:
  size_t IndexOf(const std::string& id) const;
  void Fail(const std::string& what);
  void Log(const std::string& event);
  // After a committed txn: re-reads the record and remembers its epoch's in-sync set.
  void Committed();
  bool CanAct(const ModelBrick& brick) const;
  TimePoint Now() const { return TimePoint(std::chrono::milliseconds(store_.now_ms())); }

  StoreHarness store_;
  pb::NoQuorumPolicy policy_;
  std::vector<ModelBrick> bricks_;
  ReplicaSetRecord record_;
  int next_write_ = 1;
  std::vector<int> acked_;
  std::map<uint64_t, std::string> acking_primary_;               // epoch -> primary
  std::map<uint64_t, std::vector<std::string>> in_sync_by_epoch_;  // from the store's records
  std::map<std::string, pb::HealCheckpoint> heal_checkpoints_;
  uint64_t last_epoch_ = 0;
  std::map<std::string, int> counts_;
  std::deque<std::string> trace_;
  std::string failure_;
};

}  // namespace cairn::volume::testing
