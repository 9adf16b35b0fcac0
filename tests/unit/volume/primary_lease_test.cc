#include <gtest/gtest.h>

#include <chrono>

#include "cairn/common/clock.h"
#include "cairn/volume/primary_lease.h"

namespace cairn::volume {
namespace {

using namespace std::chrono_literals;

TEST(VolumePrimaryLease, ValidFromTheSendTimeNotTheReply) {
  FakeClock clock;
  PrimaryLease lease(2s, 50ms);
  EXPECT_FALSE(lease.Valid(clock.Now()));
  EXPECT_FALSE(lease.NextKeepAlive().has_value());
  const TimePoint sent = clock.Now();
  clock.Advance(1500ms);  // a slow reply, or a pause between send and reply
  lease.Renewed(sent);
  EXPECT_TRUE(lease.Valid(clock.Now()));
  EXPECT_EQ(*lease.deadline(), sent + 1950ms);
  clock.Advance(449ms);
  EXPECT_TRUE(lease.Valid(clock.Now()));
  clock.Advance(1ms);
  EXPECT_FALSE(lease.Valid(clock.Now())) << "stops before the store can revoke it";
}

TEST(VolumePrimaryLease, NeverMovesBackwardsAndLostIsFinal) {
  FakeClock clock;
  PrimaryLease lease(3s, 0ms);
  const TimePoint first = clock.Now();
  clock.Advance(1s);
  const TimePoint second = clock.Now();
  lease.Renewed(second);
  lease.Renewed(first);  // an older confirmation arriving late
  EXPECT_EQ(*lease.deadline(), second + 3s);
  EXPECT_EQ(*lease.NextKeepAlive(), second + 1s);
  lease.Lost();
  EXPECT_FALSE(lease.Valid(clock.Now()));
  EXPECT_FALSE(lease.deadline().has_value());
}

}  // namespace
}  // namespace cairn::volume
