// NodeMetrics: the node's counters and gauges, rendered as Prometheus text. Updated on the node's
// loop and disk threads, read from any thread (every field is atomic).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace cairn::coord {

// A fixed-bucket latency histogram (seconds), lock-free.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
                                                     0.064,  0.128, 0.256, 0.512, 1.024, 2.048, 4.096};
  void Observe(double seconds);
  // Appends NAME_bucket{le=...}, NAME_sum and NAME_count lines.
  void Render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

struct NodeMetrics {
  std::atomic<uint64_t> term{0};
  std::atomic<uint64_t> commit_index{0};
  std::atomic<uint64_t> applied_index{0};
  std::atomic<uint64_t> leader{0};
  std::atomic<bool> is_leader{false};
  std::atomic<uint64_t> leader_changes{0};
  std::atomic<uint64_t> proposals_committed{0};
  std::atomic<uint64_t> proposals_failed{0};
  std::atomic<uint64_t> proposals_forwarded{0};
  std::atomic<uint64_t> read_indexes{0};
  std::atomic<uint64_t> snapshots_saved{0};
  std::atomic<uint64_t> snapshots_applied{0};
  std::atomic<int64_t> db_size_bytes{0};
  LatencyHistogram fsync_seconds;

  std::string Render() const;
};

}  // namespace cairn::coord
