#include "cairn/net/backoff.h"

#include <algorithm>

namespace cairn::net {

Backoff::Backoff(Duration initial, Duration max)
    : initial_(std::max(initial, Duration(1))), max_(std::max(max, initial_)) {}

Duration Backoff::Next(Random& random) {
  Duration cap = initial_;
  for (int i = 0; i < attempt_ && cap < max_; ++i) cap *= 2;
  cap = std::min(cap, max_);
  if (attempt_ < 62) ++attempt_;
  auto half = cap.count() / 2;
  auto spread = static_cast<uint64_t>(cap.count() - half) + 1;
  return Duration(half + static_cast<int64_t>(random.Uniform(spread)));
}

}  // namespace cairn::net
