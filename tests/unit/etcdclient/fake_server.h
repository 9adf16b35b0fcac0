// FakeGateway: an in-process HTTP/1.1 server (Boost.Beast, a thread per connection, keep-alive) answering what a test's handler says, to test EtcdClient without etcd.
// Replies can be whole bodies, chunked streams, a connection closed without answer, or a hang
// (until the server is destroyed), for failover and deadline tests.
// Destroy clients before their server (then the server's blocking read ends); the destructor also
// shuts the open connection down and wakes the accept loop, so it never waits forever.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "cairn/common/strings.h"

namespace cairn::etcdclient::testing {

struct FakeReply {
  unsigned status = 200;
  std::string body;                 // a whole body (when chunks is empty)
  std::vector<std::string> chunks;  // a chunked stream, one HTTP chunk each
  bool hang_after_chunks = false;   // keep the stream open after the chunks
  bool hang = false;                // read the request, never answer
  bool close_without_reply = false;
};

struct SeenRequest {
  std::string method, target, body;
};

class FakeGateway {
 public:
  explicit FakeGateway(std::function<FakeReply(const SeenRequest&)> handler);
  ~FakeGateway();

  HostPort endpoint() const { return {"127.0.0.1", port_}; }
  int connections() const { return connections_.load(); }
  std::vector<SeenRequest> requests() const;

 private:
  void AcceptLoop();
  void Serve(boost::asio::ip::tcp::socket& socket);
  void Hang();

  std::function<FakeReply(const SeenRequest&)> handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::condition_variable stopped_changed_;
  bool stopped_ = false;         // guarded by mutex_
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> sockets_;  // guarded by mutex_: every accepted one
  std::vector<SeenRequest> requests_;  // guarded by mutex_
  std::vector<std::thread> connection_threads_;  // guarded by mutex_ until the accept thread ended
  std::thread thread_;
};

// A 127.0.0.1 port with nothing listening.
uint16_t DeadPort();

}  // namespace cairn::etcdclient::testing
