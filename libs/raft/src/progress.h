// Leader-side bookkeeping of each follower's replication (flow control) and of the membership.
// Internal; not thread-safe; owned by RaftImpl.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>

#include "cairn/raft/raft.h"
#include "cairn/raft/quorum.h"

namespace cairn::raft {

// The window of un-acknowledged MSG_APPs to one follower, each remembered by its last index.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}
  bool Full() const { return sent_.size() >= capacity_; }
  size_t Count() const { return sent_.size(); }
  void Add(uint64_t last_index) { sent_.push_back(last_index); }
  // Frees every message whose last index is <= index (they were acknowledged).
  void FreeLE(uint64_t index) {
    while (!sent_.empty() && sent_.front() <= index) sent_.pop_front();
  }
  void FreeFirstOne() {
    if (!sent_.empty()) sent_.pop_front();
  }
  void Reset() { sent_.clear(); }

 private:
  size_t capacity_;
  std::deque<uint64_t> sent_;
};

// What the leader knows about one peer. Probe: one MSG_APP at a time until the match point is found.
// Replicate: stream optimistically, bounded by the inflight window. Snapshot: wait for the
// InstallSnapshot to finish (ReportSnapshot / an append response).
struct Progress {
  uint64_t match = 0;
  uint64_t next = 1;
  ProgressState state = ProgressState::kProbe;
  uint64_t pending_snapshot = 0;
  bool recent_active = false;
  bool probe_sent = false;
  bool learner = false;
  Inflights inflights;

  explicit Progress(size_t max_inflight) : inflights(max_inflight) {}

  void ResetState(ProgressState new_state) {
    probe_sent = false;
    pending_snapshot = 0;
    state = new_state;
    inflights.Reset();
  }
  void BecomeProbe() {
    if (state == ProgressState::kSnapshot) {
      uint64_t pending = pending_snapshot;
      ResetState(ProgressState::kProbe);
      next = std::max(match + 1, pending + 1);
    } else {
      ResetState(ProgressState::kProbe);
      next = match + 1;
    }
  }
  void BecomeReplicate() {
    ResetState(ProgressState::kReplicate);
    next = match + 1;
  }
  void BecomeSnapshot(uint64_t snapshot_index) {
    ResetState(ProgressState::kSnapshot);
    pending_snapshot = snapshot_index;
  }
  // An acknowledgement up to n. Returns true if match advanced.
  bool MaybeUpdate(uint64_t n) {
    bool updated = false;
    if (match < n) {
      match = n;
      updated = true;
      probe_sent = false;
    }
    next = std::max(next, n + 1);
    return updated;
  }
  // A rejection of the append at `rejected`; `match_hint` is the follower's guess (reject_hint,
  // refined by term). Returns false for a stale rejection.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
    if (state == ProgressState::kReplicate) {
      if (rejected <= match) return false;  // stale: already matched beyond it
      next = match + 1;
      return true;
    }
    if (next - 1 != rejected) return false;  // stale: not the probe we are waiting on
    next = std::max<uint64_t>(std::min(rejected, match_hint + 1), 1);
    probe_sent = false;
    return true;
  }
  bool IsPaused() const {
    switch (state) {
      case ProgressState::kProbe: return probe_sent;
      case ProgressState::kReplicate: return inflights.Full();
      case ProgressState::kSnapshot: return true;
    }
    return true;
  }
};

// Membership plus per-peer progress and the current election's votes.
class Tracker {
 public:
  explicit Tracker(size_t max_inflight) : max_inflight_(max_inflight) {}

  std::set<uint64_t> voters;
  std::set<uint64_t> learners;
  std::map<uint64_t, Progress> progress;
  std::map<uint64_t, bool> votes;

  size_t max_inflight() const { return max_inflight_; }
  Progress* Find(uint64_t id) {
    auto it = progress.find(id);
    return it == progress.end() ? nullptr : &it->second;
  }
  bool IsVoter(uint64_t id) const { return voters.count(id) != 0; }
  bool IsSingleton() const { return voters.size() == 1; }

  uint64_t Committed() const {
    std::map<uint64_t, uint64_t> match;
    for (const auto& [id, pr] : progress) match[id] = pr.match;
    return quorum::CommittedIndex(voters, match);
  }
  quorum::VoteResult RecordVote(uint64_t id, bool granted) {
    votes.emplace(id, granted);  // the first answer counts
    return quorum::TallyVotes(voters, votes);
  }
  // CheckQuorum: have a majority of voters been heard from since the last check? (self counts)
  bool QuorumActive(uint64_t self) const {
    std::map<uint64_t, bool> active;
    for (uint64_t id : voters) {
      auto it = progress.find(id);
      active[id] = id == self || (it != progress.end() && it->second.recent_active);
    }
    return quorum::TallyVotes(voters, active) == quorum::VoteResult::kWon;
  }
  ConfState GetConfState() const {
    ConfState cs;
    for (uint64_t id : voters) cs.add_voters(id);
    for (uint64_t id : learners) cs.add_learners(id);
    return cs;
  }

 private:
  size_t max_inflight_;
};

}  // namespace cairn::raft
