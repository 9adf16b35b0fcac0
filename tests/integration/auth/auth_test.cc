// Cluster authentication with real clusterd and clusterctl processes on 127.0.0.1: a host joins
// with a join token and becomes a voter (or a witness); bad, expired, revoked and mismatched
// tokens are refused with a log line on both sides; a peer without the cluster key cannot send
// Raft messages nor call a brick; the HTTP API without its bearer token answers 401.
//
// Each test makes its own temp dir (node.yaml, data dirs, key and token files) and its own
// processes; Subprocess destructors kill them and the dir is removed, also when a test fails.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/net/client.h"
#include "cairn/net/peer_auth.h"
#include "subprocess.h"

namespace cairn::test_support {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kClusterd = CLUSTERD_PATH;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Host {
  std::string name;
  uint16_t peer = 0;
  uint16_t client = 0;
  std::string config;
  std::string data_dir;
  std::unique_ptr<Subprocess> process;

  HostPort client_address() const { return {"127.0.0.1", client}; }
  std::string peer_address() const { return "127.0.0.1:" + std::to_string(peer); }
  std::string log() const { return process ? process->out() + process->err() : ""; }
};

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-auth-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }

  void TearDown() override {
    hosts_.clear();  // SIGKILL and reap
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Writes NAME.yaml: `extra` is appended as is (auth, join, role sections).
  Host& Define(const std::string& name, const std::string& extra) {
    auto host = std::make_unique<Host>();
    host->name = name;
    host->peer = FreePort();
    host->client = FreePort();
    host->data_dir = dir_ + "/" + name;
    host->config = dir_ + "/" + name + ".yaml";
    std::ofstream(host->config) << "name: " << name << "\ndata_dir: " << host->data_dir
                                << "\npeer_address: " << host->peer_address() << "\nclient_address: 127.0.0.1:"
                                << host->client << "\nlog:\n  level: info\n"
                                << extra;
    hosts_.push_back(std::move(host));
    return *hosts_.back();
  }

  // No container runs here: the container agent only needs a unionmount path to start with.
  void Start(Host& host) {
    host.process = std::make_unique<Subprocess>(kClusterd, std::vector<std::string>{"--config", host.config},
                                                std::vector<std::string>{"CAIRN_UNIONMOUNT=/bin/true"});
  }

  // Starts and waits for clusterd.started.
  void StartServing(Host& host) {
    Start(host);
    ASSERT_TRUE(host.process->WaitForOutput("clusterd.started", milliseconds(30000))) << host.log();
  }

  RunResult Ctl(const Host& host, std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.push_back("--endpoints");
    args.push_back(host.client_address().ToString());
    return RunProcess(kClusterctl, args, env);
  }

  std::string NewToken(const Host& host, const std::vector<std::string>& options = {}) {
    std::vector<std::string> args = {"token", "create"};
    args.insert(args.end(), options.begin(), options.end());
    RunResult created = Ctl(host, args);
    EXPECT_EQ(created.exit_code, 0) << created.out << created.err;
    std::string token = created.out.substr(0, created.out.find('\n'));
    EXPECT_EQ(token.substr(0, 7), "cairn1.") << created.out;
    return token;
  }

  std::string JoinSection(const Host& member, const std::string& token) {
    return "join:\n  address: " + member.client_address().ToString() + "\n  token: " + token + "\n";
  }

  std::string dir_;
  std::vector<std::unique_ptr<Host>> hosts_;
};

const std::string kRequired = "auth:\n  peer: required\n";

// Parses clusterctl -o json output.
google::protobuf::Struct ParseJson(const std::string& text) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(text, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return parsed;
}

