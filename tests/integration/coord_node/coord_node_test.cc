// Three (and four) CoordNodes in one process on 127.0.0.1 with real libs/net servers and temp
// data dirs: election, forwarding, failover, catch-up by log and by snapshot, membership changes,
// full restart, watches and lease expiry across members, and the lost-data-dir rejoin refusal.
//
// Each node's peer net::Server keeps running across a node's Stop/Start (so its port stays the
// same); a stopped node's handlers do nothing, which to its peers looks like a dead process.
#include <atomic>
#include <filesystem>
#include <future>
#include <map>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cairn/common/ids.h"
#include "cairn/coord/node/coord_node.h"
#include "cairn/net/server.h"

namespace cairn::coord {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 10s;

// Runs a CoordApi call and waits for its answer.
template <typename T, typename Fn>
Result<T> Await(Fn&& call, std::chrono::milliseconds limit = 10s) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  call([promise](Result<T> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(limit) != std::future_status::ready) return DeadlineExceededError("test: no answer");
  return future.get();
}

// Waits until `condition` holds or the deadline passes (polling, not sleeping as synchronisation).
template <typename Fn>
bool WaitFor(Fn&& condition, std::chrono::milliseconds limit = kWait) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

struct Host {
  std::string name;
  std::string dir;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<net::Server> server;
  std::thread thread;
  std::unique_ptr<CoordNode> node;
  std::string peer_url;

  ~Host() {
    if (node) node->Stop();
    node.reset();
    if (server) server->Stop();
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
    server.reset();
  }
};

class CoordCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("coord-node-test-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
  }
  void TearDown() override {
    hosts_.clear();
    std::filesystem::remove_all(root_);
  }

  Host& AddHost(const std::string& name) {
    auto host = std::make_unique<Host>();
    host->name = name;
    host->dir = (root_ / name).string();
    host->server = std::make_unique<net::Server>(host->io, net::ServerOptions{.address = "127.0.0.1:0"});
    EXPECT_TRUE(host->server->Start().ok());
    host->peer_url = "127.0.0.1:" + std::to_string(host->server->port());
    host->thread = std::thread([h = host.get()] { h->io.run(); });
    hosts_.push_back(std::move(host));
    return *hosts_.back();
  }

  NodeOptions Options(const Host& host, bool founder) {
    NodeOptions options;
    options.name = host.name;
    options.data_dir = host.dir;
    options.peer_url = host.peer_url;
    options.client_urls = {"127.0.0.1:2379"};
    options.tick_interval = 20ms;
    options.election_ticks = 10;
    options.snapshot_every = snapshot_every_;
    options.snapshot_catchup_entries = 20;
    options.lease_check_interval = 100ms;
    options.transfer_leadership_on_stop = transfer_on_stop_;
    if (founder) options.initial_cluster = seeds_;
    return options;
  }

  Status StartNode(Host& host, bool founder = true) {
    auto node = CoordNode::Start(Options(host, founder), host.server.get());
    if (!node.ok()) return node.status();
    host.node = std::move(*node);
    return Status::Ok();
  }

  void StartCluster(int size) {
    for (int i = 1; i <= size; ++i) AddHost("n" + std::to_string(i));
    for (auto& host : hosts_) seeds_.push_back(MemberSeed{host->name, host->peer_url});
    for (auto& host : hosts_) ASSERT_TRUE(StartNode(*host).ok());
    ASSERT_NE(WaitLeader(), nullptr);
  }

  // The host whose node is leader, once every running node agrees on it.
  Host* WaitLeader() {
    Host* found = nullptr;
    WaitFor([&] {
      found = nullptr;
      uint64_t leader = 0;
      for (auto& host : hosts_) {
        if (!host->node) continue;
        if (host->node->leader() == 0) return false;
        if (leader != 0 && host->node->leader() != leader) return false;
        leader = host->node->leader();
        if (host->node->member_id() == leader && host->node->is_leader()) found = host.get();
      }
      return found != nullptr;
    });
    return found;
  }

  Host* AnyFollower() {
    for (auto& host : hosts_) {
      if (host->node && !host->node->is_leader()) return host.get();
    }
    return nullptr;
  }

