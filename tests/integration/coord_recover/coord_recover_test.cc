// Backup and restore (clusterctl snapshot save/status, clusterd restore) and quorum-loss recovery
// (clusterd recover, clusterctl member recover) with the real binaries, as an operator runs them.
// Each test makes its own temp dir with one node.yaml, data dir and log file per member; the
// Subprocess destructors SIGKILL what still runs and TearDown removes the dir, also on failure.
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "subprocess.h"

namespace cairn::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kClusterd = CLUSTERD_PATH;

struct Member {
  std::string name;
  uint16_t peer = 0, client = 0;
  std::string config;  // path of its node.yaml
  std::unique_ptr<Subprocess> process;
  HostPort endpoint() const { return {"127.0.0.1", client}; }
};

class CoordRecoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-coord-recover-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    for (auto& [name, member] : members_) member.process.reset();  // SIGKILL and reap
    if (HasFailure()) {
      std::cerr << "logs kept in " << dir_ << "\n";
      return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Writes NAME.yaml. `initial` lists the founding members (static bootstrap); `join` (a client
  // address) makes a joining member instead.
  Member& Define(const std::string& name, const std::vector<std::string>& initial, const std::string& join = "") {
    Member& member = members_[name];
    member.name = name;
    if (member.peer == 0) {
      member.peer = FreePort();
      member.client = FreePort();
    }
    member.config = dir_ + "/" + name + ".yaml";
    std::ofstream out(member.config);
    out << "name: " << name << "\ndata_dir: " << dir_ << "/" << name << "\npeer_address: 127.0.0.1:" << member.peer
        << "\nclient_address: 127.0.0.1:" << member.client << "\n";
    if (!initial.empty()) {
      out << "initial_cluster:\n";
      for (const std::string& other : initial) {
        out << "  - name: " << other << "\n    peer_address: 127.0.0.1:" << members_[other].peer << "\n";
      }
    }
    if (!join.empty()) out << "join:\n  address: " << join << "\n  token: test-token\n";
    out << "log:\n  level: info\n  file: " << dir_ << "/" << name << ".log\n";
    return member;
  }

  // Defines NAMES as one static cluster (ports picked for all first).
  void DefineCluster(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      members_[name].peer = FreePort();
      members_[name].client = FreePort();
    }
    for (const std::string& name : names) Define(name, names);
  }

  void Start(const std::string& name) {
    Member& member = members_.at(name);
    member.process = std::make_unique<Subprocess>(kClusterd, std::vector<std::string>{"--config", member.config});
    ASSERT_TRUE(member.process->started());
  }

  // SIGTERM and wait for a clean exit.
  void Stop(const std::string& name) {
    Member& member = members_.at(name);
    member.process->Signal(SIGTERM);
    EXPECT_EQ(member.process->WaitForExit(milliseconds(20000)), 0) << name << " did not stop cleanly";
    member.process.reset();
  }

  void Kill(const std::string& name) {
    Member& member = members_.at(name);
    member.process->Signal(SIGKILL);
    member.process->WaitForExit(milliseconds(20000));
    member.process.reset();
  }

  etcdclient::EtcdClient Client(const std::vector<std::string>& names, std::chrono::nanoseconds timeout = seconds(3)) {
    std::vector<HostPort> endpoints;
    for (const std::string& name : names) endpoints.push_back(members_.at(name).endpoint());
    return etcdclient::EtcdClient(endpoints, {.timeout = timeout, .connect_timeout = milliseconds(300)});
  }

  std::string Endpoints(const std::vector<std::string>& names) {
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ",") + members_.at(name).endpoint().ToString();
    return list;
  }

  // Waits (30 s) until a write through `name` succeeds.
  void WaitServing(const std::string& name) {
    auto client = Client({name});
    etcd::PutRequest put;
    put.set_key("ready-probe");
    Status last = InternalError("not tried");
    bool ok = WaitFor(
        [&] {
          last = client.Put(put).status();
          return last.ok();
        },
        milliseconds(30000));
    ASSERT_TRUE(ok) << name << " never served a write: " << last.message();
  }

  // Puts COUNT keys PREFIX0.. through `names`; every put must be acknowledged.
  void PutKeys(const std::vector<std::string>& names, const std::string& prefix, int count) {
    auto client = Client(names, seconds(10));
    for (int i = 0; i < count; ++i) {
      etcd::PutRequest put;
      put.set_key(prefix + std::to_string(i));
      put.set_value("value-" + std::to_string(i));
      auto reply = client.Put(put);
      ASSERT_TRUE(reply.ok()) << put.key() << ": " << reply.status().message();
    }
  }

  // The keys under prefix as `name` serves them (serializable: no leader needed).
  std::map<std::string, std::string> KeysOn(const std::string& name, const std::string& prefix) {
    auto client = Client({name});
    etcd::RangeRequest range;
    range.set_key(prefix);
    range.set_range_end(prefix.substr(0, prefix.size() - 1) + static_cast<char>(prefix.back() + 1));
    range.set_serializable(true);
    std::map<std::string, std::string> keys;
    auto reply = client.Range(range);
    if (!reply.ok()) return keys;
    for (const auto& kv : reply->kvs()) keys[kv.key()] = kv.value();
    return keys;
  }

  static void ExpectAllKeys(const std::map<std::string, std::string>& keys, const std::string& prefix, int count) {
    EXPECT_EQ(keys.size(), static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      auto it = keys.find(prefix + std::to_string(i));
      if (it == keys.end()) {
        ADD_FAILURE() << "acknowledged key " << prefix << i << " is missing";
        continue;
      }
      EXPECT_EQ(it->second, "value-" + std::to_string(i));
    }
  }

  RunResult Ctl(std::vector<std::string> args, const std::vector<std::string>& names) {
    args.push_back("--endpoints");
    args.push_back(Endpoints(names));
    return RunProcess(kClusterctl, args);
  }

  RunResult Clusterd(const std::vector<std::string>& args) { return RunProcess(kClusterd, args); }

  std::string dir_;
  std::map<std::string, Member> members_;
};

