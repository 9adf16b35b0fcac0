// Linearizability of a real 3-process clusterd cluster under leader kills (issue 4, item 6).
//
// Three clusterd processes on 127.0.0.1 serve the etcd v3 JSON API. Several client threads, each
// with its own EtcdClients, put unique values and do linearizable gets on a set of keys, choosing
// a member per operation, while a driver thread kills -9 the current leader twice and restarts
// it. Every operation's invoke and return time goes into a history that lincheck::CheckKvHistory
// must find linearizable. A put that fails (timeout, unavailable, refused) is an unknown outcome:
// it may or may not have taken effect. A get that fails observed nothing and is left out.
//
// Each client talks to one member per EtcdClient (a single endpoint), so the client library never
// re-sends a request to another member after a timeout: a duplicated put would be the client's
// at-least-once retry, not the server's doing, and would look like a violation.
//
// After the load, every key is read once more (linearizably, added to the history) and must hold
// a value at least as new as every acknowledged put on it (mod_revision >= the put's revision).
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/lincheck/kv_checker.h"
#include "subprocess.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using etcdclient::ClientOptions;
using etcdclient::EtcdClient;
using lincheck::Operation;
using lincheck::OpKind;
using test_support::FreePort;
using test_support::Subprocess;
using test_support::WaitFor;
using tcp = boost::asio::ip::tcp;

constexpr int kNodes = 3;
constexpr int kClients = 5;
constexpr int kKeys = 40;
constexpr auto kLoadTime = 9s;

std::string KeyName(int k) { return "lin/k" + std::to_string(k); }

// Nanoseconds on the steady clock: the history's time (only the order matters to the checker).
int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What one client thread recorded.
struct ClientLog {
  std::vector<Operation> history;
  std::map<std::string, int64_t> acked_revision;  // key -> highest revision of an acknowledged put
  int puts_ok = 0;
  int gets_ok = 0;
  int failed = 0;
};

class CoordLincheck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("coord-lincheck-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (int i = 0; i < kNodes; ++i) {
      peer_ports_[i] = FreePort();
      client_ports_[i] = FreePort();
    }
    for (int i = 0; i < kNodes; ++i) WriteConfig(i);
  }

  void TearDown() override {
    for (auto& process : processes_) process.reset();  // SIGKILL + reap if still running
    std::filesystem::remove_all(dir_);
  }

  void WriteConfig(int i) {
    std::string yaml = "name: n" + std::to_string(i + 1) + "\ndata_dir: " + dir_ + "/d" + std::to_string(i + 1) +
                       "\npeer_address: 127.0.0.1:" + std::to_string(peer_ports_[i]) +
                       "\nclient_address: 127.0.0.1:" + std::to_string(client_ports_[i]) + "\ninitial_cluster:\n";
    for (int j = 0; j < kNodes; ++j) {
      yaml += "  - name: n" + std::to_string(j + 1) + "\n    peer_address: 127.0.0.1:" +
              std::to_string(peer_ports_[j]) + "\n";
    }
    configs_[i] = dir_ + "/node" + std::to_string(i + 1) + ".yaml";
    std::ofstream(configs_[i]) << yaml;
  }

  HostPort Endpoint(int i) const { return {"127.0.0.1", static_cast<uint16_t>(client_ports_[i])}; }

  // Empty on success, else what went wrong (callable from the driver thread).
  std::string StartNode(int i) {
    processes_[i] = std::make_unique<Subprocess>(CLUSTERD_PATH, std::vector<std::string>{"--config", configs_[i]});
    if (!processes_[i]->WaitForOutput("clusterd.started", 10s)) {
      return "n" + std::to_string(i + 1) + " did not start: " + processes_[i]->err();
    }
    return "";
  }

  // Index of a member that reports itself as leader, or -1 when none does within the limit.
  int LeaderIndex(std::chrono::milliseconds limit) {
    ClientOptions options{.timeout = 1s, .connect_timeout = 300ms};
    EtcdClient client({Endpoint(0), Endpoint(1), Endpoint(2)}, options);
    int found = -1;
    WaitFor([&] {
      for (int i = 0; i < kNodes; ++i) {
        if (!processes_[i]) continue;
        auto status = client.StatusOf(Endpoint(i));
        if (status.ok() && status->leader() != 0 && status->leader() == status->header().member_id()) {
          found = i;
          return true;
        }
      }
      return false;
    }, limit);
    return found;
  }

  // Kills -9 the leader, waits for it to die, lets the others run without it, restarts it.
  std::string KillAndRestartLeader(std::vector<int>* killed) {
    int leader = LeaderIndex(10s);
    if (leader < 0) return "no leader found before a kill";
    killed->push_back(leader);
    processes_[leader]->Signal(SIGKILL);
    processes_[leader]->WaitForExit(5s);
    processes_[leader].reset();
    std::this_thread::sleep_for(1500ms);  // pacing: run a while on two members
    return StartNode(leader);
  }

  // One client thread: random ops on random keys against random members until stop.
  void RunClient(int id, const std::atomic<bool>& stop, ClientLog* log) {
    ClientOptions options{.timeout = 2s, .connect_timeout = 300ms};
    std::vector<std::unique_ptr<EtcdClient>> members;
    for (int i = 0; i < kNodes; ++i) members.push_back(std::make_unique<EtcdClient>(std::vector{Endpoint(i)}, options));
    std::mt19937 random(static_cast<uint32_t>(1000 + id));
    int sequence = 0;
    while (!stop.load()) {
      EtcdClient& client = *members[random() % kNodes];
      std::string key = KeyName(static_cast<int>(random() % kKeys));
      if (random() % 2 == 0) {
        Put(id, client, key, "c" + std::to_string(id) + "-" + std::to_string(++sequence), log);
      } else {
        Get(id, client, key, log);
      }
    }
  }

  static void Put(int id, EtcdClient& client, const std::string& key, const std::string& value, ClientLog* log) {
    Operation op{.client = static_cast<uint64_t>(id), .kind = OpKind::kPut, .key = key, .value = value};
    etcd::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    op.called = Now();
    auto reply = client.Put(request);
    if (reply.ok()) {
      op.returned = Now();
      ++log->puts_ok;
      int64_t& revision = log->acked_revision[key];
      revision = std::max(revision, reply->header().revision());
    } else {
      ++log->failed;  // unknown outcome: returned stays nullopt
    }
    log->history.push_back(std::move(op));
  }

  // Returns the observed kv's mod_revision (0 when absent), or -1 when the get failed.
  static int64_t Get(int id, EtcdClient& client, const std::string& key, ClientLog* log) {
    Operation op{.client = static_cast<uint64_t>(id), .kind = OpKind::kGet, .key = key};
    etcd::RangeRequest request;
    request.set_key(key);
    op.called = Now();
    auto reply = client.Range(request);
    if (!reply.ok()) {
      ++log->failed;
      return -1;
    }
    op.returned = Now();
    int64_t mod_revision = 0;
    if (reply->kvs_size() > 0) {
      op.value = reply->kvs(0).value();
      mod_revision = reply->kvs(0).mod_revision();
    }
    ++log->gets_ok;
    log->history.push_back(std::move(op));
    return mod_revision;
  }

  std::string dir_;
  int peer_ports_[kNodes] = {};
  int client_ports_[kNodes] = {};
  std::string configs_[kNodes];
  std::unique_ptr<Subprocess> processes_[kNodes];
};

