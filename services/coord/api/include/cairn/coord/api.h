// CoordApi: what the coordination store offers its front ends (the HTTP/JSON gateway, clusterd's
// own services). services/coord/node implements it over Raft; services/coord/local implements it
// in one process without Raft, for tests of the front ends.
//
// Requests and responses are etcd's messages (cairn/proto/etcd_rpc.proto), so the gateway only
// converts JSON <-> protobuf. Every call is asynchronous: `done` runs exactly once, on a thread
// of the implementation's choosing (front ends post back to their own executor), and must not
// block or call back into the CoordApi synchronously.
//
// Errors: the kv errors of libs/kv/errors.h with etcd's messages word for word (InvalidArgument,
// OutOfRange for compacted/future revisions, NotFound for leases), plus
//   Unavailable       - no leader now, or the leader cannot be reached; retry (another endpoint)
//   DeadlineExceeded  - the request was not committed within `deadline`; it may still apply
//   FailedPrecondition- membership change refused (e.g. another change in progress, learner not
//                        caught up: etcd's "etcdserver: can only promote a learner member which is
//                        in sync with leader")
//   ResourceExhausted - too many requests in flight
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cairn/common/status.h"
#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::coord {

template <typename T>
using Done = std::function<void(Result<T>)>;

struct CallOptions {
  // How long the implementation may wait for a leader, a commit or a ReadIndex.
  std::chrono::milliseconds deadline{5000};
};

// One etcd watch stream (one /v3/watch connection). The sink receives every WatchResponse of the
// stream's watchers, in order, on the implementation's thread; it must not block or call into the
// stream (queue and return). Destroying the stream cancels its watchers and sends nothing more;
// the sink is not called after the destructor returns.
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // A create, cancel or progress request, as /v3/watch receives them. Errors as WatchHub::Handle.
  virtual void Handle(const etcd::WatchRequest& request, Done<bool> done) = 0;
};

// A node's health as /health reports it (etcd: {"health":"true","reason":""}).
struct Health {
  bool healthy = false;
  std::string reason;  // empty when healthy, e.g. "no leader", "raft log behind"
};

class CoordApi {
 public:
  using WatchSink = std::function<void(const etcd::WatchResponse&)>;
  virtual ~CoordApi() = default;

  // KV. Range honours request.serializable (local read) vs linearizable (ReadIndex).
  virtual void Range(const etcd::RangeRequest& request, const CallOptions& options,
                     Done<etcd::RangeResponse> done) = 0;
  virtual void Put(const etcd::PutRequest& request, const CallOptions& options,
                   Done<etcd::PutResponse> done) = 0;
  virtual void DeleteRange(const etcd::DeleteRangeRequest& request, const CallOptions& options,
                           Done<etcd::DeleteRangeResponse> done) = 0;
  virtual void Txn(const etcd::TxnRequest& request, const CallOptions& options,
                   Done<etcd::TxnResponse> done) = 0;
  virtual void Compact(const etcd::CompactionRequest& request, const CallOptions& options,
                       Done<etcd::CompactionResponse> done) = 0;

  // Watch.
  virtual Result<std::unique_ptr<WatchStream>> OpenWatchStream(WatchSink sink) = 0;

  // Leases.
  virtual void LeaseGrant(const etcd::LeaseGrantRequest& request, const CallOptions& options,
                          Done<etcd::LeaseGrantResponse> done) = 0;
  virtual void LeaseRevoke(const etcd::LeaseRevokeRequest& request, const CallOptions& options,
                           Done<etcd::LeaseRevokeResponse> done) = 0;
  virtual void LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request, const CallOptions& options,
                              Done<etcd::LeaseKeepAliveResponse> done) = 0;
  virtual void LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request,
                               const CallOptions& options,
                               Done<etcd::LeaseTimeToLiveResponse> done) = 0;
  virtual void LeaseLeases(const etcd::LeaseLeasesRequest& request, const CallOptions& options,
                           Done<etcd::LeaseLeasesResponse> done) = 0;

  // Cluster membership.
  virtual void MemberList(const etcd::MemberListRequest& request, const CallOptions& options,
                          Done<etcd::MemberListResponse> done) = 0;
  virtual void MemberAdd(const etcd::MemberAddRequest& request, const CallOptions& options,
                         Done<etcd::MemberAddResponse> done) = 0;
  virtual void MemberRemove(const etcd::MemberRemoveRequest& request, const CallOptions& options,
                            Done<etcd::MemberRemoveResponse> done) = 0;
  virtual void MemberPromote(const etcd::MemberPromoteRequest& request, const CallOptions& options,
                             Done<etcd::MemberPromoteResponse> done) = 0;

  // Maintenance.
  virtual void Status(const etcd::StatusRequest& request, const CallOptions& options,
                      Done<etcd::StatusResponse> done) = 0;
  virtual Health GetHealth() = 0;
  // Prometheus text exposition of the implementation's own metrics (raft term/index, leader
  // changes, proposals, fsync latency histogram, db size). The gateway appends its own
  // (request latency by endpoint).
  virtual std::string Metrics() = 0;
};

}  // namespace cairn::coord