TEST_F(AuthTest, HostsJoinWithTokensAndArePromoted) {
  Host& first = Define("n1", kRequired);
  ASSERT_NO_FATAL_FAILURE(StartServing(first));
  EXPECT_TRUE(Contains(first.log(), "clusterd.cluster_key_created")) << first.log();
  std::string key_path = first.data_dir + "/cluster.key";
  struct stat info {};
  ASSERT_EQ(::stat(key_path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(info.st_size, 32);

  Host& voter = Define("n2", JoinSection(first, NewToken(first)));
  Start(voter);
  ASSERT_TRUE(voter.process->WaitForOutput("clusterd.promoted", milliseconds(60000)) ||
              Contains(voter.log(), "clusterd.voter"))
      << voter.log();
  EXPECT_TRUE(first.process->WaitForOutput("auth.join_accepted", milliseconds(5000))) << first.log();
  EXPECT_EQ(ReadFile(voter.data_dir + "/cluster.key"), ReadFile(key_path));

  Host& witness = Define("n3", "role: witness\n" + JoinSection(first, NewToken(first, {"--role", "witness"})));
  Start(witness);
  ASSERT_TRUE(witness.process->WaitForOutput("clusterd.promoted", milliseconds(60000)) ||
              Contains(witness.log(), "clusterd.voter"))
      << witness.log();
  EXPECT_TRUE(Contains(witness.log(), "clusterd.witness")) << witness.log();

  // Three voters that replicate: a key written through n1 is read on n3.
  RunResult members = Ctl(first, {"member", "list", "-o", "json"});
  ASSERT_EQ(members.exit_code, 0) << members.err;
  google::protobuf::Struct list = ParseJson(members.out);
  const auto& items = list.fields().at("members").list_value().values();
  EXPECT_EQ(items.size(), 3);
  for (const auto& member : items) {
    auto learner = member.struct_value().fields().find("isLearner");
    EXPECT_TRUE(learner == member.struct_value().fields().end() || !learner->second.bool_value()) << members.out;
  }
  ASSERT_EQ(Ctl(first, {"kv", "put", "joined", "yes"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return Contains(Ctl(witness, {"kv", "get", "joined"}).out, "yes"); }, milliseconds(10000)));

  // The tokens are listed with who used them; no secret is shown.
  RunResult tokens = Ctl(first, {"token", "list"});
  EXPECT_EQ(tokens.exit_code, 0) << tokens.err;
  EXPECT_TRUE(Contains(tokens.out, "n2")) << tokens.out;
  EXPECT_TRUE(Contains(tokens.out, "witness")) << tokens.out;
  EXPECT_FALSE(Contains(tokens.out, "cairn1.")) << tokens.out;

  // A restarted joiner does not join again: it has its data and its key.
  voter.process.reset();
  Start(voter);
  ASSERT_TRUE(voter.process->WaitForOutput("clusterd.started", milliseconds(30000))) << voter.log();
  EXPECT_FALSE(Contains(voter.log(), "clusterd.joined")) << voter.log();
  EXPECT_TRUE(Contains(voter.log(), "clusterd.peer_auth_on")) << voter.log();
}

TEST_F(AuthTest, BadTokensAreRefusedOnBothSides) {
  Host& first = Define("n1", kRequired);
  ASSERT_NO_FATAL_FAILURE(StartServing(first));
  std::string good = NewToken(first);
  std::string revoked = NewToken(first);
  std::string revoked_id = revoked.substr(7, 16);
  ASSERT_EQ(Ctl(first, {"token", "revoke", revoked_id}).exit_code, 0);
  std::string expiring = NewToken(first, {"--ttl", "1s"});
  std::string expiring_id = expiring.substr(7, 16);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string out = Ctl(first, {"token", "list"}).out;
        size_t at = out.find(expiring_id);
        return at != std::string::npos && out.find("expired", at) < out.find('\n', at);
      },
      milliseconds(10000)));
  std::string wrong_secret = good.substr(0, good.size() - 1) + (good.back() == '0' ? "1" : "0");
  std::string unknown = "cairn1.0123456789abcdef." + good.substr(good.size() - 32);
  std::string witness_only = NewToken(first, {"--role", "witness"});

  struct Case {
    std::string name, token, extra, joiner_says;
  };
  for (const Case& c : std::vector<Case>{
           {"wrong", wrong_secret, "", "wrong secret for join token"},
           {"revoked", revoked, "", "was revoked"},
           {"expired", expiring, "", "expired at"},
           {"unknown", unknown, "", "unknown join token"},
           {"mismatch", witness_only, "", "is for role witness"},
           {"malformed", "cairn1.nothex.abc", "", "ID must be 16"},
       }) {
    SCOPED_TRACE(c.name);
    Host& joiner = Define("j-" + c.name, c.extra + JoinSection(first, c.token));
    Start(joiner);
    EXPECT_EQ(joiner.process->WaitForExit(milliseconds(30000)), 1) << joiner.log();
    EXPECT_TRUE(Contains(joiner.log(), "clusterd.join_refused")) << joiner.log();
    EXPECT_TRUE(Contains(joiner.log(), c.joiner_says)) << joiner.log();
    if (c.name != "malformed") {  // refused before asking anyone
      EXPECT_TRUE(first.process->WaitForOutput("name=j-" + c.name, milliseconds(10000))) << first.log();
      EXPECT_TRUE(Contains(first.log(), "auth.join_refused")) << first.log();
    }
    EXPECT_FALSE(std::filesystem::exists(joiner.data_dir + "/cluster.key"));
  }
  // None of them became a member.
  RunResult members = Ctl(first, {"member", "list", "-o", "json"});
  EXPECT_EQ(ParseJson(members.out).fields().at("members").list_value().values_size(), 1) << members.out;
}

