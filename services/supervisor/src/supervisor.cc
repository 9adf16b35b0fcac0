#include "cairn/supervisor/supervisor.h"

#include "cairn/common/logging.h"
#include "cairn/coord/http_gateway.h"

namespace cairn::supervisor {

Supervisor::Supervisor(boost::asio::io_context& io, config::NodeConfig config)
    : io_(io), config_(std::move(config)) {}

Supervisor::~Supervisor() { Stop(); }

Status Supervisor::Start() {
  if (started_) return FailedPreconditionError("Supervisor::Start called twice");
  started_ = true;
  CAIRN_ASSIGN_OR_RETURN(data_dir_lock_, PrepareDataDir(config_.data_dir));
  Status listening = StartPeerListener();
  if (listening.ok()) listening = StartCoord();
  if (listening.ok()) listening = StartVolumeAgent();
  if (listening.ok()) listening = StartMountAgent();
  if (listening.ok()) listening = StartContainerAgent();
  if (!listening.ok()) {
    StopServices();
    data_dir_lock_.Release();
    return listening;
  }
  running_ = true;
  log::Info("clusterd.started", "name", config_.name, "role", config::RoleName(config_.role), "bootstrap",
            config::BootstrapModeName(config_.bootstrap_mode()), "data_dir", config_.data_dir, "peer_address",
            peer_listen_address().ToString(), "client_address", config_.client_address.ToString(),
            "advertise_peer_address",
            (config_.advertise_peer_address ? *config_.advertise_peer_address : peer_listen_address()).ToString(), "advertise_client_address",
            (config_.advertise_client_address ? *config_.advertise_client_address : client_listen_address()).ToString());
  return Status::Ok();
}

// Listens on peer_address. Services register their methods on peer_server_ as they land (Raft
// messages, brick replication); until then peers can connect and get "unknown method" answers.
Status Supervisor::StartPeerListener() {
  peer_server_ = std::make_unique<net::Server>(peer_io_, net::ServerOptions{.address = config_.peer_address.ToString()});
  Status started = peer_server_->Start();
  if (!started.ok()) {
    peer_server_.reset();
    return started.WithContext("peer listener on " + config_.peer_address.ToString());
  }
  peer_thread_ = std::thread([this] { peer_io_.run(); });
  return Status::Ok();
}

// The coordination store: a CoordNode on the peer listener, then the HTTP gateway in front of it.
// Static bootstrap uses initial_cluster; a single-node config bootstraps a one-member cluster; a
// join config starts empty and waits until a member adds it (clusterctl member add).
Status Supervisor::StartCoord() {
  coord::NodeOptions options;
  options.name = config_.name;
  options.data_dir = config_.data_dir;
  HostPort peer = config_.advertise_peer_address ? *config_.advertise_peer_address : peer_listen_address();
  options.peer_url = peer.ToString();
  // Primary leases of replica sets are revoked when they run out; a dead primary's set waits for
  // that, so check often (the default 500 ms would add up to half a second to every failover).
  options.lease_check_interval = std::chrono::milliseconds(100);
  switch (config_.bootstrap_mode()) {
    case config::BootstrapMode::kStatic:
      for (const config::InitialMember& member : config_.initial_cluster) {
        // This node's own entry may name port 0 (tests): it is the listener's real port then.
        bool self = member.name == config_.name;
        options.initial_cluster.push_back({member.name, self ? options.peer_url : member.peer_address.ToString()});
      }
      break;
    case config::BootstrapMode::kSingleNode:
      options.initial_cluster.push_back({config_.name, options.peer_url});
      break;
    case config::BootstrapMode::kJoin:
      log::Info("coord.waiting_to_be_added", "name", config_.name, "peer_url", options.peer_url, "hint",
                "run `clusterctl member add` for this peer URL on a running member");
      break;
  }
  // With client_address port 0 (tests) no client URL is published: the real port is known only
  // once the gateway, which needs the node, has bound.
  HostPort client = config_.AdvertisedClientAddress();
  if (client.port != 0) options.client_urls.push_back(client.ToString());
  auto node = coord::CoordNode::Start(std::move(options), peer_server_.get());
  if (!node.ok()) return node.status().WithContext("coordination store");
  coord_node_ = std::move(*node);
  gateway_ = std::make_unique<coord::HttpGateway>(io_, *coord_node_, config_.client_address);
  Status listening = gateway_->Start();
  if (!listening.ok()) return listening.WithContext("client (HTTP API) listener on " + config_.client_address.ToString());
  return Status::Ok();
}

// The volume agent runs on the store it was given (the in-process node, no HTTP hop) and on the
// caller's io_context; its bricks listen on the IP of peer_address.
Status Supervisor::StartVolumeAgent() {
#if CAIRN_HAVE_VOLUME_SERVICE
  volume_service::VolumeAgentOptions options;
  options.node_name = config_.name;
  options.bind_host = config_.peer_address.host;
  options.advertise_host = config_.AdvertisedPeerAddress().host;
  options.state_dir = config_.data_dir + "/volume";
  volume_agent_ = std::make_unique<volume_service::VolumeAgent>(io_, *coord_node_, std::move(options));
  return volume_agent_->Start().WithContext("volume agent");
#else
  return Status::Ok();
#endif
}

// Mount processes (cairn-mount) are children of this host's clusterd in the sense of being
// started and restarted by it, but they outlive it: a restarted clusterd adopts the live ones.
Status Supervisor::StartMountAgent() {
#if CAIRN_HAVE_MOUNT_AGENT
  mounts::MountAgentOptions options;
  options.node_name = config_.name;
  options.state_dir = config_.data_dir + "/mounts";
  mount_agent_ = std::make_unique<mounts::MountAgent>(io_, *coord_node_, std::move(options));
  return mount_agent_->Start().WithContext("mount agent");
#else
  return Status::Ok();
#endif
}

// Containers placed on this host by the store's records; their unionmount roots and LXC
// monitors are separate processes, so stopping clusterd leaves them running.
Status Supervisor::StartContainerAgent() {
#if CAIRN_HAVE_CONTAINER_AGENT
  containers::ContainerAgentOptions options;
  options.node_name = config_.name;
  options.state_dir = config_.data_dir + "/containers";
  container_agent_ = std::make_unique<containers::ContainerAgent>(io_, *coord_node_, std::move(options));
  return container_agent_->Start().WithContext("container agent");
#else
  return Status::Ok();
#endif
}

HostPort Supervisor::client_listen_address() const {
  HostPort address = config_.client_address;
  if (gateway_) address.port = gateway_->port();
  return address;
}

void Supervisor::StopServices() {
  // Reverse start order: the agents, the bricks, no new HTTP requests, then the node (pending requests fail
  // with Unavailable), then the peer listener.
#if CAIRN_HAVE_CONTAINER_AGENT
  if (container_agent_) container_agent_->Stop();
#endif
#if CAIRN_HAVE_MOUNT_AGENT
  if (mount_agent_) mount_agent_->Stop();
#endif
#if CAIRN_HAVE_VOLUME_SERVICE
  if (volume_agent_) volume_agent_->Stop();
#endif
  if (gateway_) gateway_->Stop();
  if (coord_node_) coord_node_->Stop();
  if (peer_server_) peer_server_->Stop();
  peer_work_.reset();
  peer_io_.stop();  // the server is stopped; nothing queued there matters any more
  if (peer_thread_.joinable()) peer_thread_.join();
}

HostPort Supervisor::peer_listen_address() const {
  HostPort address = config_.peer_address;
  if (peer_server_) address.port = peer_server_->port();
  return address;
}

void Supervisor::Stop() {
  if (!running_) return;
  running_ = false;
  // Reverse start order: stop taking traffic first, release the data dir last.
  StopServices();
  data_dir_lock_.Release();
  log::Info("clusterd.stopped", "name", config_.name);
}

}  // namespace cairn::supervisor
