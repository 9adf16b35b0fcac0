// Seeded random runs with message loss, partitions, crashes/restarts and log compaction, checking the
// Raft safety properties (Figure 3) after every round. Short here (label unit, also under ASan); the
// simulator in tests/sim runs thousands of seeds.
#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "cluster.h"

namespace cairn::raft::testing {
namespace {

class SafetyChecker {
 public:
  explicit SafetyChecker(Cluster& c) : c_(c) {
    c_.on_apply = [this](uint64_t node, const Entry& e) { OnApply(node, e); };
  }

  // State Machine Safety: no two nodes apply different entries at the same index.
  void OnApply(uint64_t node, const Entry& e) {
    std::string bytes = e.SerializeAsString();
    auto [it, inserted] = applied_.emplace(e.index(), bytes);
    if (!inserted && it->second != bytes) {
      ADD_FAILURE() << "node " << node << " applied a different entry at index " << e.index();
    }
  }

  void CheckRound() {
    uint64_t max_term = 0;
    for (auto& [id, peer] : c_.peers()) max_term = std::max(max_term, peer.node->term());
    for (auto& [id, peer] : c_.peers()) {
      if (peer.down) continue;
      for (const Event& e : peer.events) {
        if (e.kind != EventKind::kBecameLeader) continue;
        auto [it, inserted] = leader_of_term_.emplace(e.term, id);
        if (!inserted && it->second != id) {
          ADD_FAILURE() << "Election Safety: leaders " << it->second << " and " << id << " in term " << e.term;
        }
      }
      peer.events.clear();
      // Leader Completeness: a leader's log holds every entry applied anywhere (unless compacted).
      // Only for the newest term: a deposed leader that has not noticed yet may hold stale entries.
      if (peer.node->role() == Role::kLeader && peer.node->term() == max_term) {
        for (const Entry& entry : c_.Log(id)) {
          auto it = applied_.find(entry.index());
          if (it != applied_.end() && it->second != entry.SerializeAsString()) {
            ADD_FAILURE() << "Leader Completeness: leader " << id << " (term " << peer.node->term()
                          << ") has a different entry at committed index " << entry.index() << ": "
                          << entry.ShortDebugString();
          }
        }
        uint64_t last = *peer.storage->LastIndex();
        for (const auto& [index, bytes] : applied_) {
          if (index > last && index <= c_.node(id).commit_index()) {
            ADD_FAILURE() << "Leader Completeness: leader " << id << " lacks committed index " << index;
          }
        }
      }
    }
  }

  size_t applied_count() const { return applied_.size(); }

