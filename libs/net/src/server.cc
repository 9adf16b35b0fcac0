#include "cairn/net/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/net/peer_auth.h"
#include "connection.h"

namespace cairn::net {
namespace internal {

using boost::asio::ip::tcp;

struct ResponderState {
  std::weak_ptr<Connection> connection;
  uint64_t call_id = 0;
  std::string method;
  std::string peer;
  std::atomic<bool> answered{false};

  // Sends the response once; later calls do nothing. Safe from any thread at any time: the
  // connection is reached only through a weak pointer and a closed one ignores writes.
  void Send(Result<std::string> result) {
    if (answered.exchange(true)) return;
    std::shared_ptr<Connection> target = connection.lock();
    if (!target) return;
    proto::Frame frame;
    frame.set_call_id(call_id);
    frame.set_kind(proto::Frame::RESPONSE);
    if (result.ok()) {
      frame.set_payload(std::move(result).value());
    } else {
      *frame.mutable_status() = StatusToProto(result.status());
    }
    Status written = target->WriteFrame(frame);
    if (written.code() == StatusCode::kResourceExhausted) {
      // The answer is too big for the wire; tell the caller instead of leaving it to time out.
      frame.clear_payload();
      *frame.mutable_status() = StatusToProto(written.WithContext("response to " + method));
      (void)target->WriteFrame(frame);
    }
  }

  ~ResponderState() {
    if (!answered.load()) Send(InternalError("handler for " + method + " did not respond"));
  }
};

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  ServerCore(boost::asio::io_context& io, ServerOptions options)
      : io_(io),
        options_(std::move(options)),
        cluster_key_(ResolveClusterKey(options_.cluster_key)),
        acceptor_(io),
        retry_timer_(io) {}

  bool authenticates_peers() const { return !cluster_key_.empty(); }

  void Handle(const std::string& method, RequestHandler handler) {
    std::lock_guard lock(mu_);
    handlers_[method] = std::make_shared<RequestHandler>(std::move(handler));
  }

  void HandleOneWay(const std::string& method, OneWayHandler handler) {
    std::lock_guard lock(mu_);
    oneway_handlers_[method] = std::make_shared<OneWayHandler>(std::move(handler));
  }

  Status Start();
  void Stop();

  uint16_t port() const {
    std::lock_guard lock(mu_);
    return port_;
  }

  size_t connection_count() const {
    std::lock_guard lock(mu_);
    return connections_.size();
  }

 private:
  struct Peer {
    std::shared_ptr<Connection> connection;
    bool authenticated = false;
    std::string server_nonce;  // of the challenge sent, with a cluster key
  };

  // Which ServerCore handlers are running on this thread, so Stop() called from inside a handler
  // waits for the others but not for itself.
  static thread_local std::vector<const ServerCore*> running_here_;

  void AcceptMore();  // REQUIRES: mu_
  void OnAccept(boost::system::error_code error, tcp::socket socket);
  void OnFrame(Connection& connection, proto::Frame frame);
  void OnClose(Connection& connection, const Status& reason);
  bool CheckHello(Connection& connection, const proto::Frame& frame);
  // The verdict on a connection's first frame; *answer_payload receives what the HELLO answer carries.
  Status VerifyFirstFrame(Connection& connection, const proto::Frame& frame, std::string* answer_payload);
  void DispatchRequest(Connection& connection, proto::Frame frame);
  void DispatchOneWay(Connection& connection, proto::Frame frame);
  // Counts a handler as running unless stopped; false means do not call it.
  bool EnterHandler();
  void LeaveHandler();

  boost::asio::io_context& io_;
  const ServerOptions options_;
  const std::string cluster_key_;  // empty: no peer authentication

  mutable std::mutex mu_;
  std::condition_variable idle_;
  bool started_ = false;                                    // GUARDED_BY(mu_)
  bool stopped_ = false;                                    // GUARDED_BY(mu_)
  tcp::acceptor acceptor_;                                  // GUARDED_BY(mu_)
  boost::asio::steady_timer retry_timer_;                   // GUARDED_BY(mu_)
  uint16_t port_ = 0;                                       // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::shared_ptr<RequestHandler>> handlers_;         // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::shared_ptr<OneWayHandler>> oneway_handlers_;   // GUARDED_BY(mu_)
  std::unordered_map<const Connection*, Peer> connections_;                          // GUARDED_BY(mu_)
  int running_handlers_ = 0;                                // GUARDED_BY(mu_)
};

thread_local std::vector<const ServerCore*> ServerCore::running_here_;

Result<tcp::endpoint> ResolveListenAddress(boost::asio::io_context& io, const std::string& address) {
  CAIRN_ASSIGN_OR_RETURN(HostPort host_port, ParseHostPort(address, /*allow_zero=*/true));
  boost::system::error_code error;
  auto ip = boost::asio::ip::make_address(host_port.host, error);
  if (!error) return tcp::endpoint(ip, host_port.port);
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host_port.host, std::to_string(host_port.port), error);
  if (error || results.empty()) {
    return InvalidArgumentError("cannot resolve listen address \"" + address + "\": " + error.message());
  }
  return results.begin()->endpoint();
}

