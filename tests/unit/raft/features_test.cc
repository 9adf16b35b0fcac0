// PreVote, CheckQuorum, flow control, snapshots, membership, leader transfer, ReadIndex, config and
// restart behaviour.
#include <gtest/gtest.h>

#include "cluster.h"

namespace cairn::raft::testing {
namespace {

ConfChange Change(raftpb::ConfChangeType type, uint64_t node) {
  ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(node);
  return cc;
}

bool HasEvent(Peer& peer, EventKind kind) {
  for (const Event& e : peer.events) {
    if (e.kind == kind) return true;
  }
  return false;
}

// ---- PreVote and CheckQuorum ----

TEST(PreVote, PartitionedNodeDoesNotInflateItsTerm) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  uint64_t term = c.node(1).term();
  c.Isolate(3);
  c.TickAll(100);
  EXPECT_EQ(c.node(3).term(), term) << "PreVote rounds must not bump the term";
  EXPECT_EQ(c.node(3).role(), Role::kPreCandidate);
}

TEST(PreVote, ReturningPartitionedNodeDoesNotDisruptHealthyLeader) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  uint64_t term = c.node(1).term();
  c.Isolate(3);
  c.TickAll(100);
  c.Recover();
  // Node 3 campaigns straight away on rejoining; 1 and 2 still hear from the leader.
  c.Campaign(3);
  c.TickAll(5);
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_EQ(c.node(1).term(), term);
  EXPECT_EQ(c.node(3).leader(), 1u);
  EXPECT_TRUE(HasEvent(c.peer(1), EventKind::kVoteRejected) || HasEvent(c.peer(2), EventKind::kVoteRejected) ||
              HasEvent(c.peer(1), EventKind::kMessageIgnored));
}

TEST(CheckQuorum, LeaderStepsDownWhenItLosesQuorumContact) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(1);
  c.TickAll(2 * 10 + 1);  // at most two election timeouts
  EXPECT_NE(c.node(1).role(), Role::kLeader);
  EXPECT_TRUE(HasEvent(c.peer(1), EventKind::kSteppedDown));
  // The majority side elected a new leader meanwhile.
  uint64_t leader = c.Leader();
  EXPECT_TRUE(leader == 2 || leader == 3) << leader;
}

TEST(CheckQuorum, FollowersIgnoreVoteRequestsWhileLeaderIsAlive) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.pre_vote = false; });
  c.Campaign(1);
  uint64_t term = c.node(1).term();
  // 3 campaigns with a higher term without hearing from the leader first; 2 is in its lease.
  c.Cut(1, 3);
  c.Campaign(3);
  EXPECT_EQ(c.node(2).term(), term);
  EXPECT_EQ(c.node(2).leader(), 1u);
  EXPECT_NE(c.node(3).role(), Role::kLeader);
  EXPECT_TRUE(HasEvent(c.peer(2), EventKind::kMessageIgnored));
}

TEST(CheckQuorum, StaleLeaderLearnsNewTermAndStepsDown) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(1);
  c.TickAll(2 * 10 + 1);
  uint64_t new_leader = c.Leader();
  ASSERT_NE(new_leader, 1u);
  ASSERT_NE(new_leader, kNone);
  c.Recover();
  c.TickAll(3);
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).leader(), new_leader);
  EXPECT_EQ(c.node(1).term(), c.node(new_leader).term());
}

// ---- replication: batching and flow control ----

TEST(Replication, ProposalsAreBatchedIntoOneAppend) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node(1).Propose("p" + std::to_string(i)).ok());
  c.Stabilize();
  c.Recover();
  c.ClearQueue();
  int appends = 0, max_entries = 0;
  c.SetFilter([&](Message& m) {
    if (m.type() == raftpb::MSG_APP && m.to() == 2) {
      ++appends;
      max_entries = std::max(max_entries, m.entries_size());
    }
    return true;
  });
  c.TickAll(2);
  EXPECT_GE(max_entries, 10) << "entries were not batched";
  EXPECT_LE(appends, 4);
  EXPECT_EQ(c.peer(2).applied.size(), 10u);
}