// Damaged copies of a snapshot are refused by status and restore with the reason.
TEST_F(CoordRecoverTest, SnapshotSaveStatusAndRefusalOfDamagedFiles) {
  DefineCluster({"n1", "n2", "n3"});
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(Start(name));
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(WaitServing(name));
  ASSERT_NO_FATAL_FAILURE(PutKeys({"n1", "n2", "n3"}, "app/", 40));

  std::string file = dir_ + "/backup.snap";
  RunResult saved = Ctl({"snapshot", "save", file}, {"n2"});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  EXPECT_NE(saved.out.find("Snapshot saved at " + file), std::string::npos) << saved.out;
  // app/0..39 and ready-probe, plus what clusterd's agents keep in the store (heartbeats, status
  // records): at least 41, and status must count exactly what save reported.
  std::smatch counted;
  ASSERT_TRUE(std::regex_search(saved.out, counted, std::regex(R"((\d+) keys)"))) << saved.out;
  const std::string total = counted[1];
  EXPECT_GE(std::stoi(total), 41) << saved.out;
  EXPECT_NE(saved.out.find("sha256 "), std::string::npos) << saved.out;
  EXPECT_FALSE(std::filesystem::exists(file + ".part"));

  RunResult status = Ctl({"snapshot", "status", file}, {"n2"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("TOTAL KEYS: " + total), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("(checked)"), std::string::npos) << status.out;
  RunResult json = Ctl({"snapshot", "status", file, "-o", "json"}, {"n2"});
  EXPECT_NE(json.out.find("\"totalKey\":" + total), std::string::npos) << json.out;

  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 200u);
  std::string truncated = dir_ + "/truncated.snap", corrupted = dir_ + "/corrupted.snap";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x40);
  std::ofstream(corrupted, std::ios::binary) << flipped;

  RunResult short_status = Ctl({"snapshot", "status", truncated}, {"n2"});
  EXPECT_EQ(short_status.exit_code, 1);
  EXPECT_NE(short_status.err.find("truncated snapshot"), std::string::npos) << short_status.err;
  RunResult bad_status = Ctl({"snapshot", "status", corrupted}, {"n2"});
  EXPECT_EQ(bad_status.exit_code, 1);
  EXPECT_NE(bad_status.err.find("checksum mismatch"), std::string::npos) << bad_status.err;

  Member& fresh = Define("r1", {});
  RunResult restore_short = Clusterd({"restore", "--snapshot", truncated, "--config", fresh.config});
  EXPECT_EQ(restore_short.exit_code, 1);
  EXPECT_NE(restore_short.err.find("refusing the snapshot"), std::string::npos) << restore_short.err;
  EXPECT_NE(restore_short.err.find("truncated"), std::string::npos) << restore_short.err;
  RunResult restore_bad = Clusterd({"restore", "--snapshot", corrupted, "--config", fresh.config});
  EXPECT_EQ(restore_bad.exit_code, 1);
  EXPECT_NE(restore_bad.err.find("checksum mismatch"), std::string::npos) << restore_bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/r1/coord/wal")) << "a refused restore wrote state";
}

