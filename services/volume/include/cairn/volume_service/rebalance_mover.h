// RebalanceMover: moves a volume's files to the replica sets its current layout names, after
// add-brick or remove-brick (docs/volumes.md "Rebalance"), then commits FinishRebalanceTxn.
//
//   RebalanceMover mover(io, {.volume = "vol0", .node_name = "n1", .read_spec = ..., .route = ...,
//                             .save_progress = ..., .commit = ...});
//   Status done = mover.Run();   // blocking, on a worker thread; Stop() from another thread
//
// A pass: read the spec (done when previous_layout is gone); list every set of the previous
// layout through its primary (directories once, parents first; every non-directory with the set
// it is on); volume::PlanRebalance; create the directories on the added sets with their ids;
// then each move:
//   1. Lookup of the name on the source (gone: nothing to move);
//   2. on the target set's primary: create RebalanceTempName(id) in the same directory with the
//      same id, owner and mode (symlink target, device number), copy the data (heal's CopyData)
//      and metadata (CopyMetadata: mode, owner, user xattrs, times), fsync;
//   3. Getattr on the source: if size, mtime or ctime changed during the copy, the temp goes and
//      the move starts again (up to 3 times, then the pass fails and is retried);
//   4. rename the temp to the real name (RENAME_NOREPLACE), link further hard-link names;
//   5. remove the name(s) on the source.
// Until 4 a lookup by the real name finds only the source; between 4 and 5 both sets have it with
// the same id and the mount (new layout's set first, volume::LookupSets) reads the target. A
// name that already exists on the target with another id was created there through the new
// layout after the rebalance began, so it is the newer file: it stays and the source's is
// removed (logged as rebalance.conflict). A pass that plans no move commits FinishRebalanceTxn;
// a lost compare (someone changed the spec) reads it again. Restarting is safe at any point:
// a fresh pass re-lists (moved files are on their target now), leftover temps are removed.
//
// Progress (files and bytes moved and left, rate, ETA) goes to save_progress after each pass's
// plan, every 64 moves or second, and at the end. Errors of Run: Aborted (Stop), Unavailable (a
// set has no primary, a brick unreachable), IoError (target disk), Internal (an answer that
// contradicts the plan, e.g. ESTALE after an epoch change: retry with fresh routes), or the
// callbacks' errors. Threading: Run blocks and must not run on `io`'s thread, which another
// thread must run; Stop and progress are thread-safe. Callbacks run on Run's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/proto/volume.pb.h"
#include "cairn/volume/volume_store.h"

namespace cairn::volume_service {

struct SetRoute {
  std::string address;  // the set's primary, "ip:port"
  uint64_t epoch = 0;   // the set record's epoch, stamped on mutations
};

struct RebalanceMoverOptions {
  std::string volume;
  std::string node_name;  // written into the progress record
  Duration call_timeout = std::chrono::seconds(5);
  const Clock* clock = nullptr;  // null: RealClock::Instance()
  int max_passes = 6;
  // The stored progress of this rebalance (same layout epoch) from an earlier owner or run: the
  // files and bytes it moved are counted as moved.
  std::optional<::cairn::proto::volume::HealCheckpoint> resume_from;
  // The volume's spec as the store has it now.
  std::function<Result<volume::VolumeRecord>()> read_spec;
  // A set's primary now. Errors: Unavailable when it has none or no address is published.
  std::function<Result<SetRoute>(uint32_t set_id)> route;
  // Puts the progress record (RebalanceKey).
  std::function<Status(const ::cairn::proto::volume::HealCheckpoint&)> save_progress;
  // Applies a txn: Ok when it succeeded, FailedPrecondition when its compares failed.
  std::function<Status(const etcd::TxnRequest&)> commit;
};

struct RebalanceMoverProgress {
  uint64_t passes = 0;
  uint64_t files_moved = 0;  // since construction
  uint64_t bytes_moved = 0;
  uint64_t files_left = 0;   // in the current pass
  uint64_t bytes_left = 0;
  uint64_t directories_created = 0;
  uint64_t conflicts = 0;     // names found on both sets with different ids (target kept)
  uint64_t hard_links_kept = 0;
  bool finished = false;      // FinishRebalanceTxn committed (or nothing was pending)
};

class RebalanceMover {
 public:
  RebalanceMover(boost::asio::io_context& io, RebalanceMoverOptions options);
  ~RebalanceMover();
  RebalanceMover(const RebalanceMover&) = delete;
  RebalanceMover& operator=(const RebalanceMover&) = delete;

  // Passes until one plans nothing and the finish commits (Ok), at most max_passes (then
  // ResourceExhausted: files kept being created under the old layout). Errors: above.
  Status Run();
  void Stop();
  RebalanceMoverProgress progress() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::volume_service
