#include "session.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "cairn/common/logging.h"
#include "cairn/coord/node/backup_file.h"
#include "cairn/coord/node/snapshot_source.h"
#include "json_codec.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

namespace cairn::coord {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Raw backup bytes per {"result":...} line (etcd sends 32 KiB per message) and lines per HTTP chunk.
constexpr size_t kSnapshotBlobBytes = 32 * 1024;
constexpr size_t kSnapshotLinesPerChunk = 8;

// etcd's gateway sends these CORS headers on every response.
template <typename Fields>
void SetCommonHeaders(Fields& fields) {
  fields.set("Access-Control-Allow-Headers", "accept, content-type, authorization");
  fields.set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
  fields.set("Access-Control-Allow-Origin", "*");
}

// grpc-gateway wraps each message of a server stream as {"result":...}.
void AppendResultLine(const google::protobuf::Message& message, std::string* scratch, std::string* out) {
  json::Encode(message, scratch);
  out->append("{\"result\":").append(*scratch).append("}\n");
}

}  // namespace

Session::Session(net::ip::tcp::socket socket, std::shared_ptr<GatewayState> state)
    : stream_(std::move(socket)), state_(std::move(state)) {
  response_.version(11);
  SetCommonHeaders(response_);
}

void Session::Start() {
  state_->metrics.ConnectionOpened();
  std::weak_ptr<Session> weak = weak_from_this();
  auto executor = stream_.get_executor();
  registry_id_ = state_->Register([weak, executor] {
    net::post(executor, [weak] {
      if (auto self = weak.lock()) self->OnStop();
    });
  });
  net::dispatch(executor, [self = shared_from_this()] {
    if (self->state_->stopping.load()) {
      self->Close();
    } else {
      self->ReadHeader();
    }
  });
}

// ---- reading and routing ----

void Session::ReadHeader() {
  if (stopping_) return Close();
  phase_ = Phase::kReading;
  endpoint_ = Endpoint::kUnknown;
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(state_->options.max_header_bytes));
  parser_->body_limit(state_->options.max_body_bytes);
  // One deadline for the whole request (header and body): a client that trickles bytes is cut
  // off after read_timeout, as is an idle keep-alive connection.
  stream_.expires_after(state_->options.read_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(beast::error_code ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec == http::error::header_limit) {
    keep_alive_ = false;
    return ReplyError(http::status::request_header_fields_too_large, 8, "request headers too large");
  }
  // The parser checks a Content-Length against the body limit as soon as the header is in.
  if (ec == http::error::body_limit) return RejectTooLarge();
  if (ec) return Close();  // EOF, timeout, reset, or a malformed request line
  const auto& request = parser_->get();
  if (beast::iequals(request[http::field::expect], "100-continue")) {
    // curl waits a second for this before sending bodies over 1 KiB.
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code write_ec, size_t) {
                       if (write_ec) return self->Close();
                       self->ReadBody();
                     });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  if (phase_ == Phase::kClosed) return;
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
}

void Session::OnBody(beast::error_code ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec == http::error::body_limit) return RejectTooLarge();
  if (ec) return Close();
  keep_alive_ = parser_->get().keep_alive();
  Route();
}

void Session::RejectTooLarge() {
  endpoint_ = EndpointOf(std::string_view(parser_->get().target().data(), parser_->get().target().size()));
  keep_alive_ = false;
  unread_body_ = true;  // the rest is still on the wire: drain it before closing (see LingerClose)
  ReplyError(http::status::payload_too_large, 8,
             "request body exceeds the limit of " + std::to_string(state_->options.max_body_bytes) + " bytes");
}