  static Result<etcd::PutResponse> Put(CoordNode& node, const std::string& key, const std::string& value,
                                       int64_t lease = 0) {
    etcd::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    request.set_lease(lease);
    return Await<etcd::PutResponse>([&](auto done) { node.Put(request, {}, done); });
  }

  static Result<etcd::RangeResponse> Get(CoordNode& node, const std::string& key, bool serializable = false) {
    etcd::RangeRequest request;
    request.set_key(key);
    request.set_serializable(serializable);
    return Await<etcd::RangeResponse>([&](auto done) { node.Range(request, {}, done); });
  }

  static std::string ValueOf(const Result<etcd::RangeResponse>& response) {
    if (!response.ok() || response->kvs_size() == 0) return "<none>";
    return response->kvs(0).value();
  }

  std::filesystem::path root_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::vector<MemberSeed> seeds_;
  uint64_t snapshot_every_ = 10000;
  bool transfer_on_stop_ = true;
};

TEST_F(CoordCluster, ElectsOneLeaderAndAllMembersAgreeOnIds) {
  StartCluster(3);
  uint64_t cluster = hosts_[0]->node->cluster_id();
  std::set<uint64_t> ids;
  for (auto& host : hosts_) {
    EXPECT_EQ(host->node->cluster_id(), cluster);
    ids.insert(host->node->member_id());
  }
  EXPECT_EQ(ids.size(), 3u);
  auto members = Await<etcd::MemberListResponse>([&](auto done) { hosts_[1]->node->MemberList({}, {}, done); });
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_EQ(members->members_size(), 3);
  EXPECT_TRUE(hosts_[0]->node->GetHealth().healthy);
}

TEST_F(CoordCluster, PutOnFollowerGetOnAnotherAndWatchEverywhere) {
  StartCluster(3);
  std::vector<std::unique_ptr<WatchStream>> streams;
  std::mutex mu;
  std::map<int, std::vector<int64_t>> seen;  // host index -> mod revisions of events on "k"
  for (int i = 0; i < 3; ++i) {
    auto stream = hosts_[static_cast<size_t>(i)]->node->OpenWatchStream([&, i](const etcd::WatchResponse& response) {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& event : response.events()) seen[i].push_back(event.kv().mod_revision());
    });
    ASSERT_TRUE(stream.ok());
    etcd::WatchRequest request;
    request.mutable_create_request()->set_key("k");
    auto created = Await<bool>([&](auto done) { (*stream)->Handle(request, done); });
    ASSERT_TRUE(created.ok()) << created.status();
    streams.push_back(std::move(*stream));
  }
  Host* follower = AnyFollower();
  ASSERT_NE(follower, nullptr);
  auto put = Put(*follower->node, "k", "v1");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->header().revision(), 0);
  for (auto& host : hosts_) {
    auto got = Get(*host->node, "k");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(ValueOf(got), "v1") << host->name;
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen[0].size() == 1 && seen[1].size() == 1 && seen[2].size() == 1;
  }));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[1], seen[2]);
}

TEST_F(CoordCluster, KvErrorsComeBackWordForWordThroughForwarding) {
  StartCluster(3);
  Host* follower = AnyFollower();
  etcd::PutRequest request;  // no key
  auto put = Await<etcd::PutResponse>([&](auto done) { follower->node->Put(request, {}, done); });
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(put.status().message(), "etcdserver: key is not provided");
}

