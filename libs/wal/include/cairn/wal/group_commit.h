// GroupCommitWal: a thread-safe front for a Wal. Callers on any thread hand in entries and block
// until they are durable; one writer thread drains everything queued meanwhile with one Save per
// request and a single fsync for the whole group. Under load, N concurrent callers cost one fsync.
//
// Ordering: requests are written in the order they were queued. AppendNext assigns indices at
// queue time, so concurrent proposers get consecutive indices without coordinating. Append with
// explicit indices is for a caller that owns the index sequence (e.g. a Raft driver thread).
//
// Errors: each caller gets its own Save status, or the group's fsync status. After a failed fsync
// the Wal refuses all work (see wal.h) and so does every later call here.
//
// Threading: every public method is thread-safe. The Wal must not be used directly meanwhile.
// Locks: mu_ guards the queue, next_index_ and the done flags; it is never held during I/O.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/wal/wal.h"

namespace cairn::wal {

class GroupCommitWal {
 public:
  // Takes the opened Wal and starts the writer thread.
  explicit GroupCommitWal(std::unique_ptr<Wal> wal);
  // Close()s if not closed yet.
  ~GroupCommitWal();
  GroupCommitWal(const GroupCommitWal&) = delete;
  GroupCommitWal& operator=(const GroupCommitWal&) = delete;

  // Saves `entries` (explicit indices, rules as Wal::Save) and `hard_state`; returns once durable.
  Status Append(const HardState& hard_state, std::vector<Entry> entries);
  // Appends one entry at the next free index; returns that index once durable.
  Result<uint64_t> AppendNext(uint64_t term, uint32_t type, std::string data);

  // Stops taking requests, finishes the queued ones, joins the writer and closes the Wal.
  // Later calls fail with FailedPrecondition.
  Status Close();

  // fsync groups written so far; for tests and metrics.
  uint64_t GroupCount() const;
  // Requests waiting for the writer (not counting the group being written); the queue depth.
  size_t QueuedCount() const;

 private:
  struct Request {
    HardState hard_state;
    std::vector<Entry> entries;
    bool assign_index = false;  // AppendNext: the index is given out at queue time
    Status status;
    bool done = false;
  };

  Status Submit(Request* request);
  void WriterLoop();
  void WriteGroup(const std::vector<Request*>& group);

  std::unique_ptr<Wal> wal_;  // used by the writer thread only, until it is joined
  mutable std::mutex mu_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<Request*> queue_;  // guarded by mu_
  uint64_t next_index_;         // guarded by mu_
  uint64_t groups_ = 0;         // guarded by mu_
  bool closing_ = false;        // guarded by mu_
  bool closed_ = false;         // guarded by mu_
  std::thread writer_;
};

}  // namespace cairn::wal