Status ServerCore::Start() {
  CAIRN_ASSIGN_OR_RETURN(tcp::endpoint endpoint, ResolveListenAddress(io_, options_.address));
  std::lock_guard lock(mu_);
  if (started_ || stopped_) return FailedPreconditionError("server already started or stopped");
  boost::system::error_code error;
  auto fail = [&](const char* step) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return IoError(std::string(step) + " " + options_.address + ": " + error.message());
  };
  acceptor_.open(endpoint.protocol(), error);
  if (error) return fail("open");
  // Lets a restarted server take its port back while old connections sit in TIME_WAIT.
  acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
  if (error) return fail("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, error);
  if (error) return fail("bind");
  acceptor_.listen(tcp::socket::max_listen_connections, error);
  if (error) return fail("listen on");
  port_ = acceptor_.local_endpoint(error).port();
  started_ = true;
  log::Info("net.listening", "address", options_.address, "port", port_, "peer_auth",
            cluster_key_.empty() ? (options_.verify_hello ? "hello-hook" : "off") : "cluster-key");
  AcceptMore();
  return Status::Ok();
}

void ServerCore::AcceptMore() {
  acceptor_.async_accept(io_, [weak = weak_from_this()](boost::system::error_code error, tcp::socket socket) {
    if (auto self = weak.lock()) self->OnAccept(error, std::move(socket));
  });
}

void ServerCore::OnAccept(boost::system::error_code error, tcp::socket socket) {
  std::lock_guard lock(mu_);
  if (stopped_) return;  // `socket` closes as it goes out of scope
  if (error) {
    if (error == boost::asio::error::operation_aborted) return;
    // E.g. EMFILE: pause instead of spinning, then keep serving.
    log::Warn("net.accept_failed", "address", options_.address, "error", error.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([weak = weak_from_this()](boost::system::error_code timer_error) {
      auto self = weak.lock();
      if (!self || timer_error) return;
      std::lock_guard relock(self->mu_);
      if (!self->stopped_) self->AcceptMore();
    });
    return;
  }
  std::string peer = RemoteAddress(socket);
  std::weak_ptr<ServerCore> weak = weak_from_this();
  Connection::Callbacks callbacks{
      .on_frame = [weak](Connection& c, proto::Frame f) { if (auto s = weak.lock()) s->OnFrame(c, std::move(f)); },
      .on_close = [weak](Connection& c, const Status& r) { if (auto s = weak.lock()) s->OnClose(c, r); },
  };
  auto connection = std::make_shared<Connection>(std::move(socket), peer, options_.max_frame_size,
                                                 options_.max_queued_bytes, std::move(callbacks));
  Peer entry{connection, !options_.verify_hello && cluster_key_.empty(), {}};
  if (!cluster_key_.empty()) {
    proto::Frame challenge;
    challenge.set_kind(proto::Frame::HELLO);
    challenge.set_payload(MakeChallenge(&entry.server_nonce));
    (void)connection->WriteFrame(challenge);  // a fresh connection only fails when already closed
  }
  connections_[connection.get()] = std::move(entry);
  log::Debug("net.accepted", "peer", peer);
  connection->Start();
  AcceptMore();
}

void ServerCore::OnClose(Connection& connection, const Status& reason) {
  std::lock_guard lock(mu_);
  connections_.erase(&connection);
  log::Debug("net.disconnected", "peer", connection.peer(), "reason", reason);
}

bool ServerCore::EnterHandler() {
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  ++running_handlers_;
  running_here_.push_back(this);
  return true;
}

void ServerCore::LeaveHandler() {
  running_here_.erase(std::find(running_here_.rbegin(), running_here_.rend(), this).base() - 1);
  std::lock_guard lock(mu_);
  --running_handlers_;
  idle_.notify_all();
}

// Returns true when the frame may be processed as a call.
Status ServerCore::VerifyFirstFrame(Connection& connection, const proto::Frame& frame, std::string* answer_payload) {
  if (frame.kind() != proto::Frame::HELLO) {
    return UnauthenticatedError(cluster_key_.empty()
                                    ? "first frame must be HELLO"
                                    : "peer authentication required: the caller sent no HELLO (it has no cluster key)");
  }
  if (cluster_key_.empty()) return options_.verify_hello(frame.payload(), connection.peer());
  std::string server_nonce;
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(&connection);
    if (it != connections_.end()) server_nonce = it->second.server_nonce;
  }
  auto proof = VerifyClientResponse(cluster_key_, server_nonce, frame.payload());
  if (!proof.ok()) return proof.status();
  *answer_payload = std::move(*proof);
  return Status::Ok();
}

