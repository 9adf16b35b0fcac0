// cairn-mount over replica sets: replicas byte-identical after a mixed workload, a 64 MiB
// sequential round trip, failover of the primary while a writer runs, an epoch change without a
// new primary (the ESTALE path), and the command line (daemon mode, clear errors).
// Needs root and /dev/fuse (skipped otherwise).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>

#include "volume_world.h"

namespace cairn::volumemount::testing {
namespace {

// The data file of `relative` on brick `b`, as the brick keeps it (same path below its root).
std::string OnBrick(VolumeWorld& world, int b, const std::string& relative) {
  return world.brick(b).root() + "/" + relative;
}

std::string Pattern(size_t size, uint32_t seed) {
  std::mt19937 random(seed);
  std::string data(size, '\0');
  for (auto& c : data) c = static_cast<char>(random());
  return data;
}

bool WriteAll(int fd, const std::string& data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanMount()) GTEST_SKIP() << "needs root and /dev/fuse";
  }
  void TearDown() override {
    if (HasFailure() && world_) std::cerr << "---- mount log ----\n" << world_->MountLog();
    world_.reset();
  }
  void Start(WorldOptions options = {}) {
    world_ = std::make_unique<VolumeWorld>(options);
    world_->Build();
    if (HasFatalFailure()) return;
    world_->Mount();
    mnt_ = world_->mountpoint();
  }
  std::unique_ptr<VolumeWorld> world_;
  std::string mnt_;
};

TEST_F(ReplicaTest, ReplicasAreByteIdenticalAfterAMixedWorkload) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  std::mt19937 random(7);
  ASSERT_EQ(mkdir((mnt_ + "/d").c_str(), 0755), 0);
  for (int i = 0; i < 40; ++i) {
    std::string path = mnt_ + "/d/f" + std::to_string(i % 17);
    switch (random() % 8) {
      case 0: case 1: case 2: {
        int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0640);
        ASSERT_GE(fd, 0) << path;
        ASSERT_TRUE(WriteAll(fd, Pattern(random() % 300000, i), random() % 5000));
        close(fd);
        break;
      }
      case 3: truncate(path.c_str(), random() % 10000); break;
      case 4: chmod(path.c_str(), 0600 | (random() % 0100)); break;
      case 5: rename(path.c_str(), (mnt_ + "/d/r" + std::to_string(i)).c_str()); break;
      case 6: unlink(path.c_str()); break;
      case 7: mkdir((mnt_ + "/d/sub" + std::to_string(i)).c_str(), 0700); break;
    }
  }
  ASSERT_EQ(symlink("f1", (mnt_ + "/d/link").c_str()), 0);
  ASSERT_EQ(setxattr((mnt_ + "/d").c_str(), "user.tag", "x", 1, 0), 0);
  auto first = brick::testing::Snapshot(world_->brick(0).root());
  EXPECT_GT(first.size(), 10u);
  for (int b = 1; b < 3; ++b) EXPECT_EQ(brick::testing::Snapshot(world_->brick(b).root()), first) << "brick " << b;
}

// A rebalance copy in progress (its temp name on the target set) is not listed: the file shows
// once, under its real name.
TEST_F(ReplicaTest, RebalanceTempNamesAreNotListed) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  const std::string temp = ".cairn-rebalance-0123456789abcdef0123456789abcdef";
  int fd = open((mnt_ + "/" + temp).c_str(), O_WRONLY | O_CREAT, 0640);
  ASSERT_GE(fd, 0);
  close(fd);
  fd = open((mnt_ + "/visible").c_str(), O_WRONLY | O_CREAT, 0640);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(std::filesystem::exists(OnBrick(*world_, 0, temp)));
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(mnt_)) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"visible"});
}

