#include "cairn/coord/node/metrics.h"

#include <cstdio>

namespace cairn::coord {
namespace {

std::string FormatDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", value);
  return buffer;
}

void Metric(std::string* out, const char* type, const std::string& name, const std::string& help,
            const std::string& value) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + value + "\n";
}

}  // namespace

void LatencyHistogram::Observe(double seconds) {
  size_t bucket = 0;
  while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void LatencyHistogram::Render(const std::string& name, const std::string& help, std::string* out) const {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    *out += name + "_bucket{le=\"" + FormatDouble(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  *out += name + "_sum " + FormatDouble(static_cast<double>(sum_micros_.load()) / 1e6) + "\n";
  *out += name + "_count " + std::to_string(count_.load()) + "\n";
}

std::string NodeMetrics::Render() const {
  std::string out;
  Metric(&out, "gauge", "cairn_raft_term", "Current Raft term.", std::to_string(term.load()));
  Metric(&out, "gauge", "cairn_raft_commit_index", "Raft commit index.", std::to_string(commit_index.load()));
  Metric(&out, "gauge", "cairn_raft_applied_index", "Last applied log index.", std::to_string(applied_index.load()));
  Metric(&out, "gauge", "cairn_raft_has_leader", "1 when this member knows a leader.",
         leader.load() != 0 ? "1" : "0");
  Metric(&out, "gauge", "cairn_raft_is_leader", "1 when this member is the leader.", is_leader.load() ? "1" : "0");
  Metric(&out, "counter", "cairn_raft_leader_changes_total", "Leader changes seen by this member.",
         std::to_string(leader_changes.load()));
  Metric(&out, "counter", "cairn_proposals_committed_total", "Proposals of this member that applied.",
         std::to_string(proposals_committed.load()));
  Metric(&out, "counter", "cairn_proposals_failed_total", "Proposals of this member that failed.",
         std::to_string(proposals_failed.load()));
  Metric(&out, "counter", "cairn_proposals_forwarded_total", "Requests forwarded to the leader.",
         std::to_string(proposals_forwarded.load()));
  Metric(&out, "counter", "cairn_read_index_total", "ReadIndex rounds started (batched reads).",
         std::to_string(read_indexes.load()));
  Metric(&out, "counter", "cairn_snapshots_saved_total", "Snapshots taken and saved.",
         std::to_string(snapshots_saved.load()));
  Metric(&out, "counter", "cairn_snapshots_applied_total", "Snapshots received from a leader and applied.",
         std::to_string(snapshots_applied.load()));
  Metric(&out, "gauge", "cairn_db_size_bytes", "Approximate size of the key-value data.",
         std::to_string(db_size_bytes.load()));
  fsync_seconds.Render("cairn_wal_fsync_duration_seconds", "WAL fsync latency.", &out);
  return out;
}

}  // namespace cairn::coord
