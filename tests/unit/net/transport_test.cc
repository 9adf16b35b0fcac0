// Server and Client over real sockets on 127.0.0.1 (port 0, so parallel tests never collide).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include "cairn/net/client.h"
#include "cairn/net/peer_auth.h"
#include "cairn/net/server.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;

// Polls `condition` until it holds or `limit` passes; the test fails on timeout, never hangs.
template <typename Condition>
bool WaitFor(Condition condition, Duration limit = 5s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// An io_context run by two threads for the test's lifetime.
class IoThreads {
 public:
  IoThreads() : guard_(io_.get_executor()) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// Collects responders that a test answers later (or never).
class Parked {
 public:
  void Add(Responder responder) {
    std::lock_guard lock(mu_);
    responders_.push_back(std::move(responder));
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return responders_.size();
  }
  std::vector<Responder> Take() {
    std::lock_guard lock(mu_);
    return std::move(responders_);
  }

 private:
  std::mutex mu_;
  std::vector<Responder> responders_;
};

// Records one async call's outcome.
class Outcome {
 public:
  CallCallback Callback() {
    return [this](Result<std::string> result) {
      std::lock_guard lock(mu_);
      ++calls_;
      result_.emplace(std::move(result));
    };
  }
  bool done() {
    std::lock_guard lock(mu_);
    return result_.has_value();
  }
  Result<std::string> result() {
    std::lock_guard lock(mu_);
    return *result_;
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  int calls_ = 0;
  std::optional<Result<std::string>> result_;
};

std::string Address(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

ClientOptions FastRetry(uint16_t port) {
  ClientOptions options;
  options.address = Address(port);
  options.initial_backoff = 5ms;
  options.max_backoff = 50ms;
  options.random = std::make_shared<Random>(42);
  return options;
}

void AddEcho(Server& server) {
  server.Handle("echo", [](std::string payload, Responder responder) { responder.Respond(std::move(payload)); });
}

// A plain POSIX socket, for sending bytes no Client would send.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval timeout{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawSocket() { close(fd_); }
  bool connected() const { return connected_; }
  bool Write(const std::string& bytes) { return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()); }
  // True when the server closed the connection (EOF or reset) within the receive timeout.
  bool ClosedByPeer() {
    char buffer[256];
    while (true) {
      ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

class TransportTest : public ::testing::Test {
 protected:
  std::unique_ptr<Server> StartServer(uint16_t port = 0, ServerOptions options = {}) {
    options.address = Address(port);
    auto server = std::make_unique<Server>(io_.io(), options);
    AddEcho(*server);
    Status started = server->Start();
    EXPECT_TRUE(started.ok()) << started;
    return server;
  }

  IoThreads io_;
};

TEST_F(TransportTest, RoundTrip) {
  auto server = StartServer();
  ASSERT_NE(server->port(), 0);
  Client client(io_.io(), FastRetry(server->port()));
  auto reply = client.CallSync("echo", "hello", 5s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "hello");
  EXPECT_TRUE(client.connected());
  auto binary = client.CallSync("echo", std::string("\0\xff\n", 3), 5s);
  ASSERT_TRUE(binary.ok());
  EXPECT_EQ(*binary, std::string("\0\xff\n", 3));
}

TEST_F(TransportTest, HostNameIsResolved) {
  auto server = StartServer();
  ClientOptions options = FastRetry(server->port());
  options.address = "localhost:" + std::to_string(server->port());
  Client client(io_.io(), options);
  auto reply = client.CallSync("echo", "by name", 5s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "by name");
}

TEST_F(TransportTest, HandlerErrorReachesCaller) {
  auto server = StartServer();
  server->Handle("fail", [](std::string, Responder responder) { responder.Respond(NotFoundError("no key k1")); });
  Client client(io_.io(), FastRetry(server->port()));
  auto reply = client.CallSync("fail", "", 5s);
  EXPECT_EQ(reply.status(), NotFoundError("no key k1"));
}

TEST_F(TransportTest, UnknownMethodIsUnimplemented) {
  auto server = StartServer();
  Client client(io_.io(), FastRetry(server->port()));
  auto reply = client.CallSync("nope", "", 5s);
  EXPECT_EQ(reply.status().code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(client.CallSync("echo", "still fine", 5s).ok());
}

TEST_F(TransportTest, DroppedResponderAnswersInternal) {
  auto server = StartServer();
  server->Handle("forget", [](std::string, Responder) {});
  Client client(io_.io(), FastRetry(server->port()));
  auto reply = client.CallSync("forget", "", 5s);
  EXPECT_EQ(reply.status().code(), StatusCode::kInternal);
}

TEST_F(TransportTest, OneWayIsDelivered) {
  auto server = StartServer();
  std::mutex mu;
  std::vector<std::string> received;
  server->HandleOneWay("note", [&](std::string payload, const std::string& peer) {
    EXPECT_NE(peer.find("127.0.0.1:"), std::string::npos);
    std::lock_guard lock(mu);
    received.push_back(std::move(payload));
  });
  Client client(io_.io(), FastRetry(server->port()));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client.Send("note", std::to_string(i)).ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return received.size() == 10;
  }));
  std::lock_guard lock(mu);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(received[i], std::to_string(i)) << "one connection keeps order";
}

TEST_F(TransportTest, BatchedWritesKeepOrderAcrossPartialWrites) {
  auto server = StartServer();
  std::mutex mu;
  std::vector<std::string> received;
  server->HandleOneWay("chunk", [&](std::string payload, const std::string&) {
    std::lock_guard lock(mu);
    received.push_back(std::move(payload));
  });
  Client client(io_.io(), FastRetry(server->port()));
  constexpr int kFrames = 2000;
  // 2000 x 20 KiB queued at once: far more than a socket buffer, so writes end mid-frame.
  for (int i = 0; i < kFrames; ++i) {
    std::string payload = std::to_string(i) + ":" + std::string(20 * 1024, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(client.Send("chunk", std::move(payload)).ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return received.size() == kFrames;
  }, 20s));
  std::lock_guard lock(mu);
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(received[i].substr(0, received[i].find(':')), std::to_string(i));
    ASSERT_EQ(received[i].size(), std::to_string(i).size() + 1 + 20 * 1024);
    ASSERT_EQ(received[i].back(), static_cast<char>('a' + i % 26));
  }
}

TEST_F(TransportTest, ManyConcurrentCallsAllAnsweredCorrectly) {
  auto server = StartServer();
  Client client(io_.io(), FastRetry(server->port()));
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 500;
  std::atomic<int> answered{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        std::string payload = std::to_string(t) + "/" + std::to_string(i);
        client.Call("echo", payload, 20s, [&, payload](Result<std::string> reply) {
          if (!reply.ok() || *reply != payload) wrong++;
          answered++;
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(WaitFor([&] { return answered.load() == kThreads * kCallsPerThread; }, 20s)) << answered.load();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TransportTest, DeadlineFiresWhenHandlerNeverResponds) {
  auto server = StartServer();
  Parked parked;
  server->Handle("hang", [&](std::string, Responder responder) { parked.Add(std::move(responder)); });
  Client client(io_.io(), FastRetry(server->port()));
  Outcome outcome;
  auto start = std::chrono::steady_clock::now();
  client.Call("hang", "", 100ms, outcome.Callback());
  ASSERT_TRUE(WaitFor([&] { return outcome.done(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(outcome.result().status().code(), StatusCode::kDeadlineExceeded);
  // A late answer is dropped, not delivered as a second callback.
  ASSERT_TRUE(WaitFor([&] { return parked.size() == 1; }));
  for (auto& responder : parked.Take()) responder.Respond(std::string("late"));
  EXPECT_TRUE(client.CallSync("echo", "after", 5s).ok());
  EXPECT_EQ(outcome.calls(), 1);
}

TEST_F(TransportTest, ServerStopFailsPendingCallsThenClientReconnects) {
  auto server = StartServer();
  uint16_t port = server->port();
  Parked parked;
  server->Handle("hang", [&](std::string, Responder responder) { parked.Add(std::move(responder)); });
  Client client(io_.io(), FastRetry(port));
  std::vector<Outcome> outcomes(10);
  for (auto& outcome : outcomes) client.Call("hang", "", 30s, outcome.Callback());
  ASSERT_TRUE(WaitFor([&] { return parked.size() == outcomes.size(); }));

  auto stopped_at = std::chrono::steady_clock::now();
  server.reset();
  for (auto& outcome : outcomes) {
    ASSERT_TRUE(WaitFor([&] { return outcome.done(); }));
    EXPECT_EQ(outcome.result().status().code(), StatusCode::kUnavailable) << outcome.result().status();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 5s) << "failed by the drop, not by the deadline";
  parked.Take();  // answering or dropping them now must be harmless

  // While nobody listens, calls fail fast with Unavailable.
  auto down = client.CallSync("echo", "x", 5s);
  EXPECT_EQ(down.status().code(), StatusCode::kUnavailable);

  auto revived = StartServer(port);
  ASSERT_EQ(revived->port(), port);
  ASSERT_TRUE(WaitFor([&] { return client.CallSync("echo", "back", 1s).ok(); }));
  for (auto& outcome : outcomes) EXPECT_EQ(outcome.calls(), 1);
}

TEST_F(TransportTest, GarbageClosesOnlyThatConnection) {
  auto server = StartServer();
  Client before(io_.io(), FastRetry(server->port()));
  ASSERT_TRUE(before.CallSync("echo", "warm", 5s).ok());

  RawSocket raw(server->port());
  ASSERT_TRUE(raw.connected());
  // A 5-byte body that is no protobuf (a varint that never ends).
  ASSERT_TRUE(raw.Write(std::string("\0\0\0\5\xff\xff\xff\xff\xff", 9)));
  EXPECT_TRUE(raw.ClosedByPeer());

  EXPECT_TRUE(before.CallSync("echo", "still here", 5s).ok());
  Client after(io_.io(), FastRetry(server->port()));
  EXPECT_TRUE(after.CallSync("echo", "new", 5s).ok());
}

TEST_F(TransportTest, HttpRequestIsRejected) {
  auto server = StartServer();
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));  // "GET " reads as a 1.2 GB length
  EXPECT_TRUE(raw.ClosedByPeer());
  Client client(io_.io(), FastRetry(server->port()));
  EXPECT_TRUE(client.CallSync("echo", "ok", 5s).ok());
}

TEST_F(TransportTest, FourGibHeaderClosesConnection) {
  auto server = StartServer();
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.Write(std::string("\xff\xff\xff\xff", 4)));
  EXPECT_TRUE(raw.ClosedByPeer());
  ASSERT_TRUE(WaitFor([&] { return server->connection_count() == 0; }));
  Client client(io_.io(), FastRetry(server->port()));
  EXPECT_TRUE(client.CallSync("echo", "ok", 5s).ok());
}

TEST_F(TransportTest, ResponseKindFromClientIsAProtocolError) {
  auto server = StartServer();
  RawSocket raw(server->port());
  proto::Frame frame;
  frame.set_kind(proto::Frame::RESPONSE);
  ASSERT_TRUE(raw.Write(EncodeFrame(frame).value()));
  EXPECT_TRUE(raw.ClosedByPeer());
}

TEST_F(TransportTest, OversizedRequestFailsOnTheClient) {
  auto server = StartServer();
  ClientOptions options = FastRetry(server->port());
  options.max_frame_size = 1024;
  Client client(io_.io(), options);
  auto reply = client.CallSync("echo", std::string(2048, 'x'), 5s);
  EXPECT_EQ(reply.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(client.Send("echo", std::string(2048, 'x')).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(client.CallSync("echo", "small", 5s).ok());
}

TEST_F(TransportTest, FullSendBacklogFailsFast) {
  // A "server" that accepts but never reads: the client's backlog must stay bounded.
  boost::asio::ip::tcp::acceptor silent(io_.io(), {boost::asio::ip::make_address("127.0.0.1"), 0});
  boost::asio::ip::tcp::socket accepted(io_.io());
  std::atomic<bool> accept_done{false};
  silent.async_accept(accepted, [&](boost::system::error_code) { accept_done = true; });
  ClientOptions options = FastRetry(silent.local_endpoint().port());
  options.max_queued_bytes = 1 << 20;
  Client client(io_.io(), options);
  std::string chunk(64 * 1024, 'x');
  Status status;
  for (int i = 0; i < 10000 && status.ok(); ++i) {
    status = client.Send("sink", chunk);
    if (i == 0) {
      ASSERT_TRUE(WaitFor([&] { return client.connected() && accept_done.load(); }));
    }
  }
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  Outcome outcome;
  client.Call("sink", chunk, 5s, outcome.Callback());
  ASSERT_TRUE(WaitFor([&] { return outcome.done(); }));
  EXPECT_EQ(outcome.result().status().code(), StatusCode::kResourceExhausted);
  client.Close();
}

TEST_F(TransportTest, OversizedResponseBecomesAnError) {
  ServerOptions options;
  options.max_frame_size = 1024;
  auto server = StartServer(0, options);
  server->Handle("big", [](std::string, Responder responder) { responder.Respond(std::string(4096, 'x')); });
  Client client(io_.io(), FastRetry(server->port()));
  auto reply = client.CallSync("big", "", 5s);
  EXPECT_EQ(reply.status().code(), StatusCode::kResourceExhausted) << reply.status();
}

TEST_F(TransportTest, NothingListeningIsUnavailable) {
  uint16_t port;
  {
    auto server = StartServer();
    port = server->port();
  }
  Client client(io_.io(), FastRetry(port));
  auto reply = client.CallSync("echo", "x", 5s);
  EXPECT_EQ(reply.status().code(), StatusCode::kUnavailable) << reply.status();
}

TEST_F(TransportTest, BadAddressIsInvalidArgument) {
  Client client(io_.io(), {.address = "not an address"});
  EXPECT_EQ(client.CallSync("echo", "x", 1s).status().code(), StatusCode::kInvalidArgument);
  Server server(io_.io(), {.address = "127.0.0.1:notaport"});
  EXPECT_EQ(server.Start().code(), StatusCode::kInvalidArgument);
}

TEST_F(TransportTest, PortInUseIsAnError) {
  auto server = StartServer();
  Server second(io_.io(), {.address = Address(server->port())});
  Status status = second.Start();
  EXPECT_EQ(status.code(), StatusCode::kIoError) << status;
}

TEST_F(TransportTest, CloseCancelsPendingCalls) {
  auto server = StartServer();
  Parked parked;
  server->Handle("hang", [&](std::string, Responder responder) { parked.Add(std::move(responder)); });
  Client client(io_.io(), FastRetry(server->port()));
  Outcome outcome;
  client.Call("hang", "", 30s, outcome.Callback());
  ASSERT_TRUE(WaitFor([&] { return parked.size() == 1; }));
  client.Close();
  ASSERT_TRUE(WaitFor([&] { return outcome.done(); }));
  EXPECT_EQ(outcome.result().status().code(), StatusCode::kCancelled);
  EXPECT_EQ(client.CallSync("echo", "x", 1s).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(client.Send("echo", "x").code(), StatusCode::kCancelled);
}

TEST_F(TransportTest, StopWaitsForRunningHandlersAndCallsNoneAfter) {
  auto server = StartServer();
  std::atomic<bool> in_handler{false};
  std::atomic<bool> release{false};
  std::atomic<bool> stop_returned{false};
  std::atomic<int> calls_after_stop{0};
  server->Handle("block", [&](std::string, Responder responder) {
    if (stop_returned) calls_after_stop++;
    in_handler = true;
    WaitFor([&] { return release.load(); });
    responder.Respond(std::string("done"));
  });
  server->Handle("count", [&](std::string, Responder responder) {
    if (stop_returned) calls_after_stop++;
    responder.Respond(std::string());
  });
  Client client(io_.io(), FastRetry(server->port()));
  Outcome blocked;
  client.Call("block", "", 10s, blocked.Callback());
  ASSERT_TRUE(WaitFor([&] { return in_handler.load(); }));

  // Keep a second client firing calls while the server stops.
  Client busy(io_.io(), FastRetry(server->port()));
  for (int i = 0; i < 200; ++i) busy.Call("count", "", 10s, [](Result<std::string>) {});

  std::thread stopper([&] {
    server->Stop();
    stop_returned = true;
  });
  std::this_thread::sleep_for(50ms);  // give Stop() the chance to return too early (it must not)
  EXPECT_FALSE(stop_returned.load());
  release = true;
  stopper.join();
  EXPECT_TRUE(stop_returned.load());
  ASSERT_TRUE(WaitFor([&] { return blocked.done(); }));
  EXPECT_EQ(calls_after_stop.load(), 0);
  server.reset();  // destruction after Stop, with calls in flight from `busy`
}

TEST_F(TransportTest, DestroyWithCallsInFlightAndLateResponders) {
  Parked parked;
  std::vector<Outcome> outcomes(50);
  Client client(io_.io(), FastRetry(0));
  {
    auto server = StartServer();
    server->Handle("hang", [&](std::string, Responder responder) { parked.Add(std::move(responder)); });
    client.Close();
    Client live(io_.io(), FastRetry(server->port()));
    for (auto& outcome : outcomes) live.Call("hang", "", 30s, outcome.Callback());
    ASSERT_TRUE(WaitFor([&] { return parked.size() == outcomes.size(); }));
    // Server destroyed first, then the client (both with calls in flight).
  }
  // Responders outliving the server: answering from another thread is harmless.
  std::thread late([&] {
    for (auto& responder : parked.Take()) responder.Respond(std::string("too late"));
  });
  late.join();
  for (auto& outcome : outcomes) {
    ASSERT_TRUE(WaitFor([&] { return outcome.done(); }));
    EXPECT_FALSE(outcome.result().ok());
    EXPECT_EQ(outcome.calls(), 1);
  }
}

TEST_F(TransportTest, StopFromInsideAHandler) {
  auto server = StartServer();
  Server* raw = server.get();
  std::atomic<bool> stopped{false};
  server->Handle("stop", [&](std::string, Responder responder) {
    raw->Stop();
    stopped = true;
    responder.Respond(std::string("bye"));
  });
  Client client(io_.io(), FastRetry(server->port()));
  client.Call("stop", "", 5s, [](Result<std::string>) {});
  ASSERT_TRUE(WaitFor([&] { return stopped.load(); }));
}

TEST_F(TransportTest, HelloAuthentication) {
  ServerOptions options;
  options.verify_hello = [](std::string_view hello, const std::string&) {
    return hello == "secret" ? Status::Ok() : UnauthenticatedError("bad token");
  };
  auto server = StartServer(0, options);

  ClientOptions good = FastRetry(server->port());
  good.make_hello = [] { return std::string("secret"); };
  Client trusted(io_.io(), good);
  auto reply = trusted.CallSync("echo", "in", 5s);
  ASSERT_TRUE(reply.ok()) << reply.status();

  ClientOptions bad = FastRetry(server->port());
  bad.make_hello = [] { return std::string("guess"); };
  Client stranger(io_.io(), bad);
  auto rejected = stranger.CallSync("echo", "in", 5s);
  EXPECT_EQ(rejected.status().code(), StatusCode::kUnauthenticated) << rejected.status();

  Client anonymous(io_.io(), FastRetry(server->port()));
  auto refused = anonymous.CallSync("echo", "in", 5s);
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(trusted.CallSync("echo", "still", 5s).ok());
}


// ---- cluster-key peer authentication (peer_auth.h) ----

const std::string kKey(32, 'k');

ServerOptions KeyedServer(std::string key) {
  ServerOptions options;
  options.cluster_key = std::move(key);
  return options;
}

ClientOptions KeyedClient(uint16_t port, std::optional<std::string> key) {
  ClientOptions options = FastRetry(port);
  options.cluster_key = std::move(key);
  return options;
}

TEST_F(TransportTest, ClusterKeyPeersTalk) {
  auto server = StartServer(0, KeyedServer(kKey));
  EXPECT_TRUE(server->authenticates_peers());
  Client client(io_.io(), KeyedClient(server->port(), kKey));
  auto reply = client.CallSync("echo", "in", 5s);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "in");
  EXPECT_TRUE(client.connected());
  // One-way messages and pipelined calls flow after the handshake too.
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 20; ++i) {
    outcomes.push_back(std::make_unique<Outcome>());
    client.Call("echo", std::to_string(i), 5s, outcomes.back()->Callback());
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(WaitFor([&] { return outcomes[i]->done(); }));
    EXPECT_EQ(*outcomes[i]->result(), std::to_string(i));
  }
}

TEST_F(TransportTest, ClusterKeyCallsBeforeConnectWaitForHandshake) {
  auto server = StartServer(0, KeyedServer(kKey));
  Client client(io_.io(), KeyedClient(server->port(), kKey));
  std::vector<std::unique_ptr<Outcome>> outcomes;
  for (int i = 0; i < 5; ++i) {  // queued while connecting and authenticating
    outcomes.push_back(std::make_unique<Outcome>());
    client.Call("echo", std::to_string(i), 5s, outcomes.back()->Callback());
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(WaitFor([&] { return outcomes[i]->done(); }));
    ASSERT_TRUE(outcomes[i]->result().ok()) << outcomes[i]->result().status();
  }
}

TEST_F(TransportTest, ClusterKeyWrongKeyIsRefused) {
  auto server = StartServer(0, KeyedServer(kKey));
  std::atomic<int> oneways{0};
  server->HandleOneWay("note", [&](std::string, const std::string&) { ++oneways; });
  Client stranger(io_.io(), KeyedClient(server->port(), std::string(32, 'x')));
  (void)stranger.Send("note", "x");
  auto rejected = stranger.CallSync("echo", "in", 5s);
  EXPECT_EQ(rejected.status().code(), StatusCode::kUnauthenticated) << rejected.status();
  EXPECT_NE(rejected.status().message().find("cluster"), std::string::npos) << rejected.status();
  EXPECT_FALSE(stranger.connected());
  EXPECT_EQ(oneways.load(), 0);
}

TEST_F(TransportTest, ClusterKeyClientWithoutKeyIsRefused) {
  auto server = StartServer(0, KeyedServer(kKey));
  std::atomic<int> oneways{0};
  server->HandleOneWay("note", [&](std::string, const std::string&) { ++oneways; });
  Client anonymous(io_.io(), KeyedClient(server->port(), std::string()));
  auto rejected = anonymous.CallSync("echo", "in", 5s);
  (void)anonymous.Send("note", "x");
  EXPECT_EQ(rejected.status().code(), StatusCode::kUnauthenticated) << rejected.status();
  EXPECT_NE(rejected.status().message().find("no cluster key"), std::string::npos) << rejected.status();
  EXPECT_EQ(oneways.load(), 0);
  // A raw socket that sends garbage instead of the handshake is cut off too.
  RawSocket raw(server->port());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Write(std::string("\0\0\0\2\x10\x02", 6)));
  EXPECT_TRUE(raw.ClosedByPeer());
}

TEST_F(TransportTest, ClusterKeyClientRefusesServerWithoutKey) {
  auto server = StartServer(0, KeyedServer(std::string()));
  EXPECT_FALSE(server->authenticates_peers());
  ClientOptions options = KeyedClient(server->port(), kKey);
  options.connect_timeout = 300ms;
  Client client(io_.io(), options);
  auto refused = client.CallSync("echo", "in", 5s);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << refused.status();
  EXPECT_NE(refused.status().message().find("challenge"), std::string::npos) << refused.status();
}

TEST_F(TransportTest, ClusterKeyFromProcessSetting) {
  SetProcessClusterKey(kKey);
  auto server = StartServer();  // options name no key: the process key applies
  Client member(io_.io(), FastRetry(server->port()));
  auto reply = member.CallSync("echo", "in", 5s);
  Client outsider(io_.io(), KeyedClient(server->port(), std::string()));
  auto refused = outsider.CallSync("echo", "in", 5s);
  SetProcessClusterKey(std::string());
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << refused.status();
}

}  // namespace
}  // namespace cairn::net
