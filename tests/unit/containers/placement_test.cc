// Placement records, compare-and-swap updates, --volume and --network parsing, and the container
// agent's store side (heartbeat, removal of a never-made container, other hosts ignored) over an
// in-process store, without LXC.
#include "cairn/containers/placement.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/common/clock.h"
#include "cairn/containers/container_agent.h"
#include "cairn/containers/coord_registry.h"
#include "cairn/containers/volumes.h"
#include "cairn/coord/local_coord_api.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::containers {
namespace {

namespace fs = std::filesystem;

class PlacementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-placement-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ + "/base/etc");
    images_ = std::make_unique<ImageStore>(registry_, dir_ + "/layers", clock_);
    ASSERT_TRUE(images_->ImportDirectory("base", dir_ + "/base").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  CreateOptions Options(const std::string& name, const std::string& host) {
    CreateOptions options;
    options.name = name;
    options.image = "base";
    options.host = host;
    return options;
  }

  void AddVolume(const std::string& name, proto::volume::VolumeState state) {
    proto::volume::VolumeSpec spec;
    spec.set_name(name);
    spec.set_state(state);
    ASSERT_TRUE(registry_.Put("/cairn/volumes/" + name + "/spec", spec.SerializeAsString()).ok());
  }

  std::string dir_;
  MemoryRegistry registry_;
  FakeClock clock_;
  std::unique_ptr<ImageStore> images_;
};