bool ServerCore::CheckHello(Connection& connection, const proto::Frame& frame) {
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(&connection);
    if (it == connections_.end() || it->second.authenticated) return it != connections_.end();
  }
  proto::Frame answer;
  answer.set_kind(proto::Frame::HELLO);
  Status verdict = VerifyFirstFrame(connection, frame, answer.mutable_payload());
  *answer.mutable_status() = StatusToProto(verdict);
  (void)connection.WriteFrame(answer);
  if (!verdict.ok()) {
    log::Warn("net.unauthenticated", "peer", connection.peer(), "error", verdict);
    connection.CloseAfterFlush(verdict);
    return false;
  }
  std::lock_guard lock(mu_);
  auto it = connections_.find(&connection);
  if (it != connections_.end()) it->second.authenticated = true;
  return false;  // the HELLO itself is consumed
}

void ServerCore::OnFrame(Connection& connection, proto::Frame frame) {
  if ((options_.verify_hello || !cluster_key_.empty()) && !CheckHello(connection, frame)) return;
  switch (frame.kind()) {
    case proto::Frame::REQUEST:
      DispatchRequest(connection, std::move(frame));
      return;
    case proto::Frame::ONEWAY:
      DispatchOneWay(connection, std::move(frame));
      return;
    default:
      log::Warn("net.protocol_error", "peer", connection.peer(), "error",
                "unexpected frame kind " + proto::Frame::Kind_Name(frame.kind()));
      connection.Close(CorruptionError("unexpected frame kind from client"));
      return;
  }
}

void ServerCore::DispatchRequest(Connection& connection, proto::Frame frame) {
  std::shared_ptr<RequestHandler> handler;
  {
    std::lock_guard lock(mu_);
    auto it = handlers_.find(frame.method());
    if (it != handlers_.end()) handler = it->second;
  }
  auto state = std::make_shared<ResponderState>();
  state->connection = connection.shared_from_this();
  state->call_id = frame.call_id();
  state->method = frame.method();
  state->peer = connection.peer();
  if (!handler) {
    state->Send(UnimplementedError("no handler for method " + frame.method()));
    return;
  }
  if (!EnterHandler()) {
    state->answered = true;  // stopping: the connection is going away, no answer
    return;
  }
  (*handler)(std::move(*frame.mutable_payload()), Responder(std::move(state)));
  LeaveHandler();
}

void ServerCore::DispatchOneWay(Connection& connection, proto::Frame frame) {
  std::shared_ptr<OneWayHandler> handler;
  {
    std::lock_guard lock(mu_);
    auto it = oneway_handlers_.find(frame.method());
    if (it != oneway_handlers_.end()) handler = it->second;
  }
  if (!handler) {
    log::Debug("net.unknown_oneway", "peer", connection.peer(), "method", frame.method());
    return;
  }
  if (!EnterHandler()) return;
  (*handler)(std::move(*frame.mutable_payload()), connection.peer());
  LeaveHandler();
}

void ServerCore::Stop() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      retry_timer_.cancel();
      for (auto& [key, peer] : connections_) open.push_back(peer.connection);
      connections_.clear();
      if (started_) log::Info("net.stopped", "address", options_.address, "port", port_);
    }
  }
  for (auto& connection : open) connection->Close(UnavailableError("server stopping"));
  int mine = static_cast<int>(std::count(running_here_.begin(), running_here_.end(), this));
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return running_handlers_ <= mine; });
}

}  // namespace internal

void Responder::Respond(Result<std::string> result) { state_->Send(std::move(result)); }

void Responder::Respond(Status status) {
  if (status.ok()) status = InternalError("Responder::Respond(Status) called with OK");
  state_->Send(std::move(status));
}

const std::string& Responder::peer() const { return state_->peer; }

Server::Server(boost::asio::io_context& io, ServerOptions options)
    : core_(std::make_shared<internal::ServerCore>(io, std::move(options))) {}

Server::~Server() { core_->Stop(); }

void Server::Handle(const std::string& method, RequestHandler handler) { core_->Handle(method, std::move(handler)); }

void Server::HandleOneWay(const std::string& method, OneWayHandler handler) {
  core_->HandleOneWay(method, std::move(handler));
}

Status Server::Start() { return core_->Start(); }
uint16_t Server::port() const { return core_->port(); }
void Server::Stop() { core_->Stop(); }
size_t Server::connection_count() const { return core_->connection_count(); }
bool Server::authenticates_peers() const { return core_->authenticates_peers(); }

}  // namespace cairn::net
