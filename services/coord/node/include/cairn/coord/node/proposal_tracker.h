// ProposalTracker: the callers waiting for their proposals to apply. A proposal carries
// (proposer, request_id) in its entry (proto::CoordEntry / CoordConfChangeContext); when the entry
// applies on the proposing node, the tracker completes that request, whatever index the entry got.
// An entry that never applies (dropped by a leader change, overwritten) is failed by Expire() at
// its deadline with DeadlineExceeded, or earlier by FailAll() when the node loses leadership.
//
// Threading: not thread-safe; owned by the node's loop thread. Callbacks run inside these calls.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/proto/coord.pb.h"

namespace cairn::coord {

class ProposalTracker {
 public:
  using Callback = std::function<void(Result<proto::ForwardResponse>)>;

  // Returns the request id to put in the entry (never 0).
  uint64_t Register(Callback done, TimePoint deadline);
  // Completes request `id` (no-op for an unknown id: another process's proposal, or expired).
  void Complete(uint64_t id, Result<proto::ForwardResponse> result);
  void Expire(TimePoint now);
  void FailAll(const Status& status);
  size_t pending() const { return waiting_.size(); }

 private:
  struct Waiting {
    Callback done;
    TimePoint deadline;
  };
  std::map<uint64_t, Waiting> waiting_;
  uint64_t next_id_ = 0;
};

}  // namespace cairn::coord