// Calls `method` on address with the given key option; returns the status.
Status CallPeer(boost::asio::io_context& io, const std::string& address, std::optional<std::string> key,
                const std::string& method) {
  net::ClientOptions options;
  options.address = address;
  options.cluster_key = std::move(key);
  net::Client client(io, options);
  return client.CallSync(method, "", seconds(10)).status();
}

TEST_F(AuthTest, PeersWithoutTheKeyCannotTalkToRaftOrBricks) {
  Host& first = Define("n1", kRequired);
  ASSERT_NO_FATAL_FAILURE(StartServing(first));
  std::string key = ReadFile(first.data_dir + "/cluster.key");
  ASSERT_EQ(key.size(), 32u);

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  struct Join {
    boost::asio::io_context& io;
    std::thread& runner;
    ~Join() {
      io.stop();
      runner.join();
    }
  } join{io, runner};

  std::string peer = first.peer_address();
  Status anonymous = CallPeer(io, peer, std::string(), "raft.Message");
  EXPECT_EQ(anonymous.code(), StatusCode::kUnauthenticated) << anonymous;
  Status forged = CallPeer(io, peer, std::string(32, 'x'), "raft.Message");
  EXPECT_EQ(forged.code(), StatusCode::kUnauthenticated) << forged;
  EXPECT_TRUE(first.process->WaitForOutput("net.unauthenticated", milliseconds(5000))) << first.log();
  // With the key the connection is accepted (the method is unknown, which proves we got through).
  Status member = CallPeer(io, peer, key, "no.such.method");
  EXPECT_EQ(member.code(), StatusCode::kUnimplemented) << member;

  // A brick served by this host's volume agent refuses keyless callers too.
  std::string brick_dir = dir_ + "/b1";
  RunResult created = Ctl(first, {"volume", "create", "v", "n1:" + brick_dir, "--force"});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  RunResult started = Ctl(first, {"volume", "start", "v", "--wait", "30s"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err << first.log();
  etcdclient::EtcdClient store({first.client_address()});
  etcd::RangeRequest range;
  range.set_key("/cairn/volumes/v/bricks/");
  range.set_range_end("/cairn/volumes/v/bricks0");
  std::string brick_address;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto found = store.Range(range);
        if (found.ok() && found->kvs_size() > 0) brick_address = found->kvs(0).value();
        return !brick_address.empty();
      },
      milliseconds(30000)));
  Status stranger = CallPeer(io, brick_address, std::string(), "brick.Getattr");
  EXPECT_EQ(stranger.code(), StatusCode::kUnauthenticated) << stranger;
  Status insider = CallPeer(io, brick_address, key, "no.such.method");
  EXPECT_EQ(insider.code(), StatusCode::kUnimplemented) << insider;
}

