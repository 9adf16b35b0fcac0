// In-memory Raft cluster for unit tests (after etcd-io/raft's raft_test.go `network`): each node has a
// MemoryStorage and a driver that follows raft.h's Ready contract; messages travel through one FIFO
// queue that can drop, cut links, isolate nodes and rewrite messages. Deterministic: no threads, no
// clocks; randomness only from seeds.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/common/ids.h"
#include "cairn/raft/raft.h"

namespace cairn::raft::testing {

struct Peer {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  std::vector<std::string> applied;  // application commands applied, in order (the state machine)
  uint64_t applied_index = 0;
  ConfState conf_state;
  std::vector<ReadState> read_states;
  std::vector<Event> events;
  bool down = false;
};

class Cluster {
 public:
  using ConfigTweak = std::function<void(Config&)>;
  // Returns false to drop the message; may rewrite it.
  using Filter = std::function<bool(Message&)>;

  // Bootstraps `ids` as founding voters.
  explicit Cluster(std::vector<uint64_t> ids, ConfigTweak tweak = {}, uint64_t seed = 1)
      : tweak_(std::move(tweak)), seed_(seed), random_(seed) {
    for (uint64_t id : ids) {
      auto& peer = peers_[id];
      peer.storage = std::make_unique<MemoryStorage>();
      StartNode(id, ids);
    }
    Stabilize();
  }

  // Adds a node with an empty log that knows no members (it waits to be contacted).
  void AddEmptyNode(uint64_t id) {
    auto& peer = peers_[id];
    peer.storage = std::make_unique<MemoryStorage>();
    StartNode(id, {});
  }
  // Adds a node whose storage is pre-filled (for Figure 7/8 style logs).
  void AddNodeWithStorage(uint64_t id, std::unique_ptr<MemoryStorage> storage) {
    auto& peer = peers_[id];
    peer.storage = std::move(storage);
    StartNode(id, {});
  }

  Config MakeConfig(uint64_t id, const std::vector<uint64_t>& voters) {
    Config c;
    c.id = id;
    c.voters = voters;
    c.storage = peers_[id].storage.get();
    c.random_seed = seed_;
    c.applied = peers_[id].applied_index;
    c.on_event = [this, id](const Event& e) { peers_[id].events.push_back(e); };
    if (tweak_) tweak_(c);
    return c;
  }

  void StartNode(uint64_t id, const std::vector<uint64_t>& voters) {
    auto node = RawNode::Create(MakeConfig(id, voters));
    ASSERT_TRUE(node.ok()) << node.status();
    peers_[id].node = std::move(*node);
  }

  // Simulates a crash and restart: only what the driver persisted (the storage) survives, and the
  // state machine is rebuilt from the snapshot (its data is the applied commands, '\n'-joined).
  void Restart(uint64_t id) {
    auto& peer = peers_[id];
    peer.node.reset();
    auto snap = peer.storage->GetSnapshot();
    peer.applied = SplitCommands(snap->data());
    peer.applied_index = snap->metadata().index();
    peer.conf_state = snap->metadata().conf_state();
    StartNode(id, {});
  }

  RawNode& node(uint64_t id) { return *peers_.at(id).node; }
  Peer& peer(uint64_t id) { return peers_.at(id); }
  std::map<uint64_t, Peer>& peers() { return peers_; }

  // Runs one node's Ready loop until it has nothing to do.
  void Process(uint64_t id) {
    auto& peer = peers_.at(id);
    while (peer.node->HasReady()) {
      Ready rd = peer.node->GetReady();
      if (rd.snapshot) {
        ASSERT_TRUE(peer.storage->ApplySnapshot(*rd.snapshot).ok());
        peer.applied = SplitCommands(rd.snapshot->data());
        peer.applied_index = rd.snapshot->metadata().index();
        peer.conf_state = rd.snapshot->metadata().conf_state();
      }
      ASSERT_TRUE(peer.storage->Append(rd.entries).ok());
      if (rd.hard_state) peer.storage->SetHardState(*rd.hard_state);
      for (Message& m : rd.messages) queue_.push_back(std::move(m));
      for (const Entry& e : rd.committed_entries) Apply(peer, e);
      for (ReadState& rs : rd.read_states) peer.read_states.push_back(std::move(rs));
      peer.node->Advance();
    }
  }