void Session::Route() {
  phase_ = Phase::kProcessing;
  started_ = std::chrono::steady_clock::now();
  state_->metrics.RequestStarted();
  const auto& request = parser_->get();
  endpoint_ = EndpointOf(std::string_view(request.target().data(), request.target().size()));
  if (endpoint_ == Endpoint::kUnknown) return ReplyError(http::status::not_found, 5, "Not Found");
  if (request.method() == http::verb::options) {  // a browser's CORS preflight, as etcd answers it
    response_.body().clear();
    return Send(http::status::ok, "text/plain");
  }
  std::string_view target(request.target().data(), request.target().size());
  if (!state_->options.api_token.empty() && NeedsBearerToken(endpoint_, target)) {
    auto header = request[http::field::authorization];
    if (!BearerMatches(std::string_view(header.data(), header.size()), state_->options.api_token)) {
      log::Warn("gateway.unauthorized", "peer", RemoteEndpointText(), "path", target);
      return ReplyError(http::status::unauthorized, 16,
                        header.empty() ? "this API requires a bearer token: send \"Authorization: Bearer TOKEN\" "
                                         "(clusterctl: --token-file, $CAIRN_API_TOKEN or ~/.config/cairn/clusterctl.yaml)"
                                       : "wrong bearer token");
    }
  }
  http::verb expected = IsGetEndpoint(endpoint_) ? http::verb::get : http::verb::post;
  if (request.method() != expected) return ReplyError(http::status::method_not_allowed, 12, "Method Not Allowed");
  switch (endpoint_) {
    case Endpoint::kCairn: return ServeExtension();
    case Endpoint::kHealth: return ServeHealth();
    case Endpoint::kMetrics: return ServeMetrics();
    case Endpoint::kVersion: return ServeVersion();
    case Endpoint::kWatch: return StartWatch();
    case Endpoint::kSnapshot: return StartSnapshot();
    default: return RouteV3();
  }
}

void Session::RouteV3() {
  switch (endpoint_) {
    case Endpoint::kRange: return Call(&CoordApi::Range);
    case Endpoint::kPut: return Call(&CoordApi::Put);
    case Endpoint::kDeleteRange: return Call(&CoordApi::DeleteRange);
    case Endpoint::kTxn: return Call(&CoordApi::Txn);
    case Endpoint::kCompaction: return Call(&CoordApi::Compact);
    case Endpoint::kLeaseGrant: return Call(&CoordApi::LeaseGrant);
    case Endpoint::kLeaseRevoke: return Call(&CoordApi::LeaseRevoke);
    case Endpoint::kLeaseLeases: return Call(&CoordApi::LeaseLeases);
    case Endpoint::kMemberList: return Call(&CoordApi::MemberList);
    case Endpoint::kMemberAdd: return Call(&CoordApi::MemberAdd);
    case Endpoint::kMemberRemove: return Call(&CoordApi::MemberRemove);
    case Endpoint::kMemberPromote: return Call(&CoordApi::MemberPromote);
    case Endpoint::kStatus: return Call(&CoordApi::Status);
    case Endpoint::kLeaseKeepAlive: {
      // A server stream in etcd: the single response comes wrapped as {"result":...}; an unknown
      // lease is not an error there but a response with TTL 0.
      int64_t id = 0;
      if (etcd::LeaseKeepAliveRequest peek; json::Decode(parser_->get().body(), &peek).ok()) id = peek.id();
      return Call(&CoordApi::LeaseKeepAlive, [this, id](Result<etcd::LeaseKeepAliveResponse> result) {
        if (!result.ok() && result.status().code() != StatusCode::kNotFound) return ReplyError(result.status());
        etcd::LeaseKeepAliveResponse response;
        if (result.ok()) {
          response = std::move(*result);
        } else {
          response.set_id(id);
        }
        response_.body().clear();
        AppendResultLine(response, &watch_scratch_, &response_.body());
        Send(http::status::ok, kJson);
      });
    }
    case Endpoint::kLeaseTimeToLive: {
      // etcd answers an unknown lease with TTL -1, not an error.
      int64_t id = 0;
      if (etcd::LeaseTimeToLiveRequest peek; json::Decode(parser_->get().body(), &peek).ok()) id = peek.id();
      return Call(&CoordApi::LeaseTimeToLive, [this, id](Result<etcd::LeaseTimeToLiveResponse> result) {
        if (!result.ok() && result.status().code() == StatusCode::kNotFound) {
          etcd::LeaseTimeToLiveResponse response;
          response.set_id(id);
          response.set_ttl(-1);
          return ReplyResult(Result<etcd::LeaseTimeToLiveResponse>(std::move(response)));
        }
        ReplyResult(result);
      });
    }
    case Endpoint::kMemberUpdate: {
      etcd::MemberUpdateRequest request;
      if (!DecodeRequest(&request)) return;
      return ReplyError(UnimplementedError("member update (peer URL change) is not supported by Cairn"));
    }
    default:
      return ReplyError(http::status::not_found, 5, "Not Found");
  }
}

template <typename Request>
bool Session::DecodeRequest(Request* request) {
  Status status = json::Decode(parser_->get().body(), request);
  if (status.ok() && request->ByteSizeLong() > state_->options.max_request_bytes) {
    status = InvalidArgumentError("etcdserver: request is too large");
  }
  if (!status.ok()) {
    ReplyError(status);
    return false;
  }
  return true;
}

