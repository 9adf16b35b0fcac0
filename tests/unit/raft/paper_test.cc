// Tests named after the Raft paper's sentences (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", extended version), in the spirit of etcd-io/raft's raft_paper_test.go.
#include <gtest/gtest.h>

#include "cluster.h"

namespace cairn::raft::testing {
namespace {

void NoPreVote(Config& c) { c.pre_vote = false; }

// §5.2: "If a follower receives no communication over a period of time called the election timeout,
// then it assumes there is no viable leader and begins an election."
TEST(RaftPaper, FollowerStartsElectionAfterElectionTimeout) {
  Cluster c({1, 2, 3}, NoPreVote);
  uint64_t term = c.node(1).term();
  c.Tick(1, 2 * 10);  // randomised timeout is in [10, 20)
  EXPECT_EQ(c.node(1).role(), Role::kCandidate);
  EXPECT_EQ(c.node(1).term(), term + 1);
}

// §5.2: "To begin an election, a follower increments its current term ... votes for itself and issues
// RequestVote RPCs in parallel to each of the other servers."
TEST(RaftPaper, CandidateVotesForItselfAndRequestsVotes) {
  Cluster c({1, 2, 3}, NoPreVote);
  ASSERT_TRUE(c.node(1).Campaign().ok());
  Ready rd = c.node(1).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  std::set<uint64_t> asked;
  for (const Message& m : rd.messages) {
    EXPECT_EQ(m.type(), raftpb::MSG_VOTE);
    EXPECT_EQ(m.term(), c.node(1).term());
    asked.insert(m.to());
  }
  EXPECT_EQ(asked, (std::set<uint64_t>{2, 3}));
  c.node(1).Advance();
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the full
// cluster for the same term."
TEST(RaftPaper, CandidateWinsWithMajorityOfVotes) {
  Cluster c({1, 2, 3, 4, 5});
  c.Isolate(4);
  c.Isolate(5);
  c.Campaign(1);
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  c.Isolate(3);
  c.Campaign(2);  // only {1? no: 1 is leader in lease} -- 2 cannot gather a majority
  EXPECT_NE(c.node(2).role(), Role::kLeader);
}

// §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-served
// basis."
TEST(RaftPaper, VoterGrantsAtMostOneVotePerTerm) {
  Cluster c({1, 2, 3}, NoPreVote);
  Message vote;
  vote.set_type(raftpb::MSG_VOTE);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term(5);
  vote.set_index(10);
  vote.set_log_term(4);
  ASSERT_TRUE(c.node(1).Step(vote).ok());
  vote.set_from(3);
  ASSERT_TRUE(c.node(1).Step(vote).ok());
  Ready rd = c.node(1).GetReady();
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_FALSE(rd.messages[0].reject());
  EXPECT_EQ(rd.messages[0].to(), 2u);
  EXPECT_TRUE(rd.messages[1].reject());
  EXPECT_EQ(rd.hard_state->vote(), 2u);
  c.node(1).Advance();
}

// §5.2 Election Safety: "at most one leader can be elected in a given term", under message loss and
// partitions, over many seeds.
TEST(RaftPaper, ElectionSafetyAtMostOneLeaderPerTerm) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    Cluster c({1, 2, 3, 4, 5}, {}, seed);
    Random random(seed);
    c.SetDropPercent(20);
    for (int round = 0; round < 200; ++round) {
      if (round % 40 == 39) {  // depose whoever leads, plus a random bystander
        uint64_t leader = c.Leader();
        c.Recover();
        c.SetDropPercent(20);
        if (leader != kNone) c.Isolate(leader);
        c.Isolate(1 + random.Uniform(5));
      }
      c.TickAll();
    }
    std::map<uint64_t, uint64_t> leader_of_term;
    for (auto& [id, peer] : c.peers()) {
      for (const Event& e : peer.events) {
        if (e.kind != EventKind::kBecameLeader) continue;
        auto [it, inserted] = leader_of_term.emplace(e.term, id);
        ASSERT_TRUE(inserted) << "seed " << seed << ": two leaders in term " << e.term << ": " << it->second
                              << " and " << id;
      }
    }
    EXPECT_GE(leader_of_term.size(), 2u) << "seed " << seed << ": expected leader churn";
  }
}

// §5.4.1 Election restriction: "the voter denies its vote if its own log is more up-to-date than that
// of the candidate."
TEST(RaftPaper, ElectionRestrictionVoterDeniesLessUpToDateCandidate) {
  for (bool pre_vote : {false, true}) {
    Cluster c({}, [pre_vote](Config& cfg) { cfg.pre_vote = pre_vote; });
    c.AddNodeWithStorage(1, StorageWithTerms({1}, 1, {1, 2, 3}));
    c.AddNodeWithStorage(2, StorageWithTerms({1, 1}, 1, {1, 2, 3}));
    c.AddNodeWithStorage(3, StorageWithTerms({1, 2}, 2, {1, 2, 3}));
    c.Campaign(1);
    EXPECT_NE(c.node(1).role(), Role::kLeader) << "pre_vote=" << pre_vote;
    c.Campaign(2);  // 2's log (t1,i2) is behind 3's (t2,i2): only 1 votes for it, still a majority
    EXPECT_EQ(c.node(2).role(), Role::kLeader) << "pre_vote=" << pre_vote;
    // The committed no-op replaced 3's uncommitted term-2 entry.
    EXPECT_EQ(c.Log(3).back().term(), c.node(2).term());
  }
}

// §5.3: "A log entry is committed once the leader that created the entry has replicated it on a
// majority of the servers."
TEST(RaftPaper, LeaderCommitsEntryReplicatedOnMajority) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  uint64_t before = c.node(1).commit_index();
  ASSERT_TRUE(c.Propose(1, "x").ok());
  EXPECT_EQ(c.node(1).commit_index(), before + 1);
  EXPECT_EQ(c.peer(1).applied.back(), "x");
  c.Isolate(2);
  ASSERT_TRUE(c.Propose(1, "y").ok());
  EXPECT_EQ(c.node(1).commit_index(), before + 1) << "committed without a majority";
  c.Recover();
  c.TickAll(2);
  EXPECT_EQ(c.node(1).commit_index(), before + 2);
  EXPECT_EQ(c.peer(3).applied, (std::vector<std::string>{"x", "y"}));
}

