// Three real clusterd processes on 127.0.0.1 (config/node1-3.yaml style, free ports) serving the
// etcd v3 JSON API: put on one, get on another over HTTP (a Beast client), kill -9 the leader, a
// new leader serves writes, the killed one restarts and catches up, SIGTERM stops all cleanly.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "subprocess.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using test_support::FreePort;
using test_support::Subprocess;
using test_support::WaitFor;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Reply {
  int status = 0;  // 0: no connection
  std::string body;
};

Reply Post(int port, const std::string& target, const std::string& body) {
  boost::asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code error;
  socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)), error);
  if (error) return {};
  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  http::write(socket, request, error);
  if (error) return {};
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response, error);
  if (error) return {};
  return {static_cast<int>(response.result_int()), response.body()};
}

// "key" field of JSON text, crude but enough for the fixed shapes of etcd's answers.
std::string Field(const std::string& json, const std::string& name) {
  std::string key = "\"" + name + "\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  size_t start = at + key.size();
  return json.substr(start, json.find('"', start) - start);
}

class ClusterdCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("clusterd-cluster-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    for (int i = 0; i < 3; ++i) {
      peer_ports_[i] = FreePort();
      client_ports_[i] = FreePort();
    }
    for (int i = 0; i < 3; ++i) {
      std::string yaml = "name: n" + std::to_string(i + 1) + "\ndata_dir: " + dir_ + "/d" + std::to_string(i + 1) +
                         "\npeer_address: 127.0.0.1:" + std::to_string(peer_ports_[i]) +
                         "\nclient_address: 127.0.0.1:" + std::to_string(client_ports_[i]) + "\ninitial_cluster:\n";
      for (int j = 0; j < 3; ++j) {
        yaml += "  - name: n" + std::to_string(j + 1) + "\n    peer_address: 127.0.0.1:" + std::to_string(peer_ports_[j]) + "\n";
      }
      configs_[i] = dir_ + "/node" + std::to_string(i + 1) + ".yaml";
      std::ofstream(configs_[i]) << yaml;
    }
  }
  void TearDown() override {
    for (auto& process : processes_) process.reset();  // SIGKILL + reap if still running
    std::filesystem::remove_all(dir_);
  }

  void StartNode(int i) {
    processes_[i] = std::make_unique<Subprocess>(CLUSTERD_PATH, std::vector<std::string>{"--config", configs_[i]});
    ASSERT_TRUE(processes_[i]->WaitForOutput("clusterd.started", 10s)) << processes_[i]->err();
  }

  // Index of the leader as node i's /v3/maintenance/status reports it, once it has one.
  int LeaderIndex() {
    int found = -1;
    WaitFor([&] {
      for (int i = 0; i < 3; ++i) {
        if (!processes_[i]) continue;
        Reply status = Post(client_ports_[i], "/v3/maintenance/status", "{}");
        std::string leader = Field(status.body, "leader");
        if (status.status == 200 && !leader.empty() && leader == Field(status.body, "member_id")) {
          found = i;
          return true;
        }
      }
      return false;
    }, 10s);
    return found;
  }

  // Retries while there is no leader yet (503), as an etcd client would.
  Reply PutUntilOk(int i, const std::string& body) {
    Reply reply;
    WaitFor([&] {
      reply = Post(client_ports_[i], "/v3/kv/put", body);
      return reply.status == 200;
    }, 10s);
    return reply;
  }

  std::string dir_;
  int peer_ports_[3] = {};
  int client_ports_[3] = {};
  std::string configs_[3];
  std::unique_ptr<Subprocess> processes_[3];
};

TEST_F(ClusterdCluster, PutGetAcrossProcessesSurvivesKillNineOfTheLeader) {
  for (int i = 0; i < 3; ++i) StartNode(i);
  // key "foo" = Zm9v, "bar" = YmFy, "baz" = YmF6
  Reply put = PutUntilOk(1, R"({"key":"Zm9v","value":"YmFy"})");
  ASSERT_EQ(put.status, 200) << put.body;
  Reply got = Post(client_ports_[2], "/v3/kv/range", R"({"key":"Zm9v"})");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Field(got.body, "value"), "YmFy") << got.body;
  Reply members = Post(client_ports_[0], "/v3/cluster/member/list", "{}");
  EXPECT_EQ(members.status, 200);
  EXPECT_NE(members.body.find("\"n3\""), std::string::npos) << members.body;

  int leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  processes_[leader]->Signal(SIGKILL);
  auto killed_at = std::chrono::steady_clock::now();
  int survivor = (leader + 1) % 3;
  Reply after = PutUntilOk(survivor, R"({"key":"Zm9v","value":"YmF6"})");
  ASSERT_EQ(after.status, 200) << after.body;
  auto failover = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  RecordProperty("failover_ms", std::to_string(failover.count()));
  EXPECT_LT(failover, 5s);
  processes_[leader]->WaitForExit(5s);
  processes_[leader].reset();

  StartNode(leader);
  EXPECT_TRUE(WaitFor([&] {
    Reply local = Post(client_ports_[leader], "/v3/kv/range", R"({"key":"Zm9v","serializable":true})");
    return Field(local.body, "value") == "YmF6";
  }, 10s));

  for (auto& process : processes_) process->Signal(SIGTERM);
  for (auto& process : processes_) EXPECT_EQ(process->WaitForExit(10s), 0) << process->err();
}

}  // namespace
}  // namespace cairn
