// Storage: the raft core's read-only view of the stable log, and MemoryStorage, the in-memory
// implementation a driver fills from the WAL on restart and appends to after each Ready.
//
// Index convention (as etcd-io/raft): the storage holds a snapshot covering [1, snapshot index] and
// entries (FirstIndex() .. LastIndex()). FirstIndex() == snapshot index + 1. Term(snapshot index) is
// still answerable (it is kept as a dummy entry), anything below it is compacted.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/raft.pb.h"

namespace cairn::raft {

using Entry = raftpb::Entry;
using HardState = raftpb::HardState;
using ConfState = raftpb::ConfState;
using Snapshot = raftpb::Snapshot;
using Message = raftpb::Message;
using ConfChange = raftpb::ConfChange;

// Errors a Storage returns; the core reacts to these codes, so implementations must use them.
//   Compacted:  the index is at or below the snapshot (kOutOfRange).
//   Unavailable: the index is above LastIndex() (kNotFound).
//   SnapOutOfDate: ApplySnapshot/CreateSnapshot with an index older than the current snapshot
//                  (kFailedPrecondition).
//   SnapshotTemporarilyUnavailable: GetSnapshot cannot produce one right now; the leader retries
//                  later (kUnavailable).
Status ErrCompacted();
Status ErrUnavailable();
Status ErrSnapOutOfDate();
Status ErrSnapshotTemporarilyUnavailable();
bool IsCompacted(const Status& status);
bool IsUnavailable(const Status& status);
bool IsSnapOutOfDate(const Status& status);
bool IsSnapshotTemporarilyUnavailable(const Status& status);

struct InitialState {
  HardState hard_state;
  ConfState conf_state;
};

// Read interface used by the raft core. Called only from the thread that drives the RawNode, but an
// implementation may be shared with other threads (MemoryStorage locks internally).
class Storage {
 public:
  virtual ~Storage() = default;
  // The saved HardState and the ConfState of the latest snapshot.
  virtual Result<InitialState> GetInitialState() const = 0;
  // Entries in [lo, hi), at least one entry if any, then stopping before max_size bytes in total.
  // Errors: Compacted if lo <= snapshot index; Unavailable if hi > LastIndex() + 1.
  virtual Result<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi, uint64_t max_size) const = 0;
  // Term of entry `index`, which must lie in [FirstIndex()-1, LastIndex()].
  virtual Result<uint64_t> Term(uint64_t index) const = 0;
  virtual Result<uint64_t> LastIndex() const = 0;
  virtual Result<uint64_t> FirstIndex() const = 0;
  // The most recent snapshot (for sending to a lagging follower).
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

// In-memory Storage. Thread-safe: every method takes an internal mutex.
class MemoryStorage : public Storage {
 public:
  MemoryStorage();

  Result<InitialState> GetInitialState() const override;
  Result<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi, uint64_t max_size) const override;
  Result<uint64_t> Term(uint64_t index) const override;
  Result<uint64_t> LastIndex() const override;
  Result<uint64_t> FirstIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

  void SetHardState(const HardState& hard_state);
  // Replaces everything with the snapshot. Error SnapOutOfDate if it is older than the current one.
  Status ApplySnapshot(const Snapshot& snapshot);
  // Makes a snapshot at `index` (<= LastIndex(), >= current snapshot index) with the application's
  // `data`; `conf_state` is the membership as of `index`. Does not discard entries (see Compact).
  Result<Snapshot> CreateSnapshot(uint64_t index, const ConfState* conf_state, std::string data);
  // Discards entries before `compact_index` (which becomes the dummy entry). Errors: Compacted if
  // already compacted there; OutOfRange if compact_index > LastIndex().
  Status Compact(uint64_t compact_index);
  // Appends entries, truncating any conflicting suffix. Entries must be contiguous and must not leave
  // a gap after LastIndex(); entries at or below the snapshot are ignored.
  Status Append(const std::vector<Entry>& entries);

 private:
  uint64_t FirstIndexLocked() const;
  uint64_t LastIndexLocked() const;

  mutable std::mutex mu_;
  HardState hard_state_;   // GUARDED_BY(mu_)
  Snapshot snapshot_;      // GUARDED_BY(mu_)
  // entries_[0] is a dummy holding the snapshot's index and term.
  std::vector<Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace cairn::raft
