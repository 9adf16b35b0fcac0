// The parts of the coordination node that need no sockets: id derivation and the identity file,
// the member table (conf changes, publish, snapshot round trip), ReadIndex batching, proposal
// tracking and the metrics text.
#include <gtest/gtest.h>

#include "cairn/coord/node/identity.h"
#include "cairn/coord/node/member_table.h"
#include "cairn/coord/node/metrics.h"
#include "cairn/coord/node/proposal_tracker.h"
#include "cairn/coord/node/read_index_batcher.h"
#include "cairn/env/env.h"

namespace cairn::coord {
namespace {

using namespace std::chrono_literals;

TEST(Identity, IdsAreDeterministicNonZeroAndOrderIndependent) {
  EXPECT_EQ(DeriveMemberId("10.0.0.1:2380"), DeriveMemberId("10.0.0.1:2380"));
  EXPECT_NE(DeriveMemberId("10.0.0.1:2380"), DeriveMemberId("10.0.0.2:2380"));
  EXPECT_NE(DeriveMemberId(""), 0u);
  std::vector<MemberSeed> a = {{"n1", "h1:1"}, {"n2", "h2:1"}, {"n3", "h3:1"}};
  std::vector<MemberSeed> b = {{"n3", "h3:1"}, {"n1", "h1:1"}, {"n2", "h2:1"}};
  EXPECT_EQ(DeriveClusterId(a), DeriveClusterId(b));
  b[0].name = "other";
  EXPECT_NE(DeriveClusterId(a), DeriveClusterId(b));
}

TEST(Identity, FileRoundTripsAndMismatchesSayWhatToDo) {
  auto env = env::NewMemEnv();
  Identity identity{.cluster_id = 0x1234, .member_id = 0xabcd, .name = "n1"};
  auto missing = LoadIdentity(env.get(), "/member");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(SaveIdentity(env.get(), "/member", identity).ok());
  auto loaded = LoadIdentity(env.get(), "/member");
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, identity);
  EXPECT_TRUE(CheckIdentity(identity, identity, "/member").ok());
  Identity other = identity;
  other.member_id = 7;
  Status mismatch = CheckIdentity(identity, other, "/member");
  EXPECT_EQ(mismatch.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(mismatch.message().find("clusterctl member replace"), std::string::npos);
}

TEST(Identity, BadFilesAreCorruptionNotCrashes) {
  for (const char* text : {"", "garbage", "cluster_id=zz\nmember_id=1\n", "cluster_id=1\n", "x=1\n",
                           "cluster_id=0000000000000001\nmember_id=0000000000000002\nunknown=3\n"}) {
    auto parsed = ParseIdentity(text);
    EXPECT_FALSE(parsed.ok()) << text;
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption) << text;
    }
  }
}

raftpb::ConfChange Change(raftpb::ConfChangeType type, uint64_t id) {
  raftpb::ConfChange change;
  change.set_type(type);
  change.set_node_id(id);
  return change;
}

proto::CoordMember Member(uint64_t id, const std::string& name, const std::string& url) {
  proto::CoordMember member;
  member.set_id(id);
  member.set_name(name);
  member.add_peer_urls(url);
  return member;
}

TEST(MemberTable, BootstrapEntriesUseTheStaticSeedsAndContextWins) {
  MemberTable table;
  std::map<uint64_t, proto::CoordMember> seeds = {{1, Member(1, "n1", "h1:1")}, {2, Member(2, "n2", "h2:1")}};
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 1), proto::CoordMember(), seeds);
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 2), proto::CoordMember(), seeds);
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 9), Member(9, "", "h9:1"), seeds);
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table.Find(1)->name(), "n1");
  EXPECT_EQ(table.PeerUrl(9), "h9:1");
  EXPECT_TRUE(table.Find(9)->learner());
  EXPECT_EQ(table.FindByPeerUrl("h2:1")->id(), 2u);
  // Promote, then publish.
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_ADD_NODE, 9), Member(9, "", "h9:1"), seeds);
  EXPECT_FALSE(table.Find(9)->learner());
  proto::CoordMember publish = Member(9, "n9", "h9:1");
  publish.add_client_urls("h9:2379");
  table.ApplyPublish(publish);
  EXPECT_EQ(table.Find(9)->name(), "n9");
  EXPECT_TRUE(table.Find(9)->published());
  etcd::Member etcd = ToEtcdMember(*table.Find(9));
  EXPECT_EQ(etcd.peerurls(0), "http://h9:1");
  EXPECT_EQ(etcd.clienturls(0), "http://h9:2379");
  // Publish of a removed member is ignored.
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_REMOVE_NODE, 2), proto::CoordMember(), seeds);
  table.ApplyPublish(Member(2, "n2", "h2:1"));
  EXPECT_EQ(table.Find(2), nullptr);
  EXPECT_EQ(table.size(), 2u);
}

TEST(MemberTable, SnapshotRoundTrip) {
  MemberTable table;
  table.ApplyConfChange(Change(raftpb::CONF_CHANGE_ADD_LEARNER, 5), Member(5, "n5", "h5:1"), {});
  proto::CoordSnapshot snapshot;
  table.SaveTo(&snapshot);
  MemberTable restored;
  restored.RestoreFrom(snapshot);
  ASSERT_NE(restored.Find(5), nullptr);
  EXPECT_EQ(restored.Find(5)->SerializeAsString(), table.Find(5)->SerializeAsString());
}

