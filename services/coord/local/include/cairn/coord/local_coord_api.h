// LocalCoordApi: the CoordApi over one KvStateMachine in one process, without Raft. It is for
// tests of the front ends (the HTTP gateway, clusterctl) and for manual experiments; it keeps
// nothing on disk.
//
// Every call runs under one mutex and calls `done` synchronously on the caller's thread, after
// the mutex is released. Watch sinks run under the mutex (inside the write that produced the
// event), as the CoordApi contract allows: they must queue and return.
//
// Time: lease expiry follows the injected Clock. Expired leases are revoked lazily at the start of
// every call and by ExpireLeases() (tests advance a FakeClock, then call it or any other method).
//
// Membership: the member list starts with this node alone (a voter and the leader). MemberAdd,
// MemberRemove and MemberPromote edit that list in memory so clients can be tested against them;
// nothing is replicated anywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/ids.h"
#include "cairn/coord/api.h"
#include "cairn/kv/state_machine.h"

namespace cairn::coord {

struct LocalCoordOptions {
  kv::KvOptions kv;
  uint64_t cluster_id = 0x1000;
  uint64_t member_id = 0x2000;
  std::string name = "local";
  std::vector<std::string> peer_urls = {"http://127.0.0.1:2380"};
  std::vector<std::string> client_urls;
  std::string version = "3.4.0";  // what Status reports as the server version
  uint64_t random_seed = 1;       // ids of members added by MemberAdd
};

class LocalCoordApi final : public CoordApi {
 public:
  // `clock` must outlive the object.
  LocalCoordApi(Clock& clock, LocalCoordOptions options = {});
  ~LocalCoordApi() override;

  // Revokes every lease whose TTL ran out by the clock's now (what a leader does every tick).
  void ExpireLeases();
  // Makes GetHealth report `health` (tests of /health's 503).
  void SetHealth(Health health);
  // The current store revision.
  int64_t revision() const;

  void Range(const etcd::RangeRequest& request, const CallOptions& options,
             Done<etcd::RangeResponse> done) override;
  void Put(const etcd::PutRequest& request, const CallOptions& options,
           Done<etcd::PutResponse> done) override;
  void DeleteRange(const etcd::DeleteRangeRequest& request, const CallOptions& options,
                   Done<etcd::DeleteRangeResponse> done) override;
  void Txn(const etcd::TxnRequest& request, const CallOptions& options,
           Done<etcd::TxnResponse> done) override;
  void Compact(const etcd::CompactionRequest& request, const CallOptions& options,
               Done<etcd::CompactionResponse> done) override;

  Result<std::unique_ptr<WatchStream>> OpenWatchStream(WatchSink sink) override;

  void LeaseGrant(const etcd::LeaseGrantRequest& request, const CallOptions& options,
                  Done<etcd::LeaseGrantResponse> done) override;
  void LeaseRevoke(const etcd::LeaseRevokeRequest& request, const CallOptions& options,
                   Done<etcd::LeaseRevokeResponse> done) override;
  void LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request, const CallOptions& options,
                      Done<etcd::LeaseKeepAliveResponse> done) override;
  void LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request, const CallOptions& options,
                       Done<etcd::LeaseTimeToLiveResponse> done) override;
  void LeaseLeases(const etcd::LeaseLeasesRequest& request, const CallOptions& options,
                   Done<etcd::LeaseLeasesResponse> done) override;

  void MemberList(const etcd::MemberListRequest& request, const CallOptions& options,
                  Done<etcd::MemberListResponse> done) override;
  void MemberAdd(const etcd::MemberAddRequest& request, const CallOptions& options,
                 Done<etcd::MemberAddResponse> done) override;
  void MemberRemove(const etcd::MemberRemoveRequest& request, const CallOptions& options,
                    Done<etcd::MemberRemoveResponse> done) override;
  void MemberPromote(const etcd::MemberPromoteRequest& request, const CallOptions& options,
                     Done<etcd::MemberPromoteResponse> done) override;

  void Status(const etcd::StatusRequest& request, const CallOptions& options,
              Done<etcd::StatusResponse> done) override;
  Health GetHealth() override;
  std::string Metrics() override;

 private:
  class LocalWatchStream;

  // Applies one command with now_ms from the clock. REQUIRES: mu_ held.
  Result<proto::KvResponse> ApplyLocked(proto::KvCommand command);
  void ExpireLeasesLocked();
  int64_t NowMs() const;
  void FillHeader(etcd::ResponseHeader* header) const;
  // REQUIRES: mu_ held.
  Result<etcd::MemberListResponse> MembersLocked() const;

  Clock& clock_;
  const LocalCoordOptions options_;
  mutable std::mutex mu_;
  kv::KvStateMachine machine_;          // GUARDED_BY(mu_)
  std::vector<etcd::Member> members_;  // GUARDED_BY(mu_)
  Random random_;                      // GUARDED_BY(mu_)
  Health health_{true, ""};            // GUARDED_BY(mu_)
  uint64_t applied_ = 0;               // GUARDED_BY(mu_): commands applied (the "raft index")
};

}  // namespace cairn::coord
