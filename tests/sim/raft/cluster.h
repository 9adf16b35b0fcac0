// The deterministic Raft simulation: K raft nodes (libs/raft RawNode), each with a crashable WAL on a
// simulated disk and a KV state machine, talking over the simulated network, driven by clients that
// put and read (ReadIndex) keys. One seeded cairn::Random decides everything, so a seed replays exactly.
//
// Invariants checked as the run goes (any failure is recorded in `violation()` and the run stops):
//   election safety      at most one leader per term, ever
//   log matching         an (index, term) pair always names the same entry with the same predecessor
//                        term (by induction: equal entries imply equal logs up to there)
//   leader completeness  a new leader of term T holds every entry committed in a term before T
//   state machine safety every node applies the same entry, and reaches the same KV state, at an index
//   ready contract       new entries or a term/vote change come with must_sync
// and at the end: linearizability of the client history (libs/lincheck) and liveness once faults stop.
//
// Threading: single-threaded.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/lincheck/kv_checker.h"
#include "cairn/raft/raft.h"
#include "cairn/sim/disk.h"
#include "cairn/sim/network.h"

namespace cairn::sim {

inline constexpr int64_t kUnitsPerTick = 10;  // simulated time units per raft tick

// Deliberate driver mistakes, to prove the checkers catch what they claim to (mutation testing).
enum class DriverBug {
  kNone,
  kSkipSync,   // never fsync the WAL: a crash loses votes and acknowledged entries
  kStaleRead,  // answer reads from the local state machine at once, skipping ReadIndex
};

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  int clients = 3;
  int keys = 3;
  int fault_ticks = 300;     // ticks with random faults
  int liveness_ticks = 400;  // after faults stop: bound for a leader and every client op to finish
  int election_tick = 10;
  int heartbeat_tick = 1;
  int client_timeout_ticks = 40;
  bool random_faults = true;  // false for scripted scenarios
  bool narrate = false;       // scenario narration: readable lines, no message noise
  size_t trace_tail = 60;     // trace lines kept for a violation report
  DriverBug driver_bug = DriverBug::kNone;
};

// One simulated host: a raft node, its storage and its KV state machine.
struct SimNode {
  uint64_t id = 0;
  bool founding = false;  // bootstraps with the initial voter list when its storage is empty
  bool up = false;
  bool removed = false;   // taken out of the cluster by a conf change; never restarted
  int restarts = 0;
  int tick_phase = 0;     // ticks happen when (now + phase) % kUnitsPerTick == 0
  Disk disk;
  std::unique_ptr<raft::MemoryStorage> storage;
  std::unique_ptr<raft::RawNode> raft;
  // Volatile application state, rebuilt from the snapshot on restart.
  std::map<std::string, std::string> kv;
  std::map<uint64_t, uint64_t> sessions;  // client -> last applied sequence (dedupes retried commands)
  uint64_t applied = 0;
  raft::ConfState conf_state;
  std::vector<raft::ReadState> pending_reads;
  raft::Role role = raft::Role::kFollower;
  uint64_t verified_commit = 0;
};

class Cluster {
 public:
  explicit Cluster(const SimOptions& options);
  ~Cluster();

  // Runs the random schedule: fault phase, then the liveness phase, then the history check.
  // Returns true when no invariant broke.
  bool RunRandom();

  // Building blocks for scripted scenarios (each returns false once a violation is recorded).
  bool RunTicks(int ticks);
  // Runs until `done` holds or `max_ticks` pass; returns whether it held.
  bool RunUntil(const std::function<bool()>& done, int max_ticks);
  void Crash(uint64_t node);
  void Restart(uint64_t node);
  void Isolate(uint64_t node);
  void Partition(const std::vector<uint64_t>& side_a, const std::vector<uint64_t>& side_b);
  void Heal();
  // Client `client` puts key=value through `node`; returns false if the node refused it.
  bool ClientPut(uint64_t client, uint64_t node, const std::string& key, const std::string& value);
  bool ClientGet(uint64_t client, uint64_t node, const std::string& key);
  bool ClientIdle(uint64_t client) const;
  void TransferLeader(uint64_t to);
  // Adds a fresh node as a learner (through the leader); returns its id, 0 if there is no leader.
  uint64_t AddLearner();
  bool Promote(uint64_t node);
  bool Remove(uint64_t node);
  void Compact(uint64_t node);
  void SetNetworkFaults(const NetworkFaults& faults) { network_.SetFaults(faults); }
  // Stops every election timer except `node`'s (ticks still flow to it); for split-vote scripts.
  void Campaign(uint64_t node);

