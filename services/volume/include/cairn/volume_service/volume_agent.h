// VolumeAgent: clusterd's share of the replicated volumes (docs/volumes.md, "The volume agent in
// clusterd"). One per clusterd, started after the coordination store and stopped before it.
//
//   VolumeAgent agent(io, *supervisor.coord(), {.node_name = "n1", .bind_host = "10.0.0.1"});
//   CAIRN_RETURN_IF_ERROR(agent.Start());
//   ...
//   for (const BrickStatus& brick : agent.Bricks()) ...
//   agent.Stop();
//
// What it does, driven by a mirror of everything under /cairn/volumes/ (an initial range, then a
// watch) and a periodic reconcile:
//   - serves this node's bricks of started volumes (BrickStore + its own net::Server on
//     bind_host:0 + BrickServer) and publishes BrickAddressKey on a host lease it keeps alive;
//     stops serving bricks of stopped or deleted volumes;
//   - installs on each of its bricks the ReplicaView derived from the set record;
//   - on the host of a set's primary: keeps the primary lease alive and gives the BrickServer the
//     lease's write deadline (volume::PrimaryLease); drops a backup the BrickServer reports failed
//     (volume::DropBackup);
//   - when a set has no primary key: collects brick.Position from the in-sync replicas and commits
//     volume::TakeOverPrimary (or volume::EnterNoQuorum when none is reachable); agents take turns
//     by the rank of their brick in the in-sync list, so one usually acts alone;
//   - heals its out-of-sync bricks (services/heal) and, for a volume whose rebalance is pending,
//     claims RebalanceOwnerKey on its host lease and, while it holds it, runs a RebalanceMover.
//
// Threading: every store answer, watch event and brick callback is posted to `io` and handled
// under one mutex; nothing blocks there except stopping a brick. Public methods are thread-safe;
// Stop() must not run inside a CoordApi callback. `io` and `store` must outlive the agent.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/coord/api.h"

namespace cairn::volume_service {

struct VolumeAgentOptions {
  std::string node_name;        // node.yaml `name:`; bricks whose host equals it are served here
  std::string bind_host = "127.0.0.1";  // bricks listen on bind_host:0 (the IP of peer_address)
  std::string advertise_host;   // what address keys name; empty: bind_host
  // Where the agent remembers each brick's port (one small file per brick), so a restarted host
  // serves a brick at the address it had: clients reconnect by themselves, and the primary's
  // change journal (kept per replica address) still names it. Empty: a fresh port every start.
  std::string state_dir;
  // The host lease the address keys are attached to (whole seconds; the store may raise it).
  Duration host_lease_ttl = std::chrono::seconds(3);
  // The primary lease (whole seconds): a silent primary is replaced about this long after it
  // went silent.
  Duration primary_lease_ttl = std::chrono::seconds(2);
  // Allowance for the primary's clock running slow against the store leader's.
  Duration drift_margin = std::chrono::milliseconds(200);
  // BrickServer: a backup silent this long is dropped.
  Duration replica_timeout = std::chrono::milliseconds(500);
  // How long a take-over waits for brick.Position answers.
  Duration position_timeout = std::chrono::milliseconds(400);
  // Take-over turns: the agent whose brick has rank r among the live in-sync bricks tries r * this
  // after it saw the primary key gone.
  Duration takeover_stagger = std::chrono::milliseconds(400);
  // Until every in-sync brick has published its address (first start), a take-over waits this long.
  Duration address_grace = std::chrono::seconds(4);
  // After a take-over attempt that committed nothing, the next one waits this long.
  Duration retry_backoff = std::chrono::seconds(1);
  // How often the agent re-checks everything (leases, views, take-overs) without an event.
  Duration tick = std::chrono::milliseconds(100);
  size_t brick_threads = 4;
  const Clock* clock = nullptr;  // null: RealClock::Instance()
};

// One brick served here, for `clusterctl status` and tests.
struct BrickStatus {
  std::string volume;
  uint32_t set_id = 0;
  std::string brick;    // "host:/path"
  std::string address;  // "ip:port" it is served on
  std::string role;     // "primary", "backup" (in sync), "out-of-sync", "no-quorum", "starting"
  uint64_t epoch = 0;   // of the set record the brick's view came from
};

class VolumeAgent {
 public:
  VolumeAgent(boost::asio::io_context& io, coord::CoordApi& store, VolumeAgentOptions options);
  ~VolumeAgent();  // Stop()s
  VolumeAgent(const VolumeAgent&) = delete;
  VolumeAgent& operator=(const VolumeAgent&) = delete;

  // Starts the reconcile loop; the store is read asynchronously (an unreachable store is retried,
  // never an error here). Errors: InvalidArgument for an empty node_name; FailedPrecondition when
  // called twice.
  Status Start();
  // Stops every brick (their clients see the connections drop) and every timer. Idempotent.
  void Stop();

  // Every brick served here, sorted by brick id (for status output and tests).
  std::vector<BrickStatus> Bricks() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace cairn::volume_service
