#include "cairn/net/client.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/net/backoff.h"
#include "cairn/net/peer_auth.h"
#include "connection.h"

namespace cairn::net {
namespace internal {

using boost::asio::ip::tcp;

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  ClientCore(boost::asio::io_context& io, ClientOptions options);

  void Call(const std::string& method, std::string payload, Duration timeout, CallCallback done);
  Status Send(const std::string& method, std::string payload);
  void Close();
  bool connected() const {
    std::lock_guard lock(mu_);
    return state_ == State::kConnected;
  }
  const std::string& address() const { return options_.address; }

 private:
  // kAuthenticating: connected, running the cluster-key handshake; calls wait in waiting_.
  enum class State { kIdle, kConnecting, kAuthenticating, kConnected, kBackoff, kClosed };

  struct Pending {
    CallCallback done;
    std::unique_ptr<boost::asio::steady_timer> deadline;
  };
  using Failures = std::vector<std::pair<CallCallback, Status>>;

  // Queues or writes an encoded frame, connecting first if idle. Error when it cannot be sent now.
  Status SubmitLocked(std::string encoded);  // REQUIRES: mu_
  void StartConnectLocked();                 // REQUIRES: mu_
  // Tries endpoints_[next_endpoint_++]; a name can resolve to several (IPv6 and IPv4).
  void ConnectNextLocked();                  // REQUIRES: mu_
  void OnResolved(uint64_t attempt, boost::system::error_code error, tcp::resolver::results_type results);
  void OnConnected(uint64_t attempt, boost::system::error_code error);
  void OnConnectTimeout(uint64_t attempt, boost::system::error_code error);
  // Gives up on the current attempt: fails every pending call and schedules a retry.
  Failures ConnectFailedLocked(const Status& reason);  // REQUIRES: mu_
  void OnBackoffDone(uint64_t attempt, boost::system::error_code error);
  void OnFrame(Connection& connection, proto::Frame frame);
  // A HELLO from the server: a challenge, or the answer to our HELLO.
  void OnHello(Connection& connection, const proto::Frame& frame);
  // With a cluster key: answers the challenge, or checks the server's proof and lets calls flow.
  // Returns the error that must close the connection (OK to keep going).
  Status OnKeyHelloLocked(const proto::Frame& frame);  // REQUIRES: mu_
  void OnConnectionClosed(Connection& connection, const Status& reason);
  void ExpireCall(uint64_t call_id, boost::system::error_code error);
  Failures TakeAllPendingLocked(const Status& status);  // REQUIRES: mu_
  // Runs callbacks later on the io_context, so they never run inside a caller's Call/Close.
  void PostFailures(Failures failures);
  void PostFailure(CallCallback done, Status status);

  boost::asio::io_context& io_;
  const ClientOptions options_;
  const std::string cluster_key_;  // empty: no peer authentication
  Result<HostPort> target_;  // options_.address, parsed once

