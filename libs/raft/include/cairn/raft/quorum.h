// Majority-quorum arithmetic, kept apart so it can be property-tested against a naive reference.
// Plain functions, no state; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>

namespace cairn::raft::quorum {

enum class VoteResult { kPending, kLost, kWon };

// Size of a majority of `voter_count` voters (voter_count/2 + 1).
size_t MajoritySize(size_t voter_count);

// The largest index that a majority of `voters` have acknowledged. Voters absent from `match` count
// as 0. An empty voter set returns 0.
uint64_t CommittedIndex(const std::set<uint64_t>& voters, const std::map<uint64_t, uint64_t>& match);

// Election outcome given granted (true) / rejected (false) votes; non-voters in `votes` are ignored.
VoteResult TallyVotes(const std::set<uint64_t>& voters, const std::map<uint64_t, bool>& votes);

}  // namespace cairn::raft::quorum
