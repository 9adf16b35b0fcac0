// Property tests of the majority arithmetic against a naive reference, with seeded randomness.
#include "cairn/raft/quorum.h"

#include <gtest/gtest.h>

#include "cairn/common/ids.h"

namespace cairn::raft::quorum {
namespace {

// Naive reference: the largest candidate index acknowledged by more than half the voters.
uint64_t NaiveCommitted(const std::set<uint64_t>& voters, const std::map<uint64_t, uint64_t>& match) {
  if (voters.empty()) return 0;
  uint64_t best = 0;
  for (const auto& [id, candidate] : match) {
    size_t count = 0;
    for (uint64_t v : voters) {
      auto it = match.find(v);
      if (it != match.end() && it->second >= candidate) ++count;
    }
    if (count * 2 > voters.size()) best = std::max(best, candidate);
  }
  return best;
}

VoteResult NaiveTally(const std::set<uint64_t>& voters, const std::map<uint64_t, bool>& votes) {
  size_t yes = 0, no = 0;
  for (uint64_t v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    (it->second ? yes : no)++;
  }
  if (2 * yes > voters.size()) return VoteResult::kWon;
  if (2 * (voters.size() - no) <= voters.size()) return VoteResult::kLost;
  return VoteResult::kPending;
}

TEST(QuorumTest, MajoritySize) {
  EXPECT_EQ(MajoritySize(1), 1u);
  EXPECT_EQ(MajoritySize(2), 2u);
  EXPECT_EQ(MajoritySize(3), 2u);
  EXPECT_EQ(MajoritySize(4), 3u);
  EXPECT_EQ(MajoritySize(5), 3u);
}

TEST(QuorumTest, CommittedIndexExamples) {
  EXPECT_EQ(CommittedIndex({}, {}), 0u);
  EXPECT_EQ(CommittedIndex({1}, {{1, 7}}), 7u);
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {2, 3}, {3, 1}}), 3u);
  EXPECT_EQ(CommittedIndex({1, 2, 3, 4}, {{1, 5}, {2, 3}, {3, 1}, {4, 9}}), 3u);
  // Non-voters (learners) in the match map do not count.
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {4, 9}, {5, 9}}), 0u);
}

TEST(QuorumTest, CommittedIndexMatchesNaiveReference) {
  Random random(42);
  for (int round = 0; round < 2000; ++round) {
    std::set<uint64_t> voters;
    size_t n = random.Uniform(8);
    for (size_t i = 0; i < n; ++i) voters.insert(1 + random.Uniform(10));
    std::map<uint64_t, uint64_t> match;
    for (uint64_t id = 1; id <= 10; ++id) {
      if (random.OneIn(4)) continue;  // absent entries count as 0
      match[id] = random.Uniform(20);
    }
    ASSERT_EQ(CommittedIndex(voters, match), NaiveCommitted(voters, match)) << "round " << round;
  }
}

TEST(QuorumTest, TallyVotesMatchesNaiveReference) {
  Random random(7);
  for (int round = 0; round < 2000; ++round) {
    std::set<uint64_t> voters;
    size_t n = 1 + random.Uniform(7);
    for (size_t i = 0; i < n; ++i) voters.insert(1 + random.Uniform(9));
    std::map<uint64_t, bool> votes;
    for (uint64_t id = 1; id <= 9; ++id) {
      uint64_t r = random.Uniform(3);
      if (r < 2) votes[id] = r == 0;
    }
    ASSERT_EQ(TallyVotes(voters, votes), NaiveTally(voters, votes)) << "round " << round;
  }
}

}  // namespace
}  // namespace cairn::raft::quorum