TEST_F(CoordLincheck, HistoryUnderLeaderKillsIsLinearizable) {
  for (int i = 0; i < kNodes; ++i) ASSERT_EQ(StartNode(i), "");
  ASSERT_GE(LeaderIndex(10s), 0) << "no leader elected";

  std::atomic<bool> stop{false};
  std::vector<ClientLog> logs(kClients);
  std::vector<std::thread> clients;
  for (int id = 0; id < kClients; ++id) {
    clients.emplace_back([&, id] { RunClient(id, stop, &logs[id]); });
  }
  std::string driver_error;
  std::vector<int> killed;
  auto load_start = std::chrono::steady_clock::now();
  std::thread driver([&] {
    for (int round = 0; round < 2 && driver_error.empty(); ++round) {
      std::this_thread::sleep_for(1500ms);  // pacing: load with a full cluster first
      driver_error = KillAndRestartLeader(&killed);
    }
  });
  driver.join();
  std::this_thread::sleep_until(load_start + kLoadTime);  // pacing: load after the last restart
  stop = true;
  for (auto& thread : clients) thread.join();
  ASSERT_EQ(driver_error, "");
  ASSERT_EQ(killed.size(), 2u);

  // Final reads, after every client op returned or was abandoned: one per key, on the cluster with
  // all members back, retried until one succeeds (a new election may still be running).
  ClientLog final_log;
  ClientOptions options{.timeout = 5s, .connect_timeout = 300ms};
  EtcdClient reader({Endpoint(0), Endpoint(1), Endpoint(2)}, options);
  std::map<std::string, int64_t> acked;
  for (const auto& log : logs) {
    for (const auto& [key, revision] : log.acked_revision) acked[key] = std::max(acked[key], revision);
  }
  for (int k = 0; k < kKeys; ++k) {
    std::string key = KeyName(k);
    int64_t mod_revision = -1;
    ASSERT_TRUE(WaitFor([&] { return (mod_revision = Get(kClients, reader, key, &final_log)) >= 0; }, 20s))
        << "final read of " << key << " kept failing";
    if (acked.count(key)) {
      EXPECT_GE(mod_revision, acked[key]) << key << " lost an acknowledged put";
    }
  }

  std::vector<Operation> history = final_log.history;
  int puts_ok = 0, gets_ok = 0, failed = 0;
  for (const auto& log : logs) {
    history.insert(history.end(), log.history.begin(), log.history.end());
    puts_ok += log.puts_ok;
    gets_ok += log.gets_ok;
    failed += log.failed;
  }
  RecordProperty("puts_ok", puts_ok);
  RecordProperty("gets_ok", gets_ok);
  RecordProperty("failed", failed);
  std::printf("history: %zu ops, %d puts ok, %d gets ok, %d failed; killed n%d then n%d\n", history.size(), puts_ok,
              gets_ok, failed, killed[0] + 1, killed[1] + 1);
  EXPECT_GE(puts_ok, 100);
  EXPECT_GE(gets_ok, 100);

  auto result = lincheck::CheckKvHistory(history);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  std::printf("checked %llu keys, %llu ops\n", static_cast<unsigned long long>(result->keys_checked),
              static_cast<unsigned long long>(result->operations_checked));
  EXPECT_EQ(result->verdict, lincheck::Verdict::kLinearizable)
      << lincheck::VerdictName(result->verdict) << " on " << result->key << ": " << result->explanation;

  for (auto& process : processes_) process->Signal(SIGTERM);
  for (auto& process : processes_) EXPECT_EQ(process->WaitForExit(10s), 0) << process->err();
}

}  // namespace
}  // namespace cairn