TEST_F(PlacementTest, PlaceWritesAPendingRecordForALiveHost) {
  auto down = PlaceContainer(registry_, *images_, Options("c1", "n2"), true, clock_);
  EXPECT_EQ(down.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(down.status().message().find("host n2 is down"), std::string::npos) << down.status();
  EXPECT_FALSE(GetContainer(registry_, "c1")->has_value()) << "nothing written for a down host";

  ASSERT_TRUE(registry_.Put(std::string(kAgentPrefix) + "n2", "{}").ok());
  auto placed = PlaceContainer(registry_, *images_, Options("c1", "n2"), true, clock_);
  ASSERT_TRUE(placed.ok()) << placed.status();
  auto record = GetContainer(registry_, "c1").value();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->host(), "n2");
  EXPECT_EQ(record->state(), kStatePending);
  EXPECT_EQ(record->desired(), kDesiredRunning);
  EXPECT_EQ(record->generation(), 1u);
  EXPECT_EQ(record->observed_generation(), 0u);
  EXPECT_EQ(PlaceContainer(registry_, *images_, Options("c1", "n2"), false, clock_).status().code(),
            StatusCode::kAlreadyExists);

  CreateOptions unknown = Options("c2", "n2");
  unknown.image = "nosuch";
  EXPECT_EQ(PlaceContainer(registry_, *images_, unknown, false, clock_).status().code(), StatusCode::kNotFound);
  CreateOptions relative = Options("c2", "n2");
  relative.binds = {"data:/data"};
  EXPECT_EQ(PlaceContainer(registry_, *images_, relative, false, clock_).status().code(), StatusCode::kInvalidArgument);
  CreateOptions network = Options("c2", "n2");
  network.network = "bridge";
  EXPECT_EQ(PlaceContainer(registry_, *images_, network, false, clock_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(GetContainer(registry_, "c2")->has_value());
}

TEST_F(PlacementTest, VolumesMustExistAndBeStarted) {
  ASSERT_TRUE(registry_.Put(std::string(kAgentPrefix) + "n1", "{}").ok());
  CreateOptions options = Options("c1", "n1");
  options.volumes = {"v:/data"};
  auto missing = PlaceContainer(registry_, *images_, options, false, clock_);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("volume v does not exist"), std::string::npos);
  AddVolume("v", proto::volume::VOLUME_CREATED);
  auto idle = PlaceContainer(registry_, *images_, options, false, clock_);
  EXPECT_EQ(idle.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(idle.status().message().find("volume v is not started"), std::string::npos);
  AddVolume("v", proto::volume::VOLUME_STARTED);
  options.volumes = {"v:/data:ro"};
  auto placed = PlaceContainer(registry_, *images_, options, false, clock_);
  ASSERT_TRUE(placed.ok()) << placed.status();
  ASSERT_EQ(placed->volumes_size(), 1);
  EXPECT_EQ(placed->volumes(0), "v:/data:ro");
}

TEST_F(PlacementTest, RequestDesiredBumpsTheGenerationOfPlacedContainersOnly) {
  ASSERT_TRUE(registry_.Put(std::string(kAgentPrefix) + "n1", "{}").ok());
  ASSERT_TRUE(PlaceContainer(registry_, *images_, Options("c1", "n1"), false, clock_).ok());
  auto generation = RequestDesired(registry_, "c1", kDesiredStopped, 7);
  ASSERT_TRUE(generation.ok()) << generation.status();
  EXPECT_EQ(*generation, 2u);
  auto record = GetContainer(registry_, "c1").value();
  EXPECT_EQ(record->desired(), kDesiredStopped);
  EXPECT_EQ(record->grace_seconds(), 7);

  ContainerRecord local;
  local.set_name("mine");
  local.set_host("h1");
  ASSERT_TRUE(registry_.Put(std::string(kContainerPrefix) + "mine", ToJson(local)).ok());
  EXPECT_EQ(RequestDesired(registry_, "mine", kDesiredRunning, 0).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(RequestDesired(registry_, "nosuch", kDesiredRunning, 0).status().code(), StatusCode::kNotFound);

  // Nobody observes it here: AwaitObserved gives up naming the host.
  auto waited = AwaitObserved(registry_, "c1", 2, std::chrono::milliseconds(0));
  EXPECT_EQ(waited.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(waited.status().message().find("host n1"), std::string::npos);
}

TEST(UpdateContainerTest, ComparesAndSwapsOnTheModRevision) {
  MemoryRegistry registry;
  ContainerRecord record;
  record.set_name("c");
  ASSERT_TRUE(registry.Create(std::string(kContainerPrefix) + "c", ToJson(record)).ok());
  auto before = registry.GetVersioned(std::string(kContainerPrefix) + "c").value();
  ASSERT_TRUE(before.has_value());
  ASSERT_TRUE(UpdateContainer(registry, "c", [](ContainerRecord& r) {
                r.set_state("running");
                return Status::Ok();
              }).ok());
  // A writer holding the old revision loses.
  EXPECT_EQ(registry.PutIfUnchanged(std::string(kContainerPrefix) + "c", "{}", before->mod_revision).code(),
            StatusCode::kAborted);
  EXPECT_EQ(GetContainer(registry, "c").value()->state(), "running");
  EXPECT_EQ(UpdateContainer(registry, "gone", [](ContainerRecord&) { return Status::Ok(); }).code(),
            StatusCode::kNotFound);
}

TEST(CoordRegistryTest, PutIfUnchangedOverCoordApi) {
  FakeClock clock;
  coord::LocalCoordApi api(clock);
  CoordRegistry registry(api);
  ASSERT_TRUE(registry.Put("/k", "1").ok());
  auto first = registry.GetVersioned("/k").value();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(registry.PutIfUnchanged("/k", "2", first->mod_revision).ok());
  EXPECT_EQ(registry.PutIfUnchanged("/k", "3", first->mod_revision).code(), StatusCode::kAborted);
  EXPECT_EQ(*registry.Get("/k").value(), "2");
}

TEST(VolumeUseTest, Parses) {
  auto use = ParseVolumeUse("data:/srv/data:ro");
  ASSERT_TRUE(use.ok()) << use.status();
  EXPECT_EQ(use->volume, "data");
  EXPECT_EQ(use->path, "/srv/data");
  EXPECT_TRUE(use->read_only);
  EXPECT_EQ(VolumeUseText(*use), "data:/srv/data:ro");
  EXPECT_FALSE(ParseVolumeUse("data:/x:rw")->read_only);
  for (const char* bad : {"data", "data:relative", "data:/", "data:/a/../b", "data:/x:rx", "bad/name:/x", ":/x",
                          "data:/x:ro:more"}) {
    EXPECT_EQ(ParseVolumeUse(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NetworkTest, ValidatesAndWritesTheAddress) {
  EXPECT_TRUE(ValidateNetwork("empty").ok());
  EXPECT_TRUE(ValidateNetwork("veth:br0").ok());
  EXPECT_TRUE(ValidateNetwork("veth:br0,ip=10.0.3.5/24").ok());
  for (const char* bad : {"bridge", "veth:", "veth:br0,ip=10.0.3.5", "veth:br0,ip=300.0.0.1/24", "veth:br0,mtu=9000",
                          "veth:a-very-long-bridge-name"}) {
    EXPECT_EQ(ValidateNetwork(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  ContainerSpec spec;
  spec.name = "c";
  spec.network = "veth:br0,ip=10.0.3.5/24";
  std::string config = LxcConfigText(spec, "/x/c");
  EXPECT_NE(config.find("lxc.net.0.link = br0\n"), std::string::npos) << config;
  EXPECT_NE(config.find("lxc.net.0.ipv4.address = 10.0.3.5/24\n"), std::string::npos) << config;
}

// The agent over an in-process store: heartbeat while running (dropped on Stop), a placed
// container that was never made is removed by deleting its record, other hosts' records and
// clusterctl-run records are left alone.
TEST(ContainerAgentTest, HeartbeatAndRemovalWithoutLxc) {
  char pattern[] = "/tmp/cairn-agent-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  FakeClock clock;
  coord::LocalCoordApi api(clock);
  CoordRegistry registry(api);
  auto put = [&](const std::string& name, const std::string& host, const std::string& desired, uint64_t generation) {
    ContainerRecord record;
    record.set_name(name);
    record.set_host(host);
    record.set_state(kStatePending);
    record.set_desired(desired);
    record.set_generation(generation);
    ASSERT_TRUE(registry.Put(std::string(kContainerPrefix) + name, ToJson(record)).ok());
  };
  put("gone", "n1", kDesiredRemoved, 2);
  put("theirs", "n2", kDesiredRemoved, 2);
  put("local", "n1", "", 0);
  boost::asio::io_context io;
  ContainerAgentOptions options;
  options.node_name = "n1";
  options.state_dir = dir + "/containers";
  options.layer_root = dir + "/layers";
  options.unionmount = "/bin/true";
  options.poll = std::chrono::milliseconds(20);
  ContainerAgent agent(io, api, options);
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_EQ(agent.Start().code(), StatusCode::kFailedPrecondition);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto done = [&] {
    return registry.Get(std::string(kAgentPrefix) + "n1").value().has_value() &&
           !GetContainer(registry, "gone").value().has_value();
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // waiting on the agent's thread with a deadline
  }
  EXPECT_TRUE(done());
  EXPECT_TRUE(GetContainer(registry, "theirs").value().has_value()) << "another host's container";
  EXPECT_TRUE(GetContainer(registry, "local").value().has_value()) << "a clusterctl-run container";
  agent.Stop();
  agent.Stop();
  EXPECT_FALSE(registry.Get(std::string(kAgentPrefix) + "n1").value().has_value()) << "Stop drops the heartbeat";
  fs::remove_all(dir);
}

// The agent watches the records: with polling and resyncs an hour apart, a record written after
// its first round is still acted on at once.
TEST(ContainerAgentTest, AWatchWakesTheAgentWithoutPolling) {
  char pattern[] = "/tmp/cairn-agent-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  FakeClock clock;
  coord::LocalCoordApi api(clock);
  CoordRegistry registry(api);
  auto put_removed = [&](const std::string& name) {
    ContainerRecord record;
    record.set_name(name);
    record.set_host("n1");
    record.set_state(kStatePending);
    record.set_desired(kDesiredRemoved);
    record.set_generation(2);
    ASSERT_TRUE(registry.Put(std::string(kContainerPrefix) + name, ToJson(record)).ok());
  };
  auto gone = [&](const std::string& name) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (GetContainer(registry, name).value().has_value() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // waiting on the agent's thread with a deadline
    }
    return !GetContainer(registry, name).value().has_value();
  };
  put_removed("first");
  boost::asio::io_context io;
  ContainerAgentOptions options;
  options.node_name = "n1";
  options.state_dir = dir + "/containers";
  options.layer_root = dir + "/layers";
  options.unionmount = "/bin/true";
  options.poll = std::chrono::hours(1);
  options.check_every = std::chrono::hours(1);
  options.resync_every = std::chrono::hours(1);
  ContainerAgent agent(io, api, options);
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_TRUE(gone("first")) << "the first round";
  put_removed("second");
  EXPECT_TRUE(gone("second")) << "woken by the watch";
  agent.Stop();
  fs::remove_all(dir);
}

// A host without unionmount still starts (clusterd must run the store and bricks there): the
// agent logs that containers are off and publishes no heartbeat, so nothing is placed on it.
TEST(ContainerAgentTest, WithoutUnionmountTheAgentStaysOffInsteadOfFailing) {
  char pattern[] = "/tmp/cairn-agent-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  std::string dir = pattern;
  FakeClock clock;
  coord::LocalCoordApi api(clock);
  CoordRegistry registry(api);
  setenv("CAIRN_UNIONMOUNT", (dir + "/no-such-unionmount").c_str(), 1);
  boost::asio::io_context io;
  ContainerAgentOptions options;
  options.node_name = "n1";
  options.state_dir = dir + "/containers";
  options.layer_root = dir + "/layers";
  ContainerAgent agent(io, api, options);
  Status started = agent.Start();
  unsetenv("CAIRN_UNIONMOUNT");
  EXPECT_TRUE(started.ok()) << started.ToString();
  EXPECT_FALSE(registry.Get(std::string(kAgentPrefix) + "n1").value().has_value()) << "no heartbeat: no containers here";
  agent.Stop();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cairn::containers
