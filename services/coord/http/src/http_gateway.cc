#include "cairn/coord/http_gateway.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "cairn/common/logging.h"
#include "gateway_state.h"
#include "session.h"

namespace cairn::coord {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

}  // namespace

// Accepts connections on its own strand; each accepted socket gets a fresh strand.
class HttpGateway::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& io, std::shared_ptr<GatewayState> state)
      : io_(io), acceptor_(net::make_strand(io)), retry_(acceptor_.get_executor()), state_(std::move(state)) {}

  Status Open(const tcp::endpoint& endpoint) {
    boost::system::error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return UnavailableError("cannot listen on " + endpoint.address().to_string() + ":" +
                                    std::to_string(endpoint.port()) + ": " + ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    return Status::Ok();
  }

  void Accept() {
    acceptor_.async_accept(net::make_strand(io_), [self = shared_from_this()](boost::system::error_code ec,
                                                                              tcp::socket socket) {
      self->OnAccept(ec, std::move(socket));
    });
  }

  void Close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
      self->retry_.cancel();
    });
  }

  uint16_t port() const { return port_; }

 private:
  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open() || ec == net::error::operation_aborted) return;
    if (ec) {
      // Usually EMFILE: back off instead of spinning, connections wait in the backlog.
      log::Warn("coord.http.accept_failed", "error", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
        if (!wait_ec) self->Accept();
      });
      return;
    }
    boost::system::error_code option_ec;
    socket.set_option(tcp::no_delay(true), option_ec);
    std::make_shared<Session>(std::move(socket), state_)->Start();
    Accept();
  }

  net::io_context& io_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<GatewayState> state_;
  uint16_t port_ = 0;
};

HttpGateway::HttpGateway(net::io_context& io, CoordApi& api, HostPort listen, GatewayOptions options)
    : io_(io), listen_(std::move(listen)), state_(std::make_shared<GatewayState>(api, std::move(options))) {}

HttpGateway::~HttpGateway() { Stop(); }

Status HttpGateway::Start() {
  if (listener_) return FailedPreconditionError("HttpGateway::Start called twice");
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto results = resolver.resolve(listen_.host, std::to_string(listen_.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return InvalidArgumentError("cannot resolve listen address " + listen_.ToString() + ": " + ec.message());
  }
  auto listener = std::make_shared<Listener>(io_, state_);
  CAIRN_RETURN_IF_ERROR(listener->Open(results.begin()->endpoint()));
  listener_ = listener;
  listener_->Accept();
  log::Info("coord.http.listening", "address", listen_.host, "port", listener_->port());
  return Status::Ok();
}

void HttpGateway::Stop() {
  if (state_->stopping.exchange(true)) return;
  if (listener_) listener_->Close();
  state_->StopAll();
}

uint16_t HttpGateway::port() const { return listener_ ? listener_->port() : 0; }

size_t HttpGateway::connection_count() const { return state_->count(); }

std::string HttpGateway::Metrics() const { return state_->metrics.Text(); }

}  // namespace cairn::coord