template <typename Request, typename Response, typename Finish>
void Session::Call(void (CoordApi::*method)(const Request&, const CallOptions&, Done<Response>), Finish finish) {
  Request request;
  if (!DecodeRequest(&request)) return;
  CallOptions options;
  options.deadline = state_->options.call_deadline;
  auto executor = stream_.get_executor();
  (state_->api.*method)(request, options, [self = shared_from_this(), executor, finish](Result<Response> result) {
    net::post(executor, [self, finish, result = std::move(result)]() mutable {
      if (self->phase_ == Phase::kClosed) {
        self->state_->metrics.RequestFinished(self->endpoint_, 499,
                                              std::chrono::steady_clock::now() - self->started_);
        return;
      }
      finish(std::move(result));
    });
  });
}

template <typename Request, typename Response>
void Session::Call(void (CoordApi::*method)(const Request&, const CallOptions&, Done<Response>)) {
  Call(method, [this](Result<Response> result) { ReplyResult(result); });
}

template <typename Response>
void Session::ReplyResult(const Result<Response>& result) {
  if (!result.ok()) return ReplyError(result.status());
  json::Encode(*result, &response_.body());
  Send(http::status::ok, kJson);
}

void Session::ReplyError(const Status& status) {
  json::ErrorReply reply = json::MapError(status);
  ReplyError(reply.http_status, reply.grpc_code, reply.message);
}

void Session::ReplyError(http::status http_status, int grpc_code, std::string_view message) {
  if (phase_ == Phase::kReading) {  // rejected before routing: still count it
    phase_ = Phase::kProcessing;
    started_ = std::chrono::steady_clock::now();
    state_->metrics.RequestStarted();
  }
  response_.body() = json::ErrorBody(message, grpc_code);
  Send(http_status, kJson);
}

void Session::Send(http::status status, std::string_view content_type) {
  response_.result(status);
  response_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  response_.keep_alive(keep_alive_ && !stopping_);
  response_.prepare_payload();
  state_->metrics.RequestFinished(endpoint_, static_cast<int>(status), std::chrono::steady_clock::now() - started_);
  phase_ = Phase::kWriting;
  stream_.expires_after(state_->options.write_timeout);
  http::async_write(stream_, response_,
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWritten(ec); });
}

void Session::OnWritten(beast::error_code ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec) return Close();
  if (!response_.keep_alive()) return unread_body_ ? LingerClose() : Close();
  response_.body().clear();  // keeps its capacity for the next response
  ReadHeader();
}

// ---- Cairn's own endpoints ----

void Session::ServeExtension() {
  if (!state_->options.extension) return ReplyError(http::status::not_found, 5, "Not Found");
  const auto& request = parser_->get();
  std::string_view target(request.target().data(), request.target().size());
  ExtensionRequest call{.path = std::string(target.substr(0, target.find('?'))), .body = request.body(),
                        .peer = RemoteEndpointText()};
  auto executor = stream_.get_executor();
  state_->options.extension(std::move(call), [self = shared_from_this(), executor](ExtensionReply reply) {
    net::post(executor, [self, reply = std::move(reply)]() mutable {
      if (self->phase_ == Phase::kClosed) {
        self->state_->metrics.RequestFinished(self->endpoint_, 499, std::chrono::steady_clock::now() - self->started_);
        return;
      }
      self->response_.body() = std::move(reply.body);
      self->Send(static_cast<http::status>(reply.http_status), kJson);
    });
  });
}

std::string Session::RemoteEndpointText() const {
  beast::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  if (ec) return "unknown";
  return HostPort{endpoint.address().to_string(), endpoint.port()}.ToString();
}

// ---- GET endpoints ----

void Session::ServeHealth() {
  Health health = state_->api.GetHealth();
  std::string& body = response_.body();
  body.assign("{\"health\":\"").append(health.healthy ? "true" : "false").append("\",\"reason\":\"");
  body.append(log::JsonEscape(health.reason)).append("\"}");
  Send(health.healthy ? http::status::ok : http::status::service_unavailable, kJson);
}

void Session::ServeMetrics() {
  response_.body() = state_->api.Metrics();
  response_.body().append(state_->metrics.Text());
  Send(http::status::ok, "text/plain; version=0.0.4; charset=utf-8");
}

void Session::ServeVersion() {
  std::string& body = response_.body();
  body.assign("{\"etcdserver\":\"").append(log::JsonEscape(state_->options.etcd_server_version));
  body.append("\",\"etcdcluster\":\"").append(log::JsonEscape(state_->options.etcd_cluster_version));
  body.append("\",\"cairn\":\"").append(CAIRN_VERSION).append("\"}");
  Send(http::status::ok, kJson);
}