TEST_F(CoordCluster, LeaderFailoverKeepsEveryAcknowledgedWriteAndRestartCatchesUp) {
  transfer_on_stop_ = false;  // a crash: no hand-over
  StartCluster(3);
  std::atomic<bool> stop{false};
  std::mutex mu;  // guards acknowledged and live
  std::map<std::string, std::string> acknowledged;
  std::vector<CoordNode*> live;
  for (auto& host : hosts_) live.push_back(host->node.get());
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      for (size_t n = 0; n < live.size() && !stop.load(); ++n) {
        CoordNode* node = nullptr;
        {
          std::lock_guard<std::mutex> lock(mu);
          node = live[n];
        }
        if (node == nullptr) continue;
        std::string key = "load/" + std::to_string(i);
        etcd::PutRequest request;
        request.set_key(key);
        request.set_value(std::to_string(i));
        auto put = Await<etcd::PutResponse>([&](auto done) { node->Put(request, {.deadline = 1000ms}, done); });
        if (put.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged[key] = std::to_string(i);
          break;
        }
      }
    }
  });
  auto acked = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acknowledged.size();
  };
  ASSERT_TRUE(WaitFor([&] { return acked() >= 20; }));
  Host* old_leader = WaitLeader();
  ASSERT_NE(old_leader, nullptr);
  uint64_t old_id = old_leader->node->member_id();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (CoordNode*& node : live) {
      if (node == old_leader->node.get()) node = nullptr;
    }
  }
  // Kept alive until the writer is joined: it may still be inside a call on it.
  std::unique_ptr<CoordNode> stopped = std::move(old_leader->node);
  auto killed_at = std::chrono::steady_clock::now();
  stopped->Stop();
  Host* new_leader = WaitLeader();
  ASSERT_NE(new_leader, nullptr);
  EXPECT_NE(new_leader->node->member_id(), old_id);
  size_t before = acked();
  ASSERT_TRUE(WaitFor([&] { return acked() >= before + 20; }));
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  RecordProperty("failover_plus_20_writes_ms", std::to_string(failover.count()));
  stop = true;
  writer.join();
  stopped.reset();

  // Every acknowledged write is there, on the survivors and on the restarted old leader.
  ASSERT_TRUE(StartNode(*old_leader).ok());
  ASSERT_NE(WaitLeader(), nullptr);  // a restarted node answers "no leader" until it hears one
  std::map<std::string, std::string> expected;
  {
    std::lock_guard<std::mutex> lock(mu);
    expected = acknowledged;
  }
  for (auto& host : hosts_) {
    for (const auto& [key, value] : expected) {
      auto got = Get(*host->node, key);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(ValueOf(got), value) << host->name << " " << key;
    }
  }
  uint64_t target = new_leader->node->applied_index();
  EXPECT_TRUE(WaitFor([&] { return old_leader->node->applied_index() >= target; }));
}

TEST_F(CoordCluster, FarBehindMemberCatchesUpThroughASnapshot) {
  snapshot_every_ = 50;
  StartCluster(3);
  Host* lagging = AnyFollower();
  lagging->node->Stop();
  lagging->node.reset();
  Host* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Put(*leader->node, "s/" + std::to_string(i), "x" + std::to_string(i)).ok());
  ASSERT_GT(leader->node->metrics().snapshots_saved.load(), 0u);
  ASSERT_TRUE(StartNode(*lagging).ok());
  ASSERT_TRUE(WaitFor([&] { return lagging->node->applied_index() >= leader->node->applied_index(); }));
  EXPECT_GT(lagging->node->metrics().snapshots_applied.load(), 0u);
  EXPECT_EQ(ValueOf(Get(*lagging->node, "s/7", /*serializable=*/true)), "x7");
  EXPECT_EQ(ValueOf(Get(*lagging->node, "s/299", /*serializable=*/true)), "x299");
  // And it restarts from its own snapshot + WAL.
  lagging->node->Stop();
  lagging->node.reset();
  ASSERT_TRUE(StartNode(*lagging).ok());
  EXPECT_EQ(ValueOf(Get(*lagging->node, "s/150", /*serializable=*/true)), "x150");
}

