#include "cairn/net/backoff.h"

#include <gtest/gtest.h>

namespace cairn::net {
namespace {

using namespace std::chrono_literals;

TEST(BackoffTest, DoublesWithJitterUpToMax) {
  Random random(7);
  Backoff backoff(100ms, 1s);
  Duration caps[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s, 1s};
  for (Duration cap : caps) {
    Duration delay = backoff.Next(random);
    EXPECT_GE(delay, cap / 2);
    EXPECT_LE(delay, cap);
  }
}

TEST(BackoffTest, ResetStartsOver) {
  Random random(7);
  Backoff backoff(10ms, 10s);
  for (int i = 0; i < 20; ++i) backoff.Next(random);
  backoff.Reset();
  EXPECT_LE(backoff.Next(random), 10ms);
}

TEST(BackoffTest, SameSeedSameDelays) {
  Random a(3), b(3);
  Backoff first(50ms, 5s), second(50ms, 5s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(first.Next(a), second.Next(b));
}

TEST(BackoffTest, JitterSpreadsDelays) {
  Random random(1);
  Backoff backoff(1s, 1s);
  Duration first = backoff.Next(random);
  bool differs = false;
  for (int i = 0; i < 10; ++i) differs |= backoff.Next(random) != first;
  EXPECT_TRUE(differs);
}

TEST(BackoffTest, ManyAttemptsDoNotOverflow) {
  Random random(1);
  Backoff backoff(1ms, 30s);
  for (int i = 0; i < 1000; ++i) {
    Duration delay = backoff.Next(random);
    ASSERT_GT(delay, 0ms);
    ASSERT_LE(delay, 30s);
  }
}

}  // namespace
}  // namespace cairn::net
