// The volume agent's pure decisions (views, roles, take-over turns), the take-over variant it
// uses, the BrickServer hooks it drives (write deadline, hold/resume, position), and one agent
// in-process against LocalCoordApi: serve a brick, publish its address, become primary, accept a
// write, give everything back on Stop.
#include <filesystem>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cairn/brick/brick_server.h"
#include "cairn/brickclient/brick_client.h"
#include "cairn/coord/local_coord_api.h"
#include "cairn/net/server.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"
#include "cairn/volume_service/views.h"
#include "cairn/volume_service/volume_agent.h"

namespace cairn::volume_service {
namespace {

using namespace std::chrono_literals;
namespace vpb = ::cairn::proto::volume;
namespace bpb = ::cairn::proto::brick;

vpb::ReplicaSetSpec ThreeBricks() {
  vpb::ReplicaSetSpec set;
  set.set_id(1);
  for (const char* host : {"h1", "h2", "h3"}) {
    auto* brick = set.add_bricks();
    brick->set_host(host);
    brick->set_path("/b");
  }
  return set;
}

vpb::ReplicaSetState State(const std::string& primary, std::vector<std::string> in_sync, uint64_t epoch = 7) {
  vpb::ReplicaSetState state;
  state.set_set_id(1);
  state.set_epoch(epoch);
  state.set_primary(primary);
  for (auto& brick : in_sync) state.add_in_sync(brick);
  return state;
}

TEST(VolumeAgentViews, ViewFollowsTheRecordAndNamesUnknownInSyncAddresses) {
  auto address = [](const std::string& brick) -> std::string {
    if (brick == "h1:/b") return "10.0.0.1:7000";
    if (brick == "h3:/b") return "10.0.0.3:7000";
    return "";
  };
  bpb::ReplicaView view = ViewFor(State("h1:/b", {"h1:/b", "h2:/b"}), ThreeBricks(), address, "10.0.0.1:7000");
  EXPECT_EQ(view.epoch(), 7u);
  EXPECT_EQ(view.primary(), "10.0.0.1:7000");
  EXPECT_EQ(view.self(), "10.0.0.1:7000");
  ASSERT_EQ(view.in_sync_size(), 1);
  EXPECT_EQ(view.in_sync(0), UnknownAddress("h2:/b"));  // a forward to it fails at once
  ASSERT_EQ(view.out_of_sync_size(), 1);
  EXPECT_EQ(view.out_of_sync(0), "10.0.0.3:7000");

  // No primary yet: everyone in sync is listed, nobody is primary.
  bpb::ReplicaView first = ViewFor(State("", {"h1:/b", "h2:/b", "h3:/b"}, 1), ThreeBricks(), address, "10.0.0.3:7000");
  EXPECT_TRUE(first.primary().empty());
  EXPECT_EQ(first.in_sync_size(), 3);
}

TEST(VolumeAgentViews, Roles) {
  auto state = State("h1:/b", {"h1:/b", "h2:/b"});
  EXPECT_EQ(RoleOf(state, "h1:/b"), "primary");
  EXPECT_EQ(RoleOf(state, "h2:/b"), "backup");
  EXPECT_EQ(RoleOf(state, "h3:/b"), "out-of-sync");
  EXPECT_EQ(RoleOf(State("", {"h1:/b"}), "h1:/b"), "no-primary");
  state.set_mode(vpb::REPLICA_SET_NO_QUORUM_EIO);
  EXPECT_EQ(RoleOf(state, "h2:/b"), "no-quorum");
}

TEST(VolumeAgentViews, TakeOverTurnsSkipTheOldPrimaryAndDeadBricks) {
  auto state = State("h1:/b", {"h1:/b", "h2:/b", "h3:/b"});
  auto all_live = [](const std::string&) { return true; };
  EXPECT_EQ(TakeOverRank(state, ThreeBricks(), "h2:/b", all_live), 0);
  EXPECT_EQ(TakeOverRank(state, ThreeBricks(), "h3:/b", all_live), 1);
  EXPECT_EQ(TakeOverRank(state, ThreeBricks(), "h1:/b", all_live), 2);  // the old primary goes last
  auto h2_dead = [](const std::string& brick) { return brick != "h2:/b"; };
  EXPECT_EQ(TakeOverRank(state, ThreeBricks(), "h3:/b", h2_dead), 0);
  // Out of sync: after every live in-sync brick.
  auto dropped = State("h1:/b", {"h1:/b", "h2:/b"});
  EXPECT_GT(TakeOverRank(dropped, ThreeBricks(), "h3:/b", all_live), TakeOverRank(dropped, ThreeBricks(), "h2:/b", all_live));
}

TEST(VolumeAgentTakeOver, KeepOnlyMatchingDropsReplicasBehindOrSilent) {
  volume::ReplicaSetRecord record{State("", {"h1:/b", "h2:/b", "h3:/b"}), 40};
  // h1 (the freshest) wins; h2 matches it; h3 is one mutation behind.
  auto change = volume::TakeOverPrimary("v", record, {{"h1:/b", 9, 3}, {"h2:/b", 9, 3}, {"h3:/b", 8, 3}}, 77, 2000,
                                        volume::OthersAfterTakeOver::kKeepOnlyMatching);
  ASSERT_TRUE(change.ok()) << change.status().ToString();
  EXPECT_EQ(change->next.primary(), "h1:/b");
  ASSERT_EQ(change->next.in_sync_size(), 2);
  EXPECT_EQ(change->next.in_sync(1), "h2:/b");
  // A replica that did not answer leaves too; the default keeps it.
  auto silent = volume::TakeOverPrimary("v", record, {{"h2:/b", 4, 2}}, 77, 2000,
                                        volume::OthersAfterTakeOver::kKeepOnlyMatching);
  ASSERT_TRUE(silent.ok());
  EXPECT_EQ(silent->next.in_sync_size(), 1);
  auto kept = volume::TakeOverPrimary("v", record, {{"h2:/b", 4, 2}}, 77, 2000);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->next.in_sync_size(), 3);
}

// io_context run by two threads for the brick and agent tests.
class IoThreads {
 public:
  IoThreads() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{io_.get_executor()};
  std::vector<std::thread> threads_;
};

std::string MakeTempDir() {
  char pattern[] = "/tmp/cairn-volume-agent-XXXXXX";
  if (mkdtemp(pattern) == nullptr) std::abort();
  return pattern;
}

struct TempDir {
  std::string path = MakeTempDir();
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

bpb::CreateRequest FileNamed(const std::string& name) {
  bpb::CreateRequest create;
  create.set_parent(brickclient::kRootId);
  create.set_name(name);
  create.set_mode(0644);
  return create;
}

TEST(BrickServerHooks, WriteDeadlineHoldAndPosition) {
  TempDir dir;
  FakeClock clock;
  auto store = std::move(brick::BrickStore::Open(dir.path)).value();
  {
    IoThreads io;
    net::Server server(io.io(), {.address = "127.0.0.1:0"});
    ASSERT_TRUE(server.Start().ok());
    std::string address = "127.0.0.1:" + std::to_string(server.port());
    brick::BrickServer engine(io.io(), server, *store, {.self_address = address, .clock = &clock});
    brickclient::BrickClient client(io.io(), address);

    EXPECT_EQ(engine.Position().sequence, 0u);
    EXPECT_EQ(client.Create(FileNamed("a")).err(), 0);
    EXPECT_EQ(engine.Position().sequence, 1u);

    engine.SetWriteDeadline(clock.Now() + 1s);
    EXPECT_EQ(client.Create(FileNamed("b")).err(), 0);
    clock.Advance(1s);  // now == deadline: the lease may be gone
    EXPECT_EQ(client.Create(FileNamed("c")).err(), ESTALE);
    EXPECT_EQ(client.Lookup(brickclient::kRootId, "c").err(), ENOENT);
    EXPECT_EQ(engine.Position().sequence, 2u);
    engine.SetWriteDeadline(std::nullopt);

    engine.HoldMutations();
    std::promise<int> answered;
    client.Call<bpb::CreateResponse>("brick.Create", FileNamed("held"),
                                     [&answered](bpb::CreateResponse response) { answered.set_value(response.err()); });
    auto future = answered.get_future();
    EXPECT_EQ(future.wait_for(200ms), std::future_status::timeout);
    EXPECT_EQ(engine.Position().sequence, 2u);  // not stamped while held
    engine.ResumeMutations();
    ASSERT_EQ(future.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(future.get(), 0);
    EXPECT_EQ(engine.Position().sequence, 3u);

    bpb::PositionResponse position = client.CallSync<bpb::PositionResponse>("brick.Position", bpb::PositionRequest());
    EXPECT_EQ(position.err(), 0);
    EXPECT_EQ(position.sequence(), 3u);
    server.Stop();
    engine.Stop();
  }
}

// Polls until condition holds or 10 s pass.
template <class Fn>
bool Eventually(Fn condition) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

std::optional<etcd::KeyValue> Get(coord::LocalCoordApi& store, const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  std::optional<etcd::KeyValue> found;
  store.Range(request, {}, [&](Result<etcd::RangeResponse> reply) {
    if (reply.ok() && reply->kvs_size() > 0) found = reply->kvs(0);
  });
  return found;
}

TEST(VolumeAgentLocal, ServesABrickBecomesPrimaryAndTakesWrites) {
  TempDir dir;
  coord::LocalCoordApi store(RealClock::Instance());
  IoThreads io;
  VolumeAgent agent(io.io(), store, {.node_name = "node-a", .tick = 20ms});
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_EQ(agent.Start().code(), StatusCode::kFailedPrecondition);

  volume::CreateVolumeRequest request{.name = "v", .replica_count = 1, .bricks = {"node-a:" + dir.path + "/brick"}};
  auto spec = volume::WithVolumeState(volume::CreateVolumeSpec(request).value(), vpb::VOLUME_STARTED).value();
  bool created = false;
  store.Txn(volume::CreateVolumeTxn(spec), {}, [&](Result<etcd::TxnResponse> reply) { created = reply.ok() && reply->succeeded(); });
  ASSERT_TRUE(created);

  std::string brick = "node-a:" + dir.path + "/brick";
  const uint32_t set_id = spec.sets(0).id();
  ASSERT_TRUE(Eventually([&] { return Get(store, volume::PrimaryKey("v", set_id)).has_value(); }));
  auto address = Get(store, volume::BrickAddressKey("v", brick));
  ASSERT_TRUE(address.has_value());
  vpb::ReplicaSetState state;
  ASSERT_TRUE(state.ParseFromString(Get(store, volume::SetKey("v", set_id))->value()));
  EXPECT_EQ(state.primary(), brick);
  EXPECT_EQ(state.epoch(), 2u);

  ASSERT_TRUE(Eventually([&] {
    auto bricks = agent.Bricks();
    return bricks.size() == 1 && bricks[0].role == "primary" && bricks[0].epoch == 2;
  }));
  EXPECT_EQ(agent.Bricks()[0].address, address->value());
  {
    brickclient::BrickClient client(io.io(), address->value(), {.epoch = state.epoch()});
    // The lease's first confirmation may still be on its way: retry briefly on ESTALE.
    int err = -1;
    EXPECT_TRUE(Eventually([&] { return (err = client.Create(FileNamed("x")).err()) == 0; })) << err;
    client.set_epoch(state.epoch() - 1);
    EXPECT_EQ(client.Create(FileNamed("y")).err(), ESTALE);
  }

  // Stopping the volume stops the brick and removes its address.
  auto stopped = volume::WithVolumeState(spec, vpb::VOLUME_STOPPED).value();
  auto current = volume::ParseVolumeRecord(*Get(store, volume::SpecKey("v"))).value();
  auto update = volume::UpdateVolumeTxn(current, stopped).value();
  store.Txn(update, {}, [](Result<etcd::TxnResponse>) {});
  EXPECT_TRUE(Eventually([&] { return agent.Bricks().empty(); }));
  EXPECT_TRUE(Eventually([&] { return !Get(store, volume::BrickAddressKey("v", brick)).has_value(); }));
  agent.Stop();
  agent.Stop();
}

}  // namespace
}  // namespace cairn::volume_service
