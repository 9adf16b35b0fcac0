// AutoCompactor: the policy that decides when the state machine compacts history by itself, so an
// operator never has to (etcd's unbounded history growth and manual compaction are a common
// complaint). Two modes, like etcd's --auto-compaction-mode:
//   kRevision: keep the last `retain_revisions` revisions; compact in steps of ~10% of that, so a
//              busy store does not compact after every write.
//   kPeriodic: keep every revision written in the last `window_ms` of leader time (the now_ms of
//              the applied commands); re-checked at most every window/10.
// The state machine consults it after every applied command, with the command's now_ms, so all
// members compact at the same revisions. Its state (time samples) is part of the snapshot.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "cairn/proto/kv.pb.h"

namespace cairn::kv {

struct AutoCompactionOptions {
  enum class Mode { kOff, kRevision, kPeriodic };
  Mode mode = Mode::kRevision;
  int64_t retain_revisions = 10000;        // kRevision
  int64_t window_ms = 60LL * 60 * 1000;    // kPeriodic: one hour, etcd's usual setting
};

class AutoCompactor {
 public:
  explicit AutoCompactor(AutoCompactionOptions options) : options_(options) {}

  // Called after each applied command. Returns the revision to compact at, if one is due.
  // The returned revision is always in (compact_revision, revision].
  std::optional<int64_t> Observe(int64_t now_ms, int64_t revision, int64_t compact_revision);

  // Records that a compaction was applied at now_ms (the periodic mode waits window/10 after it).
  void Compacted(int64_t now_ms);

  void SaveTo(proto::KvSnapshot* snapshot) const;
  void LoadFrom(const proto::KvSnapshot& snapshot);

 private:
  struct Sample {
    int64_t now_ms;
    int64_t revision;
  };
  std::optional<int64_t> ObserveRevision(int64_t revision, int64_t compact_revision) const;
  std::optional<int64_t> ObservePeriodic(int64_t now_ms, int64_t revision, int64_t compact_revision);

  AutoCompactionOptions options_;
  std::deque<Sample> samples_;  // (time, newest revision at that time), ascending
  int64_t last_compaction_ms_ = 0;
};

}  // namespace cairn::kv
