// The world a cairn-mount needs, built by the test itself (the volume agent of clusterd is not
// used): one clusterd process as a single-node store on free 127.0.0.1 ports, N in-process
// BrickServers on temp dirs with their replica-set views installed by SetView, and the volume's
// records written through EtcdClient exactly as the contract describes (a started spec, each
// set's record with a primary and its in-sync set, the primary key on a long store lease so no
// agent would take over, the brick address keys). Then cairn-mount as a child process.
//
// Teardown (destructor) always unmounts (fusermount3 -u, then a lazy umount), kills the mount
// process, stops the bricks and clusterd and removes the temp dir, also after a failed test.
#pragma once

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "brick_harness.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"
#include "subprocess.h"

namespace cairn::volumemount::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace vpb = ::cairn::proto::volume;

inline bool IsMounted(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == mountpoint) return true;
  }
  return false;
}

inline bool CanMount() { return geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0; }

inline std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct WorldOptions {
  uint32_t replica = 3;
  uint32_t sets = 1;
  std::string volume = "vol";
};

class VolumeWorld {
 public:
  explicit VolumeWorld(WorldOptions options = {}) : options_(options) {
    char pattern[] = "/tmp/cairn-volmount-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    dir_ = pattern;
    mountpoint_ = dir_ + "/mnt";
    fs::create_directories(mountpoint_);
  }