  mutable std::mutex mu_;
  State state_ = State::kIdle;                          // GUARDED_BY(mu_)
  uint64_t attempt_ = 0;                                // GUARDED_BY(mu_): tags handlers of one attempt
  tcp::resolver resolver_;                              // GUARDED_BY(mu_)
  tcp::socket connecting_;                              // GUARDED_BY(mu_)
  std::vector<tcp::endpoint> endpoints_;                // GUARDED_BY(mu_): of the current attempt
  size_t next_endpoint_ = 0;                            // GUARDED_BY(mu_)
  boost::asio::steady_timer connect_timer_;             // GUARDED_BY(mu_)
  boost::asio::steady_timer backoff_timer_;             // GUARDED_BY(mu_)
  Backoff backoff_;                                     // GUARDED_BY(mu_)
  std::shared_ptr<Random> random_;                      // GUARDED_BY(mu_)
  std::shared_ptr<Connection> connection_;              // GUARDED_BY(mu_)
  std::vector<std::string> waiting_;                    // GUARDED_BY(mu_): frames waiting for a connection
  std::unordered_map<uint64_t, Pending> pending_;       // GUARDED_BY(mu_)
  std::atomic<uint64_t> next_call_id_{1};
  Status last_error_;                                   // GUARDED_BY(mu_)
  Status hello_rejected_;                               // GUARDED_BY(mu_)
  bool challenge_answered_ = false;                     // GUARDED_BY(mu_): of the current connection
  std::string expected_server_proof_;                   // GUARDED_BY(mu_)
};

ClientCore::ClientCore(boost::asio::io_context& io, ClientOptions options)
    : io_(io),
      options_(std::move(options)),
      cluster_key_(ResolveClusterKey(options_.cluster_key)),
      target_(ParseHostPort(options_.address)),
      resolver_(io),
      connecting_(io),
      connect_timer_(io),
      backoff_timer_(io),
      backoff_(options_.initial_backoff, options_.max_backoff),
      random_(options_.random ? options_.random : std::make_shared<Random>(SystemRandom().Next())) {}

void ClientCore::PostFailure(CallCallback done, Status status) {
  boost::asio::post(io_, [done = std::move(done), status = std::move(status)] { done(status); });
}

void ClientCore::PostFailures(Failures failures) {
  for (auto& [done, status] : failures) PostFailure(std::move(done), std::move(status));
}

ClientCore::Failures ClientCore::TakeAllPendingLocked(const Status& status) {
  Failures failures;
  failures.reserve(pending_.size());
  for (auto& [id, pending] : pending_) failures.emplace_back(std::move(pending.done), status);
  pending_.clear();  // destroying the timers cancels them
  waiting_.clear();
  return failures;
}

void ClientCore::Call(const std::string& method, std::string payload, Duration timeout, CallCallback done) {
  if (!target_.ok()) return PostFailure(std::move(done), target_.status());
  if (timeout <= Duration::zero()) return PostFailure(std::move(done), DeadlineExceededError("timeout <= 0"));
  proto::Frame frame;
  frame.set_kind(proto::Frame::REQUEST);
  frame.set_method(method);
  frame.set_payload(std::move(payload));
  uint64_t call_id = next_call_id_.fetch_add(1, std::memory_order_relaxed);
  frame.set_call_id(call_id);
  std::string encoded;
  Status status = AppendEncodedFrame(frame, &encoded, options_.max_frame_size);  // outside the lock
  if (!status.ok()) return PostFailure(std::move(done), status.WithContext(method));
  std::lock_guard lock(mu_);
  status = SubmitLocked(std::move(encoded));
  if (!status.ok()) return PostFailure(std::move(done), status.WithContext(method));
  auto deadline = std::make_unique<boost::asio::steady_timer>(io_, timeout);
  deadline->async_wait([weak = weak_from_this(), call_id](boost::system::error_code error) {
    if (auto self = weak.lock()) self->ExpireCall(call_id, error);
  });
  pending_.emplace(call_id, Pending{std::move(done), std::move(deadline)});
}

Status ClientCore::Send(const std::string& method, std::string payload) {
  if (!target_.ok()) return target_.status();
  proto::Frame frame;
  frame.set_kind(proto::Frame::ONEWAY);
  frame.set_method(method);
  frame.set_payload(std::move(payload));
  std::string encoded;
  CAIRN_RETURN_IF_ERROR(AppendEncodedFrame(frame, &encoded, options_.max_frame_size));
  std::lock_guard lock(mu_);
  return SubmitLocked(std::move(encoded));
}

Status ClientCore::SubmitLocked(std::string encoded) {
  switch (state_) {
    case State::kClosed:
      return CancelledError("client for " + options_.address + " is closed");
    case State::kBackoff:
      // A refused handshake stays the answer until a retry succeeds: callers must see why.
      if (last_error_.code() == StatusCode::kUnauthenticated) return last_error_;
      return UnavailableError("not connected to " + options_.address + ": " + last_error_.ToString());
    case State::kConnected:
      // Unavailable if it closed under us (its on_close moves us to kBackoff); ResourceExhausted
      // when the peer is not reading fast enough.
      return connection_->Write(std::move(encoded));
    case State::kIdle:
      StartConnectLocked();
      [[fallthrough]];
    case State::kConnecting:
    case State::kAuthenticating:
      waiting_.push_back(std::move(encoded));
      return Status::Ok();
  }
  return InternalError("unreachable client state");
}

void ClientCore::StartConnectLocked() {
  state_ = State::kConnecting;
  uint64_t attempt = ++attempt_;
  const HostPort& target = *target_;
  boost::system::error_code error;
  auto ip = boost::asio::ip::make_address(target.host, error);
  if (!error) {
    endpoints_.assign(1, tcp::endpoint(ip, target.port));
    next_endpoint_ = 0;
    return ConnectNextLocked();
  }
  resolver_.async_resolve(target.host, std::to_string(target.port),
                          [weak = weak_from_this(), attempt](boost::system::error_code e, tcp::resolver::results_type r) {
                            if (auto self = weak.lock()) self->OnResolved(attempt, e, std::move(r));
                          });
}

void ClientCore::OnResolved(uint64_t attempt, boost::system::error_code error, tcp::resolver::results_type results) {
  Failures failures;
  {
    std::lock_guard lock(mu_);
    if (attempt != attempt_ || state_ != State::kConnecting) return;
    if (error || results.empty()) {
      failures = ConnectFailedLocked(UnavailableError("resolve " + options_.address + ": " + error.message()));
    } else {
      endpoints_.clear();
      for (const auto& entry : results) endpoints_.push_back(entry.endpoint());
      next_endpoint_ = 0;
      ConnectNextLocked();
    }
  }
  PostFailures(std::move(failures));
}

void ClientCore::ConnectNextLocked() {
  uint64_t attempt = attempt_;
  connecting_ = tcp::socket(io_);
  connecting_.async_connect(endpoints_[next_endpoint_++], [weak = weak_from_this(), attempt](boost::system::error_code error) {
    if (auto self = weak.lock()) self->OnConnected(attempt, error);
  });
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([weak = weak_from_this(), attempt](boost::system::error_code error) {
    if (auto self = weak.lock()) self->OnConnectTimeout(attempt, error);
  });
}

void ClientCore::OnConnectTimeout(uint64_t attempt, boost::system::error_code error) {
  Failures failures;
  std::shared_ptr<Connection> abandoned;
  {
    std::lock_guard lock(mu_);
    if (error || attempt != attempt_) return;
    if (state_ == State::kAuthenticating) {
      abandoned = std::move(connection_);  // its on_close then finds it is no longer ours
      Status why = UnauthenticatedError(
          challenge_answered_ ? "server " + options_.address + " did not answer the authentication in time"
                              : "server " + options_.address +
                                    " sent no authentication challenge in time (does it run without a cluster key?)");
      log::Warn("net.unauthenticated", "peer", options_.address, "error", why);
      failures = ConnectFailedLocked(why);
    } else if (state_ == State::kConnecting) {
      boost::system::error_code ignored;
      connecting_.close(ignored);
      resolver_.cancel();
      failures = ConnectFailedLocked(UnavailableError("connect to " + options_.address + " timed out"));
    }
  }
  if (abandoned) abandoned->Close(UnauthenticatedError("authentication timed out"));
  PostFailures(std::move(failures));
}

ClientCore::Failures ClientCore::ConnectFailedLocked(const Status& reason) {
  ++attempt_;  // handlers of the failed attempt that are still queued become stale
  last_error_ = reason;
  Failures failures = TakeAllPendingLocked(reason);
  state_ = State::kBackoff;
  Duration delay = backoff_.Next(*random_);
  log::Debug("net.reconnect_scheduled", "peer", options_.address, "reason", reason,
             "delay_ms", std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
  uint64_t attempt = attempt_;
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([weak = weak_from_this(), attempt](boost::system::error_code error) {
    if (auto self = weak.lock()) self->OnBackoffDone(attempt, error);
  });
  return failures;
}

void ClientCore::OnBackoffDone(uint64_t attempt, boost::system::error_code error) {
  std::lock_guard lock(mu_);
  if (error || attempt != attempt_ || state_ != State::kBackoff) return;
  StartConnectLocked();
}

void ClientCore::OnConnected(uint64_t attempt, boost::system::error_code error) {
  Failures failures;
  {
    std::lock_guard lock(mu_);
    if (attempt != attempt_ || state_ != State::kConnecting) return;
    if (error && next_endpoint_ < endpoints_.size()) {
      ConnectNextLocked();  // re-arms the connect timer for the next address
      return;
    }
    if (error) {
      connect_timer_.cancel();
      failures = ConnectFailedLocked(UnavailableError("connect to " + options_.address + ": " + error.message()));
    } else {
      std::weak_ptr<ClientCore> weak = weak_from_this();
      Connection::Callbacks callbacks{
          .on_frame = [weak](Connection& c, proto::Frame f) { if (auto s = weak.lock()) s->OnFrame(c, std::move(f)); },
          .on_close = [weak](Connection& c, const Status& r) { if (auto s = weak.lock()) s->OnConnectionClosed(c, r); },
      };
      connection_ = std::make_shared<Connection>(std::move(connecting_), options_.address, options_.max_frame_size,
                                                 options_.max_queued_bytes, std::move(callbacks));
      connecting_ = tcp::socket(io_);
      hello_rejected_ = Status::Ok();
      if (!cluster_key_.empty()) {
        // The connect timer keeps running: it bounds the handshake too.
        state_ = State::kAuthenticating;
        challenge_answered_ = false;
        expected_server_proof_.clear();
        connection_->Start();
        return;
      }
      connect_timer_.cancel();
      state_ = State::kConnected;
      backoff_.Reset();
      if (options_.make_hello) {
        proto::Frame hello;
        hello.set_kind(proto::Frame::HELLO);
        hello.set_payload(options_.make_hello());
        (void)connection_->WriteFrame(hello);
      }
      for (std::string& frame : waiting_) (void)connection_->Write(std::move(frame));  // fresh: only fails if closed
      waiting_.clear();
      connection_->Start();
      log::Debug("net.connected", "peer", options_.address);
    }
  }
  PostFailures(std::move(failures));
}

void ClientCore::OnHello(Connection& connection, const proto::Frame& frame) {
  Status verdict = StatusFromProto(frame.status());
  Status fatal;
  {
    std::lock_guard lock(mu_);
    if (!verdict.ok()) {
      hello_rejected_ = verdict.WithContext("server " + options_.address + " rejected HELLO");
      return;  // the server closes the connection
    }
    if (cluster_key_.empty() || connection_.get() != &connection || state_ != State::kAuthenticating) return;
    fatal = OnKeyHelloLocked(frame);
    if (!fatal.ok()) hello_rejected_ = fatal;
  }
  if (!fatal.ok()) {
    log::Warn("net.unauthenticated", "peer", options_.address, "error", fatal);
    connection.Close(fatal);
  }
}

Status ClientCore::OnKeyHelloLocked(const proto::Frame& frame) {
  if (!challenge_answered_) {
    auto response = AnswerChallenge(cluster_key_, frame.payload(), &expected_server_proof_);
    if (!response.ok()) return response.status().WithContext("server " + options_.address);
    proto::Frame hello;
    hello.set_kind(proto::Frame::HELLO);
    hello.set_payload(std::move(*response));
    challenge_answered_ = true;
    return connection_->WriteFrame(hello);
  }
  if (!ConstantTimeEquals(frame.payload(), expected_server_proof_)) {
    return UnauthenticatedError("server " + options_.address + " failed to prove it holds this cluster's key");
  }
  connect_timer_.cancel();
  state_ = State::kConnected;
  backoff_.Reset();
  for (std::string& waiting : waiting_) (void)connection_->Write(std::move(waiting));
  waiting_.clear();
  log::Debug("net.authenticated", "peer", options_.address);
  return Status::Ok();
}

void ClientCore::OnFrame(Connection& connection, proto::Frame frame) {
  if (frame.kind() == proto::Frame::HELLO) return OnHello(connection, frame);
  if (frame.kind() != proto::Frame::RESPONSE) {
    log::Warn("net.protocol_error", "peer", connection.peer(), "error",
              "unexpected frame kind " + proto::Frame::Kind_Name(frame.kind()));
    connection.Close(CorruptionError("unexpected frame kind from server"));
    return;
  }
  CallCallback done;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(frame.call_id());
    if (it == pending_.end()) return;  // timed out already, or a stray id
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  Status status = StatusFromProto(frame.status());
  if (status.ok()) {
    done(std::move(*frame.mutable_payload()));
  } else {
    done(status);
  }
}

void ClientCore::OnConnectionClosed(Connection& connection, const Status& reason) {
  Failures failures;
  {
    std::lock_guard lock(mu_);
    if (connection_.get() != &connection) return;
    connection_.reset();
    if (state_ == State::kClosed) return;
    Status why = hello_rejected_.ok() ? reason : hello_rejected_;
    if (why.code() != StatusCode::kUnauthenticated && why.code() != StatusCode::kUnavailable) {
      why = UnavailableError(why.ToString());
    }
    log::Info("net.connection_lost", "peer", options_.address, "reason", why);
    failures = ConnectFailedLocked(why);
  }
  PostFailures(std::move(failures));
}

void ClientCore::ExpireCall(uint64_t call_id, boost::system::error_code error) {
  if (error) return;  // cancelled: answered or closed
  CallCallback done;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(call_id);
    if (it == pending_.end()) return;
    done = std::move(it->second.done);
    pending_.erase(it);
  }
  done(DeadlineExceededError("no response from " + options_.address + " within the deadline"));
}

void ClientCore::Close() {
  Failures failures;
  std::shared_ptr<Connection> connection;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    ++attempt_;
    failures = TakeAllPendingLocked(CancelledError("client for " + options_.address + " closed"));
    boost::system::error_code ignored;
    connecting_.close(ignored);
    resolver_.cancel();
    connect_timer_.cancel();
    backoff_timer_.cancel();
    connection = std::move(connection_);
  }
  if (connection) connection->Close(CancelledError("client closed"));
  PostFailures(std::move(failures));
}

}  // namespace internal

Client::Client(boost::asio::io_context& io, ClientOptions options)
    : core_(std::make_shared<internal::ClientCore>(io, std::move(options))) {}

Client::~Client() { core_->Close(); }

void Client::Call(const std::string& method, std::string payload, Duration timeout, CallCallback done) {
  core_->Call(method, std::move(payload), timeout, std::move(done));
}

Result<std::string> Client::CallSync(const std::string& method, std::string payload, Duration timeout) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  auto future = promise->get_future();
  core_->Call(method, std::move(payload), timeout,
              [promise](Result<std::string> result) { promise->set_value(std::move(result)); });
  // The deadline timer answers in time while the io_context runs; the margin covers a stalled one.
  Duration wait = std::min<Duration>(timeout, std::chrono::hours(24 * 365)) + std::chrono::seconds(5);
  if (future.wait_for(wait) != std::future_status::ready) {
    return DeadlineExceededError("no answer from " + core_->address() + " (is the io_context running?)");
  }
  return future.get();
}

Status Client::Send(const std::string& method, std::string payload) { return core_->Send(method, std::move(payload)); }
void Client::Close() { core_->Close(); }
bool Client::connected() const { return core_->connected(); }
const std::string& Client::address() const { return core_->address(); }

}  // namespace cairn::net
