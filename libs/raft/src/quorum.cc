#include "cairn/raft/quorum.h"

#include <algorithm>
#include <vector>

namespace cairn::raft::quorum {

size_t MajoritySize(size_t voter_count) { return voter_count / 2 + 1; }

uint64_t CommittedIndex(const std::set<uint64_t>& voters, const std::map<uint64_t, uint64_t>& match) {
  if (voters.empty()) return 0;
  std::vector<uint64_t> acked;
  acked.reserve(voters.size());
  for (uint64_t id : voters) {
    auto it = match.find(id);
    acked.push_back(it == match.end() ? 0 : it->second);
  }
  // Sorted descending, the majority-th value is acknowledged by at least a majority.
  std::sort(acked.begin(), acked.end(), std::greater<uint64_t>());
  return acked[MajoritySize(acked.size()) - 1];
}

VoteResult TallyVotes(const std::set<uint64_t>& voters, const std::map<uint64_t, bool>& votes) {
  size_t granted = 0, rejected = 0;
  for (uint64_t id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    if (it->second) ++granted; else ++rejected;
  }
  size_t need = MajoritySize(voters.size());
  if (granted >= need) return VoteResult::kWon;
  if (voters.size() - rejected < need) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace cairn::raft::quorum
