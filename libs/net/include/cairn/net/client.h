// Client: calls one peer's Server over one TCP connection.
//
//   cairn::net::Client client(io, {.address = "10.0.0.2:7001"});
//   client.Call("kv.Get", request, std::chrono::seconds(1), [](cairn::Result<std::string> reply) { ... });
//
// Connection: made lazily by the first Call/Send; when it drops, or an attempt fails, the client
// reconnects by itself after an exponential backoff with jitter (Backoff) and keeps trying until
// Close(). While it waits to retry, calls fail at once with Unavailable instead of queueing
// (Raft and the replication protocol retry on their own; stale queued traffic would only hurt).
// Calls made while a connection attempt is under way wait for that attempt.
//
// Guarantees for Call: the callback runs exactly once: with the response payload, the server's
// error status, DeadlineExceeded when no response arrived within the timeout, Unavailable when
// the connection could not be made or dropped with the call in flight, Cancelled after Close().
//
// Threading: all public methods are thread-safe. Callbacks run on an io_context thread with no
// lock held; they may call back into the Client. Writes are queued and go out in batches (one
// gather-write for all frames queued while the previous write was in flight).
// The Client must be destroyed before its io_context; the destructor Close()s.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/ids.h"
#include "cairn/common/status.h"
#include "cairn/net/frame.h"

namespace cairn::net {

namespace internal {
class ClientCore;
}  // namespace internal

using CallCallback = std::function<void(Result<std::string>)>;

struct ClientOptions {
  std::string address;  // "host:port" of the server; a name is resolved on each connect
  Duration initial_backoff = std::chrono::milliseconds(50);
  Duration max_backoff = std::chrono::seconds(5);
  Duration connect_timeout = std::chrono::seconds(5);
  size_t max_frame_size = kDefaultMaxFrameSize;
  // Bytes queued but not yet written to the socket; beyond this Call/Send fail with
  // ResourceExhausted (a peer that stops reading must not exhaust our memory). 0: unbounded.
  size_t max_queued_bytes = size_t{256} << 20;
  // Jitter source for the backoff; used only under the client's lock. Default: seeded from SystemRandom().
  std::shared_ptr<Random> random;
  // Authentication hook: when set, its result is sent as a HELLO frame first on every connection
  // (see ServerOptions::verify_hello). A rejection fails calls with the server's status.
  std::function<std::string()> make_hello;
  // Peer authentication (peer_auth.h): nullopt uses the process-wide cluster key, "" turns it off,
  // anything else is the key. With a key, each connection first answers the server's challenge and
  // checks the server's proof; calls wait for that (bounded by connect_timeout) and fail with
  // Unauthenticated when either side does not hold the key. make_hello is then ignored.
  std::optional<std::string> cluster_key;
};

class Client {
 public:
  // Never fails: a bad address makes every call fail with InvalidArgument.
  Client(boost::asio::io_context& io, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a REQUEST; `done` runs once as described above. A timeout <= 0 fails at once with
  // DeadlineExceeded; a request larger than max_frame_size fails with ResourceExhausted.
  void Call(const std::string& method, std::string payload, Duration timeout, CallCallback done);

  // Blocking Call for tests and the CLI. Must not run on a thread of the io_context (it would wait
  // for itself when that is the only thread).
  Result<std::string> CallSync(const std::string& method, std::string payload, Duration timeout);

  // Queues a ONEWAY frame. Ok means queued, not delivered. Unavailable while waiting to reconnect
  // or after Close(); ResourceExhausted when larger than max_frame_size or the backlog is full.
  Status Send(const std::string& method, std::string payload);

  // Fails pending calls with Cancelled, closes the connection and stops reconnecting. Idempotent.
  void Close();

  // True while a connection is established (and, with make_hello, sent its HELLO; with a cluster
  // key, authenticated both ways).
  bool connected() const;

  const std::string& address() const;

 private:
  std::shared_ptr<internal::ClientCore> core_;
};

}  // namespace cairn::net