// One raw HTTP request; returns {status, body}.
std::pair<int, std::string> Http(const HostPort& address, const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& authorization = "") {
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.expires_after(seconds(10));
  boost::system::error_code ec;
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(address.host), address.port), ec);
  if (ec) return {0, ec.message()};
  http::request<http::string_body> request{method == "GET" ? http::verb::get : http::verb::post, target, 11};
  request.set(http::field::host, address.ToString());
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, ec);
  if (ec) return {0, ec.message()};
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return {0, ec.message()};
  return {response.result_int(), response.body()};
}

TEST_F(AuthTest, ApiWithoutTheBearerTokenAnswers401) {
  std::string token_file = dir_ + "/api.token";
  std::ofstream(token_file) << "s3cret-token\n";
  Host& first = Define("n1", "auth:\n  api_token_file: " + token_file + "\n");
  ASSERT_NO_FATAL_FAILURE(StartServing(first));

  auto [status, body] = Http(first.client_address(), "POST", "/v3/kv/put", R"({"key":"a2V5","value":"dg=="})");
  EXPECT_EQ(status, 401) << body;
  EXPECT_TRUE(Contains(body, "\"code\":16")) << body;
  EXPECT_TRUE(Contains(body, "bearer token")) << body;
  auto wrong = Http(first.client_address(), "POST", "/v3/kv/put", R"({"key":"a2V5","value":"dg=="})", "Bearer nope");
  EXPECT_EQ(wrong.first, 401) << wrong.second;
  std::pair<int, std::string> right;
  EXPECT_TRUE(WaitFor(  // 503 until the store has elected its leader
      [&] {
        right = Http(first.client_address(), "POST", "/v3/kv/put", R"({"key":"a2V5","value":"dg=="})",
                     "Bearer s3cret-token");
        return right.first == 200;
      },
      milliseconds(20000)))
      << right.first << " " << right.second;
  EXPECT_EQ(Http(first.client_address(), "GET", "/health", "").first, 200);  // health stays open
  EXPECT_EQ(Http(first.client_address(), "GET", "/metrics", "").first, 401);

  // etcdclient sends the token it is given; clusterctl finds it in each documented place.
  etcdclient::EtcdClient anonymous({first.client_address()}, {.bearer_token = std::string()});
  etcd::RangeRequest range;
  range.set_key("key");
  EXPECT_EQ(anonymous.Range(range).status().code(), StatusCode::kUnauthenticated);
  etcdclient::EtcdClient trusted({first.client_address()}, {.bearer_token = std::string("s3cret-token")});
  EXPECT_TRUE(trusted.Range(range).ok());

  RunResult refused = Ctl(first, {"kv", "get", "key"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(Contains(refused.err, "bearer token")) << refused.err;
  EXPECT_EQ(Ctl(first, {"kv", "get", "key", "--token-file", token_file}).exit_code, 0);
  EXPECT_EQ(Ctl(first, {"kv", "get", "key"}, {"CAIRN_API_TOKEN=s3cret-token"}).exit_code, 0);
  std::string settings = dir_ + "/clusterctl.yaml";
  std::ofstream(settings) << "token_file: " << token_file << "\n";
  RunResult from_file = Ctl(first, {"kv", "get", "key"}, {"CAIRN_CLUSTERCTL_CONFIG=" + settings});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
}

}  // namespace
}  // namespace cairn::test_support
