// BrickServer: serves a BrickStore over the brick protocol on a net::Server, and runs the
// primary-backup replication data path for the brick's replica set.
//
//   auto store = BrickStore::Open("/data/brick1").value();
//   net::Server net_server(io, {.address = "127.0.0.1:0"});
//   BrickServer brick(io, net_server, *store, {.self_address = "127.0.0.1:7100"});
//   net_server.Start();
//   brick.SetView(view);   // or the owner sends brick.SetView
//
// Roles. Without a view (epoch 0) the brick serves alone. With a view it is the primary when
// view.primary == view.self, else a backup. The primary orders client mutations (sequence
// numbers), forwards each to every in-sync backup in parallel ("brick.Replicate"), applies it
// locally and answers the client only when every in-sync backup applied it with the same result.
// A backup that fails, answers differently, or answers none of its outstanding mutations for
// replica_timeout is reported through on_replica_failed and no longer sent mutations; mutations it
// missed wait (unanswered) until the owner installs a view without it (SetView), then are
// answered (or get EIO after view_change_timeout). Ids
// touched while a member is failed or out of sync go to the change journal (brick.JournalList).
// docs/brick-protocol.md has the full rules.
//
// Threading: handlers run on the io_context; file work runs on the server's own thread pool
// (reads in parallel; mutations serially on one strand, which is what orders them identically on
// every replica). Public methods are thread-safe. on_replica_failed runs on an io_context or pool
// thread with no lock held; it may call SetView.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/brick/brick_store.h"
#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/net/server.h"

namespace cairn::brick {

struct BrickServerOptions {
  std::string self_address;  // how views name this brick ("host:port"); a view's `self` overrides
  size_t threads = 4;        // file-I/O threads
  // A backup that had mutations outstanding and answered none of them for this long has failed.
  Duration replica_timeout = std::chrono::milliseconds(500);
  // A mutation a failed backup missed waits this long for the owner's new view, then gets EIO.
  Duration view_change_timeout = std::chrono::seconds(10);
  std::function<void(const std::string& replica, const Status& why)> on_replica_failed;
  // The clock SetWriteDeadline's time points come from (null: RealClock::Instance()).
  const Clock* clock = nullptr;
};

// The last mutation a brick applied: the epoch it was stamped with, then its sequence within that
// epoch's primary stream. Compare by epoch first (volume::ReplicaReport). In memory only.
struct BrickPosition {
  uint64_t epoch = 0;
  uint64_t sequence = 0;
};

class BrickServer {
 public:
  // Registers the "brick.*" handlers on `server` (which may already run). `store` and `io` must
  // outlive this object.
  BrickServer(boost::asio::io_context& io, net::Server& server, BrickStore& store, BrickServerOptions options);
  ~BrickServer();  // Stop()s
  BrickServer(const BrickServer&) = delete;
  BrickServer& operator=(const BrickServer&) = delete;

  // Installs a replica-set view. Errors: FailedPrecondition for an epoch older than the current.
  // An equal epoch replaces the view (the owner repeating itself).
  Status SetView(const pb::ReplicaView& view);
  pb::ReplicaView view() const;

  // The primary lease (docs/volumes.md): client mutations that reach the strand at or after
  // `deadline` (now >= deadline on options.clock) are refused with ESTALE (not applied), so a
  // primary whose store lease may have run out never writes, even if it slept (SIGSTOP) and has
  // not heard of its successor. nullopt (the default): no deadline, for bricks without an owner.
  void SetWriteDeadline(std::optional<TimePoint> deadline);

  // Holds client mutations: those arriving after this call wait (unstamped, in order) until
  // ResumeMutations. Mutations already stamped finish normally; Position() then no longer moves,
  // which is what readmission needs (the primary's sequence is final while the txn commits).
  // Replication from a primary (backup side) is never held. Both are idempotent.
  void HoldMutations();
  void ResumeMutations();

  // The last mutation applied here (as primary: the last one stamped; as backup: the last one
  // accepted from the stream). {0, 0} after a restart until something is applied.
  BrickPosition Position() const;
  // Client mutations stamped but not yet journaled (for out-of-sync members) and answered or
  // parked. With mutations held, 0 means JournalIds is complete up to Position().
  size_t MutationsInFlight() const;

  // The change journal: ids touched while `replica` was not receiving mutations.
  std::vector<FileId> JournalIds(const std::string& replica) const;
  void ClearJournal(const std::string& replica, const std::vector<FileId>& ids);  // empty ids: all

  // Stops accepting work, waits for running file operations, answers waiting mutations with
  // Unavailable. The net::Server should be stopped first. Idempotent.
  void Stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::brick
