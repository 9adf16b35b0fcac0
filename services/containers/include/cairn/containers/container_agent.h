// ContainerAgent: clusterd's share of the containers (docs/containers.md, "Containers on any
// host"). One per clusterd, started after the coordination store and stopped before it.
//
//   ContainerAgent agent(io, *supervisor.coord(), {.node_name = "n1", .state_dir = data + "/containers"});
//   CAIRN_RETURN_IF_ERROR(agent.Start());
//   ...
//   agent.Stop();   // the containers keep running: each root is its own unionmount process
//
// What it does, on its own worker thread (LXC calls block and Start forks, so none of it runs on
// `io` or on a CoordApi thread):
//   - keeps /cairn/container-agents/NODE alive on a store lease (clusterctl refuses to place a
//     container on a host without it: "host is down");
//   - on every change of /cairn/containers/ (a watch; polled every `poll` without one, re-read
//     every `resync_every` with one): acts at once on each record placed on this host
//     (host == node_name, desired not empty) whose generation it has not observed: makes a pending
//     container (ContainerService::Materialize), starts, stops or removes it, then records state,
//     error and observed_generation (removal deletes the record);
//   - every `check_every` (level-triggered, convergence.h): compares every container placed here
//     with what runs and converges the ones that drifted, whatever the generation: one that should
//     run and is down (its init died, its union died, the host restarted) is recorded failed with
//     the reason and started again after a per-container backoff (restart_backoff: 1 s doubling to
//     60 s, forgotten after 60 s up), counted in the record's `restarts`; one that should be
//     stopped and runs is stopped; a failed make, start or removal is retried with the same backoff.
//     It also records the IPs of the running ones.
// A container that runs as desired is left alone: a restarted clusterd adopts its running
// containers as they are (their roots are unionmount processes and their LXC monitors are not
// children of clusterd), and starts again those that died while it was away.
// Records without desired are run by clusterctl on their host directly; the agent leaves them
// alone, as it does every container outside its own LXC path (state_dir).
//
// Threading: Start/Stop from one thread (clusterd's); neither may run inside a CoordApi callback.
// `store` must outlive the agent.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/containers/convergence.h"
#include "cairn/containers/images.h"
#include "cairn/containers/runtime.h"
#include "cairn/containers/volumes.h"
#include "cairn/coord/api.h"

namespace cairn::containers {

struct ContainerAgentOptions {
  std::string node_name;   // node.yaml `name:`; records whose host equals it are run here
  std::string state_dir;   // the LXC path of the containers run here (created when missing)
  std::string layer_root = DefaultLayerRoot();    // where image layers are ($CAIRN_IMAGE_ROOT)
  // Layers on this replicated volume instead ($CAIRN_IMAGE_VOLUME): the layer root is then
  // volume_root/VOL, mounted when first needed, and each layer is digest-checked before its
  // first use here (cache: state_dir/.verified).
  std::string image_volume = DefaultImageVolume();
  std::string unionmount;                         // empty: FindUnionmount()
  std::string volume_root = DefaultVolumeRoot();  // --volume mounts ($CAIRN_VOLUME_ROOT)
  std::string cairn_mount;                        // empty: FindCairnMount() when a volume is used
  // The records are watched (/cairn/containers/): a change wakes the agent at once and the store
  // is read then, and every resync_every in case a watch event was missed. Without a watch (it
  // could not be opened, or broke) they are read every `poll`.
  Duration resync_every = std::chrono::seconds(10);
  Duration poll = std::chrono::milliseconds(300);
  Duration check_every = std::chrono::seconds(1);  // the level-triggered round (local checks)
  RestartBackoff::Options restart_backoff;         // retries of what is not as desired
  const Clock* clock = &RealClock::Instance();     // backoff timing and the time in last_failure
  std::chrono::seconds heartbeat_ttl{5};
  std::chrono::seconds operation_timeout{30};     // one union mount, start or volume mount
};

class ContainerAgent {
 public:
  // io is not used for work (see above); it is taken so every agent has the same constructor.
  ContainerAgent(boost::asio::io_context& io, coord::CoordApi& store, ContainerAgentOptions options);
  ~ContainerAgent();  // Stop()s
  ContainerAgent(const ContainerAgent&) = delete;
  ContainerAgent& operator=(const ContainerAgent&) = delete;

  // Starts the worker; an unreachable store is retried, never an error here. Errors:
  // InvalidArgument (empty node_name or state_dir), NotFound (no unionmount),
  // FailedPrecondition when called twice.
  Status Start();
  // Stops the worker and drops the heartbeat. Running containers are left running. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::containers
