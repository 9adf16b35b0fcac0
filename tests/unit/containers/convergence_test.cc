// The container agent's decisions (convergence.h): which step a placed record needs given what
// runs on the host, which starts are restarts, and the restart backoff over a fake clock.
#include "cairn/containers/convergence.h"

#include <gtest/gtest.h>

#include "cairn/containers/placement.h"

namespace cairn::containers {
namespace {

using std::chrono::seconds;

ContainerRecord Placed(const std::string& desired, const std::string& state, uint64_t generation, uint64_t observed) {
  ContainerRecord record;
  record.set_name("c1");
  record.set_host("n1");
  record.set_desired(desired);
  record.set_state(state);
  record.set_generation(generation);
  record.set_observed_generation(observed);
  return record;
}

LiveContainer Live(const std::string& lxc_state, bool rootfs_alive) {
  return LiveContainer{.defined = true, .lxc_state = lxc_state, .rootfs_alive = rootfs_alive};
}

const LiveContainer kRunning = Live("RUNNING", true);
const LiveContainer kStopped = Live("STOPPED", true);
const LiveContainer kMissing{};

TEST(DecideTest, APendingRecordIsMadeFirstWhateverIsDesired) {
  for (const char* desired : {kDesiredCreated, kDesiredRunning, kDesiredStopped}) {
    Decision decision = Decide(Placed(desired, kStatePending, 1, 0), kMissing);
    EXPECT_EQ(decision.step, Step::kMaterialize) << desired;
    EXPECT_EQ(decision.reason, "not made on this host yet");
  }
  ContainerRecord made = Placed(kDesiredRunning, "running", 1, 1);
  made.set_container_dir("/var/lib/cairn/containers/c1");
  Decision lost = Decide(made, kMissing);
  EXPECT_EQ(lost.step, Step::kMaterialize);
  EXPECT_EQ(lost.reason, "its directory is gone from this host");
}

// The creator (container create --host, apply) deletes a record whose making failed; a retry
// by the agent meanwhile would leave a container without a record.
TEST(DecideTest, AFailedMakingIsNotRetriedUntilTheOperatorAsksAgain) {
  EXPECT_EQ(Decide(Placed(kDesiredRunning, "failed", 1, 1), kMissing).step, Step::kNothing);
  EXPECT_EQ(Decide(Placed(kDesiredRunning, "failed", 2, 1), kMissing).step, Step::kMaterialize);
}

TEST(DecideTest, RemovalWinsOverEverything) {
  EXPECT_EQ(Decide(Placed(kDesiredRemoved, "running", 3, 2), kRunning).step, Step::kRemove);
  EXPECT_EQ(Decide(Placed(kDesiredRemoved, kStatePending, 2, 1), kMissing).step, Step::kRemove);
}

// Adoption: a restarted agent finds its container running with a live union and leaves it alone.
TEST(DecideTest, ARunningContainerIsLeftAlone) {
  Decision decision = Decide(Placed(kDesiredRunning, "running", 2, 2), kRunning);
  EXPECT_EQ(decision.step, Step::kNothing);
  EXPECT_EQ(decision.record_state, "");
  Decision frozen = Decide(Placed(kDesiredRunning, "running", 2, 2), Live("FROZEN", true));
  EXPECT_EQ(frozen.step, Step::kNothing);
}

TEST(DecideTest, ARecordThatSaysFailedIsCorrectedWhenTheContainerRuns) {
  Decision decision = Decide(Placed(kDesiredRunning, "failed", 2, 2), kRunning);
  EXPECT_EQ(decision.step, Step::kNothing);
  EXPECT_EQ(decision.record_state, "running");
  EXPECT_EQ(Decide(Placed(kDesiredStopped, "failed", 2, 2), kStopped).record_state, "stopped");
}

TEST(DecideTest, ADeadContainerThatShouldRunIsRestarted) {
  Decision stopped = Decide(Placed(kDesiredRunning, "running", 2, 2), kStopped);
  EXPECT_EQ(stopped.step, Step::kStart);
  EXPECT_TRUE(stopped.restart);
  EXPECT_EQ(stopped.reason, "stopped by itself (LXC state STOPPED)");
  Decision union_died = Decide(Placed(kDesiredRunning, "running", 2, 2), Live("RUNNING", false));
  EXPECT_EQ(union_died.step, Step::kStart);
  EXPECT_TRUE(union_died.restart);
  EXPECT_EQ(union_died.reason, "union process died");
  Decision failed_before = Decide(Placed(kDesiredRunning, "failed", 2, 2), kStopped);
  EXPECT_TRUE(failed_before.restart) << "a failed start tried again is a restart";
}

TEST(DecideTest, TheFirstStartIsNoRestart) {
  EXPECT_FALSE(Decide(Placed(kDesiredRunning, "stopped", 3, 2), kStopped).restart) << "a new generation";
  EXPECT_FALSE(Decide(Placed(kDesiredRunning, "created", 1, 0), kStopped).restart) << "just made";
  EXPECT_FALSE(Decide(Placed(kDesiredRunning, "created", 1, 1), kStopped).restart) << "made by a retry, then started";
}

TEST(DecideTest, ATransitionalStateIsWaitedOut) {
  EXPECT_EQ(Decide(Placed(kDesiredRunning, "running", 2, 2), Live("STARTING", true)).step, Step::kNothing);
  EXPECT_EQ(Decide(Placed(kDesiredRunning, "running", 2, 2), Live("STOPPING", true)).step, Step::kNothing);
}

TEST(DecideTest, StoppedMeansStoppedAndCreatedIsLeftAsItIs) {
  EXPECT_EQ(Decide(Placed(kDesiredStopped, "stopped", 3, 3), kRunning).step, Step::kStop);
  EXPECT_EQ(Decide(Placed(kDesiredStopped, "stopped", 3, 3), kStopped).step, Step::kNothing);
  EXPECT_EQ(Decide(Placed(kDesiredCreated, "created", 1, 1), kStopped).step, Step::kNothing);
  EXPECT_EQ(Decide(Placed(kDesiredCreated, "created", 1, 1), kRunning).step, Step::kNothing);
}

TEST(RestartBackoffTest, DoublesFromInitialToMax) {
  FakeClock clock;
  RestartBackoff backoff({.initial = seconds(1), .max = seconds(8), .reset_after = seconds(60)});
  EXPECT_TRUE(backoff.Due(clock.Now())) << "nothing failed yet";
  EXPECT_TRUE(backoff.NoteDown(clock.Now()));
  EXPECT_EQ(backoff.current(), seconds(1));
  EXPECT_FALSE(backoff.Due(clock.Now()));
  EXPECT_FALSE(backoff.NoteDown(clock.Now())) << "the same outage is counted once";
  clock.Advance(seconds(1));
  EXPECT_TRUE(backoff.Due(clock.Now()));
  std::vector<Duration> waits;
  for (int i = 0; i < 5; ++i) {
    backoff.AttemptFailed(clock.Now());
    waits.push_back(backoff.current());
    EXPECT_FALSE(backoff.Due(clock.Now() + backoff.current() - std::chrono::milliseconds(1)));
    EXPECT_TRUE(backoff.Due(clock.Now() + backoff.current()));
    clock.Advance(backoff.current());
    EXPECT_FALSE(backoff.NoteDown(clock.Now())) << "still down after the failed attempt: not a new outage";
  }
  EXPECT_EQ(waits, (std::vector<Duration>{seconds(2), seconds(4), seconds(8), seconds(8), seconds(8)}));
}

TEST(RestartBackoffTest, ACrashLoopKeepsGrowingUntilItStaysUp) {
  FakeClock clock;
  RestartBackoff backoff({.initial = seconds(1), .max = seconds(60), .reset_after = seconds(30)});
  // Started, up for 5 s, dies: each death waits twice as long as the last.
  for (Duration expected : {seconds(1), seconds(2), seconds(4)}) {
    EXPECT_TRUE(backoff.NoteDown(clock.Now()));
    EXPECT_EQ(backoff.current(), expected);
    clock.Advance(backoff.current());
    backoff.NoteUp(clock.Now());
    clock.Advance(seconds(5));
    backoff.NoteUp(clock.Now());
  }
  // Up for reset_after: the next death starts from initial again.
  clock.Advance(seconds(30));
  backoff.NoteUp(clock.Now());
  EXPECT_TRUE(backoff.NoteDown(clock.Now()));
  EXPECT_EQ(backoff.current(), seconds(1));
}

TEST(RestartBackoffTest, ResetActsNow) {
  FakeClock clock;
  RestartBackoff backoff;
  backoff.AttemptFailed(clock.Now());
  backoff.AttemptFailed(clock.Now());
  EXPECT_FALSE(backoff.Due(clock.Now()));
  backoff.Reset();
  EXPECT_TRUE(backoff.Due(clock.Now()));
  EXPECT_FALSE(backoff.down());
}

}  // namespace
}  // namespace cairn::containers