 private:
  Cluster& c_;
  std::map<uint64_t, std::string> applied_;
  std::map<uint64_t, uint64_t> leader_of_term_;
};

std::string DescribeNodes(Cluster& c) {
  std::string out;
  for (auto& [id, peer] : c.peers()) {
    auto st = peer.node->GetStatus();
    out += "\n  node " + std::to_string(id) + " " + std::string(RoleName(st.soft_state.role)) + " term " +
           std::to_string(st.hard_state.term()) + " leader " + std::to_string(st.soft_state.leader) + " commit " +
           std::to_string(st.hard_state.commit()) + " applied " + std::to_string(peer.applied_index) + " last " +
           std::to_string(*peer.storage->LastIndex()) + " first " + std::to_string(*peer.storage->FirstIndex()) +
           " voters " + std::to_string(st.conf_state.voters_size());
    for (const auto& [pid, pr] : st.progress) {
      out += "\n    progress " + std::to_string(pid) + " match " + std::to_string(pr.match) + " next " +
             std::to_string(pr.next) + " " + std::string(ProgressStateName(pr.state)) + " inflight " +
             std::to_string(pr.inflight) + " active " + std::to_string(pr.recent_active);
    }
  }
  return out;
}

TEST(Chaos, SafetyUnderLossPartitionsCrashesAndCompaction) {
  // CAIRN_RAFT_CHAOS_SEEDS=N runs more seeds by hand; the default keeps the unit run fast.
  const char* env = std::getenv("CAIRN_RAFT_CHAOS_SEEDS");
  uint64_t seeds = env != nullptr ? std::strtoull(env, nullptr, 10) : 12;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c({1, 2, 3, 4, 5}, {}, seed);
    SafetyChecker checker(c);
    Random random(seed * 7919);
    for (int round = 0; round < 250; ++round) {
      uint64_t target = 1 + random.Uniform(5);
      switch (random.Uniform(12)) {
        case 0:
          c.Recover();
          c.Isolate(target);
          break;
        case 1:
          c.Cut(target, 1 + random.Uniform(5));
          break;
        case 2:
          c.Recover();
          c.SetDropPercent(random.Uniform(30));
          c.SetReorderPercent(random.Uniform(50));
          c.SetDuplicatePercent(random.Uniform(10));
          break;
        case 3:
          c.Restart(target);
          break;
        case 4:
          if (c.peer(target).applied_index > *c.peer(target).storage->FirstIndex()) c.SnapshotAndCompact(target);
          break;
        case 5:
          c.node(target).ReadIndex("r" + std::to_string(round));
          break;
        case 6:
          c.node(target).TransferLeadership(1 + random.Uniform(5));
          break;
        default:
          (void)c.node(target).Propose("s" + std::to_string(seed) + "c" + std::to_string(round));
          break;
      }
      c.TickAll();
      checker.CheckRound();
      if (::testing::Test::HasFailure()) return;
    }
    c.Recover();
    c.TickAll(60);
    checker.CheckRound();
    c.ExpectAppliedPrefixes();
    EXPECT_GT(checker.applied_count(), 30u) << "too little progress to mean anything";
    // Liveness after healing: everyone converges on the same state.
    for (uint64_t id = 2; id <= 5; ++id) {
      EXPECT_EQ(c.peer(id).applied, c.peer(1).applied) << "node " << id << DescribeNodes(c);
    }
  }
}

// Membership changes (add learner, promote, remove) interleaved with loss, partitions and restarts.
// Node ids are never reused after removal (as etcd requires).
TEST(Chaos, SafetyWithMembershipChanges) {
  const char* env = std::getenv("CAIRN_RAFT_CHAOS_SEEDS");
  uint64_t seeds = env != nullptr ? std::strtoull(env, nullptr, 10) : 8;
  size_t promoted_voters = 0, removals = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c({1, 2, 3}, {}, seed);
    SafetyChecker checker(c);
    Random random(seed * 104729);
    uint64_t next_id = 4;
    std::set<uint64_t> removed;
    auto change = [](raftpb::ConfChangeType type, uint64_t node) {
      ConfChange cc;
      cc.set_type(type);
      cc.set_node_id(node);
      return cc;
    };
    for (int round = 0; round < 300; ++round) {
      uint64_t leader = c.Leader();
      std::vector<uint64_t> live;
      for (auto& [id, peer] : c.peers()) {
        if (!removed.count(id)) live.push_back(id);
      }
      uint64_t target = live[random.Uniform(live.size())];
      switch (random.Uniform(14)) {
        case 0:
          c.Recover();
          c.Isolate(target);
          break;
        case 1:
          c.Recover();
          c.SetDropPercent(random.Uniform(25));
          c.SetReorderPercent(random.Uniform(50));
          c.SetDuplicatePercent(random.Uniform(10));
          break;
        case 2:
          c.Restart(target);
          break;
        case 3:
          if (c.peer(target).applied_index > *c.peer(target).storage->FirstIndex()) c.SnapshotAndCompact(target);
          break;
        case 4:  // add a brand-new learner
          if (leader != kNone && next_id <= 8) {
            c.AddEmptyNode(next_id);
            if (c.node(leader).ProposeConfChange(change(raftpb::CONF_CHANGE_ADD_LEARNER, next_id)).ok()) {
              ++next_id;
            } else {
              c.peers().erase(next_id);
            }
          }
          break;
        case 5:  // promote a learner
          if (leader != kNone) {
            auto cs = c.node(leader).GetStatus().conf_state;
            if (cs.learners_size() > 0) {
              (void)c.node(leader).ProposeConfChange(change(raftpb::CONF_CHANGE_ADD_NODE, cs.learners(0)));
            }
          }
          break;
        case 6:  // remove a voter, keeping at least three
          if (leader != kNone) {
            auto cs = c.node(leader).GetStatus().conf_state;
            if (cs.voters_size() > 3) {
              uint64_t victim = cs.voters(random.Uniform(cs.voters_size()));
              if (c.node(leader).ProposeConfChange(change(raftpb::CONF_CHANGE_REMOVE_NODE, victim)).ok()) {
                removed.insert(victim);
              }
            }
          }
          break;
        default:
          (void)c.node(target).Propose("m" + std::to_string(round));
          break;
      }
      c.TickAll();
      checker.CheckRound();
      if (::testing::Test::HasFailure()) return;
    }
    c.Recover();
    c.TickAll(80);
    checker.CheckRound();
    c.ExpectAppliedPrefixes();
    uint64_t leader = c.Leader();
    ASSERT_NE(leader, kNone) << DescribeNodes(c);
    auto cs = c.node(leader).GetStatus().conf_state;
    for (uint64_t id : cs.voters()) {
      EXPECT_EQ(c.peer(id).applied, c.peer(leader).applied) << "voter " << id << DescribeNodes(c);
    }
    for (uint64_t id : cs.learners()) {
      EXPECT_EQ(c.peer(id).applied, c.peer(leader).applied) << "learner " << id << DescribeNodes(c);
    }
    for (uint64_t id : cs.voters()) promoted_voters += id >= 4;
    for (uint64_t id = 1; id < next_id; ++id) {
      bool member = std::count(cs.voters().begin(), cs.voters().end(), id) +
                    std::count(cs.learners().begin(), cs.learners().end(), id);
      removals += !member;
    }
  }
  // The run must actually have exercised membership changes.
  EXPECT_GT(promoted_voters, 0u);
  EXPECT_GT(removals, 0u);
}

}  // namespace
}  // namespace cairn::raft::testing