// Figure 7: "When the leader at the top comes to power, it is possible that any of scenarios (a-f)
// could occur in follower logs" -- and the leader brings every one of them into agreement with its own.
TEST(RaftPaper, Figure7LeaderForcesFollowerLogsToMatch) {
  std::vector<uint64_t> ids = {1, 2, 3, 4, 5, 6, 7};
  Cluster c({});
  c.AddNodeWithStorage(1, StorageWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6}, 7, ids));        // leader
  c.AddNodeWithStorage(2, StorageWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6}, 7, ids));           // (a)
  c.AddNodeWithStorage(3, StorageWithTerms({1, 1, 1, 4}, 7, ids));                          // (b)
  c.AddNodeWithStorage(4, StorageWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 7, ids));     // (c)
  c.AddNodeWithStorage(5, StorageWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 7, ids));  // (d)
  c.AddNodeWithStorage(6, StorageWithTerms({1, 1, 1, 4, 4, 4, 4}, 7, ids));                 // (e)
  c.AddNodeWithStorage(7, StorageWithTerms({1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 7, ids));     // (f)
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), 8u);
  std::vector<uint64_t> expected = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8};
  for (uint64_t id : ids) {
    std::vector<uint64_t> terms;
    for (const Entry& e : c.Log(id)) terms.push_back(e.term());
    EXPECT_EQ(terms, expected) << "follower " << id;
    EXPECT_EQ(c.node(id).commit_index(), 11u) << "follower " << id;
  }
}

// Figure 8 / §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only
// log entries from the leader's current term are committed by counting replicas."
TEST(RaftPaper, Figure8LeaderDoesNotCommitPreviousTermEntryByCounting) {
  Cluster c({});
  c.AddNodeWithStorage(1, StorageWithTerms({1, 2}, 2, {1, 2, 3}));
  c.AddNodeWithStorage(2, StorageWithTerms({1}, 2, {1, 2, 3}));
  c.AddNodeWithStorage(3, StorageWithTerms({1}, 2, {1, 2, 3}));
  // Replicate only up to index 2 (the term-2 entry): strip the leader's new term-3 entries.
  c.SetFilter([](Message& m) {
    if (m.type() != raftpb::MSG_APP) return true;
    auto* entries = m.mutable_entries();
    while (entries->size() > 0 && entries->rbegin()->index() > 2) entries->RemoveLast();
    m.set_commit(std::min<uint64_t>(m.commit(), 2));
    return true;
  });
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  ASSERT_EQ(c.Log(2).size(), 2u) << "the term-2 entry reached a majority";
  EXPECT_EQ(c.node(1).commit_index(), 0u) << "a previous-term entry was committed by counting replicas";
  c.Recover();
  c.TickAll(2);
  EXPECT_EQ(c.node(1).commit_index(), 3u) << "committing the term-3 no-op commits index 2 with it";
  EXPECT_EQ(c.node(2).commit_index(), 3u);
}