// etcdutl's way: the same file restored on three hosts with the same initial_cluster; the new
// cluster serves every key, has a new cluster id, and takes writes. A data dir that holds data is
// refused unless --force, which moves the old state aside.
TEST_F(CoordRecoverTest, RestoreThreeHostsFromOneSnapshot) {
  DefineCluster({"n1", "n2", "n3"});
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(Start(name));
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(WaitServing(name));
  ASSERT_NO_FATAL_FAILURE(PutKeys({"n1", "n2", "n3"}, "app/", 60));
  auto old_status = Client({"n1"}).Status();
  ASSERT_TRUE(old_status.ok());
  std::string file = dir_ + "/backup.snap";
  RunResult saved = Ctl({"snapshot", "save", file}, {"n1", "n2", "n3"});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  for (const char* name : {"n1", "n2", "n3"}) Kill(name);

  DefineCluster({"r1", "r2", "r3"});
  for (const char* name : {"r1", "r2", "r3"}) {
    RunResult restored = Clusterd({"restore", "--snapshot", file, "--config", members_[name].config});
    ASSERT_EQ(restored.exit_code, 0) << name << ": " << restored.err;
    EXPECT_NE(restored.out.find("with 3 member(s)"), std::string::npos) << restored.out;
  }
  RunResult again = Clusterd({"restore", "--snapshot", file, "--config", members_["r1"].config});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already holds coordination data"), std::string::npos) << again.err;
  RunResult forced = Clusterd({"restore", "--snapshot", file, "--config", members_["r1"].config, "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.out.find("coord.before-restore-"), std::string::npos) << forced.out;

  for (const char* name : {"r1", "r2", "r3"}) ASSERT_NO_FATAL_FAILURE(Start(name));
  for (const char* name : {"r1", "r2", "r3"}) ASSERT_NO_FATAL_FAILURE(WaitServing(name));
  for (const char* name : {"r1", "r2", "r3"}) {
    SCOPED_TRACE(name);
    ExpectAllKeys(KeysOn(name, "app/"), "app/", 60);
  }
  auto status = Client({"r2"}).Status();
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_NE(status->header().cluster_id(), old_status->header().cluster_id());
  EXPECT_GE(status->header().revision(), old_status->header().revision());
  auto members = Client({"r1"}).MemberList();
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->members_size(), 3);
  ASSERT_NO_FATAL_FAILURE(PutKeys({"r3"}, "after/", 5));
}

// Quorum lost for good: two of three members die, the survivor is recovered as a one-member
// cluster that keeps every acknowledged key, and a new second member joins and catches up.
TEST_F(CoordRecoverTest, ForceNewClusterFromTheSurvivorThenGrowAgain) {
  DefineCluster({"n1", "n2", "n3"});
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(Start(name));
  for (const char* name : {"n1", "n2", "n3"}) ASSERT_NO_FATAL_FAILURE(WaitServing(name));
  ASSERT_NO_FATAL_FAILURE(PutKeys({"n1", "n2", "n3"}, "app/", 100));

  Kill("n1");
  Kill("n2");
  {
    auto client = Client({"n3"}, seconds(3));
    etcd::PutRequest put;
    put.set_key("doomed");
    auto reply = client.Put(put);
    EXPECT_FALSE(reply.ok()) << "a write succeeded without a quorum";
  }
  RunResult advice = Ctl({"member", "recover"}, {"n1", "n2", "n3"});
  EXPECT_EQ(advice.exit_code, 0) << advice.out << advice.err;
  EXPECT_NE(advice.out.find("Most up to date of the reachable members"), std::string::npos) << advice.out;
  EXPECT_NE(advice.out.find(members_["n3"].endpoint().ToString()), std::string::npos) << advice.out;
  Stop("n3");

  RunResult dry = Clusterd({"recover", "--config", members_["n3"].config, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("last log index"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("dry run: nothing changed"), std::string::npos) << dry.out;
  RunResult recovered = Clusterd({"recover", "--config", members_["n3"].config});
  ASSERT_EQ(recovered.exit_code, 0) << recovered.err;
  EXPECT_NE(recovered.out.find("is now the only member of the new cluster"), std::string::npos) << recovered.out;
  EXPECT_NE(recovered.out.find("n1 ("), std::string::npos) << recovered.out;
  EXPECT_NE(recovered.out.find("n2 ("), std::string::npos) << recovered.out;

  ASSERT_NO_FATAL_FAILURE(Start("n3"));
  ASSERT_NO_FATAL_FAILURE(WaitServing("n3"));
  ExpectAllKeys(KeysOn("n3", "app/"), "app/", 100);
  auto members = Client({"n3"}).MemberList();
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->members_size(), 1);
  ASSERT_NO_FATAL_FAILURE(PutKeys({"n3"}, "after/", 10));

  // A new second member: added as a learner, started with a join config and an empty data dir.
  Member& n4 = Define("n4", {}, members_["n3"].endpoint().ToString());
  RunResult added = Ctl({"member", "add", "n4", "--peer-urls", "127.0.0.1:" + std::to_string(n4.peer), "--learner"},
                        {"n3"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  ASSERT_EQ(added.out.rfind("Member ", 0), 0u) << added.out;
  std::string id = added.out.substr(7, added.out.find(' ', 7) - 7);
  ASSERT_NO_FATAL_FAILURE(Start("n4"));
  EXPECT_TRUE(WaitFor([&] { return KeysOn("n4", "after/").size() == 10; }, milliseconds(30000)))
      << "n4 did not catch up";
  ExpectAllKeys(KeysOn("n4", "app/"), "app/", 100);
  bool promoted = WaitFor([&] { return Ctl({"member", "promote", id}, {"n3"}).exit_code == 0; }, milliseconds(30000));
  EXPECT_TRUE(promoted) << "n4 could not be promoted";
  ASSERT_NO_FATAL_FAILURE(WaitServing("n4"));
  ASSERT_NO_FATAL_FAILURE(PutKeys({"n4", "n3"}, "two/", 5));
  EXPECT_TRUE(WaitFor([&] { return KeysOn("n3", "two/").size() == 5; }, milliseconds(10000)));
}

}  // namespace
}  // namespace cairn::test_support