  // Called for every entry any node applies (for state machine safety checks).
  std::function<void(uint64_t node, const Entry&)> on_apply;

  void Apply(Peer& peer, const Entry& e) {
    ASSERT_EQ(e.index(), peer.applied_index + 1) << "applied out of order";
    if (on_apply) on_apply(peer.node->id(), e);
    peer.applied_index = e.index();
    if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
      ConfChange cc;
      ASSERT_TRUE(cc.ParseFromString(e.data()));
      peer.conf_state = peer.node->ApplyConfChange(cc);
    } else if (!e.data().empty()) {
      peer.applied.push_back(e.data());
    }
  }

  // Delivers one message, applying cuts, isolation, drop rate and the filter.
  bool report_snapshots = true;
  // Like a real transport, reports every snapshot send's outcome back to the sender.
  void Deliver(Message m) {
    uint64_t from = m.from(), to = m.to();
    bool is_snapshot = m.type() == raftpb::MSG_SNAP;
    bool delivered = false;
    auto it = peers_.find(to);
    if (Allowed(m) && it != peers_.end() && !it->second.down) {
      (void)it->second.node->Step(m);
      delivered = true;
    }
    auto sender = peers_.find(from);
    if (report_snapshots && is_snapshot && sender != peers_.end() && !sender->second.down) {
      sender->second.node->ReportSnapshot(to, delivered);
    }
  }

  bool Allowed(Message& m) {
    if (cut_.count({m.from(), m.to()}) || isolated_.count(m.from()) || isolated_.count(m.to())) return false;
    if (drop_percent_ > 0 && random_.Uniform(100) < drop_percent_) return false;
    if (filter_ && !filter_(m)) return false;
    return true;
  }

  // Processes and delivers until no node has work and no message is in flight.
  void Stabilize(int max_steps = 100000) {
    for (int step = 0; step < max_steps; ++step) {
      for (auto& [id, peer] : peers_) {
        if (!peer.down) Process(id);
      }
      if (queue_.empty()) return;
      size_t pick = reorder_percent_ > 0 && random_.Uniform(100) < reorder_percent_ ? random_.Uniform(queue_.size()) : 0;
      Message m = std::move(queue_[pick]);
      queue_.erase(queue_.begin() + static_cast<ptrdiff_t>(pick));
      if (duplicate_percent_ > 0 && random_.Uniform(100) < duplicate_percent_) queue_.push_back(m);
      Deliver(std::move(m));
    }
    ADD_FAILURE() << "cluster did not stabilize";
  }

