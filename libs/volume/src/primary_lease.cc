#include "cairn/volume/primary_lease.h"

namespace cairn::volume {

PrimaryLease::PrimaryLease(Duration ttl, Duration drift_margin) : ttl_(ttl), drift_margin_(drift_margin) {}

void PrimaryLease::Renewed(TimePoint sent_at) {
  const TimePoint deadline = sent_at + ttl_ - drift_margin_;
  if (!deadline_ || deadline > *deadline_) {
    deadline_ = deadline;
    last_sent_ = sent_at;
  }
}

void PrimaryLease::Lost() {
  deadline_.reset();
  last_sent_.reset();
}

std::optional<TimePoint> PrimaryLease::NextKeepAlive() const {
  if (!last_sent_) return std::nullopt;
  return *last_sent_ + ttl_ / 3;
}

}  // namespace cairn::volume
