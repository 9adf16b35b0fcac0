// Exponential backoff with jitter for reconnects. Pure: the caller supplies the Random and does
// the waiting, so tests see exact delays.
#pragma once

#include <chrono>
#include <cstdint>

#include "cairn/common/clock.h"
#include "cairn/common/ids.h"

namespace cairn::net {

// The n-th delay (n from 0) is drawn uniformly from [cap/2, cap] where cap = min(max, initial * 2^n):
// "equal jitter", so peers that lost the same server do not reconnect in lockstep, yet no delay
// is shorter than half the nominal one. Not thread-safe.
class Backoff {
 public:
  // initial > 0 and max >= initial; other values are clamped to that.
  Backoff(Duration initial, Duration max);

  // The delay before the next attempt; each call doubles the nominal delay up to max.
  Duration Next(Random& random);
  // After a success: the next delay starts from `initial` again.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  Duration initial_;
  Duration max_;
  int attempt_ = 0;
};

}  // namespace cairn::net
