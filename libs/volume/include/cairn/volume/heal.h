// Heal planning: the primary's change journal (which files changed while a replica was out) and
// the heal job that copies them, with progress and ETA. Pure: the brick service feeds events in,
// persists ChangeJournal::ToProto next to its data, and puts HealJob::Checkpoint in the store at
// HealKey(volume, brick), so a restarted heal resumes where the checkpoint says.
//
// Neither class is thread-safe; the service calls each from one strand. A HealJob keeps a
// pointer to its Clock, which must outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volume {

namespace pb = ::cairn::proto::volume;

// File ids changed since a replica left the in-sync set. Each Record gives the file the next
// sequence number; the heal copies a file, then Acknowledge(id, sequence seen before the copy)
// removes it only if it did not change again meanwhile.
class ChangeJournal {
 public:
  // Beyond max_entries the journal stops listing ids and asks for a full scan instead.
  ChangeJournal(std::string brick, size_t max_entries);

  // Errors: InvalidArgument for an empty id, an entry not below next_sequence, or a duplicate id.
  static Result<ChangeJournal> FromProto(const pb::ChangeJournalRecord& record, size_t max_entries);
  pb::ChangeJournalRecord ToProto() const;

  void Record(std::string_view file_id);
  // Removes file_id if its latest change is at or before `sequence`; returns whether it did.
  bool Acknowledge(std::string_view file_id, uint64_t sequence);
  // Takes over another journal for the same replica (a new primary merges the old primary's
  // copy): union of ids, the later sequence wins; full scan if either needs one.
  Status Merge(const ChangeJournal& other);
  // Changes were missed (journal lost or overflowed): the next heal scans everything.
  void MarkFullScanNeeded();
  void ClearFullScanNeeded() { full_scan_needed_ = false; }

  // The sequence of the file's latest change, or nullopt if it is not listed.
  std::optional<uint64_t> SequenceOf(std::string_view file_id) const;
  // Listed ids in ascending order, the order heal works in.
  std::vector<std::string> FileIds() const;
  size_t size() const { return entries_.size(); }
  bool full_scan_needed() const { return full_scan_needed_; }
  uint64_t next_sequence() const { return next_sequence_; }
  const std::string& brick() const { return brick_; }

 private:
  std::string brick_;
  size_t max_entries_;
  uint64_t next_sequence_ = 1;
  bool full_scan_needed_ = false;
  std::map<std::string, uint64_t, std::less<>> entries_;
};

enum class HealState { kRunning, kDone, kFailed };

struct HealProgress {
  HealState state = HealState::kRunning;
  uint64_t files_total = 0;
  uint64_t bytes_total = 0;
  uint64_t files_left = 0;
  uint64_t bytes_left = 0;
  uint64_t files_failed = 0;
  double files_per_second = 0;  // since this job (re)started
  double bytes_per_second = 0;
  std::optional<Duration> eta;  // nullopt until something was healed
};

// One heal pass over a sorted list of work items (file ids from the journal, or paths in a full
// scan). Items may complete in any order; the checkpoint's cursor is the last key of the
// completed prefix, so a resumed job redoes at most the items that finished out of order.
class HealJob {
 public:
  struct Item {
    std::string key;
    uint64_t bytes = 0;
  };

  // Errors: InvalidArgument for an empty brick or duplicate/empty keys. Items need not be sorted.
  static Result<HealJob> Start(const Clock& clock, std::string brick, uint32_t set_id, uint64_t epoch,
                               bool full_scan, std::vector<Item> items);
  // Resumes from a checkpoint: items at or before the cursor are done. `items` is the same list
  // (rebuilt from the journal or scan); totals come from the checkpoint so progress stays honest.
  static Result<HealJob> Resume(const Clock& clock, const pb::HealCheckpoint& checkpoint,
                                std::vector<Item> items);

  // Up to `limit` pending items, in key order, skipping those already handed out.
  std::vector<Item> NextBatch(size_t limit);
  // Errors: NotFound for a key that is not part of the job. Completing twice is a no-op.
  Status Completed(std::string_view key);
  // The item goes back to pending (handed out again by NextBatch) until it failed max_attempts
  // times; then the job ends kFailed once nothing else is pending.
  Status Failed(std::string_view key, int max_attempts = 3);

  HealProgress Progress() const;
  pb::HealCheckpoint Checkpoint(int64_t now_unix_ms) const;
  bool finished() const;

 private:
  HealJob(const Clock& clock) : clock_(&clock) {}
  void AdvanceCursor();

  const Clock* clock_;
  std::string brick_;
  uint32_t set_id_ = 0;
  uint64_t epoch_ = 0;
  bool full_scan_ = false;
  std::vector<Item> items_;          // sorted by key; on resume only those after the cursor
  std::string base_cursor_;          // the cursor resumed from
  size_t prefix_done_ = 0;           // items_[0, prefix_done_) are done
  std::set<size_t> done_beyond_;     // done items at or after prefix_done_
  std::set<size_t> handed_out_;
  std::map<size_t, int> failures_;
  std::set<size_t> given_up_;
  uint64_t files_total_ = 0;
  uint64_t bytes_total_ = 0;
  uint64_t files_left_ = 0;
  uint64_t bytes_left_ = 0;
  uint64_t files_done_since_start_ = 0;
  uint64_t bytes_done_since_start_ = 0;
  TimePoint started_;
};

// One row of `clusterctl volume heal VOL status`.
struct BrickHealStatus {
  std::string brick;
  bool in_sync = false;
  bool primary = false;
  bool healing = false;  // out of sync with a heal checkpoint from the current out-of-sync period
  bool full_scan = false;
  bool failed = false;
  uint64_t files_left = 0;
  uint64_t bytes_left = 0;
  double files_per_second = 0;
  double bytes_per_second = 0;
  std::optional<Duration> eta;
};

// Rows for every brick of the set, in the set's order. `checkpoints` maps brick ids to their
// latest HealCheckpoint (missing: no heal started); a checkpoint for an in-sync brick is
// ignored (left over from a finished heal).
std::vector<BrickHealStatus> HealStatus(const pb::ReplicaSetSpec& set, const pb::ReplicaSetState& state,
                                        const std::map<std::string, pb::HealCheckpoint>& checkpoints);
// A fixed-width table, one line per row plus a header:
// BRICK  STATE  FILES-LEFT  BYTES-LEFT  RATE  ETA
std::string FormatHealStatus(const std::vector<BrickHealStatus>& rows);

}  // namespace cairn::volume
