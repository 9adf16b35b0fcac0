// Server: accepts framed-protobuf connections and dispatches frames to handlers by method name.
//
//   boost::asio::io_context io;
//   cairn::net::Server server(io, {.address = "127.0.0.1:0"});
//   server.Handle("kv.Get", [](std::string payload, cairn::net::Responder responder) {
//     responder.Respond(Lookup(payload));          // now, or later from any thread
//   });
//   CAIRN_RETURN_IF_ERROR(server.Start());         // server.port() is the bound port
//   ... threads run io.run() ...
//   server.Stop();
//
// Threading: all public methods are thread-safe. Handlers run on the io_context's threads, several
// at once when several threads run it, never under a lock of ours; a handler that blocks stalls
// the reads of its connection, so do the work elsewhere and answer through the Responder.
// The Server must be destroyed before its io_context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "cairn/common/status.h"
#include "cairn/net/frame.h"

namespace cairn::net {

namespace internal {
class ServerCore;
struct ResponderState;
}  // namespace internal

// Answers one REQUEST. Copyable; all copies share one answer: the first Respond() wins and later
// ones are ignored. Callable from any thread, also after the Server stopped (then it does nothing).
// If every copy is destroyed without an answer, the caller gets Internal("... did not respond")
// rather than waiting for its deadline.
class Responder {
 public:
  explicit Responder(std::shared_ptr<internal::ResponderState> state) : state_(std::move(state)) {}

  // OK value: the response payload. Error: sent as the response status.
  void Respond(Result<std::string> result);
  void Respond(Status status);  // status must not be OK; use Respond(std::string()) for an empty OK

  // The caller's address, "host:port".
  const std::string& peer() const;

 private:
  std::shared_ptr<internal::ResponderState> state_;
};

using RequestHandler = std::function<void(std::string payload, Responder responder)>;
using OneWayHandler = std::function<void(std::string payload, const std::string& peer)>;

// Authentication hook: when set, the first frame of every connection must be a HELLO whose payload
// this accepts; otherwise the connection is answered with the error and closed. Runs on an
// io_context thread. (A TLS or token handshake plugs in here later.)
using HelloVerifier = std::function<Status(std::string_view hello, const std::string& peer)>;

struct ServerOptions {
  std::string address = "127.0.0.1:0";  // host:port to listen on; port 0 picks a free port
  size_t max_frame_size = kDefaultMaxFrameSize;
  // Per connection: response bytes not yet written. A response that would exceed it is replaced
  // by a small ResourceExhausted error if that still fits, else dropped (the caller's deadline
  // fires). 0: unbounded.
  size_t max_queued_bytes = size_t{256} << 20;
  HelloVerifier verify_hello;            // empty: no authentication
  // Peer authentication (peer_auth.h): nullopt uses the process-wide cluster key, "" turns it off,
  // anything else is the key. With a key, every connection must pass the HMAC challenge-response
  // before any call is served; verify_hello is then ignored.
  std::optional<std::string> cluster_key;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options);
  // Stops (see Stop) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers handlers; may be called before or after Start. A later registration replaces an
  // earlier one for the same method.
  void Handle(const std::string& method, RequestHandler handler);
  void HandleOneWay(const std::string& method, OneWayHandler handler);

  // Binds, listens and starts accepting. Errors: InvalidArgument for a bad address, IoError (with
  // the errno text) when the address cannot be bound, FailedPrecondition when already started.
  Status Start();

  // The bound port, after a successful Start (useful with port 0); 0 before.
  uint16_t port() const;

  // Stops accepting (the port is released before this returns), closes every connection, and
  // waits for handlers that are running to return; no handler is called after Stop() returns.
  // Calls in flight get no answer (their clients see the connection drop: Unavailable).
  // Idempotent. May be called from inside a handler (it then does not wait for that handler).
  void Stop();

  // Open connections right now (for tests and metrics).
  size_t connection_count() const;

  // True when this server requires the cluster key of its peers.
  bool authenticates_peers() const;

 private:
  std::shared_ptr<internal::ServerCore> core_;
};

}  // namespace cairn::net
