// The mount agent end to end: one real clusterd (store, volume agent serving the brick, mount
// agent) and the real cairn-mount. The mount is declared with clusterctl apply, like an operator.
//
// Cleanup runs in TearDown also after failures: the mount is detached, every cairn-mount the test
// saw is killed, clusterd is killed (Subprocess destructor), the temp dir removed.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "cairn/clusterspec/records.h"
#include "cairn/etcdclient/etcd_client.h"
#include "subprocess.h"

namespace cairn::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kClusterd = CLUSTERD_PATH;
const std::string kCairnMount = CAIRN_MOUNT_PATH;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool IsFuseMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point != path) continue;
    found = Contains(line, " - fuse");
  }
  return found;
}

// Running, not a zombie (the test's container may have no init that reaps orphans).
bool Alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string stat;
  std::getline(std::ifstream("/proc/" + std::to_string(pid) + "/stat"), stat);
  size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] != 'Z';
}

class MountAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
    char pattern[] = "/tmp/cairn-mount-agent-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    mnt_ = dir_ + "/mnt";
    uint16_t peer = FreePort(), client = FreePort();
    endpoint_ = HostPort{"127.0.0.1", client};
    config_ = dir_ + "/n1.yaml";
    std::ofstream(config_) << "name: n1\ndata_dir: " << dir_ << "/n1\npeer_address: 127.0.0.1:" << peer
                           << "\nclient_address: 127.0.0.1:" << client << "\nlog:\n  level: info\n";
    StartClusterd();
    std::ofstream(dir_ + "/cluster.yaml") << "hosts:\n  - {name: n1}\n"
                                          << "volumes:\n  - {name: mv, bricks: [n1:" << dir_ << "/brick]}\n"
                                          << "mounts:\n  - {host: n1, volume: mv, path: " << mnt_ << "}\n";
  }

  void TearDown() override {
    if (dir_.empty()) return;
    ::umount2(mnt_.c_str(), MNT_DETACH);
    for (int pid : pids_) ::kill(pid, SIGKILL);
    clusterd_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartClusterd() {
    clusterd_ = std::make_unique<Subprocess>(kClusterd, std::vector<std::string>{"--config", config_},
                                             std::vector<std::string>{"CAIRN_MOUNT=" + kCairnMount});
    etcdclient::EtcdClient probe({endpoint_}, {.timeout = seconds(2), .connect_timeout = milliseconds(200)});
    etcd::PutRequest put;
    put.set_key("ready-probe");
    ASSERT_TRUE(WaitFor([&] { return probe.Put(put).ok(); }, seconds(30))) << clusterd_->err();
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.push_back("--endpoints");
    args.push_back(endpoint_.ToString());
    return RunProcess(kClusterctl, args);
  }

  // The agent's status record for the mount (empty state when there is none).
  clusterspec::MountStatus Status() {
    etcdclient::EtcdClient client({endpoint_}, {.timeout = seconds(3), .connect_timeout = milliseconds(500)});
    etcd::RangeRequest request;
    request.set_key(clusterspec::MountStatusKey("n1", mnt_));
    clusterspec::MountStatus status;
    auto response = client.Range(request);
    if (response.ok() && response->kvs_size() == 1) {
      EXPECT_TRUE(clusterspec::ParseRecord(request.key(), response->kvs(0).value(), &status).ok());
    }
    if (status.pid() > 0) pids_.insert(status.pid());
    return status;
  }

  // Waits until the status says mounted with a pid accepted by `pid_ok`, and the mount answers.
  clusterspec::MountStatus WaitMounted(const std::function<bool(const clusterspec::MountStatus&)>& ok) {
    clusterspec::MountStatus status;
    bool mounted = WaitFor([&] {
      status = Status();
      return status.state() == "mounted" && ok(status) && IsFuseMount(mnt_);
    }, seconds(60));
    EXPECT_TRUE(mounted) << "status: " << clusterspec::RecordJson(status) << "\nclusterd: " << clusterd_->err();
    return status;
  }

  std::string dir_, mnt_, config_;
  HostPort endpoint_;
  std::unique_ptr<Subprocess> clusterd_;
  std::set<int> pids_;
};

TEST_F(MountAgentTest, MountsRestartsAdoptsAndUnmounts) {
  RunResult apply = Ctl({"apply", "-f", dir_ + "/cluster.yaml"});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;

  // 1. The desired mount appears and works.
  auto first = WaitMounted([](const auto&) { return true; });
  ASSERT_GT(first.pid(), 0);
  EXPECT_EQ(first.restarts(), 0u);
  std::ofstream(mnt_ + "/hello") << "written through the agent's mount\n";
  std::string read_back;
  std::getline(std::ifstream(mnt_ + "/hello"), read_back);
  EXPECT_EQ(read_back, "written through the agent's mount");

  // 2. kill -9 of cairn-mount: restarted (new pid, restarts 1), the file still there.
  ASSERT_EQ(::kill(first.pid(), SIGKILL), 0);
  auto second = WaitMounted([&](const auto& s) { return s.pid() != first.pid() && s.restarts() == 1; });
  EXPECT_EQ(second.restarts(), 1u);
  EXPECT_TRUE(WaitFor([&] {
    std::string text;
    std::getline(std::ifstream(mnt_ + "/hello"), text);
    return text == "written through the agent's mount";
  }, seconds(30)));

  // 3. clusterd stops: the mount stays; the next clusterd adopts it (same pid, no restart).
  clusterd_->Signal(SIGTERM);
  ASSERT_EQ(clusterd_->WaitForExit(milliseconds(30000)), 0) << clusterd_->err();
  EXPECT_TRUE(IsFuseMount(mnt_));
  EXPECT_TRUE(Alive(second.pid()));
  StartClusterd();
  ASSERT_TRUE(clusterd_->WaitForOutput("mount.adopted", milliseconds(30000))) << clusterd_->err();
  auto adopted = WaitMounted([&](const auto& s) { return s.updated_unix_ms() > second.updated_unix_ms(); });
  EXPECT_EQ(adopted.pid(), second.pid());
  EXPECT_EQ(adopted.restarts(), 1u);
  EXPECT_FALSE(Contains(clusterd_->err(), "mount.started")) << clusterd_->err();

  // 4. The record deleted (apply --prune): unmounted, the process ends, the status goes.
  std::ofstream(dir_ + "/none.yaml") << "mounts: []\n";
  RunResult pruned = Ctl({"apply", "-f", dir_ + "/none.yaml", "--prune"});
  ASSERT_EQ(pruned.exit_code, 0) << pruned.out << pruned.err;
  EXPECT_TRUE(WaitFor([&] { return !IsFuseMount(mnt_); }, seconds(30)));
  EXPECT_TRUE(WaitFor([&] { return !Alive(second.pid()); }, seconds(30)));
  EXPECT_TRUE(WaitFor([&] { return Status().state().empty(); }, seconds(30)));
}

}  // namespace
}  // namespace cairn::test_support
