// The Raft consensus core: a pure state machine in the etcd-io/raft "Ready" style.
// No threads, sockets, files or clocks: inputs are Tick(), Step(message) and proposals; the output is
// a Ready batch that the driver persists, sends and applies, then acknowledges with Advance().
//
// Driver loop (the ordering contract; the simulator and services/coord both follow it):
//
//   if (node.HasReady()) {
//     Ready rd = node.GetReady();
//     1. if rd.snapshot: persist it (WAL/snapshot file), then storage.ApplySnapshot(*rd.snapshot)
//     2. persist rd.entries and rd.hard_state (fsync when rd.must_sync), then storage.Append(rd.entries)
//        and storage.SetHardState(*rd.hard_state)
//     3. only now send rd.messages: votes and append responses promise what step 2 made durable.
//        Never send before step 2, not even a leader's MSG_APP: the leader counts its own new entries
//        toward the commit quorum as soon as it appends them, which is safe only because nothing
//        (including a commit index) leaves the node before they are durable.
//     4. apply rd.committed_entries in order; for ENTRY_CONF_CHANGE entries call
//        node.ApplyConfChange(cc) after parsing ConfChange from entry.data (an empty data = no-op).
//     5. node.Advance()
//   }
//
// Snapshots: the transport may split a MSG_SNAP into chunks but must deliver it to Step() whole. The
// driver MUST call ReportSnapshot(to, ok) once for every MSG_SNAP it was asked to send, when the send
// finished or failed: until then the leader keeps that follower paused (it cannot tell a lost snapshot
// from a slow one). The application compacts its own log with MemoryStorage::CreateSnapshot + Compact
// at an applied index whenever it likes; the leader sends storage.GetSnapshot() to a follower whose
// next entry was compacted.
//
// Threading: a RawNode is not thread-safe; drive it from one thread (or under one lock).
// A broken internal invariant aborts the process via cairn::Panic with a message naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/raft/storage.h"

