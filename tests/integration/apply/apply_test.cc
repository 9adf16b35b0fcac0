// clusterctl apply / diff / get / describe / status as an operator runs them: the built clusterctl
// as a child process against one real clusterd. The file declares host n1 (the clusterd) and h2
// (not a member), a replica-2 volume over both, and a mount on h2, so no mount agent acts.
//
// One clusterd serves the suite; every test uses its own names. The Subprocess destructor kills
// clusterd and TearDownTestSuite removes the temp dir, also after failures.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "subprocess.h"

namespace cairn::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kClusterd = CLUSTERD_PATH;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class ApplyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/cairn-apply-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = new std::string(pattern);
    uint16_t peer = FreePort(), client = FreePort();
    std::string config = *dir_ + "/n1.yaml";
    std::ofstream(config) << "name: n1\ndata_dir: " << *dir_ << "/n1\npeer_address: 127.0.0.1:" << peer
                          << "\nclient_address: 127.0.0.1:" << client << "\nlog:\n  level: warn\n";
    store_ = new Subprocess(kClusterd, {"--config", config});
    endpoint_ = new HostPort{"127.0.0.1", client};
    etcdclient::EtcdClient probe({*endpoint_}, {.timeout = seconds(2), .connect_timeout = milliseconds(200)});
    etcd::PutRequest put;
    put.set_key("ready-probe");
    bool serving = WaitFor([&] { return probe.Put(put).ok(); }, seconds(30));
    ASSERT_TRUE(serving) << "clusterd never served on " << endpoint_->ToString() << ": " << store_->err();
  }

  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    std::error_code ignored;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_, ignored);
    delete dir_;
    delete endpoint_;
    dir_ = nullptr;
    endpoint_ = nullptr;
  }

  // Every test starts from an empty cluster: a file's sections are the complete lists of their
  // kinds, so what an earlier test made would otherwise be planned for deletion.
  void SetUp() override {
    if (store_ == nullptr || endpoint_ == nullptr) GTEST_SKIP() << "the store did not start";
    RunResult cleared = Ctl({"apply", "-f", File("empty.yaml", "hosts: []\nvolumes: []\nmounts: []\n"), "--prune", "--yes"});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.out << cleared.err;
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.push_back("--endpoints");
    args.push_back(endpoint_->ToString());
    return RunProcess(kClusterctl, args);
  }

  std::string CtlOk(const std::vector<std::string>& args) {
    RunResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 0) << testing::PrintToString(args) << "\n" << result.out << result.err;
    return result.out;
  }

  // Writes a cluster.yaml into the temp dir; returns its path.
  std::string File(const std::string& name, const std::string& text) {
    std::string path = *dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // A file with volume VOL (state given) and a mount of it on h2.
  std::string Cluster(const std::string& vol, const std::string& state = "started") {
    return "hosts:\n"
           "  - {name: n1, roles: [voter, storage]}\n"
           "  - {name: h2, roles: [voter, storage]}\n"
           "volumes:\n"
           "  - name: " + vol + "\n"
           "    replica: 2\n"
           "    bricks: [n1:" + *dir_ + "/bricks/" + vol + ", h2:/srv/" + vol + "]\n"
           "    state: " + state + "\n"
           "mounts:\n"
           "  - {host: h2, volume: " + vol + ", path: /mnt/" + vol + "}\n";
  }

  std::string KvGet(const std::string& key) { return CtlOk({"kv", "get", key}); }

  static std::string* dir_;
  static Subprocess* store_;
  static HostPort* endpoint_;
};

std::string* ApplyTest::dir_ = nullptr;
Subprocess* ApplyTest::store_ = nullptr;
HostPort* ApplyTest::endpoint_ = nullptr;

