// Lessor: the lease table. A lease has an id, a granted TTL (seconds) and an expiry time in the
// leader's clock (milliseconds, the now_ms carried by log commands), and the set of keys attached
// to it. The lessor does not delete keys itself: revoking is the state machine's job (it deletes
// the attached keys in one revision), and expiry is only reported (Expired) so the leader can
// propose revocations through the log, like etcd.
//
// Deterministic and single-threaded; the owner serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/kv.pb.h"

namespace cairn::kv {

struct Lease {
  int64_t id = 0;
  int64_t ttl = 0;        // granted TTL, seconds
  int64_t expiry_ms = 0;  // leader time at which the lease expires
  std::set<std::string> keys;
};

class Lessor {
 public:
  // TTLs below min_ttl_seconds are raised to it (etcd's minimum lease TTL).
  explicit Lessor(int64_t min_ttl_seconds) : min_ttl_seconds_(min_ttl_seconds) {}

  // Grants a lease. id 0 picks a fresh positive id deterministically (from a sequence kept in
  // the snapshot). Any other id (negative too, as etcd allows) is taken as given.
  // Errors: kErrLeaseExists, kErrLeaseTtlTooLarge.
  Result<const Lease*> Grant(int64_t id, int64_t ttl_seconds, int64_t now_ms);
  // Removes the lease and returns it (with its keys). Errors: kErrLeaseNotFound.
  Result<Lease> Remove(int64_t id);
  // Restarts the lease's TTL at now. Returns the granted TTL. Errors: kErrLeaseNotFound.
  Result<int64_t> KeepAlive(int64_t id, int64_t now_ms);
  // Sets the remaining TTL (etcd's lease checkpoint). Unknown ids are ignored, like etcd.
  void Checkpoint(int64_t id, int64_t remaining_ttl_seconds, int64_t now_ms);
  // Restarts every lease's TTL at now (a new leader's clock replaces the old one's).
  void Promote(int64_t now_ms);

  const Lease* Find(int64_t id) const;
  void Attach(int64_t id, const std::string& key);
  void Detach(int64_t id, const std::string& key);

  // Ids of leases whose expiry is <= now_ms, ascending.
  std::vector<int64_t> Expired(int64_t now_ms) const;
  // Seconds left at now_ms, rounded down like etcd, never negative.
  static int64_t RemainingSeconds(const Lease& lease, int64_t now_ms);
  const std::map<int64_t, Lease>& leases() const { return leases_; }

  // Snapshot: leases without keys (the state machine re-attaches keys from the kv records).
  void SaveTo(proto::KvSnapshot* snapshot) const;
  Status LoadFrom(const proto::KvSnapshot& snapshot);

 private:
  int64_t NextAutoId();

  int64_t min_ttl_seconds_;
  std::map<int64_t, Lease> leases_;
  uint64_t id_sequence_ = 0;
};

}  // namespace cairn::kv
