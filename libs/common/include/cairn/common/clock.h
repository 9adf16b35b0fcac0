// Clocks. Code that measures time or sets deadlines takes a Clock& so tests can move time by hand.
// Raft itself counts logical ticks and needs no clock.
#pragma once

#include <chrono>
#include <mutex>

namespace cairn {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for durations, deadlines and timeouts.
  virtual TimePoint Now() const = 0;
  // Wall-clock time, for timestamps shown to people (never for ordering).
  virtual WallTime WallNow() const = 0;
};

// The process's real clocks. Thread-safe.
class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  // A shared instance for code that has no reason to own one.
  static RealClock& Instance();
};

// A clock that moves only when told. Thread-safe. Starts at an arbitrary fixed point, not zero,
// so code that treats time zero as "unset" is caught.
class FakeClock final : public Clock {
 public:
  FakeClock();
  TimePoint Now() const override;
  WallTime WallNow() const override;
  void Advance(Duration by);

 private:
  mutable std::mutex mu_;
  TimePoint now_;   // GUARDED_BY(mu_)
  WallTime wall_;   // GUARDED_BY(mu_)
};

}  // namespace cairn