// §5.3 Log Matching: "If two logs contain an entry with the same index and term, then the logs are
// identical in all entries up through the given index." Checked after a lossy run with leader churn.
TEST(RaftPaper, LogMatchingAfterLossyRun) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    Cluster c({1, 2, 3}, {}, seed);
    Random random(seed * 31);
    c.SetDropPercent(15);
    for (int round = 0; round < 150; ++round) {
      (void)c.node(1 + random.Uniform(3)).Propose("cmd" + std::to_string(round));
      if (random.OneIn(15)) {
        c.Recover();
        c.SetDropPercent(15);
        c.Isolate(1 + random.Uniform(3));
      }
      c.TickAll();
    }
    c.Recover();
    c.TickAll(40);
    auto l1 = c.Log(1), l2 = c.Log(2), l3 = c.Log(3);
    for (const auto* other : {&l2, &l3}) {
      size_t n = std::min(l1.size(), other->size());
      for (size_t i = n; i-- > 0;) {
        if (l1[i].term() != (*other)[i].term()) continue;
        for (size_t j = 0; j <= i; ++j) {
          ASSERT_EQ(l1[j].SerializeAsString(), (*other)[j].SerializeAsString()) << "seed " << seed << " index " << j;
        }
        break;
      }
    }
    c.ExpectAppliedPrefixes();
    EXPECT_EQ(c.peer(1).applied, c.peer(2).applied) << "seed " << seed;
    EXPECT_EQ(c.peer(1).applied, c.peer(3).applied) << "seed " << seed;
    EXPECT_GT(c.peer(1).applied.size(), 50u) << "seed " << seed << ": too few commands survived to test anything";
  }
}

// §5.3 Leader Append-Only: "a leader never overwrites or deletes entries in its own log; it only
// appends new entries." A stale leader's appends are refused and do not touch the current leader's log.
TEST(RaftPaper, LeaderAppendOnly) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "a").ok());
  auto before = c.Log(1);
  Message stale;
  stale.set_type(raftpb::MSG_APP);
  stale.set_from(2);
  stale.set_to(1);
  stale.set_term(c.node(1).term());  // same term, a different "leader": must not overwrite
  stale.set_index(1);
  stale.set_log_term(1);
  Entry bogus;
  bogus.set_index(2);
  bogus.set_term(c.node(1).term());
  bogus.set_data("bogus");
  *stale.add_entries() = bogus;
  ASSERT_TRUE(c.node(1).Step(stale).ok());
  c.Stabilize();
  auto after = c.Log(1);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString());
}

// §5.3: "If followers crash or run slowly, or if network packets are lost, the leader retries
// AppendEntries RPCs indefinitely ... until all followers eventually store all log entries."
TEST(RaftPaper, LeaderRetriesUntilFollowerCatchesUp) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "v" + std::to_string(i)).ok());
  c.Recover();
  c.TickAll(3);
  EXPECT_EQ(c.peer(3).applied.size(), 5u);
  EXPECT_EQ(c.Log(3).size(), c.Log(1).size());
}

// Fast backtracking (§5.3 optimisation): a follower with a long divergent suffix is repaired in a
// handful of round trips, not one per entry.
TEST(RaftPaper, FastBacktrackingSkipsWholeTerms) {
  std::vector<uint64_t> leader_terms(1, 1), follower_terms(1, 1);
  for (int i = 0; i < 100; ++i) {
    leader_terms.push_back(3);
    follower_terms.push_back(2);
  }
  Cluster c({});
  c.AddNodeWithStorage(1, StorageWithTerms(leader_terms, 3, {1, 2, 3}));
  c.AddNodeWithStorage(2, StorageWithTerms(follower_terms, 3, {1, 2, 3}));
  c.AddNodeWithStorage(3, StorageWithTerms(leader_terms, 3, {1, 2, 3}));
  int rejects = 0;
  c.SetFilter([&rejects](Message& m) {
    if (m.type() == raftpb::MSG_APP_RESP && m.reject()) ++rejects;
    return true;
  });
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_LE(rejects, 3);
  EXPECT_EQ(c.Log(2).size(), c.Log(1).size());
  EXPECT_EQ(c.Log(2)[50].term(), 3u);
}

// Fast backtracking, follower side: a follower with a much shorter log tells the leader where its
// log ends, so the leader does not probe one index at a time.
TEST(RaftPaper, FastBacktrackingJumpsToShortFollowersEnd) {
  std::vector<uint64_t> long_log(100, 1);
  Cluster c({});
  c.AddNodeWithStorage(1, StorageWithTerms(long_log, 1, {1, 2, 3}));
  c.AddNodeWithStorage(2, StorageWithTerms({1}, 1, {1, 2, 3}));
  c.AddNodeWithStorage(3, StorageWithTerms(long_log, 1, {1, 2, 3}));
  int rejects = 0;
  c.SetFilter([&rejects](Message& m) {
    if (m.type() == raftpb::MSG_APP_RESP && m.reject()) ++rejects;
    return true;
  });
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_LE(rejects, 2);
  EXPECT_EQ(c.Log(2).size(), c.Log(1).size());
}

}  // namespace
}  // namespace cairn::raft::testing