  uint64_t Leader() const;  // the up leader with the highest term, 0 if none
  SimNode* node(uint64_t id);
  std::vector<uint64_t> MemberIds() const;  // not removed
  bool AllAppliedEqual() const;
  // Whether the current leader's applied configuration lists `id` as a voter (or, if !voter, as a learner).
  bool InLeaderConfig(uint64_t id, bool voter) const;
  std::string Laggards() const;  // empty when every member applied the leader's commit index

  void Say(const std::string& line);  // a narration / trace line stamped with the tick
  const std::vector<std::string>& narration() const { return narration_; }
  const std::deque<std::string>& trace_tail() const { return trace_tail_; }
  void set_trace_sink(std::function<void(const std::string&)> sink) { trace_sink_ = std::move(sink); }

  const std::string& violation() const { return violation_; }
  int64_t now() const { return now_; }
  const NetworkStats& network_stats() const { return network_.stats(); }
  std::string Summary() const;
  // Named counters for aggregation across seeds: ops, timeouts, crashes, torn, partitions, ...
  std::map<std::string, uint64_t> Counters() const;
  // Checks the recorded history; records a violation if it is not linearizable.
  bool CheckHistory();
  // Heals everything, restarts crashed nodes, and requires a leader and completed client ops in time.
  bool CheckLiveness();

 private:
  struct ClientState {
    uint64_t id = 0;
    uint64_t sequence = 0;
    std::optional<size_t> op;  // index into history_ of the outstanding operation
    uint64_t node = 0;
    std::string read_context;
    int64_t deadline = 0;
    int64_t next_action = 0;
  };

  void Step();  // one time unit
  void Deliver();
  void TickNodes();
  void ProcessReadies();
  void HandleReady(SimNode& node);
  void PersistSnapshot(SimNode& node, const raft::Snapshot& snapshot);
  void PersistEntries(SimNode& node, const std::vector<raft::Entry>& entries);
  void ApplyEntries(SimNode& node, const std::vector<raft::Entry>& entries);
  void ApplyOne(SimNode& node, const raft::Entry& entry);
  void ApplyConfChange(SimNode& node, const raft::Entry& entry);
  void ServeReads(SimNode& node);
  void NoteSoftState(SimNode& node, const raft::SoftState& soft);
  void NoteCommit(SimNode& node);
  void CheckLeaderCompleteness(SimNode& node);
  void RestoreApplication(SimNode& node);
  void Retire(uint64_t id, const std::string& why);
  Status StartNode(SimNode& node);
  SimNode& AddNode(uint64_t id, bool founding);

  void RandomFaults();
  void RandomClients();
  void ClientTimeouts();
  void CompleteOp(ClientState& client, std::optional<std::string> observed);
  void MaybeCompact(SimNode& node);

  void Violation(const std::string& what);
  std::string NodeName(uint64_t id) const { return "n" + std::to_string(id); }
  int64_t Tick() const { return now_ / kUnitsPerTick; }

  SimOptions options_;
  Random random_;
  Network<raft::Message> network_;
  std::map<uint64_t, std::unique_ptr<SimNode>> nodes_;
  std::vector<uint64_t> founders_;
  uint64_t next_node_id_ = 0;
  int64_t now_ = 0;
  bool faults_on_ = true;
  std::set<uint64_t> dirty_;  // nodes called since the last ProcessReadies

  // Invariant bookkeeping.
  std::map<uint64_t, uint64_t> leader_of_term_;
  struct LogFact {
    size_t hash;
    uint64_t prev_term;
  };
  std::map<std::pair<uint64_t, uint64_t>, LogFact> log_facts_;  // (index, term)
  struct CommittedEntry {
    uint64_t term;
    size_t hash;
    uint64_t commit_term;
  };
  std::map<uint64_t, CommittedEntry> committed_;  // index -> entry
  struct AppliedFact {
    uint64_t term;
    size_t hash;
    size_t state_hash;
  };
  std::map<uint64_t, AppliedFact> applied_;

  // Clients and their history.
  std::vector<ClientState> clients_;
  std::vector<lincheck::Operation> history_;
  int64_t history_clock_ = 0;
  uint64_t ops_completed_ = 0, ops_timed_out_ = 0, ops_refused_ = 0;

  // Fault schedule state.
  int64_t heal_at_tick_ = -1;
  std::map<uint64_t, int64_t> restart_at_tick_;
  std::optional<uint64_t> pending_learner_;
  int64_t conf_change_deadline_ = -1;
  uint64_t crashes_ = 0, partitions_ = 0, conf_changes_ = 0, transfers_ = 0, snapshots_ = 0, torn_tails_ = 0;
  uint64_t next_conf_change_id_ = 1;

  std::vector<std::string> narration_;
  std::deque<std::string> trace_tail_;
  std::function<void(const std::string&)> trace_sink_;
  std::string violation_;
};

}  // namespace cairn::sim
