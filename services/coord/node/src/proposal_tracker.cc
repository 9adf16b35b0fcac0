#include "cairn/coord/node/proposal_tracker.h"

#include <vector>

namespace cairn::coord {

uint64_t ProposalTracker::Register(Callback done, TimePoint deadline) {
  uint64_t id = ++next_id_;
  waiting_.emplace(id, Waiting{std::move(done), deadline});
  return id;
}

void ProposalTracker::Complete(uint64_t id, Result<proto::ForwardResponse> result) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  Callback done = std::move(it->second.done);
  waiting_.erase(it);
  done(std::move(result));
}

void ProposalTracker::Expire(TimePoint now) {
  std::vector<Callback> expired;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(std::move(it->second.done));
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  for (Callback& done : expired) {
    done(DeadlineExceededError("request not committed within its deadline; it may still apply"));
  }
}

void ProposalTracker::FailAll(const Status& status) {
  std::map<uint64_t, Waiting> all = std::move(waiting_);
  waiting_.clear();
  for (auto& [id, waiting] : all) waiting.done(status);
}

}  // namespace cairn::coord
