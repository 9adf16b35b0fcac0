// clusterctl's kv, lease, member and status verbs against a real store, as an operator runs them
// (the built binary, as a child process). Every test runs against both backends:
//   etcd:  one /usr/bin/etcd member on free 127.0.0.1 ports, proving etcd compatibility;
//   cairn: three clusterd processes on free 127.0.0.1 ports.
// CAIRN_KV_BACKEND=etcd (or cairn) runs one backend only.
// Every test starts its own store in a temp dir; the Subprocess destructor kills it (SIGKILL) and
// TearDown removes the dir, also when the test fails.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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
const std::string kEtcd = "/usr/bin/etcd";

// CAIRN_KV_BACKEND=etcd or =cairn runs only that backend's cases.
bool BackendSelected(const std::string& backend) {
  const char* only = std::getenv("CAIRN_KV_BACKEND");
  return only == nullptr || *only == '\0' || backend == only;
}

class CliKvTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-cli-kv-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    if (!BackendSelected(GetParam())) GTEST_SKIP() << "CAIRN_KV_BACKEND selects another backend";
    if (GetParam() == "cairn") {
      StartCairn();
    } else {
      if (!std::filesystem::exists(kEtcd)) GTEST_SKIP() << kEtcd << " is not installed (deploy/install-deps.sh)";
      StartEtcd();
    }
    if (HasFatalFailure()) return;
    WaitUntilServing();
  }

  void TearDown() override {
    servers_.clear();  // SIGKILL and reap
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartEtcd() {
    uint16_t client = FreePort(), peer = FreePort();
    std::string client_url = "http://127.0.0.1:" + std::to_string(client);
    std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    servers_.push_back(std::make_unique<Subprocess>(
        kEtcd, std::vector<std::string>{"--name", "e1", "--data-dir", dir_ + "/etcd", "--listen-client-urls",
                                        client_url, "--advertise-client-urls", client_url, "--listen-peer-urls",
                                        peer_url, "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
                                        "e1=" + peer_url}));
    ASSERT_TRUE(servers_.back()->started());
    endpoints_.push_back({"127.0.0.1", client});
  }

  void StartCairn() {
    std::vector<uint16_t> peers, clients;
    std::string initial = "initial_cluster:\n";
    for (int i = 1; i <= 3; ++i) {
      peers.push_back(FreePort());
      clients.push_back(FreePort());
      initial += "  - name: n" + std::to_string(i) + "\n    peer_address: 127.0.0.1:" + std::to_string(peers.back()) + "\n";
    }
    for (int i = 0; i < 3; ++i) {
      std::string name = "n" + std::to_string(i + 1);
      std::string path = dir_ + "/" + name + ".yaml";
      std::ofstream(path) << "name: " << name << "\ndata_dir: " << dir_ << "/" << name
                          << "\nrole: voter\npeer_address: 127.0.0.1:" << peers[i]
                          << "\nclient_address: 127.0.0.1:" << clients[i] << "\n" << initial
                          << "log:\n  level: warn\n";  // stderr is read only on failure: keep it small
      servers_.push_back(std::make_unique<Subprocess>(kClusterd, std::vector<std::string>{"--config", path}));
      ASSERT_TRUE(servers_.back()->started());
      endpoints_.push_back({"127.0.0.1", clients[i]});
    }
  }

  // Waits (deadline 30 s) until a write succeeds through every endpoint.
  void WaitUntilServing() {
    auto deadline = std::chrono::steady_clock::now() + seconds(30);
    for (const HostPort& endpoint : endpoints_) {
      etcdclient::EtcdClient client({endpoint}, {.timeout = seconds(2), .connect_timeout = milliseconds(200)});
      etcd::PutRequest put;
      put.set_key("ready-probe");
      Status last = InternalError("not tried");
      while (std::chrono::steady_clock::now() < deadline) {
        last = client.Put(put).status();
        if (last.ok()) break;
        std::this_thread::sleep_for(milliseconds(100));  // polling a condition, with the deadline above
      }
      ASSERT_TRUE(last.ok()) << "store at " << endpoint.ToString() << " never served: " << last.message()
                             << ServersReport();
    }
    WaitUntilAllPublished(deadline);
  }

  // What each server process did, for a failed start-up: exited (with its code) or running, and
  // the end of its stderr (a port taken between FreePort and bind shows here).
  std::string ServersReport() {
    std::string report;
    for (size_t i = 0; i < servers_.size(); ++i) {
      int code = servers_[i]->WaitForExit(milliseconds(200));
      const std::string& err = servers_[i]->err();
      report += "\nserver " + std::to_string(i) + (code == -1 ? " running" : " exited with " + std::to_string(code)) +
                "; stderr ends:\n" + err.substr(err.size() > 1500 ? err.size() - 1500 : 0);
    }
    return report;
  }

  // A member publishes its client URL through the log shortly after it first sees a leader (etcd does
  // the same), so serving writes does not yet mean every member's URL is in `member list`.
  void WaitUntilAllPublished(std::chrono::steady_clock::time_point deadline) {
    etcdclient::EtcdClient client(endpoints_, {.timeout = seconds(2), .connect_timeout = milliseconds(200)});
    size_t published = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      auto list = client.MemberList();
      published = 0;
      if (list.ok()) {
        for (const etcd::Member& member : list->members()) published += member.clienturls_size() > 0 ? 1 : 0;
      }
      if (published == endpoints_.size()) return;
      std::this_thread::sleep_for(milliseconds(100));  // polling a condition, with the deadline above
    }
    FAIL() << "only " << published << " of " << endpoints_.size() << " members published their client URL";
  }

  std::string EndpointList() const {
    std::string list;
    for (const HostPort& endpoint : endpoints_) list += (list.empty() ? "" : ",") + endpoint.ToString();
    return list;
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.push_back("--endpoints");
    args.push_back(EndpointList());
    return RunProcess(kClusterctl, args);
  }

  // Runs clusterctl with stdin from text (through sh, as an operator's pipe would).
  RunResult CtlWithInput(const std::string& input, const std::string& args) {
    std::string input_file = dir_ + "/stdin.txt";
    std::ofstream(input_file) << input;
    return RunProcess("/bin/sh", {"-c", "'" + kClusterctl + "' " + args + " --endpoints " + EndpointList() + " < '" +
                                            input_file + "'"});
  }

  std::string dir_;
  std::vector<HostPort> endpoints_;
  std::vector<std::unique_ptr<Subprocess>> servers_;
};