TEST(Replication, MaxSizePerMsgSplitsAppends) {
  Cluster c({1, 2}, [](Config& cfg) { cfg.max_size_per_msg = 200; });
  c.Campaign(1);
  c.Isolate(2);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.node(1).Propose(std::string(50, 'a' + i)).ok());
  c.Stabilize();
  c.Recover();
  int biggest = 0;
  c.SetFilter([&](Message& m) {
    if (m.type() == raftpb::MSG_APP) biggest = std::max(biggest, m.entries_size());
    return true;
  });
  c.TickAll(3);
  EXPECT_LE(biggest, 4);
  EXPECT_EQ(c.peer(2).applied.size(), 20u);
}

TEST(Replication, InflightWindowBoundsUnacknowledgedAppends) {
  Cluster c({1, 2}, [](Config& cfg) { cfg.max_inflight_msgs = 3; });
  c.Campaign(1);
  // Follower 2 receives but its acknowledgements are lost.
  c.SetFilter([](Message& m) { return !(m.type() == raftpb::MSG_APP_RESP); });
  int appends = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.node(1).Propose("x").ok());
    c.Process(1);
    for (Message& m : c.queue()) {
      if (m.type() == raftpb::MSG_APP && m.entries_size() > 0) ++appends;
    }
    c.ClearQueue();
  }
  EXPECT_EQ(appends, 3) << "the leader must stop after max_inflight_msgs un-acked appends";
  EXPECT_EQ(c.node(1).GetStatus().progress.at(2).state, ProgressState::kReplicate);
  EXPECT_EQ(c.node(1).GetStatus().progress.at(2).inflight, 3u);
  c.Recover();
  c.TickAll(3);  // heartbeat responses reopen the window; the follower catches up
  EXPECT_EQ(c.peer(2).applied.size(), 10u);
}

TEST(Replication, UncommittedSizeLimitDropsProposalsUntilEntriesApply) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.max_uncommitted_entries_size = 100; });
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);
  EXPECT_TRUE(c.Propose(1, std::string(60, 'a')).ok());
  EXPECT_TRUE(c.Propose(1, std::string(40, 'b')).ok());
  EXPECT_EQ(c.Propose(1, std::string(10, 'c')).code(), StatusCode::kUnavailable);
  c.Recover();
  c.TickAll(2);
  EXPECT_EQ(c.peer(1).applied.size(), 2u);
  EXPECT_TRUE(c.Propose(1, std::string(90, 'd')).ok()) << "applying the entries frees the budget";
}

TEST(Replication, UnreachableFollowerFallsBackToProbe) {
  Cluster c({1, 2});
  c.Campaign(1);
  ASSERT_EQ(c.node(1).GetStatus().progress.at(2).state, ProgressState::kReplicate);
  c.node(1).ReportUnreachable(2);
  EXPECT_EQ(c.node(1).GetStatus().progress.at(2).state, ProgressState::kProbe);
}

// ---- snapshots ----

TEST(Snapshot, FollowerBehindCompactedLogCatchesUpByInstallSnapshot) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.Propose(1, "s" + std::to_string(i)).ok());
  c.SnapshotAndCompact(1);
  c.SnapshotAndCompact(2);
  int snaps = 0;
  c.Recover();
  c.SetFilter([&](Message& m) {
    if (m.type() == raftpb::MSG_SNAP) ++snaps;
    return true;
  });
  c.TickAll(3);
  EXPECT_EQ(snaps, 1);
  EXPECT_TRUE(HasEvent(c.peer(3), EventKind::kSnapshotRestored));
  EXPECT_EQ(c.peer(3).applied, c.peer(1).applied);
  EXPECT_EQ(c.node(1).GetStatus().progress.at(3).state, ProgressState::kReplicate);
  // And replication continues normally after the snapshot.
  ASSERT_TRUE(c.Propose(1, "after").ok());
  EXPECT_EQ(c.peer(3).applied.back(), "after");
}

TEST(Snapshot, FailedSnapshotSendIsRetried) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "s" + std::to_string(i)).ok());
  c.SnapshotAndCompact(1);
  c.Recover();
  c.report_snapshots = false;  // report by hand below
  c.SetFilter([](Message& m) { return m.type() != raftpb::MSG_SNAP; });  // the transport fails it
  c.TickAll(2);
  EXPECT_EQ(c.node(1).GetStatus().progress.at(3).state, ProgressState::kSnapshot);
  c.node(1).ReportSnapshot(3, false);
  EXPECT_EQ(c.node(1).GetStatus().progress.at(3).state, ProgressState::kProbe);
  c.Recover();
  c.TickAll(3);
  EXPECT_EQ(c.peer(3).applied, c.peer(1).applied);
}

