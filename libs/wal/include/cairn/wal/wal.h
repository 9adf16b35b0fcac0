// The write-ahead log behind a Raft node: hard state, log entries and snapshots on disk.
// The on-disk format is specified in docs/wal-format.md.
//
//   auto opened = Wal::Open(env, "/var/lib/cairn/wal", {});   // recovers, then ready to append
//   opened->recovered.{hard_state, snapshot, entries}          // what the Raft core restarts from
//   wal->Save(hard_state, entries, /*sync=*/true);             // group commit: one fsync per call
//   wal->SaveSnapshot({index, term, data});                    // durable, then old segments removed
//
// Durability contract: an entry or hard state is acknowledged once Save(..., sync=true) or a later
// Sync() returned OK. Acknowledged data survives any crash; unacknowledged data may or may not.
// A write that fails leaves what was acknowledged before it intact. A failed fsync is permanent for
// this Wal object (the kernel may have dropped the dirty pages): every later call returns the same
// error and the caller must reopen, which recovers whatever really reached the disk.
//
// Recovery: a torn tail (an interrupted last write in the last segment: short header, short
// payload, zero-filled tail, or a damaged last record followed only by zeros) is cut off. Any other
// damage is a Corruption status naming the file and byte offset; entries are never dropped silently.
//
// Threading: a Wal is not thread-safe; one owner (the Raft driver) calls it. For many concurrent
// writers sharing fsyncs, wrap it in GroupCommitWal (group_commit.h).
// The types here do not depend on libs/raft; the Raft driver converts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/env/env.h"

namespace cairn::wal {

struct HardState {
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t commit = 0;

  bool IsEmpty() const { return term == 0 && vote == 0 && commit == 0; }
  friend bool operator==(const HardState&, const HardState&) = default;
};

struct Entry {
  uint64_t index = 0;
  uint64_t term = 0;
  uint32_t type = 0;  // opaque to the WAL (normal, conf change, ...)
  std::string data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// A state machine snapshot covering every entry up to and including `index` (whose term is `term`).
// `data` is opaque to the WAL (the state machine image plus whatever configuration Raft needs).
struct Snapshot {
  uint64_t index = 0;
  uint64_t term = 0;
  std::string data;

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

struct Options {
  // A new segment is started when the current one would grow past this size. A single Save batch
  // is never split, so a segment can exceed it by one batch.
  uint64_t segment_bytes = 64ull << 20;
  // Snapshot files kept (newest first). Older ones are removed after each SaveSnapshot. At least 1.
  size_t snapshots_to_keep = 2;
};

// What recovery found: the newest valid snapshot and the log entries after it, in index order
// (contiguous, first index == snapshot index + 1, or 1 without a snapshot).
struct Recovered {
  HardState hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  uint64_t truncated_bytes = 0;  // torn tail cut off during recovery
};

class Wal;

struct Opened {
  std::unique_ptr<Wal> wal;
  Recovered recovered;
};

class Wal {
 public:
  // Opens (creating if needed) the WAL in `dir`, recovers it and prepares it for appending.
  // Takes dir/LOCK for as long as the Wal lives: a second Open fails with Unavailable.
  // Errors: Corruption (file + offset) for damage that is not a torn tail; I/O errors from `env`.
  // `env` must outlive the Wal.
  static Result<Opened> Open(env::Env* env, std::string dir, Options options = {});

  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Appends `entries` (contiguous indices) and, when not empty and changed, `hard_state`, in one
  // write. entries[0].index may be <= LastIndex() to overwrite a suffix (Raft dropping uncommitted
  // entries): recovery then returns the new entries in place of the old ones from that index on.
  // With `sync`, returns only once everything saved so far is durable (one fsync).
  // Errors: InvalidArgument (indices not contiguous, leave a gap, or reach into the snapshot);
  // the I/O error of the write (nothing of this call is kept; earlier data is intact) or of the sync.
  Status Save(const HardState& hard_state, std::span<const Entry> entries, bool sync = false);

  // Makes everything saved so far durable. A failure is permanent (see the file comment).
  Status Sync();

  // Writes `snapshot` to its own file durably (temp file, fsync, rename, directory fsync), then
  // removes the segments whose entries all lie at or below snapshot.index and snapshot files
  // beyond Options::snapshots_to_keep. If snapshot.index is past LastIndex() the log restarts
  // after it: the next Save starts at snapshot.index + 1.
  // Errors: FailedPrecondition when snapshot.index <= SnapshotIndex(); I/O errors.
  Status SaveSnapshot(const Snapshot& snapshot);

  // Syncs what is pending, closes the segment and releases dir/LOCK. Further calls fail with
  // FailedPrecondition.
  Status Close();

  uint64_t LastIndex() const { return last_index_; }
  uint64_t SnapshotIndex() const { return snapshot_index_; }
  size_t SegmentCount() const { return segments_.size(); }
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    uint64_t seq = 0;
    uint64_t first_index = 0;
  };

  Wal(env::Env* env, std::string dir, Options options);
  Status Recover(Recovered* recovered);
  Status LoadNewestSnapshot(const std::vector<std::string>& names, Recovered* recovered);
  Status ReplaySegments(Recovered* recovered, uint64_t* valid_tail_bytes);
  Status OpenTail(uint64_t valid_tail_bytes, uint64_t truncated_bytes);
  Status StartSegment(uint64_t seq, uint64_t first_index);
  Status Rollover();
  Status RemoveObsoleteSegments();
  Status RemoveOldSnapshots();
  Status CheckEntries(std::span<const Entry> entries) const;
  Status WriteBuffer();
  std::string SegmentPath(const Segment& segment) const;

  env::Env* env_;
  std::string dir_;
  Options options_;
  std::unique_ptr<env::FileLock> lock_;
  std::vector<Segment> segments_;           // by seq; the last one is open in file_
  std::unique_ptr<env::WritableFile> file_;
  bool segment_has_entries_ = false;        // file_ holds more than its header records
  uint64_t last_index_ = 0;
  uint64_t snapshot_index_ = 0;
  HardState hard_state_;                    // the last one written
  bool unsynced_ = false;
  Status failed_;                           // sticky after a failed fsync or an unrecoverable write
  std::string buffer_;
};

}  // namespace cairn::wal