TEST_P(CliKvTest, PutGetPrefixRevisionDelete) {
  ASSERT_EQ(Ctl({"kv", "put", "app/a", "1"}).exit_code, 0);
  ASSERT_EQ(Ctl({"kv", "put", "app/b", "2"}).exit_code, 0);
  RunResult overwrite = Ctl({"kv", "put", "app/a", "one", "--prev-kv"});
  ASSERT_EQ(overwrite.exit_code, 0) << overwrite.err;
  EXPECT_EQ(overwrite.out, "OK\napp/a\n1\n");

  RunResult one = Ctl({"kv", "get", "app/a"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "app/a\none\n");
  RunResult prefix = Ctl({"kv", "get", "app/", "--prefix"});
  EXPECT_EQ(prefix.out, "app/a\none\napp/b\n2\n");
  EXPECT_EQ(Ctl({"kv", "get", "app/", "--prefix", "--keys-only"}).out, "app/a\napp/b\n");
  EXPECT_EQ(Ctl({"kv", "get", "app/", "--prefix", "--count-only"}).out, "2\n");
  EXPECT_EQ(Ctl({"kv", "get", "app/", "--prefix", "--limit", "1"}).out, "app/a\none\n");
  EXPECT_EQ(Ctl({"kv", "get", "app/a", "--serializable"}).out, "app/a\none\n");

  // -o json is etcdctl -w json: numbers as numbers, keys and values base64.
  RunResult json = Ctl({"kv", "get", "app/a", "-o", "json"});
  EXPECT_NE(json.out.find("\"key\":\"YXBwL2E=\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"value\":\"b25l\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"version\":2"), std::string::npos) << json.out;
  size_t at = json.out.find("\"create_revision\":");
  ASSERT_NE(at, std::string::npos) << json.out;
  int64_t created = std::stoll(json.out.substr(at + 18));
  EXPECT_EQ(Ctl({"kv", "get", "app/a", "--rev", std::to_string(created)}).out, "app/a\n1\n");

  RunResult deleted = Ctl({"kv", "del", "app/", "--prefix", "--prev-kv"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "2\napp/a\none\napp/b\n2\n");
  EXPECT_EQ(Ctl({"kv", "get", "app/", "--prefix"}).out, "");
}

TEST_P(CliKvTest, TxnFromEtcdctlTextAndFromJsonFile) {
  ASSERT_EQ(Ctl({"kv", "put", "t/k", "old"}).exit_code, 0);
  std::string text = "value(\"t/k\") = \"old\"\nversion(\"t/k\") > \"0\"\n\nput t/k \"new value\"\nget t/k\n\nput t/k lost\n\n";
  RunResult success = CtlWithInput(text, "kv txn");
  EXPECT_EQ(success.exit_code, 0) << success.err;
  EXPECT_EQ(success.out, "SUCCESS\n\nOK\n\nt/k\nnew value\n");
  RunResult failure = CtlWithInput(text, "kv txn");
  EXPECT_EQ(failure.out, "FAILURE\n\nOK\n") << failure.err;
  EXPECT_EQ(Ctl({"kv", "get", "t/k"}).out, "t/k\nlost\n");

  std::string file = dir_ + "/txn.json";
  // The gateway's own encoding: "dC9r" is base64 of "t/k", "bG9zdA==" of "lost", "ZmlsZQ==" of "file".
  std::ofstream(file) << R"({"compare":[{"key":"dC9r","target":"VALUE","result":"EQUAL","value":"bG9zdA=="}],)"
                      << R"("success":[{"request_put":{"key":"dC9r","value":"ZmlsZQ=="}}]})";
  RunResult from_file = Ctl({"kv", "txn", "--file", file});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, "SUCCESS\n\nOK\n");
  EXPECT_EQ(Ctl({"kv", "get", "t/k"}).out, "t/k\nfile\n");

  RunResult bad = CtlWithInput("mod(\"t/k\") ~ \"1\"\n", "kv txn");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("txn line 1: expected one of = != < >"), std::string::npos) << bad.err;
}