TEST_F(ReplicaTest, SixtyFourMebibyteSequentialRoundTrip) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  const size_t kSize = size_t{64} << 20;
  std::string data = Pattern(kSize, 64);
  int fd = open((mnt_ + "/big").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  auto started = std::chrono::steady_clock::now();
  for (size_t at = 0; at < kSize; at += 1 << 20) {
    ASSERT_EQ(write(fd, data.data() + at, 1 << 20), 1 << 20) << strerror(errno) << " at " << at;
  }
  ASSERT_EQ(fsync(fd), 0);
  ASSERT_EQ(close(fd), 0);
  auto written = std::chrono::steady_clock::now();
  std::string back = ReadWhole(mnt_ + "/big");
  auto read = std::chrono::steady_clock::now();
  ASSERT_EQ(back.size(), kSize);
  EXPECT_TRUE(back == data) << "content differs";
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  RecordProperty("write_ms", std::to_string(ms(written - started)));
  RecordProperty("read_ms", std::to_string(ms(read - written)));
  for (int b = 0; b < 3; ++b) EXPECT_TRUE(ReadWhole(OnBrick(*world_, b, "big")) == data) << "brick " << b;
}

// The primary dies while a writer runs: the test takes brick 0 down, installs views with brick 1
// as primary in a new epoch and writes the new set record; the writer's next write (waiting on a
// transport error) continues on brick 1. Every write returns success and the data is complete.
TEST_F(ReplicaTest, WriterContinuesOnTheNewPrimaryAfterFailover) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  const size_t kChunk = 256 << 10;
  std::atomic<int> chunks{0};
  std::atomic<bool> stop{false};
  std::atomic<int> failed_errno{0};
  std::string path = mnt_ + "/log";
  std::thread writer([&] {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) {
      failed_errno = errno;
      return;
    }
    for (int i = 0; !stop; ++i) {
      std::string data = Pattern(kChunk, static_cast<uint32_t>(i));
      if (!WriteAll(fd, data, static_cast<off_t>(i) * static_cast<off_t>(kChunk))) {
        failed_errno = errno;
        break;
      }
      chunks = i + 1;
    }
    close(fd);
  });
  ASSERT_TRUE(test_support::WaitFor([&] { return chunks >= 8 || failed_errno != 0; }, 30s));
  world_->brick(0).Kill();
  world_->SetRecord(world_->spec().sets(0).id(), 3, 1, {1, 2});
  int at_failover = chunks;
  bool continued = test_support::WaitFor([&] { return chunks >= at_failover + 8 || failed_errno != 0; }, 30s);
  stop = true;
  writer.join();
  ASSERT_EQ(failed_errno.load(), 0) << strerror(failed_errno);
  ASSERT_TRUE(continued) << "writer stalled at chunk " << chunks;
  std::string back = ReadWhole(path);
  ASSERT_EQ(back.size(), static_cast<size_t>(chunks) * kChunk);
  for (int i = 0; i < chunks; ++i) {
    ASSERT_TRUE(back.compare(static_cast<size_t>(i) * kChunk, kChunk, Pattern(kChunk, static_cast<uint32_t>(i))) == 0)
        << "chunk " << i;
  }
  EXPECT_TRUE(ReadWhole(OnBrick(*world_, 1, "log")) == back);
  EXPECT_TRUE(ReadWhole(OnBrick(*world_, 2, "log")) == back);
  EXPECT_NE(world_->MountLog().find("mount.waiting_for_failover"), std::string::npos);
}

