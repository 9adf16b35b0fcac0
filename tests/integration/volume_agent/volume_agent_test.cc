// clusterd's volume agent with real processes: three clusterd on 127.0.0.1, a replicated volume
// created through the store (libs/etcdclient), files written through BrickClient to the primary,
// then hosts killed (-9) or stopped (SIGSTOP): writes go on after a backup dies, a new primary
// with every acknowledged file takes over after the primary dies, and a woken old primary refuses
// writes. Also replica 2 with the third clusterd as a store-only witness.
//
// Each clusterd logs to its own file (no pipe to fill); a failing test prints the tails.
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cairn/brickclient/brick_client.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"
#include "cairn/itest/files.h"
#include "cairn/itest/local_cluster.h"
#include "cairn/itest/volume_records.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using itest::LocalCluster;
using test_support::WaitFor;
namespace vpb = ::cairn::proto::volume;
namespace bpb = ::cairn::proto::brick;

constexpr int kHosts = 3;

class VolumeAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = itest::MakeTempDir("cairn-volume-agent");
    ASSERT_FALSE(dir_.empty());
    cluster_ = std::make_unique<LocalCluster>(CLUSTERD_PATH, dir_, kHosts);
    store_ = std::make_unique<etcdclient::EtcdClient>(cluster_->ClientEndpoints(), etcdclient::ClientOptions{.timeout = 5s});
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (cluster_) cluster_->KillAll();
    clients_.clear();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    if (HasFailure() && cluster_) std::cerr << cluster_->LogTails(12000);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static std::string Name(int i) { return LocalCluster::Name(i); }
  std::string BrickOf(int i) const { return Name(i) + ":" + dir_ + "/bricks/" + Name(i); }
  static int HostOf(const std::string& brick) { return brick[1] - '1'; }

  // Talks to the store only through the other hosts' endpoints: a stopped (SIGSTOP) host accepts
  // connections but never answers, which would eat every call's deadline.
  void AvoidEndpoint(int host) {
    store_ = std::make_unique<etcdclient::EtcdClient>(cluster_->ClientEndpoints(host), etcdclient::ClientOptions{.timeout = 5s});
  }

  void StartHost(int i) {
    Status started = cluster_->Start(i);
    ASSERT_TRUE(started.ok()) << started.message();
  }

  void StartAll() {
    for (int i = 0; i < kHosts; ++i) {
      StartHost(i);
      if (HasFatalFailure()) return;
    }
  }

  // Creates and starts a volume with one set of the given hosts' bricks (through the store).
  void CreateVolume(const std::string& name, const std::vector<int>& hosts) {
    std::vector<std::string> bricks;
    for (int i : hosts) bricks.push_back(BrickOf(i));
    Result<uint32_t> set = itest::CreateStartedVolume(*store_, name, bricks, 20s);
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    volume_ = name;
    set_id_ = *set;
  }

  vpb::ReplicaSetState Set() { return itest::ReadSet(*store_, volume_, set_id_); }

  std::string Address(const std::string& brick) { return itest::BrickAddress(*store_, volume_, brick); }

  // The set once it has a primary holding its key, served at a published address, with
  // `in_sync` replicas in sync and addresses for all of them.
  vpb::ReplicaSetState WaitForPrimary(int in_sync, std::chrono::milliseconds limit,
                                      const std::string& not_this = "") {
    return itest::WaitForPrimary(*store_, volume_, set_id_, in_sync, limit, not_this);
  }

  brickclient::BrickClient& ClientTo(const std::string& address, uint64_t epoch) {
    auto& client = clients_[address];
    if (!client) client = std::make_unique<brickclient::BrickClient>(io_, address, brickclient::BrickClientOptions{.timeout = 10s});
    client->set_epoch(epoch);
    return *client;
  }

  // Create + Write + Fsync on `address` stamped with `epoch`; the first errno, 0 on success.
  int WriteFile(const std::string& address, uint64_t epoch, const std::string& name, const std::string& data) {
    auto& brick = ClientTo(address, epoch);
    bpb::CreateRequest create;
    create.set_parent(brickclient::kRootId);
    create.set_name(name);
    create.set_mode(0644);
    auto created = brick.Create(create);
    if (created.err() != 0) return created.err();
    auto written = brick.Write(created.attr().id(), 0, data);
    if (written.err() != 0) return written.err();
    return brick.Fsync(created.attr().id()).err();
  }

  // Writes like a volume client: to the current primary with the current epoch; on ESTALE or a
  // transport error, re-reads the set record and retries until `limit`.
  int WriteFileRetrying(const std::string& name, const std::string& data, std::chrono::milliseconds limit) {
    int err = -1;
    WaitFor([&] {
      vpb::ReplicaSetState state = Set();
      std::string address = state.primary().empty() ? "" : Address(state.primary());
      if (address.empty()) return false;
      err = WriteFile(address, state.epoch(), name, data);
      return err == 0;
    }, limit);
    return err;
  }

  // The file's content on the brick at `address` ("<errno N>" when it cannot be read).
  std::string ReadFile(const std::string& address, const std::string& name) {
    auto& brick = ClientTo(address, 0);
    auto looked = brick.Lookup(brickclient::kRootId, name);
    if (looked.err() != 0) return "<errno " + std::to_string(looked.err()) + ">";
    auto read = brick.Read(looked.attr().id(), 0, looked.attr().size());
    if (read.err() != 0) return "<errno " + std::to_string(read.err()) + ">";
    return read.data();
  }

  static std::string Content(int i) {
    std::string data = "file " + std::to_string(i) + ":";
    for (int k = 0; k < 2000 + i * 37; ++k) data.push_back(static_cast<char>('a' + (k * 7 + i) % 26));
    return data;
  }

  // Writes files f<from>..f<to-1> through the current primary and checks each acknowledged.
  void WriteFiles(int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_EQ(WriteFileRetrying("f" + std::to_string(i), Content(i), 20s), 0) << "f" << i;
    }
  }

  void ExpectFiles(const std::string& address, int count) {
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(ReadFile(address, "f" + std::to_string(i)), Content(i)) << "f" << i << " on " << address;
    }
  }

  std::string dir_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<etcdclient::EtcdClient> store_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread io_thread_;
  std::map<std::string, std::unique_ptr<brickclient::BrickClient>> clients_;
  std::string volume_;
  uint32_t set_id_ = 0;
};

