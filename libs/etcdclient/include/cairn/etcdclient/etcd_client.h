// EtcdClient: a synchronous C++ client for etcd's v3 JSON gateway (POST /v3/kv/range, ...), the
// API both etcd and Cairn's clusterd serve on their client port.
//
//   cairn::etcdclient::EtcdClient client({{"127.0.0.1", 2379}, {"127.0.0.1", 22379}});
//   cairn::etcd::PutRequest put;
//   put.set_key("k");
//   put.set_value("v");
//   auto reply = client.Put(put);  // Result<etcd::PutResponse>
//
// Requests and responses are etcd's own messages (cairn/proto/etcd_rpc.proto), sent as protobuf
// JSON with proto field names: exactly what etcd's gateway reads and writes.
//
// Endpoints and failover: calls go to the endpoint that answered last (the first one at the
// start) over a kept-alive HTTP/1.1 connection. When an endpoint cannot be reached, refuses,
// closes the connection, times out, or answers 503/Unavailable, the call moves on to the next
// endpoint, each once. When all fail, the error lists each: "127.0.0.1:2379: connection refused;
// 127.0.0.1:22379: timed out (waiting for the response)", with the code of the last failure.
// A server's error answer (etcd error JSON, e.g. "etcdserver: requested lease not found") is
// returned at once as a Status with etcd's message and a code mapped from its gRPC code; it is not
// retried elsewhere. The exception is Unavailable ("etcdserver: leader changed", "no leader"): the
// next endpoint is tried, and when every endpoint failed and one of them said Unavailable, the
// whole round is repeated after a pause until the deadline (elections are short). Unreachable
// endpoints alone fail at once.
//
// Deadlines: every call finishes within options.timeout (DeadlineExceeded otherwise); a single
// endpoint's connection attempt gets at most options.connect_timeout of it, so a dead endpoint
// leaves time for the next one.
//
// Threading: not thread-safe; use one client per thread. Calls block the calling thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"
#include "cairn/coord/node/backup_file.h"
#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::etcdclient {

namespace internal {
class HttpConnection;
}  // namespace internal

struct ClientOptions {
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);          // whole call, all endpoints
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(1);  // one endpoint's TCP connect
  // Sent as "Authorization: Bearer TOKEN" on every request when not empty (the gateway's
  // auth.api_token_file). nullopt: DefaultApiToken().
  std::optional<std::string> bearer_token;
};

// $CAIRN_API_TOKEN when set, else the first line of the file named by $CAIRN_API_TOKEN_FILE (clusterd
// sets that for the processes it starts), else empty. An unreadable file reads as empty.
std::string DefaultApiToken();

// Called with each WatchResponse (including the "created" one); return false to stop watching.
using WatchCallback = std::function<bool(const etcd::WatchResponse&)>;

// What SnapshotSave wrote.
struct SavedSnapshot {
  HostPort endpoint;       // the member that produced it
  uint64_t size_bytes = 0;
  // A Cairn store backup (backup_file.h): its header, checked against its SHA-256 trailer.
  // nullopt for another server's snapshot (etcd's bbolt file), which is saved unchecked.
  std::optional<coord::BackupHeader> cairn;
  std::string checksum;    // Cairn: the verified SHA-256 trailer; otherwise SHA-256 of the file
};

// What /health says: {"health":"true"} on etcd 3.4.
struct HealthReply {
  bool healthy = false;
  std::string body;  // the raw answer, for display
};

class EtcdClient {
 public:
  // endpoints must not be empty (every call fails with InvalidArgument otherwise).
  explicit EtcdClient(std::vector<HostPort> endpoints, ClientOptions options = {});
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  const std::vector<HostPort>& endpoints() const { return endpoints_; }
  const ClientOptions& options() const { return options_; }

  Result<etcd::RangeResponse> Range(const etcd::RangeRequest& request);
  Result<etcd::PutResponse> Put(const etcd::PutRequest& request);
  Result<etcd::DeleteRangeResponse> DeleteRange(const etcd::DeleteRangeRequest& request);
  Result<etcd::TxnResponse> Txn(const etcd::TxnRequest& request);
  Result<etcd::CompactionResponse> Compact(const etcd::CompactionRequest& request);

