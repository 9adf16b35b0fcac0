// Containers end to end, as an operator runs them: one clusterd as the store, clusterctl image and
// container verbs, real LXC (as root) with unionmount roots over a busybox image built locally.
//
// Every test uses names unique to this run; TearDown stops and destroys every container under this
// run's container root and unmounts every union, through liblxc directly (LxcRuntime), even when
// clusterctl or the store is broken, then kills clusterd and removes the temp dir.
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/containers/runtime.h"
#include "cairn/containers/tree.h"
#include "cairn/etcdclient/etcd_client.h"
#include "subprocess.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::FreePort;
using test_support::RunProcess;
using test_support::RunResult;
using test_support::Subprocess;
using test_support::WaitFor;

const std::string kClusterd = CLUSTERD_PATH;
const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kUnionmount = UNIONMOUNT_PATH;

std::string Describe(const RunResult& result) {
  return "exit " + std::to_string(result.exit_code) + "\nstdout: " + result.out + "\nstderr: " + result.err;
}

class ContainersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "LXC containers need root";
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "busybox-static is not installed";
    char pattern[] = "/tmp/cairn-containers-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    prefix_ = "t" + std::to_string(getpid()) + "-";
    env_ = {"CAIRN_IMAGE_ROOT=" + dir_ + "/images", "CAIRN_CONTAINER_ROOT=" + dir_ + "/containers",
            "CAIRN_HOST=h1", "CAIRN_UNIONMOUNT=" + kUnionmount};
    StartStore();
    if (HasFatalFailure()) return;
    RunResult image = Ctl({"image", "build-busybox", "busybox"});
    ASSERT_EQ(image.exit_code, 0) << Describe(image);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    containers::LxcRuntime runtime(dir_ + "/containers", kUnionmount);
    std::error_code ignored;
    if (fs::is_directory(dir_ + "/containers")) {
      for (const auto& entry : fs::directory_iterator(dir_ + "/containers", ignored)) {
        std::string name = entry.path().filename();
        (void)runtime.Stop(name, seconds(0));
        Status destroyed = runtime.Destroy(name);
        if (!destroyed.ok()) {
          umount2(runtime.RootfsDir(name).c_str(), MNT_DETACH);
          (void)runtime.Destroy(name);
        }
      }
    }
    store_.reset();
    if (!IsMountedBelow(dir_)) fs::remove_all(dir_, ignored);
  }

  static bool IsMountedBelow(const std::string& dir) {
    std::ifstream mounts("/proc/self/mounts");
    for (std::string line; std::getline(mounts, line);) {
      if (line.find(" " + dir + "/") != std::string::npos) return true;
    }
    return false;
  }

  void StartStore() {
    uint16_t peer = FreePort(), client = FreePort();
    std::string config = dir_ + "/n1.yaml";
    std::ofstream(config) << "name: n1\ndata_dir: " << dir_ << "/n1\nrole: voter\npeer_address: 127.0.0.1:" << peer
                          << "\nclient_address: 127.0.0.1:" << client
                          << "\ninitial_cluster:\n  - name: n1\n    peer_address: 127.0.0.1:" << peer
                          << "\nlog:\n  level: warn\n";
    store_ = std::make_unique<Subprocess>(kClusterd, std::vector<std::string>{"--config", config});
    ASSERT_TRUE(store_->started());
    endpoint_ = "127.0.0.1:" + std::to_string(client);
    etcdclient::EtcdClient probe({{"127.0.0.1", client}}, {.timeout = seconds(2), .connect_timeout = milliseconds(200)});
    etcd::PutRequest put;
    put.set_key("ready-probe");
    bool serving = WaitFor([&] { return probe.Put(put).ok(); }, seconds(30));
    ASSERT_TRUE(serving) << "clusterd never served: " << store_->err();
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.push_back("--endpoints");
    args.push_back(endpoint_);
    return RunProcess(kClusterctl, args, env_);
  }

  // Runs a command in a container; returns the result (exit code is the command's).
  RunResult Exec(const std::string& name, const std::vector<std::string>& command) {
    std::vector<std::string> args = {"container", "exec", name, "--endpoints", endpoint_, "--"};
    args.insert(args.end(), command.begin(), command.end());
    return RunProcess(kClusterctl, args, env_);
  }

  std::string Name(const std::string& base) const { return prefix_ + base; }
  std::string ContainerDir(const std::string& name) const { return dir_ + "/containers/" + name; }
  std::string LayerDir(const std::string& image) const { return dir_ + "/images/layers/" + image; }

  void CreateAndStart(const std::string& name, const std::string& image, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"container", "create", name, "--start"};
    if (!image.empty()) args.insert(args.end(), {"--image", image});
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult created = Ctl(args);
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
  }

  std::string dir_, prefix_, endpoint_;
  std::vector<std::string> env_;
  std::unique_ptr<Subprocess> store_;
};

