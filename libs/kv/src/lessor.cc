#include "cairn/kv/lessor.h"

#include <algorithm>
#include <limits>

#include "cairn/kv/errors.h"

namespace cairn::kv {
namespace {

// etcd's MaxLeaseTTL: 9,000,000,000 seconds.
constexpr int64_t kMaxLeaseTtlSeconds = 9'000'000'000;

// splitmix64: spreads a counter over the id space so auto ids look like etcd's (large, random),
// yet every member computes the same sequence.
uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// now_ms + seconds * 1000 without signed overflow: times come from log commands, and a bad
// leader clock must not become undefined behaviour on every member.
int64_t ExpiryAfter(int64_t now_ms, int64_t seconds) {
  int64_t result = 0;
  if (__builtin_mul_overflow(seconds, int64_t{1000}, &result) ||
      __builtin_add_overflow(now_ms, result, &result)) {
    return seconds < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return result;
}

}  // namespace

int64_t Lessor::NextAutoId() {
  while (true) {
    auto id = static_cast<int64_t>(SplitMix64(++id_sequence_) >> 1);  // positive int63
    if (id != 0 && leases_.count(id) == 0) return id;
  }
}

Result<const Lease*> Lessor::Grant(int64_t id, int64_t ttl_seconds, int64_t now_ms) {
  if (ttl_seconds > kMaxLeaseTtlSeconds) return InvalidArgumentError(std::string(kErrLeaseTtlTooLarge));
  if (id != 0 && leases_.count(id) != 0) return AlreadyExistsError(std::string(kErrLeaseExists));
  if (id == 0) id = NextAutoId();
  Lease& lease = leases_[id];
  lease.id = id;
  lease.ttl = std::max(ttl_seconds, min_ttl_seconds_);
  lease.expiry_ms = ExpiryAfter(now_ms, lease.ttl);
  return &lease;
}

Result<Lease> Lessor::Remove(int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  Lease lease = std::move(it->second);
  leases_.erase(it);
  return lease;
}

Result<int64_t> Lessor::KeepAlive(int64_t id, int64_t now_ms) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFoundError();
  it->second.expiry_ms = ExpiryAfter(now_ms, it->second.ttl);
  return it->second.ttl;
}

void Lessor::Checkpoint(int64_t id, int64_t remaining_ttl_seconds, int64_t now_ms) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  it->second.expiry_ms = ExpiryAfter(now_ms, remaining_ttl_seconds);
}

void Lessor::Promote(int64_t now_ms) {
  for (auto& [id, lease] : leases_) lease.expiry_ms = ExpiryAfter(now_ms, lease.ttl);
}

const Lease* Lessor::Find(int64_t id) const {
  auto it = leases_.find(id);
  return it == leases_.end() ? nullptr : &it->second;
}

void Lessor::Attach(int64_t id, const std::string& key) {
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.keys.insert(key);
}

void Lessor::Detach(int64_t id, const std::string& key) {
  auto it = leases_.find(id);
  if (it != leases_.end()) it->second.keys.erase(key);
}

std::vector<int64_t> Lessor::Expired(int64_t now_ms) const {
  std::vector<int64_t> ids;
  for (const auto& [id, lease] : leases_) {
    if (lease.expiry_ms <= now_ms) ids.push_back(id);
  }
  return ids;
}

int64_t Lessor::RemainingSeconds(const Lease& lease, int64_t now_ms) {
  int64_t left = 0;
  if (__builtin_sub_overflow(lease.expiry_ms, now_ms, &left)) {
    left = lease.expiry_ms > now_ms ? std::numeric_limits<int64_t>::max() : 0;
  }
  return std::max<int64_t>(0, left / 1000);
}

void Lessor::SaveTo(proto::KvSnapshot* snapshot) const {
  for (const auto& [id, lease] : leases_) {
    proto::KvLease* out = snapshot->add_leases();
    out->set_id(id);
    out->set_ttl(lease.ttl);
    out->set_expiry_ms(lease.expiry_ms);
  }
  snapshot->set_lease_id_sequence(id_sequence_);
}

Status Lessor::LoadFrom(const proto::KvSnapshot& snapshot) {
  std::map<int64_t, Lease> leases;
  for (const proto::KvLease& in : snapshot.leases()) {
    if (in.id() == 0 || leases.count(in.id()) != 0) {
      return CorruptionError("kv snapshot: bad or duplicate lease id " + std::to_string(in.id()));
    }
    leases[in.id()] = Lease{in.id(), in.ttl(), in.expiry_ms(), {}};
  }
  leases_ = std::move(leases);
  id_sequence_ = snapshot.lease_id_sequence();
  return Status::Ok();
}

}  // namespace cairn::kv