TEST(Snapshot, RestartRebuildsFromSnapshotAndLog) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "r" + std::to_string(i)).ok());
  c.SnapshotAndCompact(2);
  ASSERT_TRUE(c.Propose(1, "r5").ok());
  uint64_t term = c.node(2).term();
  c.Restart(2);
  EXPECT_EQ(c.node(2).term(), term);
  c.Stabilize();
  EXPECT_EQ(c.peer(2).applied.size(), 6u);
  c.Restart(1);  // the leader restarts: it becomes a follower and someone is elected again
  c.TickAll(40);
  ASSERT_NE(c.Leader(), kNone);
  ASSERT_TRUE(c.Propose(c.Leader(), "r6").ok());
  c.TickAll(2);
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(c.peer(id).applied.size(), 7u) << "node " << id;
  c.ExpectAppliedPrefixes();
}

// ---- membership ----

TEST(Membership, AddLearnerThenPromoteThenRemove) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "before").ok());
  c.AddEmptyNode(4);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  c.Stabilize();
  c.TickAll(2);
  EXPECT_EQ(c.peer(4).applied, c.peer(1).applied);
  EXPECT_EQ(c.peer(1).conf_state.learners_size(), 1);
  auto status = c.node(1).GetStatus();
  EXPECT_TRUE(status.progress.at(4).learner);
  EXPECT_EQ(status.progress.at(4).match, c.node(1).commit_index());

  // A learner never campaigns.
  c.Tick(4, 100);
  EXPECT_EQ(c.node(4).role(), Role::kFollower);

  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 4)).ok());
  c.Stabilize();
  EXPECT_EQ(c.peer(4).conf_state.voters_size(), 4);
  EXPECT_EQ(c.peer(4).conf_state.learners_size(), 0);
  // With 4 voters the majority is 3: two down nodes block commits.
  c.Isolate(2);
  c.Isolate(3);
  uint64_t commit = c.node(1).commit_index();
  (void)c.Propose(1, "blocked");
  EXPECT_EQ(c.node(1).commit_index(), commit);
  c.Recover();
  c.TickAll(2);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 2)).ok());
  c.Stabilize();
  EXPECT_EQ(c.peer(1).conf_state.voters_size(), 3);
  EXPECT_EQ(c.node(1).GetStatus().progress.count(2), 0u);
  c.Isolate(2);
  ASSERT_TRUE(c.Propose(1, "after").ok());
  EXPECT_EQ(c.peer(4).applied.back(), "after");
}

TEST(Membership, PendingConfChangeBlocksTheNext) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(2);
  c.Isolate(3);  // the first change cannot commit, so it stays pending
  c.AddEmptyNode(4);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 4)).ok());
  Status second = c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 5));
  EXPECT_EQ(second.code(), StatusCode::kFailedPrecondition) << second;
  c.Recover();
  c.TickAll(2);
  EXPECT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 5)).ok());
}

TEST(Membership, MalformedConfChangeIsRefused) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ConfChange bad;
  bad.set_type(static_cast<raftpb::ConfChangeType>(42));
  bad.set_node_id(4);
  EXPECT_EQ(c.node(1).ProposeConfChange(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 0)).code(),
            StatusCode::kInvalidArgument);
  Entry garbage;
  garbage.set_type(raftpb::ENTRY_CONF_CHANGE);
  garbage.set_data("\xff\xff not a proto");
  Message prop;
  prop.set_type(raftpb::MSG_PROP);
  prop.set_from(1);
  *prop.add_entries() = garbage;
  EXPECT_EQ(c.node(1).Step(prop).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.Propose(1, "ok").ok());
  EXPECT_EQ(c.peer(3).applied.back(), "ok");
}

TEST(Membership, RemovingTheLastVoterIsRefused) {
  Cluster c({1});
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 1)).code(),
            StatusCode::kFailedPrecondition);
}

TEST(Membership, RemovedLeaderStepsDownAndOthersElectANewOne) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.node(1).ProposeConfChange(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 1)).ok());
  c.Stabilize();
  EXPECT_NE(c.node(1).role(), Role::kLeader);
  EXPECT_TRUE(HasEvent(c.peer(1), EventKind::kSteppedDown));
  c.TickAll(3 * 10);
  uint64_t leader = c.Leader();
  EXPECT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_TRUE(c.Propose(leader, "without 1").ok());
  EXPECT_EQ(c.peer(2).applied.back(), "without 1");
  EXPECT_EQ(c.peer(2).conf_state.voters_size(), 2);
}

