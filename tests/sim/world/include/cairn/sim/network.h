// An in-memory network for deterministic simulation: it drops, delays, reorders, duplicates and
// partitions messages, every decision drawn from one seeded cairn::Random, so a seed replays exactly.
//
// Time is an integer the driver owns (the simulator uses sub-tick units). Send() stamps a message with
// a delivery time; TakeDue(now) hands back everything due, in (time, send order), so equal seeds give
// equal orders. Reordering falls out of random per-message delays.
//
// Links: a message from A to B is lost if the A->B link is cut when it is sent OR when it would be
// delivered (a partition also swallows what is in flight), or if either end is down.
//
// Threading: not thread-safe; the simulator is single-threaded.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "cairn/common/ids.h"

namespace cairn::sim {

struct NetworkFaults {
  uint32_t drop_per_mille = 0;       // chance a message is lost
  uint32_t duplicate_per_mille = 0;  // chance a message is delivered twice (independent delays)
  int64_t min_delay = 1;             // delivery delay range, inclusive; min_delay >= 0
  int64_t max_delay = 1;
  uint32_t spike_per_mille = 0;      // chance of a long delay (max_delay .. spike_delay)
  int64_t spike_delay = 1;
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t dropped = 0;      // random loss
  uint64_t cut = 0;          // lost to a partition or a down node
  uint64_t duplicated = 0;
};

template <typename M>
struct Delivery {
  uint64_t from = 0;
  uint64_t to = 0;
  int64_t time = 0;
  M message;
};

template <typename M>
class Network {
 public:
  explicit Network(Random& random) : random_(random) {}

  void SetFaults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }
  const NetworkStats& stats() const { return stats_; }

  // Queues `message` from -> to, sent at `now`. May drop or duplicate it.
  void Send(uint64_t from, uint64_t to, M message, int64_t now) {
    ++stats_.sent;
    if (!Connected(from, to)) {
      ++stats_.cut;
      return;
    }
    if (faults_.drop_per_mille > 0 && random_.Uniform(1000) < faults_.drop_per_mille) {
      ++stats_.dropped;
      return;
    }
    bool duplicate = faults_.duplicate_per_mille > 0 && random_.Uniform(1000) < faults_.duplicate_per_mille;
    if (duplicate) {
      ++stats_.duplicated;
      Enqueue(from, to, message, now);
    }
    Enqueue(from, to, std::move(message), now);
  }

  // Removes and returns every message due at or before `now`, in (time, send order). Messages whose
  // link was cut since they were sent are counted as cut and not returned.
  std::vector<Delivery<M>> TakeDue(int64_t now) {
    std::vector<Delivery<M>> due;
    while (!queue_.empty() && queue_.begin()->first.first <= now) {
      Delivery<M> delivery = std::move(queue_.extract(queue_.begin()).mapped());
      if (!Connected(delivery.from, delivery.to)) {
        ++stats_.cut;
        continue;
      }
      ++stats_.delivered;
      due.push_back(std::move(delivery));
    }
    return due;
  }

  size_t InFlight() const { return queue_.size(); }
  // Time of the next queued message, or -1 when none.
  int64_t NextDeliveryTime() const { return queue_.empty() ? -1 : queue_.begin()->first.first; }

  // Cuts (or restores) the one-way link from -> to.
  void SetLink(uint64_t from, uint64_t to, bool up) {
    if (up) {
      cut_links_.erase({from, to});
    } else {
      cut_links_.insert({from, to});
    }
  }
  // Cuts every link between the two groups, both ways. Links inside a group are untouched.
  void Partition(const std::vector<uint64_t>& side_a, const std::vector<uint64_t>& side_b) {
    for (uint64_t a : side_a) {
      for (uint64_t b : side_b) {
        SetLink(a, b, false);
        SetLink(b, a, false);
      }
    }
  }
  void HealLinks() { cut_links_.clear(); }
  bool HasCutLinks() const { return !cut_links_.empty(); }

  // A down node neither sends nor receives; what was in flight to it is lost on delivery.
  void SetNodeUp(uint64_t node, bool up) {
    if (up) {
      down_nodes_.erase(node);
    } else {
      down_nodes_.insert(node);
    }
  }

  bool Connected(uint64_t from, uint64_t to) const {
    return !down_nodes_.count(from) && !down_nodes_.count(to) && !cut_links_.count({from, to});
  }

 private:
  int64_t Delay() {
    if (faults_.spike_per_mille > 0 && random_.Uniform(1000) < faults_.spike_per_mille) {
      int64_t low = faults_.max_delay;
      int64_t high = std::max(faults_.spike_delay, low);
      return low + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(high - low + 1)));
    }
    int64_t low = std::max<int64_t>(faults_.min_delay, 0);
    int64_t high = std::max(faults_.max_delay, low);
    return low + static_cast<int64_t>(random_.Uniform(static_cast<uint64_t>(high - low + 1)));
  }

  void Enqueue(uint64_t from, uint64_t to, M message, int64_t now) {
    int64_t time = now + Delay();
    queue_.emplace(std::make_pair(time, next_sequence_++), Delivery<M>{from, to, time, std::move(message)});
  }

  Random& random_;
  NetworkFaults faults_;
  NetworkStats stats_;
  // Keyed by (delivery time, send sequence): ordered, and messages move out without copies.
  std::map<std::pair<int64_t, uint64_t>, Delivery<M>> queue_;
  uint64_t next_sequence_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> cut_links_;
  std::set<uint64_t> down_nodes_;
};

}  // namespace cairn::sim
