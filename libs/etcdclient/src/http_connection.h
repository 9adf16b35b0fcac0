// HttpConnection: one HTTP/1.1 keep-alive connection to one endpoint, used synchronously with a
// deadline on every step (Beast's timeouts only apply to asynchronous operations, so each step
// runs an async operation on a private io_context until it completes or the deadline passes).
//
// Errors name no endpoint; EtcdClient prefixes them. Transport failures are Unavailable
// ("connection refused", "connection closed") or DeadlineExceeded; after any failure the
// connection is closed and the next Connect starts over.
//
// Threading: not thread-safe; one caller at a time.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"

namespace cairn::etcdclient::internal {

using Deadline = std::chrono::steady_clock::time_point;

struct HttpReply {
  unsigned status = 0;
  std::string body;
};

class HttpConnection {
 public:
  // bearer_token: sent as "Authorization: Bearer ..." when not empty.
  explicit HttpConnection(HostPort endpoint, std::string bearer_token = {});
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  const HostPort& endpoint() const { return endpoint_; }
  bool is_open() const { return open_; }

  // Connects when not connected. connect_deadline bounds the TCP handshake.
  Status Connect(Deadline connect_deadline);

  // POST target with a JSON body; reads the whole response (Content-Length or chunked).
  // A reused connection the server closed meanwhile is reopened once.
  Result<HttpReply> Post(const std::string& target, std::string_view body, Deadline connect_deadline,
                         Deadline deadline);

  // GET target (for /health).
  Result<HttpReply> Get(const std::string& target, Deadline connect_deadline, Deadline deadline);

  // POST, then feed the response body to on_data as it arrives until the body ends, on_data returns
  // false, or the deadline passes (returns OK when stopped by on_data or the deadline, since the
  // caller chose them). The response header must arrive by header_deadline (DeadlineExceeded
  // otherwise). A non-200 reply is read whole and returned in *error_reply with OK status.
  // on_data may be called with pieces of any size.
  Status PostStream(const std::string& target, std::string_view body, Deadline connect_deadline,
                    Deadline header_deadline, Deadline deadline, const std::function<bool(std::string_view)>& on_data,
                    HttpReply* error_reply);

  void Close();

 private:
  Result<HttpReply> RoundTrip(bool post, const std::string& target, std::string_view body,
                              Deadline connect_deadline, Deadline deadline);
  Result<HttpReply> RoundTripOnce(bool post, const std::string& target, std::string_view body, Deadline deadline);
  Status Fail(const boost::system::error_code& ec, std::string_view during);

  HostPort endpoint_;
  std::string bearer_token_;
  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool open_ = false;
};

}  // namespace cairn::etcdclient::internal
