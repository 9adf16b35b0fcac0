// Supervisor: the heart of clusterd. It owns one host's services and starts and stops them in
// order: the data directory lock, the peer listener, the coordination store's node (CoordNode) and
// its etcd-compatible HTTP gateway on client_address, then the volume agent (this host's bricks,
// services/volume). Mounts and containers are added here as they land.
//
// Threading: Start() and Stop() are called from one thread (clusterd's main thread, or an
// io_context handler); the services themselves run on the io_context the caller runs, except the
// peer listener, which has its own io_context and thread so that peer (Raft) traffic is never
// queued behind client requests, nor blocked while Stop() runs on the caller's io thread.
#pragma once

#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include <boost/asio/io_context.hpp>

#include "cairn/common/status.h"
#include "cairn/config/node_config.h"
#include "cairn/coord/http_gateway.h"
#include "cairn/coord/node/coord_node.h"
#include "cairn/net/server.h"
#include "cairn/supervisor/data_dir.h"
#if CAIRN_HAVE_VOLUME_SERVICE
#include "cairn/volume_service/volume_agent.h"
#endif
#if CAIRN_HAVE_CONTAINER_AGENT
#include "cairn/containers/container_agent.h"
#endif
#if CAIRN_HAVE_MOUNT_AGENT
#include "cairn/mounts/mount_agent.h"
#endif

namespace cairn::supervisor {

class Supervisor {
 public:
  // config must come from config::LoadNodeConfig (already validated). io must outlive this object.
  Supervisor(boost::asio::io_context& io, config::NodeConfig config);
  // Stops if still running.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Prepares the data dir (creates, checks writable, locks), starts the listeners and logs
  // event=clusterd.started with the name and the bound addresses. On error nothing is left running.
  // Errors: those of PrepareDataDir and of the listeners (IoError when a port is taken);
  // FailedPrecondition when called twice.
  Status Start();

  // Stops every service in reverse start order and logs event=clusterd.stopped. Idempotent; a
  // no-op when Start() never succeeded.
  void Stop();

  bool running() const { return running_; }
  // The peer listener's bound address (the real port when peer_address has port 0); only while running.
  HostPort peer_listen_address() const;
  // The HTTP API's bound address (the real port when client_address has port 0); only while running.
  HostPort client_listen_address() const;
  const config::NodeConfig& config() const { return config_; }
  // The coordination store of this host; null unless running.
  coord::CoordNode* coord() { return coord_node_.get(); }
#if CAIRN_HAVE_VOLUME_SERVICE
  // The volume agent (bricks served here and their roles); null unless running.
  volume_service::VolumeAgent* volume_agent() { return volume_agent_.get(); }
#endif

 private:
  Status StartPeerListener();
  Status StartCoord();
  Status StartVolumeAgent();
  // The per-mount FUSE processes wanted on this host (services/mounts) and the containers placed
  // on it (services/containers), each when its folder is built.
  Status StartMountAgent();
  Status StartContainerAgent();
  void StopServices();

  boost::asio::io_context& io_;
  config::NodeConfig config_;
  DataDirLock data_dir_lock_;
  boost::asio::io_context peer_io_;  // declared before peer_server_: the server dies first
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> peer_work_{peer_io_.get_executor()};
  std::thread peer_thread_;
  std::unique_ptr<net::Server> peer_server_;  // Raft and replication traffic from other nodes
  // The node outlives the gateway's connections: it is stopped in Stop() (later calls fail fast
  // with Unavailable) and destroyed only with the Supervisor.
  std::unique_ptr<coord::CoordNode> coord_node_;
  std::unique_ptr<coord::HttpGateway> gateway_;
#if CAIRN_HAVE_VOLUME_SERVICE
  std::unique_ptr<volume_service::VolumeAgent> volume_agent_;  // after the store, stopped before it
#endif
#if CAIRN_HAVE_MOUNT_AGENT
  std::unique_ptr<mounts::MountAgent> mount_agent_;  // after the volume agent, stopped before it
#endif
#if CAIRN_HAVE_CONTAINER_AGENT
  std::unique_ptr<containers::ContainerAgent> container_agent_;  // last started, first stopped
#endif
  bool started_ = false;  // Start() was called (success or not)
  bool running_ = false;
};

}  // namespace cairn::supervisor
