// What the gateway and its connections share: the CoordApi, the options, the metrics and the
// registry of open connections (for Stop). Internal to the gateway.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "cairn/coord/api.h"
#include "cairn/coord/http_gateway.h"

namespace cairn::coord {

// Every endpoint the gateway serves, by canonical path (the label of its metrics).
enum class Endpoint : int {
  kRange, kPut, kDeleteRange, kTxn, kCompaction, kWatch,
  kLeaseGrant, kLeaseRevoke, kLeaseKeepAlive, kLeaseTimeToLive, kLeaseLeases,
  kMemberList, kMemberAdd, kMemberRemove, kMemberPromote, kMemberUpdate,
  kStatus, kSnapshot, kHealth, kMetrics, kVersion, kCairn, kUnknown,
  kCount,
};

std::string_view EndpointPath(Endpoint endpoint);
// Maps a request target (path, maybe with a query) to its endpoint; kUnknown if none.
// /v3beta/ and /v3alpha/ are accepted as /v3/, and /v3/kv/lease/revoke|timetolive as the lease ones.
Endpoint EndpointOf(std::string_view target);
// True for endpoints read with GET (/health, /metrics, /version); the rest are POST.
bool IsGetEndpoint(Endpoint endpoint);
// True when a request to target needs the bearer token (when one is configured): all but GET
// /health and /version and the join exchange under /cairn/v1/join/.
bool NeedsBearerToken(Endpoint endpoint, std::string_view target);
// Checks an Authorization header value against "Bearer " + token in constant time.
bool BearerMatches(std::string_view authorization, std::string_view token);

// Request count and latency histogram per endpoint, in-flight gauge. Lock-free (atomics).
class GatewayMetrics {
 public:
  static constexpr std::array<double, 14> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};
  void RequestStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  // `http_status` counts 2xx/4xx/5xx per endpoint.
  void RequestFinished(Endpoint endpoint, int http_status, std::chrono::nanoseconds latency);
  void ConnectionOpened() { connections_.fetch_add(1, std::memory_order_relaxed); }
  void ConnectionClosed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t connections() const { return connections_.load(std::memory_order_relaxed); }
  std::string Text() const;

 private:
  struct PerEndpoint {
    std::array<std::atomic<uint64_t>, 6> by_class{};  // 1xx..5xx by status/100, [0] unused
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_nanos{0};
  };
  std::array<PerEndpoint, static_cast<size_t>(Endpoint::kCount)> endpoints_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> connections_{0};
};

struct GatewayState {
  GatewayState(CoordApi& api_in, GatewayOptions options_in) : api(api_in), options(std::move(options_in)) {}

  CoordApi& api;
  const GatewayOptions options;
  GatewayMetrics metrics;
  std::atomic<bool> stopping{false};

  // Open connections: each registers a stop hook (posts to its strand) and removes it on close.
  uint64_t Register(std::function<void()> stop_hook);
  void Unregister(uint64_t id);
  // Runs every registered stop hook (outside the lock).
  void StopAll();
  size_t count() const;

 private:
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;                               // GUARDED_BY(mu_)
  std::map<uint64_t, std::function<void()>> hooks_;  // GUARDED_BY(mu_)
};

}  // namespace cairn::coord
