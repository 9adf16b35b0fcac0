#include "cairn/kv/auto_compactor.h"

#include <algorithm>
#include <limits>

namespace cairn::kv {
namespace {

// a - b, saturated: times come from log commands and must never overflow.
int64_t Sub(int64_t a, int64_t b) {
  int64_t result = 0;
  if (__builtin_sub_overflow(a, b, &result)) {
    return a > b ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return result;
}

}  // namespace

std::optional<int64_t> AutoCompactor::Observe(int64_t now_ms, int64_t revision,
                                              int64_t compact_revision) {
  switch (options_.mode) {
    case AutoCompactionOptions::Mode::kOff:
      return std::nullopt;
    case AutoCompactionOptions::Mode::kRevision:
      return ObserveRevision(revision, compact_revision);
    case AutoCompactionOptions::Mode::kPeriodic:
      return ObservePeriodic(now_ms, revision, compact_revision);
  }
  return std::nullopt;
}

std::optional<int64_t> AutoCompactor::ObserveRevision(int64_t revision,
                                                      int64_t compact_revision) const {
  if (options_.retain_revisions <= 0) return std::nullopt;
  int64_t target = revision - options_.retain_revisions;
  int64_t step = std::max<int64_t>(1, options_.retain_revisions / 10);
  if (target < 1 || target - compact_revision < step) return std::nullopt;
  return target;
}

std::optional<int64_t> AutoCompactor::ObservePeriodic(int64_t now_ms, int64_t revision,
                                                      int64_t compact_revision) {
  if (options_.window_ms <= 0) return std::nullopt;
  // Sparse samples (one per window/100) keep memory bounded; using an older sample only retains
  // more history than asked, never less.
  int64_t spacing = std::max<int64_t>(1, options_.window_ms / 100);
  if (samples_.empty() || Sub(now_ms, samples_.back().now_ms) >= spacing) {
    samples_.push_back({now_ms, revision});
  }
  if (Sub(now_ms, last_compaction_ms_) < options_.window_ms / 10) return std::nullopt;
  // The newest sample taken at least window_ms ago: revisions older than its revision are
  // outside the window. Time can step back when leadership moves between members with skewed
  // clocks; that only delays compaction.
  int64_t cutoff = Sub(now_ms, options_.window_ms);
  while (samples_.size() >= 2 && samples_[1].now_ms <= cutoff) samples_.pop_front();
  if (samples_.empty() || samples_.front().now_ms > cutoff) return std::nullopt;
  std::optional<int64_t> target = samples_.front().revision;
  if (!target || *target <= compact_revision || *target > revision) return std::nullopt;
  return target;
}

void AutoCompactor::Compacted(int64_t now_ms) { last_compaction_ms_ = now_ms; }

void AutoCompactor::SaveTo(proto::KvSnapshot* snapshot) const {
  for (const Sample& sample : samples_) {
    proto::KvCompactionSample* out = snapshot->add_compaction_samples();
    out->set_now_ms(sample.now_ms);
    out->set_revision(sample.revision);
  }
  snapshot->set_last_auto_compaction_ms(last_compaction_ms_);
}

void AutoCompactor::LoadFrom(const proto::KvSnapshot& snapshot) {
  samples_.clear();
  for (const proto::KvCompactionSample& in : snapshot.compaction_samples()) {
    samples_.push_back({in.now_ms(), in.revision()});
  }
  last_compaction_ms_ = snapshot.last_auto_compaction_ms();
}

}  // namespace cairn::kv