  void Tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) peers_.at(id).node->Tick();
  }
  void TickAll(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, peer] : peers_) {
        if (!peer.down) peer.node->Tick();
      }
      Stabilize();
    }
  }

  void Campaign(uint64_t id) {
    EXPECT_TRUE(node(id).Campaign().ok());
    Stabilize();
  }
  Status Propose(uint64_t id, std::string data) {
    Status s = node(id).Propose(std::move(data));
    Stabilize();
    return s;
  }

  void Isolate(uint64_t id) { isolated_.insert(id); }
  void Cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void Recover() {
    isolated_.clear();
    cut_.clear();
    drop_percent_ = 0;
    reorder_percent_ = 0;
    duplicate_percent_ = 0;
    filter_ = nullptr;
  }
  void SetDropPercent(uint64_t percent) { drop_percent_ = percent; }
  // Delivers a random queued message instead of the oldest this often, and re-queues a copy of a
  // delivered message this often (the network reorders and duplicates).
  void SetReorderPercent(uint64_t percent) { reorder_percent_ = percent; }
  void SetDuplicatePercent(uint64_t percent) { duplicate_percent_ = percent; }
  void SetFilter(Filter f) { filter_ = std::move(f); }
  void ClearQueue() { queue_.clear(); }
  std::deque<Message>& queue() { return queue_; }

  // The unique node that believes it leads in the highest term among leaders, or 0.
  uint64_t Leader() {
    uint64_t leader = kNone, term = 0;
    for (auto& [id, peer] : peers_) {
      if (!peer.down && peer.node->role() == Role::kLeader && peer.node->term() >= term) {
        leader = id;
        term = peer.node->term();
      }
    }
    return leader;
  }

  // Entries in a node's stable log (everything the driver persisted), for log comparisons.
  std::vector<Entry> Log(uint64_t id) {
    auto& s = *peers_.at(id).storage;
    uint64_t first = *s.FirstIndex(), last = *s.LastIndex();
    if (last < first) return {};
    return *s.Entries(first, last + 1, kNoLimit);
  }

  // State machine safety: every pair of applied sequences is prefix-related.
  void ExpectAppliedPrefixes() {
    for (auto& [a, pa] : peers_) {
      for (auto& [b, pb] : peers_) {
        size_t n = std::min(pa.applied.size(), pb.applied.size());
        for (size_t i = 0; i < n; ++i) {
          ASSERT_EQ(pa.applied[i], pb.applied[i]) << "nodes " << a << " and " << b << " diverge at command " << i;
        }
      }
    }
  }

  static std::vector<std::string> SplitCommands(const std::string& data) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < data.size()) {
      size_t end = data.find('\n', start);
      if (end == std::string::npos) end = data.size();
      out.push_back(data.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
  static std::string JoinCommands(const std::vector<std::string>& commands) {
    std::string out;
    for (size_t i = 0; i < commands.size(); ++i) out += (i ? "\n" : "") + commands[i];
    return out;
  }

  // Snapshots `id`'s state machine at its applied index and compacts its log there.
  void SnapshotAndCompact(uint64_t id) {
    auto& peer = peers_.at(id);
    auto snap = peer.storage->CreateSnapshot(peer.applied_index, &peer.conf_state, JoinCommands(peer.applied));
    ASSERT_TRUE(snap.ok()) << snap.status();
    ASSERT_TRUE(peer.storage->Compact(peer.applied_index).ok());
  }

 private:
  ConfigTweak tweak_;
  uint64_t seed_;
  Random random_;
  std::map<uint64_t, Peer> peers_;
  std::deque<Message> queue_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::set<uint64_t> isolated_;
  uint64_t drop_percent_ = 0;
  uint64_t reorder_percent_ = 0;
  uint64_t duplicate_percent_ = 0;
  Filter filter_;
};

// Builds a storage holding entries with the given terms at indices 1..n and HardState{term}.
inline std::unique_ptr<MemoryStorage> StorageWithTerms(const std::vector<uint64_t>& terms, uint64_t term,
                                                       const std::vector<uint64_t>& voters) {
  auto s = std::make_unique<MemoryStorage>();
  Snapshot snap;
  for (uint64_t v : voters) snap.mutable_metadata()->mutable_conf_state()->add_voters(v);
  EXPECT_TRUE(s->ApplySnapshot(snap).ok());  // index 0: just the membership
  std::vector<Entry> entries;
  for (size_t i = 0; i < terms.size(); ++i) {
    Entry e;
    e.set_index(i + 1);
    e.set_term(terms[i]);
    e.set_data("t" + std::to_string(terms[i]) + "i" + std::to_string(i + 1));
    entries.push_back(e);
  }
  EXPECT_TRUE(s->Append(entries).ok());
  HardState hs;
  hs.set_term(term);
  s->SetHardState(hs);
  return s;
}

}  // namespace cairn::raft::testing
