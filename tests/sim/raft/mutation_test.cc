// Mutation tests for the simulator itself: plant a driver mistake and require that the checkers
// notice, so "violations=0" means something.
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "cluster.h"

namespace cairn::sim {
namespace {

// Runs seeds 1..max_seeds with `bug`; returns the first violation, or "" if none was found.
std::string FirstViolation(DriverBug bug, int nodes, int max_seeds) {
  for (int seed = 1; seed <= max_seeds; ++seed) {
    SimOptions options;
    options.seed = static_cast<uint64_t>(seed);
    options.nodes = nodes;
    options.driver_bug = bug;
    Cluster cluster(options);
    if (!cluster.RunRandom()) return cluster.violation();
  }
  return "";
}

TEST(MutationTest, CorrectDriverFindsNothing) { EXPECT_EQ(FirstViolation(DriverBug::kNone, 3, 20), ""); }

TEST(MutationTest, StaleLocalReadsAreCaughtByTheLinearizabilityCheck) {
  std::string violation = FirstViolation(DriverBug::kStaleRead, 3, 50);
  EXPECT_NE(violation.find("linearizability"), std::string::npos) << violation;
}

// Without fsync a crash forgets votes and acknowledged entries. Either the simulator's invariants
// report it or the raft core's own checks abort (a follower whose log shrank below its commit).
TEST(MutationTestDeathTest, SkippingFsyncIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::string violation = FirstViolation(DriverBug::kSkipSync, 3, 200);
        std::fprintf(stderr, "%s\n", violation.empty() ? "nothing found" : "simulator found a violation");
        std::exit(violation.empty() ? 0 : 1);
      },
      "simulator found a violation|PANIC");
}

}  // namespace
}  // namespace cairn::sim
