// RaftLog: the node's view of its log = stable Storage + the unstable tail (entries and a snapshot
// not yet persisted by the driver). Internal; not thread-safe; owned by RaftImpl.
#pragma once

#include <optional>
#include <vector>

#include "cairn/raft/storage.h"

namespace cairn::raft {

// Entries and snapshot received but not yet persisted. entries[i] has index offset + i.
struct Unstable {
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  uint64_t offset = 0;

  std::optional<uint64_t> MaybeFirstIndex() const;
  std::optional<uint64_t> MaybeLastIndex() const;
  std::optional<uint64_t> MaybeTerm(uint64_t index) const;
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapTo(uint64_t index);
  void Restore(const Snapshot& snapshot);
  void TruncateAndAppend(const std::vector<Entry>& entries);
  std::vector<Entry> Slice(uint64_t lo, uint64_t hi) const;
};

class RaftLog {
 public:
  RaftLog(Storage* storage, uint64_t max_committed_size_per_ready);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  // Errors: Compacted below the dummy entry, Unavailable beyond LastIndex().
  Result<uint64_t> Term(uint64_t index) const;
  uint64_t TermOrZero(uint64_t index) const;
  bool MatchTerm(uint64_t index, uint64_t term) const;
  // §5.4.1: a candidate's log (last_term, last_index) is at least as up to date as ours.
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // AppendEntries receiver rules 2-5. Returns the index of the last new entry, or nullopt when the
  // entry at `index` does not have `log_term` (reject).
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                      const std::vector<Entry>& entries);
  // Appends after truncating any conflict; returns the new last index. Panics if it would
  // truncate committed entries.
  uint64_t Append(const std::vector<Entry>& entries);
  // First index whose term differs from ours (0 if none; may be beyond our last index).
  uint64_t FindConflict(const std::vector<Entry>& entries) const;
  // Largest index <= `index` whose term is <= `term`; sets *found_term (0 if unknown).
  uint64_t FindConflictByTerm(uint64_t index, uint64_t term, uint64_t* found_term) const;

  // Entries in [lo, hi) limited to max_size bytes (at least one). Error Compacted if lo is compacted.
  Result<std::vector<Entry>> Slice(uint64_t lo, uint64_t hi, uint64_t max_size) const;
  Result<std::vector<Entry>> EntriesFrom(uint64_t index, uint64_t max_size) const;

  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  const std::vector<Entry>& UnstableEntries() const { return unstable_.entries; }
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_.snapshot; }
  Result<Snapshot> GetSnapshot() const;

  void CommitTo(uint64_t index);
  // Figure 8: commits max_index only if that entry is from `term` (the leader's current term).
  bool MaybeCommit(uint64_t max_index, uint64_t term);
  void AppliedTo(uint64_t index);
  void StableTo(uint64_t index, uint64_t term) { unstable_.StableTo(index, term); }
  void StableSnapTo(uint64_t index) { unstable_.StableSnapTo(index); }
  void Restore(const Snapshot& snapshot);

  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

 private:
  Storage* storage_;
  Unstable unstable_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t max_committed_size_per_ready_;
};

// Keeps a prefix of entries within max_size bytes (always at least one entry).
void LimitSize(std::vector<Entry>& entries, uint64_t max_size);

}  // namespace cairn::raft
