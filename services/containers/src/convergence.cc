#include "cairn/containers/convergence.h"

#include <algorithm>

#include "cairn/containers/placement.h"

namespace cairn::containers {

const char* StepName(Step step) {
  switch (step) {
    case Step::kNothing: return "nothing";
    case Step::kMaterialize: return "materialize";
    case Step::kStart: return "start";
    case Step::kStop: return "stop";
    case Step::kRemove: return "remove";
  }
  return "?";
}

namespace {

Decision Act(Step step, std::string reason, bool restart = false) {
  Decision decision;
  decision.step = step;
  decision.reason = std::move(reason);
  decision.restart = restart;
  return decision;
}

Decision Keep(const ContainerRecord& record, const std::string& state) {
  Decision decision;
  if (record.state() != state) decision.record_state = state;
  return decision;
}

}  // namespace

Decision Decide(const ContainerRecord& record, const LiveContainer& live) {
  const std::string& desired = record.desired();
  if (desired == kDesiredRemoved) return Act(Step::kRemove, "removal requested");
  const bool fresh = record.observed_generation() < record.generation();
  if (!live.defined) {
    if (!record.container_dir().empty()) return Act(Step::kMaterialize, "its directory is gone from this host");
    // Never made: only on the operator's request. A failed making is not retried, because its
    // creator (container create, apply) deletes the record then and must not race a retry.
    if (fresh) return Act(Step::kMaterialize, "not made on this host yet");
    return Decision{};
  }
  // Starting again what the agent had already brought up for this generation is a restart; the
  // first start after it was made (state created) or asked for (a new generation) is not.
  const bool restart = !fresh && record.state() != "created" && record.state() != kStatePending;
  if (desired == kDesiredRunning) {
    const bool up = live.lxc_state == "RUNNING" || live.lxc_state == "FROZEN";
    if (up && live.rootfs_alive) return Keep(record, live.lxc_state == "RUNNING" ? "running" : record.state());
    if (up) return Act(Step::kStart, "union process died", restart);
    // STARTING, STOPPING, ...: LXC is busy with it; look again next round.
    if (live.lxc_state != "STOPPED") return Decision{};
    return Act(Step::kStart, "stopped by itself (LXC state STOPPED)", restart);
  }
  if (desired == kDesiredStopped) {
    if (live.lxc_state != "STOPPED") return Act(Step::kStop, "stop requested");
    return Keep(record, "stopped");
  }
  return Decision{};  // created: made, and left as the operator has it
}

void RestartBackoff::Grow(TimePoint now) {
  backoff_ = std::clamp<Duration>(backoff_ * 2, options_.initial, options_.max);
  next_attempt_ = now + backoff_;
}

bool RestartBackoff::NoteDown(TimePoint now) {
  up_ = false;
  if (down_) return false;
  down_ = true;
  Grow(now);
  return true;
}

void RestartBackoff::AttemptFailed(TimePoint now) {
  up_ = false;
  down_ = true;  // the next round's finding that it is still down is this failure, not a new one
  Grow(now);
}

void RestartBackoff::NoteUp(TimePoint now) {
  down_ = false;
  if (!up_) {
    up_ = true;
    up_since_ = now;
  }
  if (now - up_since_ >= options_.reset_after) backoff_ = Duration(0);
}

}  // namespace cairn::containers
