// Supervisor: the heart of clusterd. It owns one host's services and starts and stops them in
// order: the data directory lock, credentials (the cluster key: read, created at init, or received
// by joining with a token; the HTTP API token), the peer listener, the coordination store's node (CoordNode) and
// its etcd-compatible HTTP gateway on client_address, then the volume agent (this host's bricks,
// services/volume), the mount and container agents. A witness runs only the store (no bricks, mounts or
// containers). A host that joined is promoted from learner to voter once it has caught up.
//
// Credentials are process-wide: the cluster key is set with net::SetProcessClusterKey (every
// net::Server and Client created afterwards authenticates with it) and exported to child processes
// as $CAIRN_CLUSTER_KEY_FILE; the API token file as $CAIRN_API_TOKEN_FILE. So one process should
// run one Supervisor with credentials (in-process tests that run several use no key).
//
// Threading: Start() and Stop() are called from one thread (clusterd's main thread, or an
// io_context handler); the services themselves run on the io_context the caller runs, except the
// peer listener, which has its own io_context and thread so that peer (Raft) traffic is never
// queued behind client requests, nor blocked while Stop() runs on the caller's io thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>

#include <boost/asio/io_context.hpp>

#include "cairn/auth/join_service.h"
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
  // Credentials before anything listens (docs/operations.md "Security"). Joining a cluster (join
  // mode, empty data dir, a cairn1 token) happens here: it needs the key before the peer listener.
  Status SetUpCredentials();
  Status SetUpPeerAuth();
  Result<std::string> JoinWithToken();
  void UseClusterKey(std::string key, const std::string& path);
  // Join mode: promotes this member from learner to voter once the leader accepts (it refuses
  // until the learner caught up), retrying every second until done or Stop().
  void StartPromoter();
  void RunPromoter();
  void StopPromoter();
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
  std::unique_ptr<auth::JoinService> join_service_;  // join tokens and the join exchange, behind the gateway
  std::string cluster_key_;  // empty: peer authentication off
  std::string api_token_;    // empty: the HTTP API needs no bearer token
  std::thread promoter_;
  std::mutex promoter_mu_;
  std::condition_variable promoter_wake_;
  bool promoter_stop_ = false;  // GUARDED_BY(promoter_mu_)
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
