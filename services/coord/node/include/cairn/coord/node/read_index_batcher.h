// ReadIndexBatcher: gathers linearizable reads so that many concurrent reads cost one ReadIndex
// round. A read may only use a read index that was requested after the read arrived, so reads
// that come while a request is in flight wait for the next one (issued as soon as that one is
// confirmed). A request whose answer never comes (lost message, leader change) is retried after
// `retry_after`; its reads move to the retry.
//
// Use: Add() each read; after every event call TakeRequest() and, when it returns a context,
// pass it to RawNode::ReadIndex; feed ReadStates to OnReadState and the applied index to
// OnApplied, which runs the reads whose index has been applied. Expire() fails reads past their
// deadline with DeadlineExceeded.
//
// Threading: not thread-safe; owned by the node's loop thread. Callbacks run inside these calls.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"

namespace cairn::coord {

class ReadIndexBatcher {
 public:
  using Callback = std::function<void(Status)>;

  explicit ReadIndexBatcher(Duration retry_after) : retry_after_(retry_after) {}

  void Add(Callback done, TimePoint deadline);
  // A context to request now, or nullopt (nothing waiting, or a request is in flight and young).
  std::optional<std::string> TakeRequest(TimePoint now);
  void OnReadState(const std::string& context, uint64_t index, uint64_t applied);
  void OnApplied(uint64_t applied);
  void Expire(TimePoint now);
  void FailAll(const Status& status);

  size_t waiting() const;
  uint64_t requests_issued() const { return next_context_; }

 private:
  struct Read {
    Callback done;
    TimePoint deadline;
  };
  void RunConfirmed(uint64_t applied);

  Duration retry_after_;
  std::vector<Read> queued_;                  // not yet part of a request
  std::optional<uint64_t> in_flight_;         // context number of the request in flight
  TimePoint in_flight_since_{};
  std::vector<Read> in_flight_reads_;
  std::multimap<uint64_t, Read> confirmed_;   // read index -> read, waiting for apply
  uint64_t next_context_ = 0;
};

}  // namespace cairn::coord