TEST_F(ContainersTest, CreateStartExecStopRemove) {
  std::string name = Name("life");
  std::string data = dir_ + "/data";
  fs::create_directories(data);
  CreateAndStart(name, "busybox", {"--bind", data + ":/data"});

  RunResult list = Ctl({"container", "list"});
  ASSERT_EQ(list.exit_code, 0) << Describe(list);
  EXPECT_NE(list.out.find(name), std::string::npos);
  EXPECT_NE(list.out.find("RUNNING"), std::string::npos) << list.out;

  RunResult exec = Exec(name, {"sh", "-c", "echo inside > /data/from-container; echo out; echo err >&2; exit 3"});
  EXPECT_EQ(exec.exit_code, 3) << Describe(exec);
  EXPECT_EQ(exec.out, "out\n");
  EXPECT_EQ(exec.err, "err\n");
  std::ifstream written(data + "/from-container");
  std::string line;
  std::getline(written, line);
  EXPECT_EQ(line, "inside") << "the bind mount reaches the host directory";

  RunResult hostname = Exec(name, {"hostname"});
  EXPECT_EQ(hostname.exit_code, 0) << Describe(hostname);
  EXPECT_EQ(hostname.out, "busybox\n");  // rcS sets it from the image's /etc/hostname

  RunResult logs = Ctl({"container", "logs", name});
  EXPECT_EQ(logs.exit_code, 0) << Describe(logs);
  bool up = WaitFor([&] { return Ctl({"container", "logs", name}).out.find("cairn-busybox: up") != std::string::npos; },
                    seconds(20));
  EXPECT_TRUE(up) << Ctl({"container", "logs", name}).out;

  RunResult stop = Ctl({"container", "stop", name, "--grace", "5"});
  ASSERT_EQ(stop.exit_code, 0) << Describe(stop);
  RunResult show = Ctl({"container", "show", name});
  EXPECT_NE(show.out.find("STOPPED"), std::string::npos) << show.out;
  RunResult stopped_exec = Exec(name, {"true"});
  EXPECT_NE(stopped_exec.exit_code, 0);
  EXPECT_NE(stopped_exec.err.find("not running"), std::string::npos) << Describe(stopped_exec);

  RunResult removed = Ctl({"container", "rm", name});
  ASSERT_EQ(removed.exit_code, 0) << Describe(removed);
  EXPECT_FALSE(fs::exists(ContainerDir(name)));
  EXPECT_FALSE(IsMountedBelow(dir_ + "/containers"));
  EXPECT_EQ(Ctl({"container", "show", name}).exit_code, 1);
  EXPECT_TRUE(fs::exists(LayerDir("busybox") + "/bin/busybox")) << "removing a container leaves its image";
}