  ~VolumeWorld() {
    Unmount();
    bricks_.clear();
    io_.reset();
    store_client_.reset();
    clusterd_.reset();  // SIGKILL and reap
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Starts the store and the bricks and writes the records. Fails the test (ASSERT) on error.
  void Build() {
    StartStore();
    if (::testing::Test::HasFatalFailure()) return;
    io_ = std::make_unique<brick::testing::IoThreads>();
    uint32_t count = options_.replica * options_.sets;
    std::vector<std::string> ids;
    for (uint32_t i = 0; i < count; ++i) {
      brick::BrickServerOptions brick_options;
      brick_options.replica_timeout = 5s;  // a loaded 2-core CI machine must not look like a dead backup
      bricks_.push_back(std::make_unique<brick::testing::TestBrick>(io_->io(), dir_ + "/brick" + std::to_string(i),
                                                                    brick_options));
      ids.push_back("h" + std::to_string(i) + ":/b" + std::to_string(i));
    }
    volume::CreateVolumeRequest request{.name = options_.volume, .replica_count = options_.replica, .bricks = ids};
    auto spec = volume::CreateVolumeSpec(request);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    auto started = volume::WithVolumeState(*spec, vpb::VOLUME_STARTED);
    ASSERT_TRUE(started.ok());
    spec_ = *started;
    auto created = store_client_->Txn(volume::CreateVolumeTxn(spec_));
    ASSERT_TRUE(created.ok() && created->succeeded()) << created.status().message();
    etcd::LeaseGrantRequest grant;
    grant.set_ttl(3600);
    auto lease = store_client_->LeaseGrant(grant);
    ASSERT_TRUE(lease.ok()) << lease.status().message();
    lease_id_ = lease->id();
    for (uint32_t i = 0; i < count; ++i) Put(volume::BrickAddressKey(options_.volume, ids[i]), bricks_[i]->address());
    for (const auto& set : spec_.sets()) {
      std::vector<int> members;
      for (const auto& brick : set.bricks()) members.push_back(IndexOf(volume::BrickId(brick)));
      SetRecord(set.id(), 2, members.front(), members);
    }
  }

  // Installs epoch/primary/in-sync for set_id: first the bricks' views (in-sync members, then
  // the primary), then the store records (set record, primary key), as an agent would.
  void SetRecord(uint32_t set_id, uint64_t epoch, int primary, const std::vector<int>& in_sync) {
    brick::pb::ReplicaView view;
    view.set_epoch(epoch);
    view.set_primary(bricks_[primary]->address());
    for (int member : in_sync) {
      if (member != primary) view.add_in_sync(bricks_[member]->address());
    }
    for (int member : in_sync) {
      view.set_self(bricks_[member]->address());
      Status set = bricks_[member]->server().SetView(view);
      ASSERT_TRUE(set.ok()) << set.message();
    }
    vpb::ReplicaSetState state;
    state.set_set_id(set_id);
    state.set_epoch(epoch);
    state.set_primary(BrickIdOf(primary));
    for (int member : in_sync) state.add_in_sync(BrickIdOf(member));
    state.set_primary_lease_id(lease_id_);
    state.set_primary_lease_ttl_ms(3600 * 1000);
    Put(volume::PrimaryKey(options_.volume, set_id), BrickIdOf(primary), lease_id_);
    Put(volume::SetKey(options_.volume, set_id), state.SerializeAsString());
  }

  void Put(const std::string& key, const std::string& value, int64_t lease = 0) {
    etcd::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    put.set_lease(lease);
    auto reply = store_client_->Put(put);
    ASSERT_TRUE(reply.ok()) << key << ": " << reply.status().message();
  }

  // cairn-mount VOLUME MNT --endpoints ... -f, waiting (deadline 20 s) until it is mounted.
  void Mount(const std::string& extra_options = "") {
    std::string options = "log=info,log_file=" + dir_ + "/mount.log";
    if (!extra_options.empty()) options += "," + extra_options;
    std::vector<std::string> args = {CAIRN_MOUNT_BIN, options_.volume, mountpoint_, "--endpoints", Endpoint(),
                                     "-f", "-o", options};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    mount_pid_ = fork();
    if (mount_pid_ == 0) {
      int out = open((dir_ + "/mount.out").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    bool mounted = test_support::WaitFor([&] {
      if (IsMounted(mountpoint_)) return true;
      int status;
      if (waitpid(mount_pid_, &status, WNOHANG) == mount_pid_) {
        mount_pid_ = -1;
        return true;
      }
      return false;
    }, 20s);
    ASSERT_TRUE(mounted && mount_pid_ > 0) << "cairn-mount did not mount: " << ReadWhole(dir_ + "/mount.out");
    struct stat st;
    ASSERT_EQ(stat(mountpoint_.c_str(), &st), 0) << strerror(errno);  // answers INIT
  }

  // fusermount3 -u, then a lazy umount as a last resort; reaps (or kills) the mount process.
  void Unmount() {
    if (IsMounted(mountpoint_)) {
      std::string quiet = "fusermount3 -u -q " + mountpoint_ + " 2>/dev/null";
      if (std::system(quiet.c_str()) != 0 || IsMounted(mountpoint_)) umount2(mountpoint_.c_str(), MNT_DETACH);
    }
    if (mount_pid_ <= 0) return;
    int status = 0;
    bool exited = test_support::WaitFor([&] { return waitpid(mount_pid_, &status, WNOHANG) == mount_pid_; }, 10s);
    if (!exited) {
      kill(mount_pid_, SIGKILL);
      waitpid(mount_pid_, &status, 0);
    }
    mount_pid_ = -1;
  }

  std::string MountLog() const { return ReadWhole(dir_ + "/mount.log") + ReadWhole(dir_ + "/mount.out"); }

  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }
  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& dir() const { return dir_; }
  brick::testing::TestBrick& brick(int i) { return *bricks_[i]; }
  size_t brick_count() const { return bricks_.size(); }
  const vpb::VolumeSpec& spec() const { return spec_; }
  etcdclient::EtcdClient& store() { return *store_client_; }
  std::string BrickIdOf(int i) const { return "h" + std::to_string(i) + ":/b" + std::to_string(i); }

  // Starts the store only (for the command-line tests).
  void StartStore() {
    uint16_t peer = test_support::FreePort();
    client_port_ = test_support::FreePort();
    std::string config = dir_ + "/store.yaml";
    std::ofstream(config) << "name: store\ndata_dir: " << dir_ << "/store\npeer_address: 127.0.0.1:" << peer
                          << "\nclient_address: 127.0.0.1:" << client_port_ << "\nlog:\n  level: warn\n";
    clusterd_ = std::make_unique<test_support::Subprocess>(CLUSTERD_BIN, std::vector<std::string>{"--config", config});
    ASSERT_TRUE(clusterd_->started());
    store_client_ = std::make_unique<etcdclient::EtcdClient>(
        std::vector<HostPort>{{"127.0.0.1", client_port_}},
        etcdclient::ClientOptions{.timeout = 5s, .connect_timeout = 500ms});
    etcd::PutRequest probe;
    probe.set_key("ready-probe");
    Status last = InternalError("not tried");
    bool serving = test_support::WaitFor([&] {
      last = store_client_->Put(probe).status();
      return last.ok();
    }, 30s);
    ASSERT_TRUE(serving) << "store never served: " << last.message() << " " << clusterd_->err();
  }

 private:
  int IndexOf(const std::string& brick_id) const {
    for (size_t i = 0; i < bricks_.size(); ++i) {
      if (BrickIdOf(static_cast<int>(i)) == brick_id) return static_cast<int>(i);
    }
    return -1;
  }

  WorldOptions options_;
  std::string dir_, mountpoint_;
  uint16_t client_port_ = 0;
  std::unique_ptr<test_support::Subprocess> clusterd_;
  std::unique_ptr<etcdclient::EtcdClient> store_client_;
  std::unique_ptr<brick::testing::IoThreads> io_;
  std::vector<std::unique_ptr<brick::testing::TestBrick>> bricks_;
  vpb::VolumeSpec spec_;
  int64_t lease_id_ = 0;
  pid_t mount_pid_ = -1;
};

}  // namespace cairn::volumemount::testing
