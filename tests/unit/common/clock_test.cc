#include "cairn/common/clock.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  TimePoint start = clock.Now();
  WallTime wall_start = clock.WallNow();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(250ms);
  EXPECT_EQ(clock.Now() - start, 250ms);
  EXPECT_EQ(clock.WallNow() - wall_start, 250ms);
}

TEST(FakeClockTest, DoesNotStartAtZero) {
  FakeClock clock;
  EXPECT_NE(clock.Now().time_since_epoch().count(), 0);
}

TEST(RealClockTest, IsMonotonic) {
  Clock& clock = RealClock::Instance();
  TimePoint a = clock.Now();
  TimePoint b = clock.Now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace cairn
