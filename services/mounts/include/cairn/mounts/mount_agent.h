// MountAgent: clusterd's supervisor of this host's volume mounts (docs/config.md, "cluster.yaml";
// DESIGN.md "Control plane"). Every mount runs in its own cairn-mount process (never inside
// clusterd), so mounts and the containers using them survive a clusterd restart.
//
//   MountAgent agent(io, *coord_node, {.node_name = "host1", .state_dir = data_dir + "/mounts"});
//   CAIRN_RETURN_IF_ERROR(agent.Start());
//   ...
//   agent.Stop();   // leaves every mount running
//
// Every `tick` it reads the mounts wanted on this host (/cairn/mounts/NODE/PATH, MountRecord) and:
//   - starts `cairn-mount VOLUME PATH --endpoints E -f -o host=NODE[,OPTIONS]` for a missing one
//     (creating PATH; a dead FUSE mount left at PATH, ENOTCONN, is detached first);
//   - checks the running ones: the process is alive and the mount answers statfs; a dead one is
//     restarted after a backoff (backoff_initial, doubling up to backoff_max, reset once mounted);
//   - restarts a mount whose record changed (volume or options);
//   - unmounts and stops the ones whose record was deleted;
//   - writes what it sees to /cairn/mounts-status/NODE/PATH (MountStatus: state, pid, restarts,
//     last_error) when it changes, and deletes the status of removed mounts.
// A restarted agent adopts live processes from the state files in state_dir (same pid, no
// remount). A store that cannot be read changes nothing (running mounts are left alone).
//
// Threading: the agent runs on its own thread (blocking process and mount calls stay off the
// io_context); `io` is not used. Public methods are thread-safe; Stop() must not be called from a
// CoordApi callback. `store` must outlive the agent.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/coord/api.h"

namespace cairn::mounts {

struct MountAgentOptions {
  std::string node_name;  // node.yaml `name:`; the agent serves /cairn/mounts/NODE_NAME/...
  std::string state_dir;  // pid/state files and cairn-mount logs; empty: no adoption after restart
  // The store's client addresses given to cairn-mount. Empty: this node's client URLs from the
  // member list, then the other members'; then $CAIRN_ENDPOINTS.
  std::vector<std::string> endpoints;
  // The mount program. Empty: $CAIRN_MOUNT, else cairn-mount next to this executable.
  std::string mount_program;
  std::chrono::milliseconds tick{1000};
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds start_timeout{30000};  // a cairn-mount not mounted by then is killed
  std::chrono::milliseconds probe_timeout{5000};   // statfs slower than this: "unresponsive"
  std::chrono::milliseconds store_deadline{3000};
};

// What the agent knows about one mount, for tests and status.
struct MountReport {
  std::string path;
  std::string volume;
  std::string state;  // starting | mounted | backoff | failed | unresponsive
  int pid = 0;
  uint32_t restarts = 0;
  std::string last_error;
};

class MountAgent {
 public:
  MountAgent(boost::asio::io_context& io, coord::CoordApi& store, MountAgentOptions options);
  ~MountAgent();  // Stop()s
  MountAgent(const MountAgent&) = delete;
  MountAgent& operator=(const MountAgent&) = delete;

  // Starts the agent thread. Errors: InvalidArgument for an empty node_name; FailedPrecondition
  // when started twice. A missing mount program is reported per mount (state failed), not here.
  Status Start();
  // Stops the thread; every mount and cairn-mount process stays. Idempotent.
  void Stop();

  std::vector<MountReport> Mounts() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::mounts