// ---- snapshot ----

void Session::StartSnapshot() {
  etcd::StatusRequest empty;  // etcd's SnapshotRequest has no fields either: accept {} only
  if (!DecodeRequest(&empty)) return;
  auto* source = dynamic_cast<SnapshotSource*>(&state_->api);
  if (source == nullptr) return ReplyError(UnimplementedError("this server cannot produce snapshots"));
  auto executor = stream_.get_executor();
  source->SaveBackup([self = shared_from_this(), executor](Result<std::string> backup) {
    net::post(executor, [self, backup = std::move(backup)]() mutable { self->OnSnapshot(std::move(backup)); });
  });
}

void Session::OnSnapshot(Result<std::string> backup) {
  if (phase_ == Phase::kClosed) {
    state_->metrics.RequestFinished(endpoint_, 499, std::chrono::steady_clock::now() - started_);
    return;
  }
  if (!backup.ok()) return ReplyError(backup.status());
  snapshot_data_ = std::move(*backup);
  snapshot_sent_ = 0;
  etcd::ResponseHeader header;
  if (auto peek = PeekBackupHeader(snapshot_data_); peek.ok()) {
    header.set_cluster_id(peek->cluster_id);
    header.set_member_id(peek->member_id);
    header.set_revision(peek->revision);
    header.set_raft_term(peek->raft_term);
  }
  json::Encode(header, &snapshot_header_);
  // A chunked stream like etcd's; the connection closes after it (the body length is not known
  // to the client up front, and a backup is a rare, large request).
  keep_alive_ = false;
  phase_ = Phase::kWriting;
  watch_head_ = std::make_unique<http::response<http::empty_body>>(http::status::ok, 11);
  SetCommonHeaders(*watch_head_);
  watch_head_->set(http::field::content_type, beast::string_view(kJson.data(), kJson.size()));
  watch_head_->keep_alive(false);
  watch_head_->chunked(true);
  watch_serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*watch_head_);
  state_->metrics.RequestFinished(endpoint_, 200, std::chrono::steady_clock::now() - started_);
  stream_.expires_after(state_->options.write_timeout);
  http::async_write_header(stream_, *watch_serializer_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->OnSnapshotWritten(ec);
  });
}

void Session::WriteSnapshotChunk() {
  watch_writing_.clear();
  for (size_t lines = 0; lines < kSnapshotLinesPerChunk && snapshot_sent_ < snapshot_data_.size(); ++lines) {
    size_t take = std::min(kSnapshotBlobBytes, snapshot_data_.size() - snapshot_sent_);
    std::string_view blob(snapshot_data_.data() + snapshot_sent_, take);
    snapshot_sent_ += take;
    watch_writing_.append("{\"result\":{\"header\":").append(snapshot_header_);
    watch_writing_.append(",\"remaining_bytes\":\"").append(std::to_string(snapshot_data_.size() - snapshot_sent_));
    watch_writing_.append("\",\"blob\":\"").append(json::Base64(blob)).append("\"}}\n");
  }
  stream_.expires_after(state_->options.write_timeout);
  net::async_write(stream_, http::make_chunk(net::buffer(watch_writing_)),
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnSnapshotWritten(ec); });
}

void Session::OnSnapshotWritten(beast::error_code ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec) return Close();
  if (snapshot_sent_ < snapshot_data_.size()) return WriteSnapshotChunk();
  snapshot_data_.clear();
  snapshot_data_.shrink_to_fit();
  WriteLastChunk();  // then closes
}

// ---- watch ----

