#include "gateway_state.h"

#include <sstream>
#include <vector>

namespace cairn::coord {
namespace {

constexpr std::array<std::string_view, static_cast<size_t>(Endpoint::kCount)> kPaths = {
    "/v3/kv/range",         "/v3/kv/put",           "/v3/kv/deleterange",     "/v3/kv/txn",
    "/v3/kv/compaction",    "/v3/watch",            "/v3/lease/grant",        "/v3/lease/revoke",
    "/v3/lease/keepalive",  "/v3/lease/timetolive", "/v3/lease/leases",       "/v3/cluster/member/list",
    "/v3/cluster/member/add", "/v3/cluster/member/remove", "/v3/cluster/member/promote",
    "/v3/cluster/member/update", "/v3/maintenance/status", "/v3/maintenance/snapshot", "/health", "/metrics", "/version", "/cairn/v1/", "other",
};

}  // namespace

std::string_view EndpointPath(Endpoint endpoint) { return kPaths[static_cast<size_t>(endpoint)]; }

Endpoint EndpointOf(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.substr(0, 10) == "/cairn/v1/") return Endpoint::kCairn;
  constexpr size_t kKnown = static_cast<size_t>(Endpoint::kUnknown);
  for (size_t i = 0; i < kKnown; ++i) {
    if (kPaths[i] == path) return static_cast<Endpoint>(i);
  }
  // etcd 3.4 also serves the older /v3beta/ (and 3.3's /v3alpha/) prefixes.
  std::string_view rest;
  for (std::string_view prefix : {"/v3/", "/v3beta/", "/v3alpha/"}) {
    if (path.substr(0, prefix.size()) == prefix) {
      rest = path.substr(prefix.size());
      break;
    }
  }
  if (rest.empty()) return Endpoint::kUnknown;
  if (rest == "kv/lease/revoke") return Endpoint::kLeaseRevoke;
  if (rest == "kv/lease/timetolive") return Endpoint::kLeaseTimeToLive;
  for (size_t i = 0; i < kKnown; ++i) {
    if (kPaths[i].substr(0, 4) == "/v3/" && kPaths[i].substr(4) == rest) return static_cast<Endpoint>(i);
  }
  return Endpoint::kUnknown;
}

bool IsGetEndpoint(Endpoint endpoint) {
  return endpoint == Endpoint::kHealth || endpoint == Endpoint::kMetrics || endpoint == Endpoint::kVersion;
}

bool NeedsBearerToken(Endpoint endpoint, std::string_view target) {
  if (endpoint == Endpoint::kHealth || endpoint == Endpoint::kVersion) return false;
  std::string_view path = target.substr(0, target.find('?'));
  return !(endpoint == Endpoint::kCairn && path.substr(0, 15) == "/cairn/v1/join/");
}

bool BearerMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() != kScheme.size() + token.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    difference |= static_cast<unsigned char>(authorization[i] ^ kScheme[i]);
  }
  for (size_t i = 0; i < token.size(); ++i) {
    difference |= static_cast<unsigned char>(authorization[kScheme.size() + i] ^ token[i]);
  }
  return difference == 0;  // every byte compared: the time does not depend on where they differ
}

void GatewayMetrics::RequestFinished(Endpoint endpoint, int http_status, std::chrono::nanoseconds latency) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  PerEndpoint& e = endpoints_[static_cast<size_t>(endpoint)];
  size_t status_class = static_cast<size_t>(http_status / 100);
  if (status_class < e.by_class.size()) e.by_class[status_class].fetch_add(1, std::memory_order_relaxed);
  e.count.fetch_add(1, std::memory_order_relaxed);
  e.sum_nanos.fetch_add(static_cast<uint64_t>(latency.count()), std::memory_order_relaxed);
  double seconds = std::chrono::duration<double>(latency).count();
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      e.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

std::string GatewayMetrics::Text() const {
  std::ostringstream out;
  out << "# HELP cairn_http_requests_total HTTP requests answered, by endpoint and status class.\n"
      << "# TYPE cairn_http_requests_total counter\n";
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    for (size_t c = 1; c < endpoints_[i].by_class.size(); ++c) {
      uint64_t n = endpoints_[i].by_class[c].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out << "cairn_http_requests_total{endpoint=\"" << kPaths[i] << "\",code=\"" << c << "xx\"} " << n << "\n";
    }
  }
  out << "# HELP cairn_http_request_duration_seconds Time from a request's last byte to its response.\n"
      << "# TYPE cairn_http_request_duration_seconds histogram\n";
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const PerEndpoint& e = endpoints_[i];
    uint64_t count = e.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      cumulative += e.buckets[b].load(std::memory_order_relaxed);
      out << "cairn_http_request_duration_seconds_bucket{endpoint=\"" << kPaths[i] << "\",le=\"" << kBuckets[b]
          << "\"} " << cumulative << "\n";
    }
    out << "cairn_http_request_duration_seconds_bucket{endpoint=\"" << kPaths[i] << "\",le=\"+Inf\"} " << count
        << "\n"
        << "cairn_http_request_duration_seconds_sum{endpoint=\"" << kPaths[i] << "\"} "
        << static_cast<double>(e.sum_nanos.load(std::memory_order_relaxed)) / 1e9 << "\n"
        << "cairn_http_request_duration_seconds_count{endpoint=\"" << kPaths[i] << "\"} " << count << "\n";
  }
  out << "# HELP cairn_http_requests_in_flight Requests received and not yet answered.\n"
      << "# TYPE cairn_http_requests_in_flight gauge\n"
      << "cairn_http_requests_in_flight " << in_flight_.load(std::memory_order_relaxed) << "\n"
      << "# HELP cairn_http_connections Open client connections.\n"
      << "# TYPE cairn_http_connections gauge\n"
      << "cairn_http_connections " << connections_.load(std::memory_order_relaxed) << "\n";
  return out.str();
}

uint64_t GatewayState::Register(std::function<void()> stop_hook) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  hooks_.emplace(id, std::move(stop_hook));
  return id;
}

void GatewayState::Unregister(uint64_t id) {
  std::lock_guard lock(mu_);
  hooks_.erase(id);
}

void GatewayState::StopAll() {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, hook] : hooks_) hooks.push_back(hook);
  }
  for (auto& hook : hooks) hook();
}

size_t GatewayState::count() const {
  std::lock_guard lock(mu_);
  return hooks_.size();
}

}  // namespace cairn::coord
