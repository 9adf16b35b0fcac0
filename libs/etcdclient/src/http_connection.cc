#include "http_connection.h"

#include <cctype>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>

namespace cairn::etcdclient::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Runs one asynchronous operation to completion (or to the stream's deadline, when Beast cancels
// it with error::timeout). start receives the completion handler.
template <typename Start>
ErrorCode RunOperation(asio::io_context& io, beast::tcp_stream& stream, Deadline deadline, Start start) {
  ErrorCode result = asio::error::would_block;
  if (deadline == Deadline::max()) {
    stream.expires_never();
  } else {
    stream.expires_at(deadline);
  }
  start([&result](ErrorCode ec, auto&&...) { result = ec; });
  io.restart();
  io.run();
  return result;
}

std::string Describe(const ErrorCode& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == http::error::end_of_stream || ec == asio::error::eof) return "connection closed by the server";
  std::string text = ec.message();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

http::request<http::string_body> MakeRequest(bool post, const HostPort& endpoint, const std::string& target,
                                             std::string_view body, const std::string& bearer_token) {
  http::request<http::string_body> request{post ? http::verb::post : http::verb::get, target, 11};
  request.set(http::field::host, endpoint.ToString());
  if (!bearer_token.empty()) request.set(http::field::authorization, "Bearer " + bearer_token);
  request.set(http::field::user_agent, "cairn-etcdclient");
  if (post) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.keep_alive(true);
  request.prepare_payload();
  return request;
}

}  // namespace

HttpConnection::HttpConnection(HostPort endpoint, std::string bearer_token)
    : endpoint_(std::move(endpoint)), bearer_token_(std::move(bearer_token)), stream_(io_) {}

void HttpConnection::Close() {
  ErrorCode ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  buffer_.clear();
  open_ = false;
}

Status HttpConnection::Fail(const ErrorCode& ec, std::string_view during) {
  Close();
  std::string text = Describe(ec);
  if (!during.empty()) text += " (" + std::string(during) + ")";
  if (ec == beast::error::timeout) return DeadlineExceededError(text);
  return UnavailableError(text);
}

Status HttpConnection::Connect(Deadline connect_deadline) {
  if (open_) return Status::Ok();
  tcp::resolver resolver(io_);
  ErrorCode ec;
  auto addresses = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (ec) return UnavailableError("cannot resolve " + endpoint_.host + ": " + Describe(ec));
  ec = RunOperation(io_, stream_, connect_deadline,
                    [&](auto handler) { stream_.async_connect(addresses, std::move(handler)); });
  if (ec) return Fail(ec, ec == beast::error::timeout ? "connecting" : "");
  stream_.socket().set_option(tcp::no_delay(true), ec);
  open_ = true;
  return Status::Ok();
}

Result<HttpReply> HttpConnection::RoundTripOnce(bool post, const std::string& target, std::string_view body,
                                                Deadline deadline) {
  auto request = MakeRequest(post, endpoint_, target, body, bearer_token_);
  ErrorCode ec = RunOperation(io_, stream_, deadline,
                              [&](auto handler) { http::async_write(stream_, request, std::move(handler)); });
  if (ec) return Fail(ec, "sending the request");
  http::response_parser<http::string_body> parser;
  parser.body_limit(std::uint64_t{1} << 30);
  ec = RunOperation(io_, stream_, deadline,
                    [&](auto handler) { http::async_read(stream_, buffer_, parser, std::move(handler)); });
  if (ec) return Fail(ec, "waiting for the response");
  auto response = parser.release();
  if (!response.keep_alive()) Close();
  return HttpReply{response.result_int(), std::move(response.body())};
}

Result<HttpReply> HttpConnection::RoundTrip(bool post, const std::string& target, std::string_view body,
                                            Deadline connect_deadline, Deadline deadline) {
  bool reused = open_;
  CAIRN_RETURN_IF_ERROR(Connect(connect_deadline));
  auto reply = RoundTripOnce(post, target, body, deadline);
  // A kept-alive connection may have been closed by the server while idle; that is not the
  // endpoint failing, so try once more on a fresh connection (no response was read, so the
  // server did not act on the request... unless it closed mid-request, which HTTP clients accept).
  if (!reply.ok() && reused && reply.status().code() == StatusCode::kUnavailable) {
    CAIRN_RETURN_IF_ERROR(Connect(connect_deadline));
    reply = RoundTripOnce(post, target, body, deadline);
  }
  return reply;
}

Result<HttpReply> HttpConnection::Post(const std::string& target, std::string_view body, Deadline connect_deadline,
                                       Deadline deadline) {
  return RoundTrip(true, target, body, connect_deadline, deadline);
}

Result<HttpReply> HttpConnection::Get(const std::string& target, Deadline connect_deadline, Deadline deadline) {
  return RoundTrip(false, target, {}, connect_deadline, deadline);
}

Status HttpConnection::PostStream(const std::string& target, std::string_view body, Deadline connect_deadline,
                                  Deadline header_deadline, Deadline deadline,
                                  const std::function<bool(std::string_view)>& on_data, HttpReply* error_reply) {
  Close();  // a stream gets its own connection, closed at the end
  CAIRN_RETURN_IF_ERROR(Connect(connect_deadline));
  auto request = MakeRequest(true, endpoint_, target, body, bearer_token_);
  ErrorCode ec = RunOperation(io_, stream_, header_deadline,
                              [&](auto handler) { http::async_write(stream_, request, std::move(handler)); });
  if (ec) return Fail(ec, "sending the request");
  http::response_parser<http::empty_body> header_parser;
  header_parser.body_limit(boost::none);
  ec = RunOperation(io_, stream_, header_deadline, [&](auto handler) {
    http::async_read_header(stream_, buffer_, header_parser, std::move(handler));
  });
  if (ec) return Fail(ec, "waiting for the response");
  unsigned status = header_parser.get().result_int();
  if (status != 200 || !header_parser.chunked()) {
    // A whole body: an error, or a server that answered without streaming.
    http::response_parser<http::string_body> whole(std::move(header_parser));
    ec = RunOperation(io_, stream_, deadline,
                      [&](auto handler) { http::async_read(stream_, buffer_, whole, std::move(handler)); });
    if (ec) return Fail(ec, "reading the response");
    Close();
    if (status != 200) {
      *error_reply = HttpReply{status, std::move(whole.get().body())};
      return Status::Ok();
    }
    on_data(whole.get().body());
    return Status::Ok();
  }
  std::string pending;
  auto on_chunk = [&pending](std::uint64_t, beast::string_view data, ErrorCode&) -> std::size_t {
    pending.append(data.data(), data.size());
    return data.size();
  };
  header_parser.on_chunk_body(on_chunk);
  while (!header_parser.is_done()) {
    ec = RunOperation(io_, stream_, deadline, [&](auto handler) {
      http::async_read_some(stream_, buffer_, header_parser, std::move(handler));
    });
    if (!pending.empty()) {
      bool go_on = on_data(pending);
      pending.clear();
      if (!go_on) break;
    }
    if (ec == beast::error::timeout) break;  // the caller's deadline: a normal end
    if (ec) return Fail(ec, "reading the stream");
  }
  Close();
  return Status::Ok();
}

}  // namespace cairn::etcdclient::internal