// The views move to a new epoch before the store record does (the primary stays): mutations
// stamped with the old epoch get ESTALE, the mount re-reads and retries until the record shows
// the new epoch, and nothing fails.
TEST_F(ReplicaTest, EpochChangeWithoutNewPrimaryIsRetriedAfterEstale) {
  Start();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(mkdir((mnt_ + "/a").c_str(), 0755), 0);
  brick::pb::ReplicaView view;
  view.set_epoch(3);
  view.set_primary(world_->brick(0).address());
  view.add_in_sync(world_->brick(1).address());
  for (int b = 0; b < 2; ++b) {
    view.set_self(world_->brick(b).address());
    ASSERT_TRUE(world_->brick(b).server().SetView(view).ok());
  }
  std::atomic<int> result{1};
  std::thread mkdirs([&] { result = mkdir((mnt_ + "/b").c_str(), 0755) == 0 ? 0 : errno; });
  // Brick 2 leaves the in-sync set; the record follows a moment later.
  bool refused = test_support::WaitFor([&] { return world_->MountLog().find("mount.estale_retry") != std::string::npos; }, 10s);
  EXPECT_TRUE(refused) << "the mkdir never met ESTALE";
  EXPECT_EQ(result.load(), 1) << "the mkdir finished before the record changed";
  vpb::ReplicaSetState state;
  state.set_set_id(world_->spec().sets(0).id());
  state.set_epoch(3);
  state.set_primary(world_->BrickIdOf(0));
  state.add_in_sync(world_->BrickIdOf(0));
  state.add_in_sync(world_->BrickIdOf(1));
  world_->Put(volume::SetKey("vol", world_->spec().sets(0).id()), state.SerializeAsString());
  mkdirs.join();
  EXPECT_EQ(result.load(), 0) << strerror(result);
  struct stat st;
  EXPECT_EQ(stat((world_->brick(1).root() + "/b").c_str(), &st), 0);
  EXPECT_NE(stat((world_->brick(2).root() + "/b").c_str(), &st), 0) << "brick 2 is out of the set";
}

class CommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanMount()) GTEST_SKIP() << "needs root and /dev/fuse";
  }
  test_support::RunResult Run(std::vector<std::string> args) { return test_support::RunProcess(CAIRN_MOUNT_BIN, args); }
};

TEST_F(CommandLineTest, DaemonModeReturnsOnceMountedAndFusermountEndsIt) {
  VolumeWorld world;
  world.Build();
  ASSERT_FALSE(HasFatalFailure());
  auto result = Run({"vol", world.mountpoint(), "--endpoints", world.Endpoint()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_TRUE(IsMounted(world.mountpoint()));
  ASSERT_EQ(mkdir((world.mountpoint() + "/x").c_str(), 0755), 0);
  struct stat st;
  EXPECT_EQ(stat((world.brick(1).root() + "/x").c_str(), &st), 0);
  ASSERT_EQ(std::system(("fusermount3 -u " + world.mountpoint()).c_str()), 0);
  EXPECT_FALSE(IsMounted(world.mountpoint()));
}

TEST_F(CommandLineTest, ErrorsAreOneClearLineAndExitOne) {
  VolumeWorld world;
  world.StartStore();
  ASSERT_FALSE(HasFatalFailure());
  auto expect_error = [&](std::vector<std::string> args, const std::string& words) {
    auto result = Run(args);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_NE(result.err.find(words), std::string::npos) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_FALSE(IsMounted(world.mountpoint()));
  };
  expect_error({"nosuch", world.mountpoint(), "--endpoints", world.Endpoint()}, "volume nosuch does not exist");
  vpb::VolumeSpec spec = *volume::CreateVolumeSpec({.name = "cold", .replica_count = 1, .bricks = {"h0:/b0"}});
  ASSERT_TRUE(world.store().Txn(volume::CreateVolumeTxn(spec)).ok());
  expect_error({"cold", world.mountpoint(), "--endpoints", world.Endpoint()}, "not started");
  expect_error({"cold", world.mountpoint(), "--endpoints", "127.0.0.1:1"}, "store is unreachable");
  expect_error({"cold", world.dir() + "/missing", "--endpoints", world.Endpoint()}, "No such file");
  expect_error({"cold", world.mountpoint()}, "no store endpoints");
  expect_error({"bad/name", world.mountpoint(), "--endpoints", world.Endpoint()}, "cairn-mount:");
}

}  // namespace
}  // namespace cairn::volumemount::testing
