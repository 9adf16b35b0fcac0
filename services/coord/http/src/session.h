// Session: one client connection of the gateway. Reads HTTP/1.1 requests one at a time (pipelined
// ones wait in the read buffer, so responses go out in request order), routes each to the
// CoordApi, writes the response, and either reads the next request or closes. A /v3/watch
// request turns the connection into a chunked stream until the client closes it or the gateway
// stops. Internal to the gateway.
//
// Threading: every member function runs on the connection's strand (the socket's executor);
// CoordApi callbacks and watch sinks post back to it.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway_state.h"

namespace cairn::coord {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket socket, std::shared_ptr<GatewayState> state);
  // Registers with the gateway (for Stop) and starts reading. Call once, from any thread.
  void Start();

 private:
  enum class Phase { kReading, kProcessing, kWriting, kWatching, kClosed };

  void ReadHeader();
  void OnHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnBody(boost::beast::error_code ec);
  // 413 for a body over max_body_bytes, then close.
  void RejectTooLarge();
  void Route();
  void RouteV3();

  // Decodes the body as Request, calls `method`, and answers with `finish(result)` on the strand.
  template <typename Request, typename Response, typename Finish>
  void Call(void (CoordApi::*method)(const Request&, const CallOptions&, Done<Response>), Finish finish);
  template <typename Request, typename Response>
  void Call(void (CoordApi::*method)(const Request&, const CallOptions&, Done<Response>));
  template <typename Request>
  bool DecodeRequest(Request* request);

  template <typename Response>
  void ReplyResult(const Result<Response>& result);
  void ReplyError(const Status& status);
  void ReplyError(boost::beast::http::status http_status, int grpc_code, std::string_view message);
  // Sends response_ (body already set) with `status`; closes after it when keep-alive is off.
  void Send(boost::beast::http::status status, std::string_view content_type);
  void OnWritten(boost::beast::error_code ec);

  // /cairn/v1/...: hands the request to GatewayOptions::extension.
  void ServeExtension();
  // The client's "host:port", for logs.
  std::string RemoteEndpointText() const;
  void ServeHealth();
  void ServeMetrics();
  void ServeVersion();

  // /v3/maintenance/snapshot: the backup streamed as {"result":{...,"blob":...}} lines in chunks.
  void StartSnapshot();
  void OnSnapshot(Result<std::string> backup);
  void WriteSnapshotChunk();
  void OnSnapshotWritten(boost::beast::error_code ec);

  // Watch streaming.
  void StartWatch();
  void OnWatchHeadWritten(boost::beast::error_code ec);
  void OnWatchResponse(const etcd::WatchResponse& response);
  void QueueWatchText(std::string_view text);
  void WriteWatchBacklog();
  void OnWatchWritten(boost::beast::error_code ec);
  void ReadUntilClientCloses();
  void EndWatch();
  void WriteLastChunk();

  void OnStop();
  void LingerClose();
  void Close();

  boost::beast::tcp_stream stream_;
  std::shared_ptr<GatewayState> state_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  uint64_t registry_id_ = 0;
  Phase phase_ = Phase::kReading;
  bool stopping_ = false;
  bool keep_alive_ = true;
  bool unread_body_ = false;  // a rejected request's body was left unread
  Endpoint endpoint_ = Endpoint::kUnknown;
  std::chrono::steady_clock::time_point started_;

  std::unique_ptr<WatchStream> watch_;
  std::unique_ptr<boost::beast::http::response<boost::beast::http::empty_body>> watch_head_;
  std::unique_ptr<boost::beast::http::response_serializer<boost::beast::http::empty_body>> watch_serializer_;
  std::string watch_pending_;  // JSON lines not yet handed to a write
  std::string watch_writing_;  // the chunk being written
  std::string watch_scratch_;  // reused for encoding
  bool watch_head_sent_ = false;
  bool watch_write_active_ = false;
  bool watch_ending_ = false;
  std::array<char, 512> discard_{};

  std::string snapshot_data_;     // the backup being streamed
  size_t snapshot_sent_ = 0;      // bytes of it already encoded into chunks
  std::string snapshot_header_;   // the "header" JSON object repeated in every line
};

}  // namespace cairn::coord