// ---- leader transfer ----

TEST(LeaderTransfer, ToUpToDateFollower) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.node(1).TransferLeadership(2);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 2u);
  EXPECT_EQ(c.node(1).leader(), 2u);
  EXPECT_TRUE(HasEvent(c.peer(1), EventKind::kTransferStarted));
}

TEST(LeaderTransfer, RequestedOnFollowerIsForwarded) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.node(3).TransferLeadership(3);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 3u);
}

TEST(LeaderTransfer, LaggingTargetIsCaughtUpFirst) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose(1, "t" + std::to_string(i)).ok());
  c.Recover();
  c.node(1).TransferLeadership(3);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 3u);
  EXPECT_EQ(c.peer(3).applied.size(), 5u);
}

TEST(LeaderTransfer, ProposalsAreDroppedDuringTransferAndTransferAbortsAfterElectionTimeout) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(3);
  c.node(1).TransferLeadership(3);
  c.Stabilize();
  EXPECT_EQ(c.node(1).GetStatus().lead_transferee, 3u);
  EXPECT_EQ(c.node(1).Propose("x").code(), StatusCode::kUnavailable);
  c.TickAll(10);
  EXPECT_EQ(c.node(1).GetStatus().lead_transferee, kNone);
  EXPECT_TRUE(HasEvent(c.peer(1), EventKind::kTransferAborted));
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_TRUE(c.Propose(1, "x").ok());
}

TEST(LeaderTransfer, ToLearnerIsRefused) {
  Cluster c({1, 2}, [](Config& cfg) {
    if (cfg.voters.size() == 2) cfg.learners = {3};
    if (cfg.id == 3) cfg.voters.clear();
  });
  c.AddEmptyNode(3);
  c.Campaign(1);
  c.node(1).TransferLeadership(3);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_EQ(c.node(1).GetStatus().lead_transferee, kNone);
}

// ---- ReadIndex ----

TEST(ReadIndex, LeaderConfirmsWithAHeartbeatRound) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "w").ok());
  c.node(1).ReadIndex("req-1");
  c.Stabilize();
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
  EXPECT_EQ(c.peer(1).read_states[0].request_context, "req-1");
  EXPECT_EQ(c.peer(1).read_states[0].index, c.node(1).commit_index());
}

TEST(ReadIndex, FollowerForwardsToLeader) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(1, "w").ok());
  c.node(2).ReadIndex("from-2");
  c.Stabilize();
  ASSERT_EQ(c.peer(2).read_states.size(), 1u);
  EXPECT_EQ(c.peer(2).read_states[0].request_context, "from-2");
  EXPECT_EQ(c.peer(2).read_states[0].index, c.node(1).commit_index());
}

TEST(ReadIndex, IsolatedLeaderCannotConfirmReads) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  c.Isolate(1);
  c.node(1).ReadIndex("stale?");
  c.TickAll(3);
  EXPECT_TRUE(c.peer(1).read_states.empty());
}

TEST(ReadIndex, NeedsAcknowledgementsFromAMajority) {
  Cluster c({1, 2, 3, 4, 5});
  c.Campaign(1);
  c.Cut(1, 3);
  c.Cut(1, 4);
  c.Cut(1, 5);
  c.node(1).ReadIndex("minority");
  c.Stabilize();
  EXPECT_TRUE(c.peer(1).read_states.empty()) << "answered with only 2 of 5 acknowledgements";
  c.Recover();
  c.TickAll(1);  // the next heartbeat carries the pending request's context
  EXPECT_EQ(c.peer(1).read_states.size(), 1u);
}

TEST(ReadIndex, WaitsForFirstCommitInLeadersTerm) {
  Cluster c({1, 2, 3});
  // Hold back the new leader's append responses so its no-op is not committed yet.
  c.SetFilter([](Message& m) { return m.type() != raftpb::MSG_APP_RESP; });
  c.Campaign(1);
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  c.node(1).ReadIndex("early");
  c.Stabilize();
  EXPECT_TRUE(c.peer(1).read_states.empty());
  c.Recover();
  c.TickAll(2);
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
  EXPECT_EQ(c.peer(1).read_states[0].index, c.node(1).commit_index());
}

TEST(ReadIndex, SingleNodeAnswersImmediately) {
  Cluster c({1});
  c.Campaign(1);
  c.node(1).ReadIndex("solo");
  c.Stabilize();
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
}