TimePoint T(int ms) { return TimePoint() + std::chrono::milliseconds(ms); }

TEST(ReadIndexBatcher, ConcurrentReadsShareOneRequest) {
  ReadIndexBatcher batcher(500ms);
  std::vector<int> done;
  for (int i = 0; i < 5; ++i) batcher.Add([&, i](Status s) { if (s.ok()) done.push_back(i); }, T(10000));
  auto context = batcher.TakeRequest(T(0));
  ASSERT_TRUE(context.has_value());
  EXPECT_FALSE(batcher.TakeRequest(T(1)).has_value()) << "one request in flight at a time";
  batcher.OnReadState(*context, /*index=*/7, /*applied=*/5);
  EXPECT_TRUE(done.empty()) << "must wait until index 7 is applied";
  batcher.OnApplied(7);
  EXPECT_EQ(done.size(), 5u);
  EXPECT_EQ(batcher.requests_issued(), 1u);
}

TEST(ReadIndexBatcher, ReadsArrivingDuringARequestWaitForTheNextOne) {
  ReadIndexBatcher batcher(500ms);
  int first = 0, second = 0;
  batcher.Add([&](Status) { ++first; }, T(10000));
  auto one = batcher.TakeRequest(T(0));
  batcher.Add([&](Status) { ++second; }, T(10000));
  batcher.OnReadState(*one, 3, 3);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0) << "the confirmed index may predate the second read";
  auto two = batcher.TakeRequest(T(1));
  ASSERT_TRUE(two.has_value());
  EXPECT_NE(*one, *two);
  batcher.OnReadState(*one, 9, 9);  // a duplicate of the old answer changes nothing
  EXPECT_EQ(second, 0);
  batcher.OnReadState(*two, 4, 4);
  EXPECT_EQ(second, 1);
}

TEST(ReadIndexBatcher, LostRequestsAreRetriedAndDeadlinesFail) {
  ReadIndexBatcher batcher(500ms);
  std::vector<Status> results;
  batcher.Add([&](Status s) { results.push_back(s); }, T(2000));
  auto lost = batcher.TakeRequest(T(0));
  EXPECT_FALSE(batcher.TakeRequest(T(499)).has_value());
  auto retry = batcher.TakeRequest(T(500));
  ASSERT_TRUE(retry.has_value());
  batcher.OnReadState(*lost, 1, 1);  // the late answer to the lost request is ignored
  EXPECT_TRUE(results.empty());
  batcher.Expire(T(2000));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(batcher.waiting(), 0u);
}

TEST(ReadIndexBatcher, FailAllAnswersEveryStage) {
  ReadIndexBatcher batcher(500ms);
  int failed = 0;
  auto count = [&](Status s) { failed += s.ok() ? 0 : 1; };
  batcher.Add(count, T(9000));
  auto context = batcher.TakeRequest(T(0));
  batcher.OnReadState(*context, 50, 1);  // confirmed, not applied
  batcher.Add(count, T(9000));
  batcher.TakeRequest(T(1));             // in flight
  batcher.Add(count, T(9000));           // queued
  batcher.FailAll(UnavailableError("stopping"));
  EXPECT_EQ(failed, 3);
  EXPECT_EQ(batcher.waiting(), 0u);
}

TEST(ProposalTracker, CompletesByRequestIdExpiresAndFails) {
  ProposalTracker tracker;
  std::map<int, StatusCode> codes;
  auto record = [&](int n) {
    return [&, n](Result<proto::ForwardResponse> r) { codes[n] = r.status().code(); };
  };
  uint64_t a = tracker.Register(record(1), T(100));
  uint64_t b = tracker.Register(record(2), T(200));
  uint64_t c = tracker.Register(record(3), T(300));
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  tracker.Complete(b, proto::ForwardResponse());
  tracker.Complete(b, InternalError("twice"));  // ignored: completed once
  tracker.Complete(999, InternalError("unknown"));
  tracker.Expire(T(150));
  tracker.FailAll(UnavailableError("leader changed"));
  EXPECT_EQ(codes[1], StatusCode::kDeadlineExceeded);
  EXPECT_EQ(codes[2], StatusCode::kOk);
  EXPECT_EQ(codes[3], StatusCode::kUnavailable);
  EXPECT_EQ(tracker.pending(), 0u);
  (void)c;
}

TEST(Metrics, PrometheusTextHasCumulativeBuckets) {
  NodeMetrics metrics;
  metrics.term = 3;
  metrics.fsync_seconds.Observe(0.0001);
  metrics.fsync_seconds.Observe(0.003);
  metrics.fsync_seconds.Observe(100);
  std::string text = metrics.Render();
  EXPECT_NE(text.find("cairn_raft_term 3\n"), std::string::npos);
  EXPECT_NE(text.find("cairn_wal_fsync_duration_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cairn_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("cairn_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("cairn_wal_fsync_duration_seconds_count 3\n"), std::string::npos);
}

}  // namespace
}  // namespace cairn::coord