namespace cairn::raft {

// Node ids are non-zero; kNone means "no node" (no leader, no vote).
inline constexpr uint64_t kNone = 0;
inline constexpr uint64_t kNoLimit = UINT64_MAX;

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

// Narration: one line of "why" for the simulator's traces and for debug logs. Cheap; optional.
enum class EventKind {
  kBecameFollower,
  kBecamePreCandidate,
  kBecameCandidate,
  kBecameLeader,
  kVoteGranted,      // this node granted its (pre)vote to `peer`
  kVoteRejected,     // this node rejected `peer`'s (pre)vote request
  kAppendRejected,   // this node rejected an append from `peer`
  kCommitted,        // commit index advanced to `index`
  kSteppedDown,      // leader stepped down (lost quorum, removed, higher term)
  kSnapshotRestored, // follower restored a snapshot at `index`
  kConfChangeApplied,
  kTransferStarted,
  kTransferAborted,
  kMessageIgnored,   // a message was dropped (stale term, disruptive vote, ...)
  kReadIndex,        // a read index was confirmed at `index`
};
std::string_view EventKindName(EventKind kind);

struct Event {
  uint64_t node = kNone;  // the node this happened on
  uint64_t term = 0;      // its term at the time
  EventKind kind = EventKind::kBecameFollower;
  uint64_t peer = kNone;  // the other node involved, if any
  uint64_t index = 0;     // a log index, if relevant
  std::string text;       // human sentence, e.g. "granted vote to 2: its log (t3,i7) is up to date"
};
using EventHook = std::function<void(const Event&)>;

struct Config {
  uint64_t id = kNone;  // this node, non-zero
  // Bootstrap membership, used only when storage is empty (a brand-new cluster): the node writes one
  // conf-change entry per member at term 1 (indices 1..n, committed). Every founding member must get
  // the same lists. Leave both empty for a node that joins an existing cluster, or restarts.
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;
  // A follower that hears no leader for a randomised timeout in [election_tick, 2*election_tick)
  // campaigns. The leader heartbeats every heartbeat_tick. Require election_tick > heartbeat_tick > 0.
  int election_tick = 10;
  int heartbeat_tick = 1;
  Storage* storage = nullptr;  // not owned; must outlive the node
  // Last index the application applied (on restart); committed entries after it are re-delivered.
  uint64_t applied = 0;
  uint64_t max_size_per_msg = 1 << 20;          // bytes of entries per MSG_APP (at least one entry)
  uint64_t max_committed_size_per_ready = 1 << 24;  // bytes of committed entries per Ready
  size_t max_inflight_msgs = 256;               // un-acked MSG_APPs per follower (flow control)
  // Leader drops proposals (kUnavailable) once the data of appended-but-unapplied entries exceeds
  // this many bytes, bounding memory while followers are unreachable. 0 = no limit.
  uint64_t max_uncommitted_entries_size = 0;
  bool pre_vote = true;       // §9.6: campaign only after a PreVote round would win
  bool check_quorum = true;   // leader steps down without quorum contact for an election timeout;
                              // followers ignore votes while they have heard from a leader recently
  bool disable_proposal_forwarding = false;  // followers drop proposals instead of forwarding
  uint64_t random_seed = 1;   // seeds the election timeout randomisation (deterministic tests);
                              // mixed with id, so nodes sharing a seed still get different timeouts
  EventHook on_event;         // optional narration hook, called synchronously inside node calls
};

// Returns an error if the config is unusable (zero id, no storage, bad ticks, ...).
Status ValidateConfig(const Config& config);

struct SoftState {
  uint64_t leader = kNone;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// A confirmed ReadIndex: once the application has applied up to `index`, a read for
// `request_context` is linearizable.
struct ReadState {
  uint64_t index = 0;
  std::string request_context;
};

struct Ready {
  std::optional<SoftState> soft_state;   // set when it changed; volatile, never persisted
  std::optional<HardState> hard_state;   // set when it changed; persist before sending messages
  std::vector<ReadState> read_states;
  std::vector<Entry> entries;            // persist (append) before sending messages
  std::optional<Snapshot> snapshot;      // persist/apply before entries
  std::vector<Entry> committed_entries;  // apply after persisting
  std::vector<Message> messages;         // send after persisting
  bool must_sync = false;                // entries, snapshot, vote or term changed: fsync before sending
};

// Per-follower replication state, visible to the leader's status.
enum class ProgressState { kProbe, kReplicate, kSnapshot };
std::string_view ProgressStateName(ProgressState state);

struct ProgressStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  ProgressState state = ProgressState::kProbe;
  bool learner = false;
  bool recent_active = false;
  size_t inflight = 0;
  uint64_t pending_snapshot = 0;
};

struct NodeStatus {
  uint64_t id = kNone;
  HardState hard_state;
  SoftState soft_state;
  uint64_t applied = 0;
  uint64_t lead_transferee = kNone;
  ConfState conf_state;
  std::map<uint64_t, ProgressStatus> progress;  // leader only
};

class RaftImpl;  // internal (src/raft_impl.h)

class RawNode {
 public:
  // Builds a node from config and its storage (see Config). Panics only on a programming error;
  // use Create() to get an error for a bad config or unreadable storage instead.
  static Result<std::unique_ptr<RawNode>> Create(const Config& config);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances logical time by one tick (election / heartbeat timers).
  void Tick();
  // Starts an election now (with PreVote first when enabled).
  Status Campaign();
  // Proposes a command. Error kUnavailable if the proposal is dropped (no known leader, leader
  // transfer in progress, forwarding disabled); a success does NOT mean it will commit.
  Status Propose(std::string data);
  // Proposes a membership change (add learner, promote = ADD_NODE on a learner, remove). On the
  // leader: kFailedPrecondition while a previous conf change is not yet applied, or if it would remove
  // the last voter. A follower forwards it and a refusal at the leader is silent: watch committed
  // entries to learn the outcome.
  Status ProposeConfChange(const ConfChange& change);
  // Feeds a message from a peer. Local-only message types are rejected with kInvalidArgument.
  Status Step(const Message& message);
  // Requests a linearizable read; the result arrives as a ReadState carrying `request_context`.
  void ReadIndex(std::string request_context);
  // Asks the leader to hand leadership to `transferee` (sent to the leader if called on a follower).
  void TransferLeadership(uint64_t transferee);
  // Applies a committed conf change to the node's membership; returns the new membership.
  ConfState ApplyConfChange(const ConfChange& change);
  // Transport feedback.
  void ReportUnreachable(uint64_t id);
  void ReportSnapshot(uint64_t id, bool success);

  bool HasReady() const;
  // Collects everything to persist, send and apply. Call Advance() when done before the next call.
  Ready GetReady();
  // Acknowledges the last GetReady(): entries persisted, messages sent, committed entries applied.
  void Advance();

  NodeStatus GetStatus() const;
  uint64_t id() const;
  Role role() const;
  uint64_t term() const;
  uint64_t leader() const;
  uint64_t commit_index() const;

 private:
  explicit RawNode(std::unique_ptr<RaftImpl> raft);
  std::unique_ptr<RaftImpl> raft_;
  SoftState prev_soft_;
  HardState prev_hard_;
  struct Handed {  // what Advance() needs from the Ready handed out and not yet advanced
    std::optional<HardState> hard_state;
    uint64_t last_entry_index = 0, last_entry_term = 0;
    uint64_t snapshot_index = 0;
    uint64_t applied_to = 0;
    uint64_t applied_bytes = 0;  // data bytes of committed_entries (uncommitted-size accounting)
  };
  std::optional<Handed> pending_;
};

// Helpers for building entries/changes.
Entry MakeConfChangeEntry(const ConfChange& change);  // type ENTRY_CONF_CHANGE, term/index unset
std::string DescribeMessage(const Message& message);  // "1->2 MSG_APP t3 i7/t3 ents=2 c5"

}  // namespace cairn::raft