TEST_F(CoordCluster, AddLearnerPromoteItThenRemoveAMember) {
  StartCluster(3);
  Host* leader = WaitLeader();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*leader->node, "m/" + std::to_string(i), "v").ok());
  Host& fourth = AddHost("n4");
  etcd::MemberAddRequest add;
  add.add_peerurls("http://" + fourth.peer_url);
  add.set_islearner(true);
  Host* follower = AnyFollower();
  auto added = Await<etcd::MemberAddResponse>([&](auto done) { follower->node->MemberAdd(add, {}, done); });
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_TRUE(added->member().islearner());
  EXPECT_EQ(added->members_size(), 4);
  uint64_t new_id = added->member().id();

  // A second add of the same URL is refused.
  auto again = Await<etcd::MemberAddResponse>([&](auto done) { follower->node->MemberAdd(add, {}, done); });
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);

  ASSERT_TRUE(StartNode(fourth, /*founder=*/false).ok());
  EXPECT_EQ(fourth.node->member_id(), new_id);
  ASSERT_TRUE(WaitFor([&] { return fourth.node->applied_index() >= leader->node->applied_index(); }));
  EXPECT_EQ(ValueOf(Get(*fourth.node, "m/19", true)), "v");

  etcd::MemberPromoteRequest promote;
  promote.set_id(new_id);
  Result<etcd::MemberPromoteResponse> promoted = UnavailableError("not tried");
  ASSERT_TRUE(WaitFor([&] {
    promoted = Await<etcd::MemberPromoteResponse>([&](auto done) { leader->node->MemberPromote(promote, {}, done); });
    return promoted.ok();
  })) << promoted.status();
  for (const auto& member : promoted->members()) EXPECT_FALSE(member.islearner()) << member.name();

  // Promoting a voter is refused with etcd's message.
  auto twice = Await<etcd::MemberPromoteResponse>([&](auto done) { leader->node->MemberPromote(promote, {}, done); });
  EXPECT_EQ(twice.status().message(), "etcdserver: can only promote a learner member");

  // Remove a follower that is not the new one.
  Host* victim = nullptr;
  for (auto& host : hosts_) {
    if (host->node && !host->node->is_leader() && host->node->member_id() != new_id) victim = host.get();
  }
  ASSERT_NE(victim, nullptr);
  etcd::MemberRemoveRequest remove;
  remove.set_id(victim->node->member_id());
  auto removed = Await<etcd::MemberRemoveResponse>([&](auto done) { fourth.node->MemberRemove(remove, {}, done); });
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->members_size(), 3);
  victim->node->Stop();
  victim->node.reset();
  // The cluster of three (with the promoted member) still commits.
  ASSERT_TRUE(Put(*fourth.node, "after-remove", "ok").ok());
  EXPECT_EQ(ValueOf(Get(*leader->node, "after-remove")), "ok");
}

TEST_F(CoordCluster, RestartAllAndReadBackEverything) {
  StartCluster(3);
  Host* leader = WaitLeader();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(*leader->node, "r/" + std::to_string(i), std::to_string(i * i)).ok());
  for (auto& host : hosts_) {
    host->node->Stop();
    host->node.reset();
  }
  for (auto& host : hosts_) ASSERT_TRUE(StartNode(*host).ok());
  ASSERT_NE(WaitLeader(), nullptr);
  for (auto& host : hosts_) {
    for (int i = 0; i < 50; i += 7) EXPECT_EQ(ValueOf(Get(*host->node, "r/" + std::to_string(i))), std::to_string(i * i));
  }
}

TEST_F(CoordCluster, LeaseExpiryDeletesKeysOnAllMembersAtTheSameRevision) {
  StartCluster(3);
  Host* follower = AnyFollower();
  etcd::LeaseGrantRequest grant;
  grant.set_ttl(2);
  auto granted = Await<etcd::LeaseGrantResponse>([&](auto done) { follower->node->LeaseGrant(grant, {}, done); });
  ASSERT_TRUE(granted.ok()) << granted.status();
  ASSERT_TRUE(Put(*follower->node, "leased", "v", granted->id()).ok());
  std::mutex mu;
  std::map<int, int64_t> deleted_at;
  std::vector<std::unique_ptr<WatchStream>> streams;
  for (int i = 0; i < 3; ++i) {
    auto stream = hosts_[static_cast<size_t>(i)]->node->OpenWatchStream([&, i](const etcd::WatchResponse& response) {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& event : response.events()) {
        if (event.type() == etcd::Event::DELETE) deleted_at[i] = event.kv().mod_revision();
      }
    });
    ASSERT_TRUE(stream.ok());
    etcd::WatchRequest request;
    request.mutable_create_request()->set_key("leased");
    ASSERT_TRUE(Await<bool>([&](auto done) { (*stream)->Handle(request, done); }).ok());
    streams.push_back(std::move(*stream));
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> lock(mu);
    return deleted_at.size() == 3;
  }, 15s));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(deleted_at[0], deleted_at[1]);
  EXPECT_EQ(deleted_at[1], deleted_at[2]);
  EXPECT_EQ(ValueOf(Get(*hosts_[2]->node, "leased")), "<none>");
}

