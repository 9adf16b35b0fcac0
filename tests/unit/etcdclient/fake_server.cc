#include "fake_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace cairn::etcdclient::testing {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

FakeGateway::FakeGateway(std::function<FakeReply(const SeenRequest&)> handler)
    : handler_(std::move(handler)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  thread_ = std::thread([this] { AcceptLoop(); });
}

FakeGateway::~FakeGateway() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    for (const auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
  }
  stopped_changed_.notify_all();
  // Wake the blocking accept with a connection of our own.
  boost::system::error_code ignored;
  tcp::socket waker(io_);
  waker.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ignored);
  thread_.join();
  for (std::thread& connection : connection_threads_) connection.join();
}

std::vector<SeenRequest> FakeGateway::requests() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requests_;
}

void FakeGateway::AcceptLoop() {
  while (true) {
    auto socket = std::make_shared<tcp::socket>(io_);
    boost::system::error_code ec;
    acceptor_.accept(*socket, ec);
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    if (ec) continue;
    sockets_.push_back(socket);  // kept open until destruction, so no fd is reused under us
    ++connections_;
    // One thread per connection, joined by the destructor (which shuts every connection down).
    connection_threads_.emplace_back([this, socket] { Serve(*socket); });
  }
}

void FakeGateway::Hang() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopped_changed_.wait(lock, [this] { return stopped_; });
}

void FakeGateway::Serve(tcp::socket& socket) {
  boost::beast::flat_buffer buffer;
  boost::system::error_code ec;
  while (true) {
    http::request<http::string_body> request;
    http::read(socket, buffer, request, ec);
    if (ec) return;
    SeenRequest seen{std::string(request.method_string()), std::string(request.target()), request.body()};
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(seen);
    }
    FakeReply reply = handler_(seen);
    if (reply.hang) return Hang();
    if (reply.close_without_reply) {
      socket.shutdown(tcp::socket::shutdown_both, ec);  // the socket object itself lives on in sockets_
      return;
    }
    if (reply.chunks.empty()) {
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = reply.body;
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      http::write(socket, response, ec);
      if (ec) return;
      continue;
    }
    http::response<http::empty_body> head{static_cast<http::status>(reply.status), 11};
    head.chunked(true);
    http::response_serializer<http::empty_body> serializer{head};
    http::write_header(socket, serializer, ec);
    for (const std::string& chunk : reply.chunks) {
      asio::write(socket, http::make_chunk(asio::buffer(chunk)), ec);
    }
    if (reply.hang_after_chunks) return Hang();
    asio::write(socket, http::make_chunk_last(), ec);
    if (ec) return;
  }
}

uint16_t DeadPort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();  // closed when acceptor goes: nobody listens there
}

}  // namespace cairn::etcdclient::testing
