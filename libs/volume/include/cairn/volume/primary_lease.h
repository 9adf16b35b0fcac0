// The primary's own view of its store lease: when it may accept writes. Pure; times come in as
// arguments from the caller's monotonic clock.
//
// Rule: a keep-alive (or the grant) sent at time S and confirmed by the store makes the lease
// valid until S + TTL - drift_margin. The store's expiry is at least (time it applied the
// request) + TTL >= S + TTL, so the primary stops accepting writes before the store can revoke
// the lease and let TakeOverPrimary install another primary (docs/volumes.md). Measuring from the
// send time, not the reply, is what makes a slow reply or a pause (SIGSTOP) between send and reply
// harmless.
//
// Not thread-safe; the owner serialises calls (one strand).
#pragma once

#include <optional>

#include "cairn/common/clock.h"

namespace cairn::volume {

class PrimaryLease {
 public:
  // ttl: the TTL the store granted (its seconds, not the one asked for); drift_margin: allowance
  // for the primary's clock running slow against the store leader's.
  PrimaryLease(Duration ttl, Duration drift_margin);

  // The store confirmed a grant or keep-alive that was sent at sent_at. The deadline never
  // moves backwards (confirmations may arrive out of order).
  void Renewed(TimePoint sent_at);
  // The store refused a keep-alive, or the record names another primary: never valid again
  // until the next Renewed of a new lease.
  void Lost();

  bool Valid(TimePoint now) const { return deadline_.has_value() && now < *deadline_; }
  std::optional<TimePoint> deadline() const { return deadline_; }
  // When to send the next keep-alive: a third of the TTL after the last confirmed send, so two
  // may fail before the lease runs out.
  std::optional<TimePoint> NextKeepAlive() const;

 private:
  Duration ttl_;
  Duration drift_margin_;
  std::optional<TimePoint> last_sent_;
  std::optional<TimePoint> deadline_;
};

}  // namespace cairn::volume