TEST_F(CoordCluster, MemberThatLostItsDataDirIsRefused) {
  StartCluster(3);
  Host* follower = AnyFollower();
  // Wait until it has published itself (every member's table shows it).
  ASSERT_TRUE(WaitFor([&] {
    auto members = Await<etcd::MemberListResponse>([&](auto done) { follower->node->MemberList({}, {}, done); });
    if (!members.ok()) return false;
    for (const auto& member : members->members()) {
      if (member.clienturls_size() == 0) return false;
    }
    return true;
  }));
  follower->node->Stop();
  follower->node.reset();
  std::filesystem::remove_all(follower->dir);
  Status started = StartNode(*follower);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(started.message().find("clusterctl member replace"), std::string::npos) << started.message();
}

TEST_F(CoordCluster, WithoutQuorumRequestsFailWithinTheirDeadline) {
  StartCluster(3);
  Host* survivor = AnyFollower();
  for (auto& host : hosts_) {
    if (host.get() != survivor) {
      host->node->Stop();
      host->node.reset();
    }
  }
  for (int round = 0; round < 2; ++round) {  // while it still believes in the leader, and after
    auto start = std::chrono::steady_clock::now();
    etcd::PutRequest put;
    put.set_key("lost");
    auto written = Await<etcd::PutResponse>([&](auto done) { survivor->node->Put(put, {.deadline = 300ms}, done); });
    ASSERT_FALSE(written.ok());
    EXPECT_TRUE(written.status().code() == StatusCode::kUnavailable ||
                written.status().code() == StatusCode::kDeadlineExceeded) << written.status();
    etcd::RangeRequest range;
    range.set_key("lost");
    auto read = Await<etcd::RangeResponse>([&](auto done) { survivor->node->Range(range, {.deadline = 300ms}, done); });
    ASSERT_FALSE(read.ok());
    EXPECT_TRUE(read.status().code() == StatusCode::kUnavailable ||
                read.status().code() == StatusCode::kDeadlineExceeded) << read.status();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    WaitFor([&] { return survivor->node->leader() == 0; }, 3s);
  }
  EXPECT_FALSE(survivor->node->GetHealth().healthy);
  // Serializable reads are still served locally.
  EXPECT_TRUE(Get(*survivor->node, "lost", /*serializable=*/true).ok());
}

TEST_F(CoordCluster, StoppingTheLeaderHandsLeadershipOver) {
  StartCluster(3);
  Host* leader = WaitLeader();
  ASSERT_TRUE(Put(*leader->node, "before", "1").ok());
  uint64_t old_id = leader->node->member_id();
  auto start = std::chrono::steady_clock::now();
  leader->node->Stop();
  leader->node.reset();
  Host* next = WaitLeader();
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->node->member_id(), old_id);
  // Well under an election timeout (200-400 ms here) plus a margin for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_TRUE(Put(*next->node, "after", "2").ok());
}

TEST_F(CoordCluster, StatusAndMetricsReportRaftState) {
  StartCluster(3);
  Host* leader = WaitLeader();
  ASSERT_TRUE(Put(*leader->node, "a", "b").ok());
  auto status = Await<etcd::StatusResponse>([&](auto done) { hosts_[0]->node->Status({}, {}, done); });
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->leader(), leader->node->member_id());
  EXPECT_GT(status->raftterm(), 0u);
  EXPECT_GE(status->raftindex(), 4u);
  EXPECT_FALSE(status->islearner());
  std::string metrics = leader->node->Metrics();
  EXPECT_NE(metrics.find("cairn_raft_term "), std::string::npos);
  EXPECT_NE(metrics.find("cairn_wal_fsync_duration_seconds_bucket"), std::string::npos);
  EXPECT_NE(metrics.find("cairn_proposals_committed_total 1"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace cairn::coord
