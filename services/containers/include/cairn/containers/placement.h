// Placement: containers run by another host's clusterd (ContainerAgent), driven through their
// records in the store. clusterctl writes what it wants (desired + generation); the agent of the
// record's host converges and reports (state, error, observed_generation). docs/containers.md,
// "Containers on any host".
//
//   /cairn/containers/NAME          ContainerRecord (desired, generation written by clusterctl;
//                                   state, error, observed_generation, ip by the agent)
//   /cairn/container-agents/HOST    ContainerAgentRecord on the agent's lease: the host is up
//
// Threading: plain functions over a Registry (one thread at a time).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/containers/containers.h"
#include "cairn/containers/images.h"
#include "cairn/containers/registry.h"

namespace cairn::containers {

inline constexpr const char* kAgentPrefix = "/cairn/container-agents/";

// Desired states clusterctl may ask for.
inline constexpr const char* kDesiredCreated = "created";
inline constexpr const char* kDesiredRunning = "running";
inline constexpr const char* kDesiredStopped = "stopped";
inline constexpr const char* kDesiredRemoved = "removed";
// The state of a placed record no agent has made yet.
inline constexpr const char* kStatePending = "pending";

// Validates what can be checked away from the host (name, image or --rootfs-from container on
// the same host, network, volume names and that they are started, bind syntax) and that the
// host's agent is alive, then claims the name with a record in state "pending", desired
// "running" (start) or "created", generation 1.
// Errors: InvalidArgument, NotFound (image, container, volume), FailedPrecondition (volume not
// started; host down: no agent heartbeat), AlreadyExists (name taken).
Result<ContainerRecord> PlaceContainer(Registry& registry, ImageStore& images, const CreateOptions& options,
                                       bool start, const Clock& clock);

// Asks for desired (created|running|stopped|removed) on a placed container, grace_seconds for a
// stop or removal. Returns the new generation. Errors: NotFound, FailedPrecondition (not placed
// through an agent).
Result<uint64_t> RequestDesired(Registry& registry, const std::string& name, const std::string& desired,
                                int grace_seconds);

// Polls the record until its agent observed generation (then returns it), the record is gone
// (nullopt), or timeout passes (DeadlineExceeded naming the host).
Result<std::optional<ContainerRecord>> AwaitObserved(Registry& registry, const std::string& name, uint64_t generation,
                                                     std::chrono::milliseconds timeout);

// True when host's agent heartbeat key exists.
Result<bool> AgentAlive(Registry& registry, const std::string& host);

}  // namespace cairn::containers