TEST_P(CliKvTest, LeaseGrantAttachTimeToLiveKeepAliveRevoke) {
  RunResult grant = Ctl({"lease", "grant", "60"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  ASSERT_EQ(grant.out.rfind("lease ", 0), 0u) << grant.out;
  std::string id = grant.out.substr(6, grant.out.find(' ', 6) - 6);
  EXPECT_NE(grant.out.find("granted with TTL(60s)"), std::string::npos) << grant.out;

  ASSERT_EQ(Ctl({"kv", "put", "l/k", "v", "--lease", id}).exit_code, 0);
  RunResult ttl = Ctl({"lease", "ttl", id, "--keys"});
  EXPECT_EQ(ttl.exit_code, 0) << ttl.err;
  EXPECT_NE(ttl.out.find("granted with TTL(60s), remaining("), std::string::npos) << ttl.out;
  EXPECT_NE(ttl.out.find("attached keys([l/k])"), std::string::npos) << ttl.out;
  RunResult keepalive = Ctl({"lease", "keepalive", id, "--once"});
  EXPECT_EQ(keepalive.exit_code, 0) << keepalive.err;
  EXPECT_EQ(keepalive.out, "lease " + id + " keepalived with TTL(60)\n");
  EXPECT_NE(Ctl({"lease", "list"}).out.find(id), std::string::npos);

  RunResult revoke = Ctl({"lease", "revoke", id});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_EQ(revoke.out, "lease " + id + " revoked\n");
  EXPECT_EQ(Ctl({"kv", "get", "l/k"}).out, "");  // the key went with its lease
  EXPECT_EQ(Ctl({"lease", "ttl", id}).out, "lease " + id + " already expired\n");

  RunResult again = Ctl({"lease", "revoke", id});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("lease not found"), std::string::npos) << again.err;
  RunResult gone = Ctl({"lease", "keepalive", id, "--once"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("not found"), std::string::npos) << gone.err;
  EXPECT_EQ(Ctl({"lease", "revoke", "not-hex"}).exit_code, 2);
}

TEST_P(CliKvTest, WatchPrintsEventsAsTheyHappenAndReplaysHistory) {
  ASSERT_EQ(Ctl({"kv", "put", "w/old", "0"}).exit_code, 0);
  Subprocess watch(kClusterctl, {"kv", "watch", "w/", "--prefix", "--count", "2", "--endpoints", EndpointList()});
  ASSERT_TRUE(watch.started());
  // The watch is registered once the server answered its create request; puts made before that
  // could be missed, so keep writing until the watcher saw one (bounded by WaitForOutput's deadline).
  bool seen = false;
  for (int attempt = 0; attempt < 50 && !seen; ++attempt) {
    ASSERT_EQ(Ctl({"kv", "put", "w/a", "1"}).exit_code, 0);
    seen = watch.WaitForOutput("w/a", milliseconds(200));
  }
  ASSERT_TRUE(seen) << watch.err();
  ASSERT_EQ(Ctl({"kv", "del", "w/a"}).exit_code, 0);
  ASSERT_EQ(watch.WaitForExit(milliseconds(10000)), 0) << watch.err();
  EXPECT_EQ(watch.out().rfind("PUT\nw/a\n1\n", 0), 0u) << watch.out();

  // From revision 1: the whole history of w/, then exit after the count.
  RunResult history = Ctl({"kv", "watch", "w/old", "--rev", "1", "--count", "1"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(history.out, "PUT\nw/old\n0\n");
  RunResult limited = Ctl({"kv", "watch", "nothing-here", "--for", "300ms"});
  EXPECT_EQ(limited.exit_code, 0) << limited.err;
  EXPECT_EQ(limited.out, "");
}

TEST_P(CliKvTest, MemberListAndStatus) {
  RunResult list = Ctl({"member", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.rfind("ID ", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("started"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(endpoints_[0].ToString()), std::string::npos) << list.out;  // client URL

  RunResult status = Ctl({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("LEADER"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("true"), std::string::npos) << status.out;  // someone leads
  EXPECT_NE(status.out.find("healthy"), std::string::npos) << status.out;
  RunResult json = Ctl({"status", "-o", "json"});
  EXPECT_NE(json.out.find("\"raftIndex\":"), std::string::npos) << json.out;
}

TEST_P(CliKvTest, DeadEndpointIsSkippedAndReported) {
  std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  std::string list = dead + "," + EndpointList();
  RunResult put = RunProcess(kClusterctl, {"kv", "put", "f/k", "v", "--endpoints", list});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  RunResult get = RunProcess(kClusterctl, {"kv", "get", "f/k", "--endpoints", list});
  EXPECT_EQ(get.out, "f/k\nv\n") << get.err;

  RunResult status = RunProcess(kClusterctl, {"status", "--endpoints", list});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_NE(status.out.find(dead + ": connection refused"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("healthy"), std::string::npos) << status.out;  // the live one still reported

  std::string dead2 = "127.0.0.1:" + std::to_string(FreePort());
  RunResult none = RunProcess(kClusterctl, {"kv", "get", "f/k", "--endpoints", dead + "," + dead2});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find(dead + ": connection refused; " + dead2 + ": connection refused"), std::string::npos)
      << none.err;
}

// The safe replacement order against etcd's real learner rules: add as learner, promote once in
// sync (etcd refuses earlier), remove the old member (etcd refuses until the new one has been
// connected for a while). The new member is started when clusterctl says so.
TEST_P(CliKvTest, MemberReplaceAddsALearnerPromotesItAndRemovesTheOld) {
  if (GetParam() != "etcd") GTEST_SKIP() << "a new clusterd joining needs a join token; covered by coord tests";
  ASSERT_EQ(Ctl({"kv", "put", "r/k", "kept"}).exit_code, 0);
  RunResult list = Ctl({"member", "list"});
  // The id is the first word of the first row. Ids are unpadded hex, as etcdctl prints them, so
  // one whose top nibble is zero has 15 digits (etcd derives it from the peer URL's random port).
  std::string first_row = list.out.substr(list.out.find('\n') + 1);
  std::string old_id = first_row.substr(0, first_row.find(' '));
  uint16_t client = FreePort(), peer = FreePort();
  std::string client_url = "http://127.0.0.1:" + std::to_string(client);
  std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
  HostPort new_endpoint{"127.0.0.1", client};
  std::string both = EndpointList() + "," + new_endpoint.ToString();
  Subprocess replace(kClusterctl, {"member", "replace", old_id, "e2", "--peer-urls", peer_url, "--wait", "60s",
                                   "--endpoints", both});
  ASSERT_TRUE(replace.WaitForOutput("(state: existing)", milliseconds(10000))) << replace.out() << replace.err();
  size_t at = replace.out().find("initial cluster ") + 16;
  std::string initial = replace.out().substr(at, replace.out().find(" (state", at) - at);
  servers_.push_back(std::make_unique<Subprocess>(
      kEtcd, std::vector<std::string>{"--name", "e2", "--data-dir", dir_ + "/etcd2", "--listen-client-urls",
                                      client_url, "--advertise-client-urls", client_url, "--listen-peer-urls",
                                      peer_url, "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
                                      initial, "--initial-cluster-state", "existing"}));
  ASSERT_EQ(replace.WaitForExit(milliseconds(60000)), 0) << replace.out() << replace.err();
  EXPECT_NE(replace.out().find("2/3 promoted"), std::string::npos) << replace.out();
  EXPECT_NE(replace.out().find("3/3 removed old member " + old_id), std::string::npos) << replace.out();

  RunResult after = RunProcess(kClusterctl, {"member", "list", "--endpoints", new_endpoint.ToString()});
  EXPECT_EQ(after.out.find(old_id), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("e2"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("false"), std::string::npos) << after.out;  // a voter now
  RunResult get = RunProcess(kClusterctl, {"kv", "get", "r/k", "--endpoints", new_endpoint.ToString()});
  EXPECT_EQ(get.out, "r/k\nkept\n") << get.err;

  RunResult unknown = RunProcess(kClusterctl, {"member", "replace", "1234", "e3", "--peer-urls", "http://127.0.0.1:1",
                                               "--endpoints", new_endpoint.ToString()});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no member 1234"), std::string::npos) << unknown.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, CliKvTest, ::testing::Values("etcd", "cairn"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace cairn::test_support