TEST_F(ContainersTest, BadInputLeavesNothingBehind) {
  std::string name = Name("bad");
  RunResult unknown = Ctl({"container", "create", name, "--image", "no-such-image"});
  EXPECT_EQ(unknown.exit_code, 1) << Describe(unknown);
  EXPECT_NE(unknown.err.find("image no-such-image does not exist"), std::string::npos) << unknown.err;
  EXPECT_FALSE(fs::exists(ContainerDir(name)));
  EXPECT_EQ(Ctl({"container", "show", name}).exit_code, 1);

  RunResult bad_bind = Ctl({"container", "create", name, "--image", "busybox", "--bind", "/no/such:/x"});
  EXPECT_NE(bad_bind.exit_code, 0);
  EXPECT_NE(bad_bind.err.find("/no/such"), std::string::npos) << bad_bind.err;
  RunResult other_host = Ctl({"container", "create", name, "--image", "busybox", "--host", "h9"});
  EXPECT_EQ(other_host.exit_code, 1);
  EXPECT_NE(other_host.err.find("h9"), std::string::npos) << other_host.err;
  EXPECT_EQ(Ctl({"container", "create", "bad/name", "--image", "busybox"}).exit_code, 2);
  EXPECT_FALSE(fs::exists(ContainerDir(name)));

  RunResult created = Ctl({"container", "create", name, "--image", "busybox"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  RunResult clash = Ctl({"container", "create", name, "--image", "busybox"});
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_NE(clash.err.find("already exists"), std::string::npos) << clash.err;
  EXPECT_TRUE(fs::exists(ContainerDir(name) + "/config")) << "a refused clash leaves the first container alone";

  RunResult in_use = Ctl({"image", "rm", "busybox"});
  EXPECT_EQ(in_use.exit_code, 1);
  EXPECT_NE(in_use.err.find("container " + name), std::string::npos) << in_use.err;
  RunResult clash_image = Ctl({"image", "build-busybox", "busybox"});
  EXPECT_EQ(clash_image.exit_code, 1);
  EXPECT_NE(clash_image.err.find("already exists"), std::string::npos);
  EXPECT_EQ(Ctl({"container", "rm", name}).exit_code, 0);
  RunResult image_rm = Ctl({"image", "rm", "busybox"});
  EXPECT_EQ(image_rm.exit_code, 0) << Describe(image_rm);
  EXPECT_FALSE(fs::exists(LayerDir("busybox")));
}

// Part C's sharing: ten containers on one image add only their writable layers.
TEST_F(ContainersTest, TenContainersShareOneBase) {
  RunResult verify = Ctl({"image", "verify", "busybox"});
  ASSERT_EQ(verify.exit_code, 0) << Describe(verify);
  std::string base_digest = containers::DigestTree(LayerDir("busybox")).value();
  auto base_stats = containers::MeasureTree(LayerDir("busybox")).value();
  constexpr int kCount = 10;
  for (int i = 0; i < kCount; ++i) {
    CreateAndStart(Name("c" + std::to_string(i)), "busybox");
    if (HasFatalFailure()) return;
  }
  for (int i = 0; i < kCount; ++i) {
    std::string name = Name("c" + std::to_string(i));
    RunResult write = Exec(name, {"sh", "-c", "echo " + name + " > /root/mine; echo changed > /etc/hostname; rm /bin/vi"});
    ASSERT_EQ(write.exit_code, 0) << Describe(write);
  }
  for (int i = 0; i < kCount; ++i) {
    std::string name = Name("c" + std::to_string(i));
    RunResult read = Exec(name, {"sh", "-c", "cat /root/mine; ls /root; cat /etc/hostname; test -e /bin/vi || echo novi"});
    ASSERT_EQ(read.exit_code, 0) << Describe(read);
    EXPECT_EQ(read.out, name + "\nmine\nchanged\nnovi\n") << "each container sees only its own writes";
    // Only the writable layer grew: the file, the copied-up hostname, a whiteout, their parents.
    auto upper = containers::MeasureTree(ContainerDir(name) + "/upper").value();
    EXPECT_LT(upper.disk_bytes, 1u << 20) << name;
    EXPECT_TRUE(fs::exists(ContainerDir(name) + "/upper/bin/.wh.vi"));
  }
  EXPECT_EQ(containers::DigestTree(LayerDir("busybox")).value(), base_digest) << "the base layer is unchanged";
  EXPECT_EQ(Ctl({"image", "verify", "busybox"}).exit_code, 0);
  RunResult show = Ctl({"image", "show", "busybox", "-o", "json"});
  ASSERT_EQ(show.exit_code, 0) << Describe(show);
  EXPECT_NE(show.out.find("\"containers\":10"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("\"bytes_saved\":" + std::to_string(kCount * base_stats.size_bytes)), std::string::npos)
      << show.out;
  RunResult container_show = Ctl({"container", "show", Name("c0"), "-o", "json"});
  EXPECT_NE(container_show.out.find("\"writable_size_bytes\":"), std::string::npos) << container_show.out;
  for (int i = 0; i < kCount; ++i) {
    RunResult removed = Ctl({"container", "rm", "--force", Name("c" + std::to_string(i)), "--grace", "2"});
    EXPECT_EQ(removed.exit_code, 0) << Describe(removed);
  }
}

TEST_F(ContainersTest, ChildImageSeesParentOverridesAndWhiteouts) {
  std::string changes = dir_ + "/changes";
  fs::create_directories(changes + "/etc");
  fs::create_directories(changes + "/opt/app");
  std::ofstream(changes + "/etc/hostname") << "child\n";
  std::ofstream(changes + "/opt/app/run.sh") << "echo app\n";
  std::ofstream(changes + "/etc/.wh.group");
  RunResult build = Ctl({"image", "build", "child", "--from", "busybox", "--dir", changes});
  ASSERT_EQ(build.exit_code, 0) << Describe(build);
  std::string name = Name("child");
  CreateAndStart(name, "child");
  if (HasFatalFailure()) return;
  RunResult read = Exec(name, {"sh", "-c", "cat /etc/hostname; sh /opt/app/run.sh; cat /etc/passwd; test -e /etc/group || echo nogroup"});
  ASSERT_EQ(read.exit_code, 0) << Describe(read);
  EXPECT_EQ(read.out, "child\napp\nroot:x:0:0:root:/root:/bin/sh\nnogroup\n");
  RunResult show = Ctl({"image", "show", "child"});
  EXPECT_NE(show.out.find("busybox"), std::string::npos) << show.out;
  RunResult parent_rm = Ctl({"image", "rm", "busybox"});
  EXPECT_EQ(parent_rm.exit_code, 1);
  EXPECT_NE(parent_rm.err.find("image child"), std::string::npos) << parent_rm.err;
  EXPECT_EQ(Ctl({"container", "rm", "-f", name}).exit_code, 0);
  EXPECT_EQ(Ctl({"image", "rm", "child"}).exit_code, 0);
}

// Part D experiment 2: a container whose root is another container's root, read-only, plus its own
// layer; the other container is unchanged by its writes; the read-only variant refuses writes.
TEST_F(ContainersTest, RootfsFromAnotherContainer) {
  std::string a = Name("a"), b = Name("b"), c = Name("c");
  CreateAndStart(a, "busybox");
  if (HasFatalFailure()) return;
  ASSERT_EQ(Exec(a, {"sh", "-c", "echo from-a > /root/a"}).exit_code, 0);
  CreateAndStart(b, "", {"--rootfs-from", a});
  if (HasFatalFailure()) return;
  RunResult read = Exec(b, {"cat", "/root/a"});
  EXPECT_EQ(read.out, "from-a\n") << Describe(read);
  ASSERT_EQ(Exec(b, {"sh", "-c", "echo from-b > /root/a; echo new > /root/b"}).exit_code, 0);
  EXPECT_EQ(Exec(b, {"cat", "/root/a", "/root/b"}).out, "from-b\nnew\n");
  EXPECT_EQ(Exec(a, {"sh", "-c", "cat /root/a; test -e /root/b || echo nob"}).out, "from-a\nnob\n")
      << "writes in the upper container leave the lower one unchanged";

  CreateAndStart(c, "", {"--rootfs-from", a, "--read-only"});
  if (HasFatalFailure()) return;
  EXPECT_EQ(Exec(c, {"cat", "/root/a"}).out, "from-a\n");
  RunResult refused = Exec(c, {"touch", "/root/c"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("Read-only file system"), std::string::npos) << Describe(refused);

  RunResult in_use = Ctl({"container", "rm", "-f", a});
  EXPECT_EQ(in_use.exit_code, 1);
  EXPECT_NE(in_use.err.find("layers over"), std::string::npos) << in_use.err;
  EXPECT_EQ(Ctl({"container", "rm", "-f", c}).exit_code, 0);
  EXPECT_EQ(Ctl({"container", "rm", "-f", b}).exit_code, 0);
  EXPECT_EQ(Ctl({"container", "rm", "-f", a}).exit_code, 0);
}

// The pid of the unionmount serving mountpoint (its command line names it).
pid_t UnionmountPid(const std::string& mountpoint) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("unionmount") != std::string::npos && cmdline.find(mountpoint + '\0') != std::string::npos) {
      return static_cast<pid_t>(std::stoi(pid));
    }
  }
  return -1;
}

TEST_F(ContainersTest, DeadUnionIsNoticedAndTheWritableLayerKept) {
  std::string name = Name("dead");
  CreateAndStart(name, "busybox");
  if (HasFatalFailure()) return;
  ASSERT_EQ(Exec(name, {"sh", "-c", "echo keep > /root/data"}).exit_code, 0);
  pid_t pid = UnionmountPid(ContainerDir(name) + "/rootfs");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  bool gone = WaitFor([&] { return kill(pid, 0) != 0; }, seconds(10));
  ASSERT_TRUE(gone);
  RunResult check = Ctl({"container", "check"});
  ASSERT_EQ(check.exit_code, 0) << Describe(check);
  EXPECT_NE(check.out.find(name + ": union process died"), std::string::npos) << check.out;
  RunResult show = Ctl({"container", "show", name});
  EXPECT_NE(show.out.find("recorded: failed"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("STOPPED"), std::string::npos) << show.out;
  std::ifstream kept(ContainerDir(name) + "/upper/root/data");
  std::string line;
  std::getline(kept, line);
  EXPECT_EQ(line, "keep");
  // Start mounts a fresh union over the same writable layer.
  RunResult start = Ctl({"container", "start", name});
  ASSERT_EQ(start.exit_code, 0) << Describe(start);
  RunResult read = Exec(name, {"cat", "/root/data"});
  EXPECT_EQ(read.out, "keep\n") << Describe(read);
  EXPECT_EQ(Ctl({"container", "rm", "-f", name}).exit_code, 0);
}

}  // namespace
}  // namespace cairn