  Result<etcd::LeaseGrantResponse> LeaseGrant(const etcd::LeaseGrantRequest& request);
  Result<etcd::LeaseRevokeResponse> LeaseRevoke(const etcd::LeaseRevokeRequest& request);
  // One keep-alive round (the gateway's stream carries one answer per request). TTL 0 in the
  // answer means the lease does not exist (etcd's convention); this returns NotFound then.
  Result<etcd::LeaseKeepAliveResponse> LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request);
  Result<etcd::LeaseTimeToLiveResponse> LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request);
  Result<etcd::LeaseLeasesResponse> LeaseLeases();

  Result<etcd::MemberListResponse> MemberList();
  Result<etcd::MemberAddResponse> MemberAdd(const etcd::MemberAddRequest& request);
  Result<etcd::MemberRemoveResponse> MemberRemove(const etcd::MemberRemoveRequest& request);
  Result<etcd::MemberPromoteResponse> MemberPromote(const etcd::MemberPromoteRequest& request);

  // Status of whichever endpoint answers (failover as above).
  Result<etcd::StatusResponse> Status();
  // Status of exactly this endpoint, no failover (for a per-member table). Errors name it.
  Result<etcd::StatusResponse> StatusOf(const HostPort& endpoint);
  // GET /health of exactly this endpoint. A reachable but unhealthy member is OK with healthy=false.
  Result<HealthReply> HealthOf(const HostPort& endpoint);

  // Watches until callback returns false (OK), until `until` passes (OK; no deadline when nullopt),
  // or the server cancels the watch (the cancel reason as FailedPrecondition, or OutOfRange when
  // the start revision was compacted). Failover applies until the stream starts; options.timeout
  // bounds that part (connect and response header). When a started stream breaks (the member
  // died, the server ended it), the watch resumes from the revision after the last event seen, on
  // the next endpoint if need be, so the callback sees every event once; it then also sees a
  // second "created" response. A stream that cannot be restarted ends with that error.
  cairn::Status Watch(const etcd::WatchCreateRequest& request, const WatchCallback& callback,
                      std::optional<std::chrono::steady_clock::time_point> until = std::nullopt);

  // etcdctl snapshot save: streams POST /v3/maintenance/snapshot from the first endpoint that
  // answers into PATH.part, fsyncs it, checks it (complete: the stream's remaining_bytes reached 0;
  // a Cairn backup: its checksum and format), renames it to `path` and fsyncs the directory. On any
  // failure PATH.part is removed and `path` is untouched. options.timeout bounds the start (connect
  // and response header); `transfer_limit` the whole transfer.
  // Errors: those of the call (failover as above until a stream starts), Corruption (incomplete
  // stream, damaged backup), I/O errors naming the file.
  Result<SavedSnapshot> SnapshotSave(const std::string& path,
                                     std::chrono::nanoseconds transfer_limit = std::chrono::minutes(10));

  // Any unary gateway call: POSTs request as JSON to path, parses the answer into *response.
  cairn::Status Call(const std::string& path, const google::protobuf::Message& request,
                     google::protobuf::Message* response);

 private:
  // Runs attempt on each endpoint in turn, starting from the sticky one, until one does not fail
  // with a transport error. Returns the joined per-endpoint errors when all do.
  cairn::Status WithFailover(const std::function<cairn::Status(internal::HttpConnection&)>& attempt);
  // WithFailover, repeated with a growing pause (50 ms .. 500 ms) while some endpoint answered
  // Unavailable (an election), until deadline.
  cairn::Status WithRetry(std::chrono::steady_clock::time_point deadline,
                          const std::function<cairn::Status(internal::HttpConnection&)>& attempt);
  internal::HttpConnection& ConnectionTo(size_t index);
  cairn::Status WatchOnce(const etcd::WatchCreateRequest& request, const WatchCallback& callback,
                          std::chrono::steady_clock::time_point end, bool* started, int64_t* next_revision);

  std::vector<HostPort> endpoints_;
  ClientOptions options_;
  std::vector<std::unique_ptr<internal::HttpConnection>> connections_;  // one per endpoint, lazily opened
  size_t current_ = 0;  // the endpoint that answered last
  bool server_unavailable_ = false;  // set by an attempt when a server answered Unavailable
};

// True for the failures that make a call move to the next endpoint.
bool IsTransportFailure(const cairn::Status& status);

}  // namespace cairn::etcdclient
