#include "cairn/etcdclient/etcd_client.h"

#include <algorithm>
#include <thread>

#include "cairn/etcdclient/etcdctl.h"
#include "cairn/etcdclient/json.h"
#include "http_connection.h"

namespace cairn::etcdclient {
namespace {

using internal::Deadline;
using internal::HttpConnection;
using internal::HttpReply;
using SteadyClock = std::chrono::steady_clock;

constexpr int kMaxFruitlessWatchResumes = 3;

Deadline After(std::chrono::nanoseconds duration) {
  return SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(duration);
}

// A non-200 reply as a Status: etcd's error JSON when it is one, else the HTTP status and body.
cairn::Status ReplyError(const HttpReply& reply) {
  if (auto error = ParseErrorBody(reply.body)) return *error;
  std::string body = std::string(Trim(reply.body)).substr(0, 200);
  std::string text = "HTTP " + std::to_string(reply.status) + (body.empty() ? "" : ": " + body);
  if (reply.status == 404) return UnimplementedError(text + " (the server does not serve this etcd API)");
  if (reply.status == 503) return UnavailableError(text);
  return cairn::Status(reply.status >= 500 ? StatusCode::kInternal : StatusCode::kInvalidArgument, text);
}

// Splits complete lines off *pending, leaving a partial last line in it.
template <typename OnLine>
bool ForEachLine(std::string* pending, OnLine on_line) {
  size_t start = 0;
  for (size_t end; (end = pending->find('\n', start)) != std::string::npos; start = end + 1) {
    std::string_view line(pending->data() + start, end - start);
    if (Trim(line).empty()) continue;
    if (!on_line(line)) {
      pending->clear();
      return false;
    }
  }
  pending->erase(0, start);
  return true;
}

}  // namespace

bool IsTransportFailure(const cairn::Status& status) {
  return status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kDeadlineExceeded;
}

EtcdClient::EtcdClient(std::vector<HostPort> endpoints, ClientOptions options)
    : endpoints_(std::move(endpoints)), options_(options), connections_(endpoints_.size()) {}

EtcdClient::~EtcdClient() = default;

HttpConnection& EtcdClient::ConnectionTo(size_t index) {
  if (!connections_[index]) connections_[index] = std::make_unique<HttpConnection>(endpoints_[index]);
  return *connections_[index];
}

cairn::Status EtcdClient::WithFailover(const std::function<cairn::Status(HttpConnection&)>& attempt) {
  if (endpoints_.empty()) return InvalidArgumentError("no endpoints given");
  std::string errors;
  cairn::Status last;
  for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
    size_t index = (current_ + tried) % endpoints_.size();
    last = attempt(ConnectionTo(index));
    if (!IsTransportFailure(last)) {
      current_ = index;
      return last;
    }
    if (!errors.empty()) errors += "; ";
    errors += endpoints_[index].ToString() + ": " + last.message();
  }
  return cairn::Status(last.code(), errors);
}