// ---- API edges ----

TEST(RawNodeApi, BadConfigIsAnErrorNotACrash) {
  MemoryStorage storage;
  Config cfg;
  cfg.storage = &storage;
  EXPECT_EQ(RawNode::Create(cfg).status().code(), StatusCode::kInvalidArgument);  // id 0
  cfg.id = 1;
  cfg.election_tick = 1;
  EXPECT_FALSE(RawNode::Create(cfg).ok());
  cfg.election_tick = 10;
  cfg.voters = {1, 1};
  EXPECT_FALSE(RawNode::Create(cfg).ok());
  cfg.voters = {1};
  cfg.storage = nullptr;
  EXPECT_FALSE(RawNode::Create(cfg).ok());
}

TEST(RawNodeApi, CorruptStorageIsAnErrorNotACrash) {
  MemoryStorage storage;
  HardState hs;
  hs.set_term(2);
  hs.set_commit(10);  // beyond the (empty) log
  storage.SetHardState(hs);
  Config cfg;
  cfg.id = 1;
  cfg.storage = &storage;
  EXPECT_EQ(RawNode::Create(cfg).status().code(), StatusCode::kCorruption);
}

TEST(RawNodeApi, StepRejectsLocalMessagesAndProposalsWithoutLeaderAreDropped) {
  Cluster c({1, 2, 3});
  Message m;
  m.set_type(raftpb::MSG_HUP);
  m.set_from(2);
  EXPECT_EQ(c.node(1).Step(m).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(1).Propose("x").code(), StatusCode::kUnavailable);
}

TEST(RawNodeApi, MalformedMessagesAreRefusedNotFatal) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  Message app;
  app.set_type(raftpb::MSG_APP);
  app.set_from(1);
  app.set_to(2);
  app.set_term(c.node(1).term());
  app.set_index(4);
  app.set_log_term(c.node(1).term());
  Entry e;
  e.set_index(9);  // not index+1
  e.set_term(c.node(1).term());
  *app.add_entries() = e;
  EXPECT_EQ(c.node(2).Step(app).code(), StatusCode::kInvalidArgument);

  Message resp;
  resp.set_type(raftpb::MSG_APP_RESP);
  resp.set_from(2);
  resp.set_to(1);
  resp.set_term(c.node(1).term());
  resp.set_index(1000);  // beyond the leader's log
  EXPECT_TRUE(c.node(1).Step(resp).ok());
  EXPECT_LT(c.node(1).GetStatus().progress.at(2).match, 1000u);
  ASSERT_TRUE(c.Propose(1, "still fine").ok());
  EXPECT_EQ(c.peer(2).applied.back(), "still fine");
}

TEST(RawNodeApi, FollowerForwardsProposalsToLeader) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  ASSERT_TRUE(c.Propose(3, "via-3").ok());
  EXPECT_EQ(c.peer(1).applied.back(), "via-3");
}

TEST(RawNodeApi, BootstrapCommitsMembershipEntries) {
  MemoryStorage storage;
  Config cfg;
  cfg.id = 1;
  cfg.voters = {1, 2, 3};
  cfg.storage = &storage;
  auto node = RawNode::Create(cfg);
  ASSERT_TRUE(node.ok());
  Ready rd = (*node)->GetReady();
  ASSERT_EQ(rd.entries.size(), 3u);
  ASSERT_EQ(rd.committed_entries.size(), 3u);
  EXPECT_EQ(rd.committed_entries[0].type(), raftpb::ENTRY_CONF_CHANGE);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->commit(), 3u);
  EXPECT_TRUE(rd.must_sync);
  (*node)->Advance();
  EXPECT_FALSE((*node)->HasReady());
}

TEST(RawNodeApi, NarrationExplainsElections) {
  Cluster c({1, 2, 3});
  c.Campaign(1);
  bool granted = false, leader = false;
  for (const Event& e : c.peer(2).events) granted |= e.kind == EventKind::kVoteGranted;
  for (const Event& e : c.peer(1).events) {
    if (e.kind == EventKind::kBecameLeader) {
      leader = true;
      EXPECT_NE(e.text.find("became leader"), std::string::npos) << e.text;
    }
  }
  EXPECT_TRUE(granted);
  EXPECT_TRUE(leader);
}

}  // namespace
}  // namespace cairn::raft::testing
