// Convergence: the decisions of a host's container agent (ContainerAgent), apart from LXC and
// the store so unit tests reach them. docs/containers.md, "Containers on any host".
//
// The agent is level-triggered: every round it compares each record placed on its host with what
// runs there (LiveContainer) and takes the one step (Decide) that brings it closer, whether or not
// the record changed. An operator's new generation is acted on at once; everything else (a
// container that died, a start or removal that failed) is retried with per-container exponential
// backoff (RestartBackoff), so a container that cannot run does not spin.
//
// Threading: plain values and functions; a RestartBackoff belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cairn/common/clock.h"
#include "cairn/containers/records.pb.h"

namespace cairn::containers {

// What the host sees of one container, measured just before deciding.
struct LiveContainer {
  bool defined = false;       // its LXC config exists in the agent's LXC path
  std::string lxc_state;      // "RUNNING", "STOPPED", ... ("" when not defined)
  bool rootfs_alive = false;  // the union under its root answers
};

enum class Step {
  kNothing,      // it is as desired
  kMaterialize,  // make the directory, config, volume mounts and union (ContainerService::Materialize)
  kStart,        // (a running container with a dead union is killed first) mount and start
  kStop,         // halt, then kill after the record's grace
  kRemove,       // stop, unmount, destroy, delete the record
};
const char* StepName(Step step);

struct Decision {
  Step step = Step::kNothing;
  // Why, in words for the record and the log ("union process died", "not made on this host yet").
  std::string reason;
  // The container was found down although the agent had already brought it to desired running
  // (its generation was observed): starting it again is a restart, counted and backed off.
  bool restart = false;
  // With kNothing: the state the record should show, when it differs from what it shows now
  // (e.g. "running" after a failure that cleared up by itself); "" when the record is right.
  std::string record_state;
};

// The step for record (placed on this host: desired is not empty) given live.
//   desired removed: kRemove.
//   not defined here: kMaterialize when it was made before (container_dir set: its directory was
//     lost) or its generation is new; else kNothing (its making failed: the creator deletes it).
//   desired running: kNothing when RUNNING (or FROZEN) with a live union, or while LXC is between
//     states (STARTING, STOPPING); else kStart ("union process died" / "stopped by itself (LXC
//     state STOPPED)"); restart when the agent had already brought it up for this generation
//     (observed, and its record no longer "created" or "pending").
//   desired stopped: kStop while not STOPPED, else kNothing.
//   desired created: kNothing (made, never started by the agent; the operator starts it).
Decision Decide(const ContainerRecord& record, const LiveContainer& live);

// Backoff of one container's retries: each failed attempt or death doubles the wait (initial,
// 2x initial, ... up to max); running for reset_after without dying forgets the failures.
// A new generation from the operator is not held back: the agent calls Reset before acting on it.
class RestartBackoff {
 public:
  struct Options {
    Duration initial = std::chrono::seconds(1);
    Duration max = std::chrono::seconds(60);
    Duration reset_after = std::chrono::seconds(60);
  };
  RestartBackoff() : RestartBackoff(Options{}) {}
  explicit RestartBackoff(Options options) : options_(options) {}

  // May the next retry run at now?
  bool Due(TimePoint now) const { return now >= next_attempt_; }
  // The container was found down: the next attempt waits. True the first time for one outage
  // (until NoteUp), false when this outage was already counted.
  bool NoteDown(TimePoint now);
  // An attempt (materialize, start, stop, remove) failed: the next one waits longer.
  void AttemptFailed(TimePoint now);
  // It is as desired (runs, or stopped as asked): the failures are forgotten once it has stayed
  // so for reset_after.
  void NoteUp(TimePoint now);
  // Forgets everything (the operator asked for something new).
  void Reset() { *this = RestartBackoff(options_); }

  Duration current() const { return backoff_; }
  TimePoint next_attempt() const { return next_attempt_; }
  bool down() const { return down_; }

 private:
  void Grow(TimePoint now);

  Options options_;
  Duration backoff_{0};
  TimePoint next_attempt_{};
  bool down_ = false;
  bool up_ = false;
  TimePoint up_since_{};
};

}  // namespace cairn::containers
