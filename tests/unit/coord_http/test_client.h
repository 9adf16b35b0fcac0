// A small blocking HTTP/1.1 client for the gateway tests: one connection, requests written as
// whole messages or raw bytes, responses read one by one. Every read has a 5 s socket timeout so
// a broken server fails the test instead of hanging it.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cairn::coord::testing {

namespace http = boost::beast::http;
using Response = http::response<http::string_body>;

class TestClient {
 public:
  explicit TestClient(uint16_t port, int timeout_ms = 5000) : socket_(io_) {
    boost::system::error_code ec;
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    connected_ = !ec;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool connected() const { return connected_; }

  static std::string Request(std::string_view method, std::string_view target, std::string_view body) {
    std::string text = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n";
    if (method == "POST") {
      text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    text += "\r\n";
    text += body;
    return text;
  }

  bool WriteRaw(std::string_view bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return !ec;
  }

  // Reads one response; on error returns a response with result 0 (and `error` set).
  Response Read() {
    Response response;
    http::read(socket_, buffer_, response, error);
    if (error) response.result(0);
    return response;
  }

  Response Post(std::string_view target, std::string_view body) {
    WriteRaw(Request("POST", target, body));
    return Read();
  }
  Response Get(std::string_view target) {
    WriteRaw(Request("GET", target, ""));
    return Read();
  }

  // For streams: reads the response head only.
  http::response_header<> ReadHead() {
    parser_.emplace();
    parser_->body_limit(boost::none);
    http::read_header(socket_, buffer_, *parser_, error);
    return parser_->get().base();
  }
  // Reads stream bytes until `count` complete lines arrived (chunk framing removed); returns them.
  // Stops early at the end of the stream or an error.
  std::vector<std::string> ReadLines(size_t count) {
    while (lines_.size() < count && !stream_ended_) ReadSomeBody();
    std::vector<std::string> out;
    while (!lines_.empty() && out.size() < count) {
      out.push_back(lines_.front());
      lines_.erase(lines_.begin());
    }
    return out;
  }
  // Reads until the stream's final chunk (true) or an error/timeout (false).
  bool ReadUntilStreamEnd() {
    while (!stream_ended_ && !error) ReadSomeBody();
    return stream_ended_;
  }
  // True when the server closed the connection (EOF) before `timeout` (socket timeout).
  bool WaitForClose() {
    char byte;
    boost::system::error_code ec;
    for (;;) {
      size_t n = socket_.read_some(boost::asio::buffer(&byte, 1), ec);
      if (ec) return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
      (void)n;
    }
  }

  boost::system::error_code error;

 private:
  void ReadSomeBody() {
    http::read_some(socket_, buffer_, *parser_, error);
    if (error == http::error::need_buffer) error = {};
    partial_ += parser_->get().body();
    parser_->get().body().clear();
    if (parser_->is_done()) stream_ended_ = true;
    if (error) stream_ended_ = true;
    size_t newline;
    while ((newline = partial_.find('\n')) != std::string::npos) {
      lines_.push_back(partial_.substr(0, newline));
      partial_.erase(0, newline + 1);
    }
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::vector<std::string> lines_;
  std::string partial_;
  bool stream_ended_ = false;
  bool connected_ = false;
};

}  // namespace cairn::coord::testing
