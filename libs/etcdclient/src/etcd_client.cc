#include "cairn/etcdclient/etcd_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <google/protobuf/struct.pb.h>

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

// The part file SnapshotSave writes: removed unless Commit() renamed it into place.
class PartFile {
 public:
  explicit PartFile(std::string path) : path_(std::move(path)), part_(path_ + ".part") {}
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(part_.c_str());
  }

  cairn::Status Open() {
    fd_ = ::open(part_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    return fd_ >= 0 ? cairn::Status::Ok() : ErrnoError("cannot create " + part_, errno);
  }
  // Starts over (a stream that broke before it was complete, retried elsewhere).
  cairn::Status Reset() {
    size_ = 0;
    return ::ftruncate(fd_, 0) == 0 && ::lseek(fd_, 0, SEEK_SET) == 0 ? cairn::Status::Ok()
                                                                       : ErrnoError("cannot truncate " + part_, errno);
  }
  cairn::Status Append(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("cannot write " + part_, errno);
      data.remove_prefix(static_cast<size_t>(n));
      size_ += static_cast<uint64_t>(n);
    }
    return cairn::Status::Ok();
  }
  cairn::Status SyncAndClose() {
    if (::fsync(fd_) != 0) return ErrnoError("cannot fsync " + part_, errno);
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return ErrnoError("cannot close " + part_, errno);
    return cairn::Status::Ok();
  }
  // Renames the part file to its final name and syncs the directory.
  cairn::Status Commit() {
    if (::rename(part_.c_str(), path_.c_str()) != 0) return ErrnoError("cannot rename " + part_ + " to " + path_, errno);
    committed_ = true;
    std::string dir = path_.find('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/'));
    if (dir.empty()) dir = "/";
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return ErrnoError("cannot open directory " + dir, errno);
    int synced = ::fsync(dir_fd);
    ::close(dir_fd);
    return synced == 0 ? cairn::Status::Ok() : ErrnoError("cannot fsync directory " + dir, errno);
  }
  const std::string& part() const { return part_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_, part_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool committed_ = false;
};

// Reads the whole file at path.
Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path, errno);
  std::string data;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return ErrnoError("cannot read " + path, error);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

// One line of the snapshot stream: its blob and remaining_bytes (etcd 3.4 spells it
// remaining_bytes; protobuf's default JSON would say remainingBytes: both are read).
cairn::Status ParseSnapshotLine(std::string_view line, std::string* blob, uint64_t* remaining) {
  google::protobuf::Struct item;
  CAIRN_RETURN_IF_ERROR(ParseStreamItem(line, &item));
  const auto& fields = item.fields();
  blob->clear();
  if (auto it = fields.find("blob"); it != fields.end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
      return InvalidArgumentError("snapshot stream: blob is not a string");
    }
    CAIRN_ASSIGN_OR_RETURN(*blob, Base64Decode(it->second.string_value()));
  }
  *remaining = 0;
  for (const char* name : {"remaining_bytes", "remainingBytes"}) {
    auto it = fields.find(name);
    if (it == fields.end()) continue;
    if (it->second.kind_case() == google::protobuf::Value::kStringValue) {
      *remaining = std::strtoull(it->second.string_value().c_str(), nullptr, 10);
    } else if (it->second.kind_case() == google::protobuf::Value::kNumberValue) {
      *remaining = static_cast<uint64_t>(it->second.number_value());
    }
  }
  return cairn::Status::Ok();
}

}  // namespace

bool IsTransportFailure(const cairn::Status& status) {
  return status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kDeadlineExceeded;
}

std::string DefaultApiToken() {
  if (const char* token = std::getenv("CAIRN_API_TOKEN"); token != nullptr && *token != '\0') return token;
  const char* path = std::getenv("CAIRN_API_TOKEN_FILE");
  if (path == nullptr || *path == '\0') return {};
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

EtcdClient::EtcdClient(std::vector<HostPort> endpoints, ClientOptions options)
    : endpoints_(std::move(endpoints)), options_(options), connections_(endpoints_.size()) {
  if (!options_.bearer_token) options_.bearer_token = DefaultApiToken();
}

EtcdClient::~EtcdClient() = default;

HttpConnection& EtcdClient::ConnectionTo(size_t index) {
  if (!connections_[index]) connections_[index] = std::make_unique<HttpConnection>(endpoints_[index], *options_.bearer_token);
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
  HttpConnection connection(endpoint, *options_.bearer_token);
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
  HttpConnection connection(endpoint, *options_.bearer_token);
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

Result<SavedSnapshot> EtcdClient::SnapshotSave(const std::string& path, std::chrono::nanoseconds transfer_limit) {
  PartFile file(path);
  CAIRN_RETURN_IF_ERROR(file.Open());
  Deadline start_deadline = After(options_.timeout);
  Deadline end = After(std::max(transfer_limit, options_.timeout));
  bool complete = false;
  cairn::Status stream_error;
  std::string pending, blob;
  auto on_line = [&](std::string_view line) {
    uint64_t remaining = 0;
    stream_error = ParseSnapshotLine(line, &blob, &remaining);
    if (stream_error.ok()) stream_error = file.Append(blob);
    if (!stream_error.ok()) return false;
    complete = remaining == 0;
    return true;
  };
  HostPort served_by;
  CAIRN_RETURN_IF_ERROR(WithFailover([&](HttpConnection& connection) -> cairn::Status {
    CAIRN_RETURN_IF_ERROR(file.Reset());
    pending.clear();
    complete = false;
    Deadline connect_deadline = std::min(start_deadline, After(options_.connect_timeout));
    HttpReply error_reply;
    CAIRN_RETURN_IF_ERROR(connection.PostStream(
        "/v3/maintenance/snapshot", "{}", connect_deadline, start_deadline, end,
        [&](std::string_view data) {
          pending.append(data);
          return ForEachLine(&pending, on_line);
        },
        &error_reply));
    connection.Close();  // the server ends the stream by closing
    if (error_reply.status != 0) return ReplyError(error_reply);
    if (!complete && stream_error.ok() && !Trim(pending).empty()) {  // a last line without its newline
      pending.append("\n");
      (void)ForEachLine(&pending, on_line);
    }
    if (!stream_error.ok()) {
      // Not a transport failure: never retried on another endpoint.
      return stream_error.code() == StatusCode::kUnavailable ? InternalError(stream_error.message()) : stream_error;
    }
    if (!complete) {
      if (SteadyClock::now() >= end) return DeadlineExceededError("snapshot transfer did not finish in time");
      return CorruptionError("snapshot stream ended after " + std::to_string(file.size()) +
                             " bytes, before its last part (remaining_bytes never reached 0)");
    }
    served_by = connection.endpoint();
    return cairn::Status::Ok();
  }));
  CAIRN_RETURN_IF_ERROR(file.SyncAndClose());
  SavedSnapshot saved{.endpoint = served_by, .size_bytes = file.size()};
  CAIRN_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(file.part()));
  if (StartsWith(data, coord::kBackupMagic)) {
    auto backup = coord::DecodeBackup(data);
    if (!backup.ok()) return backup.status().WithContext("snapshot from " + served_by.ToString());
    saved.cairn = backup->header;
    saved.checksum = backup->checksum_hex;
  } else {
    saved.checksum = coord::Sha256Hex(data);
  }
  CAIRN_RETURN_IF_ERROR(file.Commit());
  return saved;
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