cairn::Status EtcdClient::WithRetry(Deadline deadline, const std::function<cairn::Status(HttpConnection&)>& attempt) {
  auto pause = std::chrono::milliseconds(50);
  while (true) {
    server_unavailable_ = false;
    cairn::Status status = WithFailover(attempt);
    // Only a cluster that answered "unavailable" (an election under way: "leader changed", "no
    // leader") is worth waiting for; endpoints that cannot be reached fail at once.
    if (status.ok() || !server_unavailable_ || SteadyClock::now() + pause >= deadline) return status;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

cairn::Status EtcdClient::Call(const std::string& path, const google::protobuf::Message& request,
                               google::protobuf::Message* response) {
  std::string body = ToJson(request);
  Deadline deadline = After(options_.timeout);
  return WithRetry(deadline, [&](HttpConnection& connection) -> cairn::Status {
    Deadline connect_deadline = std::min(deadline, After(options_.connect_timeout));
    CAIRN_ASSIGN_OR_RETURN(HttpReply reply, connection.Post(path, body, connect_deadline, deadline));
    if (reply.status != 200) {
      cairn::Status error = ReplyError(reply);
      if (error.code() == StatusCode::kUnavailable) server_unavailable_ = true;
      return error;
    }
    // A streaming endpoint (keepalive) wraps its answer as {"result":...}.
    std::string_view text = Trim(reply.body);
    if (StartsWith(text, "{\"result\"") || StartsWith(text, "{\"error\"")) {
      return ParseStreamItem(text.substr(0, text.find('\n')), response);
    }
    return FromJson(text, response);
  });
}

template <typename Response, typename Request>
static Result<Response> CallAs(EtcdClient& client, const std::string& path, const Request& request) {
  Response response;
  CAIRN_RETURN_IF_ERROR(client.Call(path, request, &response));
  return response;
}

Result<etcd::RangeResponse> EtcdClient::Range(const etcd::RangeRequest& request) {
  return CallAs<etcd::RangeResponse>(*this, "/v3/kv/range", request);
}
Result<etcd::PutResponse> EtcdClient::Put(const etcd::PutRequest& request) {
  return CallAs<etcd::PutResponse>(*this, "/v3/kv/put", request);
}
Result<etcd::DeleteRangeResponse> EtcdClient::DeleteRange(const etcd::DeleteRangeRequest& request) {
  return CallAs<etcd::DeleteRangeResponse>(*this, "/v3/kv/deleterange", request);
}
Result<etcd::TxnResponse> EtcdClient::Txn(const etcd::TxnRequest& request) {
  return CallAs<etcd::TxnResponse>(*this, "/v3/kv/txn", request);
}
Result<etcd::CompactionResponse> EtcdClient::Compact(const etcd::CompactionRequest& request) {
  return CallAs<etcd::CompactionResponse>(*this, "/v3/kv/compaction", request);
}
Result<etcd::LeaseGrantResponse> EtcdClient::LeaseGrant(const etcd::LeaseGrantRequest& request) {
  return CallAs<etcd::LeaseGrantResponse>(*this, "/v3/lease/grant", request);
}
Result<etcd::LeaseRevokeResponse> EtcdClient::LeaseRevoke(const etcd::LeaseRevokeRequest& request) {
  return CallAs<etcd::LeaseRevokeResponse>(*this, "/v3/lease/revoke", request);
}
Result<etcd::LeaseKeepAliveResponse> EtcdClient::LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request) {
  CAIRN_ASSIGN_OR_RETURN(auto response, CallAs<etcd::LeaseKeepAliveResponse>(*this, "/v3/lease/keepalive", request));
  if (response.ttl() <= 0) return NotFoundError("lease " + HexId(static_cast<uint64_t>(request.id())) + " not found (expired or revoked)");
  return response;
}
Result<etcd::LeaseTimeToLiveResponse> EtcdClient::LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request) {
  return CallAs<etcd::LeaseTimeToLiveResponse>(*this, "/v3/lease/timetolive", request);
}
Result<etcd::LeaseLeasesResponse> EtcdClient::LeaseLeases() {
  return CallAs<etcd::LeaseLeasesResponse>(*this, "/v3/lease/leases", etcd::LeaseLeasesRequest());
}
Result<etcd::MemberListResponse> EtcdClient::MemberList() {
  return CallAs<etcd::MemberListResponse>(*this, "/v3/cluster/member/list", etcd::MemberListRequest());
}
Result<etcd::MemberAddResponse> EtcdClient::MemberAdd(const etcd::MemberAddRequest& request) {
  return CallAs<etcd::MemberAddResponse>(*this, "/v3/cluster/member/add", request);
}
Result<etcd::MemberRemoveResponse> EtcdClient::MemberRemove(const etcd::MemberRemoveRequest& request) {
  return CallAs<etcd::MemberRemoveResponse>(*this, "/v3/cluster/member/remove", request);
}
Result<etcd::MemberPromoteResponse> EtcdClient::MemberPromote(const etcd::MemberPromoteRequest& request) {
  return CallAs<etcd::MemberPromoteResponse>(*this, "/v3/cluster/member/promote", request);
}
Result<etcd::StatusResponse> EtcdClient::Status() {
  return CallAs<etcd::StatusResponse>(*this, "/v3/maintenance/status", etcd::StatusRequest());
}

Result<etcd::StatusResponse> EtcdClient::StatusOf(const HostPort& endpoint) {
  HttpConnection connection(endpoint);
  Deadline deadline = After(options_.timeout);
  Deadline connect_deadline = std::min(deadline, After(options_.connect_timeout));
  auto reply = connection.Post("/v3/maintenance/status", "{}", connect_deadline, deadline);
  if (!reply.ok()) return cairn::Status(reply.status().code(), endpoint.ToString() + ": " + reply.status().message());
  if (reply->status != 200) {
    cairn::Status error = ReplyError(*reply);
    return cairn::Status(error.code(), endpoint.ToString() + ": " + error.message());
  }
  etcd::StatusResponse response;
  CAIRN_RETURN_IF_ERROR(FromJson(reply->body, &response));
  return response;
}

