#include "cairn/common/clock.h"

namespace cairn {

RealClock& RealClock::Instance() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock()
    : now_(TimePoint(std::chrono::hours(1000))),
      wall_(WallTime(std::chrono::seconds(1'800'000'000))) {}

TimePoint FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

WallTime FakeClock::WallNow() const {
  std::lock_guard lock(mu_);
  return wall_;
}

void FakeClock::Advance(Duration by) {
  std::lock_guard lock(mu_);
  now_ += by;
  wall_ += std::chrono::duration_cast<WallTime::duration>(by);
}

}  // namespace cairn