TEST_F(ApplyTest, ApplyCreatesThenAgainChangesNothing) {
  std::string file = File("a.yaml", Cluster("va"));
  std::string diff = CtlOk({"diff", "-f", file});
  EXPECT_TRUE(Contains(diff, "+ volume va (replicate, replica 2: n1:")) << diff;
  EXPECT_TRUE(Contains(diff, "+ mount h2:/mnt/va (volume va)")) << diff;
  EXPECT_TRUE(Contains(diff, "Plan: 4 to create, 0 to change, 0 to delete.")) << diff;
  EXPECT_EQ(KvGet("/cairn/volumes/va/spec"), "") << "diff wrote something";

  RunResult apply = Ctl({"apply", "-f", file});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  EXPECT_TRUE(Contains(apply.out, "done: + volume va")) << apply.out;
  EXPECT_TRUE(Contains(apply.out, "Apply complete: 4 created, 0 changed, 0 deleted.")) << apply.out;
  EXPECT_TRUE(Contains(apply.err, "note: host h2 is not a member of the store yet")) << apply.err;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "va"}), "Started")) << CtlOk({"volume", "info", "va"});
  EXPECT_TRUE(Contains(KvGet("/cairn/mounts/h2/mnt/va"), "\"volume\":\"va\"")) << KvGet("/cairn/mounts/h2/mnt/va");

  std::string again = CtlOk({"apply", "-f", file});
  EXPECT_TRUE(Contains(again, "No changes.")) << again;
  EXPECT_FALSE(Contains(again, "done:")) << again;
}

TEST_F(ApplyTest, DiffAndDryRunShowAChangeAndWriteNothing) {
  ASSERT_EQ(Ctl({"apply", "-f", File("b.yaml", Cluster("vb"))}).exit_code, 0);
  std::string stopped = File("b-stopped.yaml", Cluster("vb", "stopped"));
  std::string diff = CtlOk({"diff", "-f", stopped});
  EXPECT_TRUE(Contains(diff, "~ volume vb: state started -> stopped")) << diff;
  EXPECT_TRUE(Contains(diff, "Plan: 0 to create, 1 to change, 0 to delete.")) << diff;
  std::string dry = CtlOk({"apply", "-f", stopped, "--dry-run"});
  EXPECT_TRUE(Contains(dry, "Dry run: nothing was changed.")) << dry;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "vb"}), "Started"));
  std::string applied = CtlOk({"apply", "-f", stopped});
  EXPECT_TRUE(Contains(applied, "done: ~ volume vb: state started -> stopped")) << applied;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "vb"}), "Stopped"));
}

TEST_F(ApplyTest, BrokenFileGivesFileLineColumnAndChangesNothing) {
  std::string text = Cluster("vc");
  text.replace(text.find("replica: 2"), 7, "replcia");
  std::string file = File("broken.yaml", text);
  RunResult apply = Ctl({"apply", "-f", file});
  EXPECT_EQ(apply.exit_code, 1);
  EXPECT_EQ(apply.err, "clusterctl apply: " + file + ":6:5: volumes[0]: unknown field \"replcia\", did you mean \"replica\"?\n")
      << apply.err;
  EXPECT_EQ(apply.out, "");
  EXPECT_EQ(KvGet("/cairn/volumes/vc/spec"), "");
  RunResult diff = Ctl({"diff", "-f", file});
  EXPECT_EQ(diff.exit_code, 1);
  EXPECT_TRUE(Contains(diff.err, file + ":6:5:")) << diff.err;
}

// `get KIND -o yaml` output without the list item that contains `part` ("kind: []" when none is left).
std::string WithoutItem(const std::string& yaml, const std::string& part) {
  std::string header = yaml.substr(0, yaml.find('\n') + 1);
  std::vector<std::string> items;
  size_t at = header.size();
  while (at < yaml.size()) {
    size_t next = yaml.find("\n  - ", at);
    size_t end = next == std::string::npos ? yaml.size() : next + 1;
    items.push_back(yaml.substr(at, end - at));
    at = end;
  }
  std::string out;
  for (const std::string& item : items) {
    if (!Contains(item, part)) out += item;
  }
  if (out.empty()) return header.substr(0, header.find(':')) + ": []\n";
  return header + out;
}