Result<HealthReply> EtcdClient::HealthOf(const HostPort& endpoint) {
  HttpConnection connection(endpoint);
  Deadline deadline = After(options_.timeout);
  Deadline connect_deadline = std::min(deadline, After(options_.connect_timeout));
  auto reply = connection.Get("/health", connect_deadline, deadline);
  if (!reply.ok()) return cairn::Status(reply.status().code(), endpoint.ToString() + ": " + reply.status().message());
  HealthReply health;
  health.body = std::string(Trim(reply->body));
  // etcd: {"health":"true"}; accept a JSON boolean too.
  health.healthy = reply->status == 200 && (health.body.find("\"health\":\"true\"") != std::string::npos ||
                                            health.body.find("\"health\":true") != std::string::npos);
  return health;
}

// One watch stream: failover until a stream starts, then lines to callbacks until the stream
// ends. *started says whether a stream started; *next_revision tracks where to resume.
cairn::Status EtcdClient::WatchOnce(const etcd::WatchCreateRequest& request, const WatchCallback& callback,
                                    Deadline end, bool* started, int64_t* next_revision) {
  etcd::WatchRequest wrapper;
  *wrapper.mutable_create_request() = request;
  std::string body = ToJson(wrapper);
  Deadline start_deadline = std::min(end, After(options_.timeout));
  bool stopped = false;
  cairn::Status stream_error;
  std::string pending;
  auto on_line = [&](std::string_view line) {
    etcd::WatchResponse response;
    cairn::Status parsed = ParseStreamItem(line, &response);
    if (!parsed.ok()) {
      stream_error = parsed;
      return false;
    }
    if (response.canceled()) {
      std::string reason = response.cancel_reason().empty() ? "watch canceled by the server" : response.cancel_reason();
      if (response.compact_revision() > 0) {
        stream_error = OutOfRangeError(reason + " (compacted up to revision " +
                                       std::to_string(response.compact_revision()) + ")");
      } else {
        stream_error = FailedPreconditionError(reason);
      }
      callback(response);
      return false;
    }
    // Resume point: after the last event seen, or after the revision the watch was created at.
    if (response.created() && *next_revision <= 0) *next_revision = response.header().revision() + 1;
    for (const etcd::Event& event : response.events()) {
      *next_revision = std::max(*next_revision, event.kv().mod_revision() + 1);
    }
    if (!callback(response)) {
      stopped = true;
      return false;
    }
    return true;
  };
  auto on_data = [&](std::string_view data) {
    *started = true;
    pending.append(data);
    return ForEachLine(&pending, on_line);
  };
  return WithFailover([&](HttpConnection& connection) -> cairn::Status {
    Deadline connect_deadline = std::min(start_deadline, After(options_.connect_timeout));
    HttpReply error_reply;
    CAIRN_RETURN_IF_ERROR(
        connection.PostStream("/v3/watch", body, connect_deadline, start_deadline, end, on_data, &error_reply));
    if (error_reply.status != 0) return ReplyError(error_reply);
    if (!stream_error.ok()) {
      // Not a transport failure: never retried on another endpoint.
      return stream_error.code() == StatusCode::kUnavailable ? InternalError(stream_error.message()) : stream_error;
    }
    if (stopped || SteadyClock::now() >= end) return cairn::Status::Ok();
    return AbortedError("the server ended the watch stream");
  });
}

cairn::Status EtcdClient::Watch(const etcd::WatchCreateRequest& request, const WatchCallback& callback,
                                std::optional<SteadyClock::time_point> until) {
  Deadline end = until.value_or(Deadline::max());
  etcd::WatchCreateRequest current = request;
  int64_t next_revision = request.start_revision();
  int fruitless_resumes = 0;  // resumes in a row after which no event came
  while (true) {
    bool started = false;
    int64_t resumed_at = next_revision;
    cairn::Status status = WatchOnce(current, callback, end, &started, &next_revision);
    // A stream that broke after it had started resumes where it stopped (on the next endpoint if
    // that one is gone), so no event is lost or repeated; one that never started is an error, and
    // so is a server that keeps ending streams without delivering anything.
    bool broken = status.code() == StatusCode::kAborted || IsTransportFailure(status);
    if (status.ok() || !started || !broken || SteadyClock::now() >= end) return status;
    fruitless_resumes = next_revision > resumed_at ? 0 : fruitless_resumes + 1;
    if (fruitless_resumes > kMaxFruitlessWatchResumes) return status;
    current.set_start_revision(next_revision);
  }
}

}  // namespace cairn::etcdclient