void Session::StartWatch() {
  auto objects = json::SplitObjects(parser_->get().body());
  if (!objects.ok()) return ReplyError(objects.status());
  std::vector<etcd::WatchRequest> requests(objects->size());
  for (size_t i = 0; i < objects->size(); ++i) {
    Status status = json::Decode((*objects)[i], &requests[i]);
    if (!status.ok()) return ReplyError(status);
  }
  std::weak_ptr<Session> weak = weak_from_this();
  auto executor = stream_.get_executor();
  // The sink runs on the store's thread: copy and hop to the strand, never encode there.
  auto opened = state_->api.OpenWatchStream([weak, executor](const etcd::WatchResponse& response) {
    net::post(executor, [weak, response] {
      if (auto self = weak.lock()) self->OnWatchResponse(response);
    });
  });
  if (!opened.ok()) return ReplyError(opened.status());
  watch_ = std::move(*opened);
  phase_ = Phase::kWatching;

  watch_head_ = std::make_unique<http::response<http::empty_body>>(http::status::ok, 11);
  SetCommonHeaders(*watch_head_);
  watch_head_->set(http::field::content_type, beast::string_view(kJson.data(), kJson.size()));
  watch_head_->chunked(true);
  watch_serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*watch_head_);
  stream_.expires_after(state_->options.write_timeout);
  http::async_write_header(stream_, *watch_serializer_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWatchHeadWritten(ec); });
  state_->metrics.RequestFinished(endpoint_, 200, std::chrono::steady_clock::now() - started_);

  for (const etcd::WatchRequest& request : requests) {
    watch_->Handle(request, [weak, executor](Result<bool> result) {
      if (result.ok()) return;
      net::post(executor, [weak, status = result.status()] {
        auto self = weak.lock();
        if (!self) return;
        json::ErrorReply reply = json::MapError(status);
        self->QueueWatchText(json::ErrorBody(reply.message, reply.grpc_code) + "\n");
      });
    });
  }
}

void Session::OnWatchHeadWritten(beast::error_code ec) {
  if (phase_ == Phase::kClosed) return;
  if (ec) return Close();
  watch_head_sent_ = true;
  // Events may wait a long time: no deadline while streaming (the backlog limit bounds memory).
  stream_.expires_never();
  ReadUntilClientCloses();
  if (!watch_pending_.empty()) {
    WriteWatchBacklog();
  } else if (watch_ending_) {
    WriteLastChunk();
  }
}

void Session::OnWatchResponse(const etcd::WatchResponse& response) {
  if (phase_ != Phase::kWatching || watch_ending_) return;
  std::string line;
  AppendResultLine(response, &watch_scratch_, &line);
  QueueWatchText(line);
}

void Session::QueueWatchText(std::string_view text) {
  if (phase_ != Phase::kWatching || watch_ending_) return;
  watch_pending_.append(text);
  if (watch_pending_.size() > state_->options.max_watch_backlog_bytes) {
    log::Warn("coord.http.watch_backlog", "bytes", watch_pending_.size());
    return Close();
  }
  if (watch_head_sent_ && !watch_write_active_) WriteWatchBacklog();
}

void Session::WriteWatchBacklog() {
  watch_writing_.swap(watch_pending_);
  watch_pending_.clear();
  watch_write_active_ = true;
  net::async_write(stream_, http::make_chunk(net::buffer(watch_writing_)),
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWatchWritten(ec); });
}

void Session::OnWatchWritten(beast::error_code ec) {
  watch_write_active_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec) return Close();
  if (!watch_pending_.empty()) return WriteWatchBacklog();
  if (watch_ending_) WriteLastChunk();
}

void Session::ReadUntilClientCloses() {
  // The request body is complete, so anything the client sends now is ignored; EOF or an error
  // means it went away.
  stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (self->phase_ == Phase::kClosed) return;
    if (ec) return self->Close();
    self->ReadUntilClientCloses();
  });
}

void Session::EndWatch() {
  if (watch_ending_) return;
  watch_ending_ = true;
  watch_.reset();  // cancels the watchers; the sink is not called after this
  if (!watch_head_sent_ || watch_write_active_) return;  // their completion handlers finish up
  if (!watch_pending_.empty()) return WriteWatchBacklog();
  WriteLastChunk();
}

void Session::WriteLastChunk() {
  stream_.expires_after(state_->options.write_timeout);
  net::async_write(stream_, http::make_chunk_last(),
                   [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
}

// ---- stop and close ----

void Session::LingerClose() {
  // Closing with unread bytes in the socket makes the kernel send RST, and the client may then
  // lose the error response it has not read yet. Half-close, discard what still arrives for a
  // moment, then close.
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  stream_.expires_after(std::chrono::seconds(1));
  stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code read_ec, size_t) {
    if (self->phase_ == Phase::kClosed) return;
    if (read_ec) return self->Close();
    self->LingerClose();
  });
}

void Session::OnStop() {
  stopping_ = true;
  switch (phase_) {
    case Phase::kReading: return Close();  // idle, or a request not fully received
    case Phase::kWatching: return EndWatch();
    default: return;  // the response in progress goes out with "Connection: close"
  }
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  watch_.reset();
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  stream_.close();
  state_->Unregister(registry_id_);
  state_->metrics.ConnectionClosed();
}

}  // namespace cairn::coord