TEST_F(ApplyTest, DeleteNeedsPruneAndConfirmation) {
  ASSERT_EQ(Ctl({"apply", "-f", File("d.yaml", Cluster("vd"))}).exit_code, 0);
  std::string without = File("d-without.yaml", WithoutItem(CtlOk({"get", "volumes", "-o", "yaml"}), "name: vd\n"));
  RunResult refused = Ctl({"apply", "-f", without});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "Run again with --prune to delete:")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "- volume vd")) << refused.err;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "vd"}), "vd"));

  RunResult unconfirmed = Ctl({"apply", "-f", without, "--prune"});  // stdin is not a terminal here
  EXPECT_EQ(unconfirmed.exit_code, 1);
  EXPECT_TRUE(Contains(unconfirmed.err, "confirm with --yes")) << unconfirmed.err;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "vd"}), "vd"));

  // A mount holds no data: --prune alone deletes it.
  std::string mounts = File("d-mounts.yaml", WithoutItem(CtlOk({"get", "mounts", "-o", "yaml"}), "path: /mnt/vd\n"));
  RunResult mount_refused = Ctl({"apply", "-f", mounts});
  EXPECT_EQ(mount_refused.exit_code, 1) << mount_refused.out;
  EXPECT_TRUE(Contains(mount_refused.err, "- mount h2:/mnt/vd (volume vd)")) << mount_refused.err;
  RunResult mount_deleted = Ctl({"apply", "-f", mounts, "--prune"});
  EXPECT_EQ(mount_deleted.exit_code, 0) << mount_deleted.out << mount_deleted.err;
  EXPECT_TRUE(Contains(mount_deleted.out, "done: - mount h2:/mnt/vd")) << mount_deleted.out;
  EXPECT_EQ(KvGet("/cairn/mounts/h2/mnt/vd"), "");

  RunResult deleted = Ctl({"apply", "-f", without, "--prune", "--yes"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.out << deleted.err;
  EXPECT_TRUE(Contains(deleted.out, "- volume vd (replicate, replica 2:")) << deleted.out;
  EXPECT_TRUE(Contains(deleted.out, "[holds data]")) << deleted.out;
  EXPECT_EQ(KvGet("/cairn/volumes/vd/spec"), "");
}

TEST_F(ApplyTest, GetYamlRoundTripsThroughApply) {
  ASSERT_EQ(Ctl({"apply", "-f", File("f.yaml", Cluster("vf"))}).exit_code, 0);
  std::string all = CtlOk({"get", "-o", "yaml"});
  EXPECT_TRUE(Contains(all, "hosts:")) << all;
  EXPECT_TRUE(Contains(all, "name: vf")) << all;
  std::string again = CtlOk({"apply", "-f", File("f-round.yaml", all)});
  EXPECT_TRUE(Contains(again, "No changes.")) << again;
  std::string one = CtlOk({"get", "volume", "vf", "-o", "json"});
  EXPECT_EQ(one.rfind("{\"volumes\":[{\"name\":\"vf\",\"type\":\"replicate\",\"replica\":2,", 0), 0u) << one;
  std::string table = CtlOk({"get", "mounts"});
  EXPECT_TRUE(Contains(table, "h2    /mnt/vf")) << table;
  std::string describe = CtlOk({"describe", "mount", "h2:/mnt/vf"});
  EXPECT_TRUE(Contains(describe, "path: /mnt/vf")) << describe;
  EXPECT_TRUE(Contains(describe, "not reported yet by h2's mount agent")) << describe;
  RunResult missing = Ctl({"get", "volume", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "no volume nope")) << missing.err;
}

TEST_F(ApplyTest, StatusShowsEverySection) {
  ASSERT_EQ(Ctl({"apply", "-f", File("g.yaml", Cluster("vg"))}).exit_code, 0);
  RunResult status = Ctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(Contains(status.out, "LEADER")) << status.out;
  EXPECT_TRUE(Contains(status.out, "store: leader n1 (")) << status.out;
  EXPECT_TRUE(Contains(status.out, "n1    up")) << status.out;
  EXPECT_TRUE(Contains(status.out, "h2    not joined")) << status.out;
  EXPECT_TRUE(Contains(status.out, "vg  ")) << status.out;
  EXPECT_TRUE(Contains(status.out, "/mnt/vg")) << status.out;
  RunResult json = Ctl({"status", "-o", "json"});
  EXPECT_TRUE(Contains(json.out, "\"raftIndex\":")) << json.out;
  EXPECT_TRUE(Contains(json.out, "\"mounts\":[")) << json.out;
  std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  RunResult down = RunProcess(kClusterctl, {"status", "--endpoints", dead + "," + endpoint_->ToString()});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_TRUE(Contains(down.out, dead + ": connection refused")) << down.out;
}

}  // namespace
}  // namespace cairn::test_support
