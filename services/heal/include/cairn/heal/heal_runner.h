// HealRunner: pulls a returning replica back up to date from its replica set's primary.
//
// It runs in the process of the brick being healed, with direct access to that brick's local
// BrickStore and a BrickClient to the primary. While the brick is out of sync (in the primary's
// view's out_of_sync list) it receives no mutations and the primary journals, for it, the ids
// every mutation touched (brick.JournalList / brick.JournalClear, docs/brick-protocol.md).
//
//   heal::HealRunner runner(io, *local_store, primary_address, self_address,
//                           {.set_id = 3, .epoch = view.epoch(), .checkpoint = save_to_store});
//   auto round = runner.RunRound();          // blocking; from a worker thread, never an io thread
//   if (round.ok() && round->clean) { /* tell the primary's agent: ready for readmission */ }
//
// A round:
//  1. The work list: ids cleared from the journal by an earlier, unfinished round (kept on the
//     healed brick in ROOT/.cairn/heal-pending), else the primary's journal for self_address, or
//     with full_scan every id of the primary's tree (walked from the root). Each id is classified
//     by the primary's Getattr (directory, other, gone) and the list is written to the pending
//     file (fsynced) and checkpointed before anything is cleared.
//  2. In batches, `window` items in flight: JournalClear(batch) on the primary *first*, then heal
//     each item. Clearing before the copy is what makes acknowledgement safe without sequence
//     numbers in the protocol: a change that lands after the clear journals the id again (next
//     round), a change before it is seen by the copy. Directories go before everything else:
//     *entry heal* (readdir both sides; entries the primary lacks are removed, missing entries are
//     created with the primary's id, type, mode and owner, an existing local id is linked (files)
//     or moved (directories), an entry whose id differs is replaced; a new directory is filled
//     recursively and a new file copied whole). Then files: *data + metadata heal* (size, only the
//     1 MiB blocks that differ, holes kept, mode, owner, times, user xattrs); a symlink's target
//     or a node's type never changes in place (a new one has a new id), so entry heal replaces
//     them. An id the healed brick does not have is left to its parent directory's entry heal:
//     the create, link or rename that made it journaled the parent too (this list or a later one).
//  3. After every batch: the checkpoint callback (HealJob progress, rate, ETA, cursor) and the
//     progress callback. At the end the pending file goes.
//  A round is *clean* when its list was empty: nothing was pending and the journal was empty.
//  The primary's agent then holds writes, checks the journal is still empty and the checkpoint
//  says nothing is left (in that order: the checkpoint is written before every clear), and
//  commits volume::ReadmitReplica.
//
// Safety: nothing is removed on the healed brick unless the primary's answer positively says the
// entry is not there (a readdir that succeeded, a Getattr answering ENOENT/ESTALE); a removed
// file's id is kept (keep_id) until the round ends, so a file renamed elsewhere is relinked, not
// copied again; a directory renamed away is parked under a reserved name and moved to its new
// place. Any failure (primary unreachable, ENOSPC here, a checkpoint that could not be stored)
// ends the round with a Status saying which item and why; the owner retries later and the next
// round resumes (the pending list plus the checkpoint's cursor).
//
// Threading: RunRound blocks and must not run on an io_context thread (it makes synchronous
// calls through `io`, which another thread must run). One round at a time; progress() and Stop()
// may be called from any thread. The callbacks run on RunRound's thread with no lock of the
// runner held. Items are healed on up to `window` helper threads that RunRound starts and joins.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cairn/brick/brick_store.h"
#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/proto/volume.pb.h"
#include "cairn/volume/heal.h"

namespace cairn::heal {

struct HealRunnerProgress {
  volume::HealProgress job;  // the current (or last) round's HealJob progress: left, rate, ETA
  uint64_t rounds = 0;       // rounds finished since construction
  bool running = false;
  bool full_scan = false;    // the current round walks the whole tree
  bool ready_for_readmission = false;  // the last round was clean
  // Work done since construction: files whose data the primary sent (compared), files whose data
  // was written here (only differing 1 MiB blocks are written), bytes written, objects whose
  // owner/mode/times/xattrs were fixed, entries created, removed (or parked).
  uint64_t files_examined = 0;
  uint64_t files_copied = 0;
  uint64_t bytes_copied = 0;
  uint64_t metadata_fixed = 0;
  uint64_t entries_created = 0;
  uint64_t entries_removed = 0;
  std::string last_error;  // empty when the last round succeeded
};

struct HealRunnerOptions {
  std::string brick_id;  // the checkpoints' `brick` ("host:/path"); empty: self_address
  uint32_t set_id = 0;  // written into checkpoints
  uint64_t epoch = 0;   // the replica-set epoch this heal runs in (checkpoints; 0: unknown)
  size_t window = 32;   // items healed in parallel (helper threads making synchronous calls)
  size_t batch = 512;   // ids per JournalClear and per checkpoint
  // Walk the primary's whole tree instead of trusting the journal (journal lost or overflowed).
  // Applies to the next round that starts a new list; a finished full-scan round turns it off
  // (later rounds follow the journal again).
  bool full_scan = false;
  Duration call_timeout = std::chrono::seconds(10);  // per call to the primary
  const Clock* clock = nullptr;                       // null: RealClock::Instance()
  // The last checkpoint the owner stored for this brick, to resume an interrupted round.
  std::optional<::cairn::proto::volume::HealCheckpoint> resume_from;
  // Persists a checkpoint (the agent writes /cairn/volumes/V/heal/BRICK). Called before the
  // first JournalClear of a round, after each batch and at the end; an error stops the round.
  std::function<Status(const ::cairn::proto::volume::HealCheckpoint&)> checkpoint;
  // Progress for display; may be called often.
  std::function<void(const HealRunnerProgress&)> on_progress;
};


struct RoundResult {
  bool clean = false;   // nothing was left to heal: ready for readmission
  uint64_t items = 0;   // ids handled in this round
  bool full_scan = false;
};

class HealRunner {
 public:
  // `local` and `io` must outlive the runner; `io` must be run by another thread.
  HealRunner(boost::asio::io_context& io, brick::BrickStore& local, std::string primary_address,
             std::string self_address, HealRunnerOptions options);
  ~HealRunner();
  HealRunner(const HealRunner&) = delete;
  HealRunner& operator=(const HealRunner&) = delete;

  // One round (above). Errors: Unavailable (primary unreachable or timing out), IoError (a local
  // write failed: ENOSPC, EIO, ...), Aborted (Stop() was called), the checkpoint callback's
  // error, Internal (items that failed 3 times: a race between items, an inconsistent answer).
  // The message names the item (by id).
  Result<RoundResult> RunRound();
  // Rounds until one is clean, at most max_rounds. Ok: ready for readmission. Errors: as
  // RunRound, or ResourceExhausted when the primary kept changing files faster than they healed.
  Status HealUntilClean(int max_rounds = 20);

  // Asks a running round to stop after the items in flight (RunRound returns Aborted). Each
  // RunRound starts unstopped, so a Stop() before a round begins is forgotten.
  void Stop();
  HealRunnerProgress progress() const;

  // The epoch stamped into later checkpoints (the owner calls it when the view changes).
  void set_epoch(uint64_t epoch);
  void set_full_scan(bool full_scan);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::heal