TEST_F(VolumeAgentTest, Replica3ServesBricksAndDropsADeadBackup) {
  StartAll();
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol3", {0, 1, 2}));
  vpb::ReplicaSetState state = WaitForPrimary(3, 30s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(WriteFiles(0, 5));

  int primary = HostOf(state.primary());
  int backup = (primary + 1) % kHosts;
  cluster_->Kill(backup);
  auto killed_at = std::chrono::steady_clock::now();
  // The primary forwards, sees the backup gone, drops it and then answers; the client's next
  // mutation of the same file meets the new epoch (ESTALE) and retries with it.
  EXPECT_EQ(WriteFileRetrying("f5", Content(5), 20s), 0);
  auto paused = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  RecordProperty("backup_death_write_ms", std::to_string(paused.count()));
  std::cerr << "write after the backup's death took " << paused.count() << " ms\n";
  EXPECT_LT(paused, 5s);
  vpb::ReplicaSetState after = Set();
  EXPECT_GT(after.epoch(), state.epoch());
  EXPECT_EQ(after.primary(), state.primary());
  EXPECT_FALSE(volume::IsInSync(after, BrickOf(backup))) << after.ShortDebugString();
  EXPECT_EQ(after.in_sync_size(), 2);
  // The other backup has every file.
  int other = 3 - primary - backup;
  ExpectFiles(Address(BrickOf(other)), 6);
}

TEST_F(VolumeAgentTest, Replica3NewPrimaryAfterThePrimaryHostIsKilled) {
  StartAll();
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol3", {0, 1, 2}));
  vpb::ReplicaSetState state = WaitForPrimary(3, 30s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(WriteFiles(0, 8));

  int primary = HostOf(state.primary());
  cluster_->Kill(primary);
  auto killed_at = std::chrono::steady_clock::now();
  vpb::ReplicaSetState next = WaitForPrimary(2, 20s, state.primary());
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  ASSERT_FALSE(next.primary().empty()) << "no new primary; set: " << Set().ShortDebugString();
  RecordProperty("primary_death_failover_ms", std::to_string(failover.count()));
  std::cerr << "new primary " << next.primary() << " after " << failover.count() << " ms\n";
  EXPECT_LT(failover, 8s);
  EXPECT_GT(next.epoch(), state.epoch());
  EXPECT_FALSE(volume::IsInSync(next, state.primary()));
  ExpectFiles(Address(next.primary()), 8);
  // Writes go on through the new primary and reach the remaining backup.
  ASSERT_NO_FATAL_FAILURE(WriteFiles(8, 10));
  vpb::ReplicaSetState last = Set();
  EXPECT_EQ(last.in_sync_size(), 2);
  for (const auto& brick : last.in_sync()) ExpectFiles(Address(brick), 10);
}

TEST_F(VolumeAgentTest, Replica3StoppedPrimaryIsReplacedAndRefusesWritesWhenItWakes) {
  StartAll();
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol3", {0, 1, 2}));
  vpb::ReplicaSetState state = WaitForPrimary(3, 30s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(WriteFiles(0, 4));
  std::string old_address = Address(state.primary());
  // Connect before the stop, so the late write below is not a connection attempt.
  ASSERT_EQ(ReadFile(old_address, "f0"), Content(0));

  int primary = HostOf(state.primary());
  cluster_->Signal(primary, SIGSTOP);
  auto stopped_at = std::chrono::steady_clock::now();
  AvoidEndpoint(primary);
  vpb::ReplicaSetState next = WaitForPrimary(2, 20s, state.primary());
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopped_at);
  ASSERT_FALSE(next.primary().empty()) << "no take-over; set: " << Set().ShortDebugString();
  std::cerr << "take-over from a stopped primary after " << failover.count() << " ms\n";
  RecordProperty("silent_primary_failover_ms", std::to_string(failover.count()));
  EXPECT_LT(failover, 8s);
  ASSERT_NO_FATAL_FAILURE(WriteFiles(4, 6));

  cluster_->Signal(primary, SIGCONT);
  // The woken primary still has its old view for a moment: its lease deadline has passed, so the
  // write is refused as not applied, never accepted.
  int err = WriteFile(old_address, state.epoch(), "late", "written by a stale primary");
  std::cerr << "the woken old primary answered errno " << err << "\n";
  EXPECT_EQ(err, ESTALE);
  EXPECT_EQ(ReadFile(Address(next.primary()), "late"), "<errno " + std::to_string(ENOENT) + ">");
  ExpectFiles(Address(next.primary()), 6);
}

TEST_F(VolumeAgentTest, Replica3ReturningBackupIsHealedAndReadmitted) {
  StartAll();
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol3", {0, 1, 2}));
  vpb::ReplicaSetState state = WaitForPrimary(3, 30s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(WriteFiles(0, 4));
  int backup = (HostOf(state.primary()) + 1) % kHosts;
  cluster_->Kill(backup);
  ASSERT_NO_FATAL_FAILURE(WriteFiles(4, 10));  // the first one drops the backup
  EXPECT_FALSE(volume::IsInSync(Set(), BrickOf(backup)));

  StartHost(backup);  // same data dir, same brick: heal from the primary, then readmission
  ASSERT_TRUE(WaitFor([&] { return volume::IsInSync(Set(), BrickOf(backup)); }, 60s))
      << "not readmitted; set: " << Set().ShortDebugString();
  ExpectFiles(Address(BrickOf(backup)), 10);
  ASSERT_NO_FATAL_FAILURE(WriteFiles(10, 12));
  vpb::ReplicaSetState last = Set();
  EXPECT_EQ(last.in_sync_size(), 3);
  for (const auto& brick : last.in_sync()) ExpectFiles(Address(brick), 12);
}

TEST_F(VolumeAgentTest, Replica2WithAWitnessSurvivesThePrimaryHost) {
  StartAll();
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol2", {0, 1}));  // n3 holds no brick: a store-only witness
  vpb::ReplicaSetState state = WaitForPrimary(2, 30s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  EXPECT_TRUE(Address(BrickOf(2)).empty());
  ASSERT_NO_FATAL_FAILURE(WriteFiles(0, 6));

  int primary = HostOf(state.primary());
  cluster_->Kill(primary);
  vpb::ReplicaSetState next = WaitForPrimary(1, 20s, state.primary());
  ASSERT_FALSE(next.primary().empty()) << "no new primary; set: " << Set().ShortDebugString();
  EXPECT_EQ(next.primary(), BrickOf(1 - primary));
  ExpectFiles(Address(next.primary()), 6);
  ASSERT_NO_FATAL_FAILURE(WriteFiles(6, 8));
  ExpectFiles(Address(next.primary()), 8);
}

}  // namespace
}  // namespace cairn
