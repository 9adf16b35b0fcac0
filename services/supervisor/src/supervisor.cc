#include "cairn/supervisor/supervisor.h"

#include <cstdlib>
#include <filesystem>
#include <future>

#include "cairn/auth/cluster_key.h"
#include "cairn/auth/join_client.h"
#include "cairn/auth/join_token.h"
#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/coord/http_gateway.h"
#include "cairn/net/peer_auth.h"

namespace cairn::supervisor {

Supervisor::Supervisor(boost::asio::io_context& io, config::NodeConfig config)
    : io_(io), config_(std::move(config)) {}

Supervisor::~Supervisor() { Stop(); }

Status Supervisor::Start() {
  if (started_) return FailedPreconditionError("Supervisor::Start called twice");
  started_ = true;
  CAIRN_ASSIGN_OR_RETURN(data_dir_lock_, PrepareDataDir(config_.data_dir));
  Status listening = SetUpCredentials();
  if (listening.ok()) listening = StartPeerListener();
  if (listening.ok()) listening = StartCoord();
  if (listening.ok()) listening = StartVolumeAgent();
  if (listening.ok()) listening = StartMountAgent();
  if (listening.ok()) listening = StartContainerAgent();
  if (listening.ok()) StartPromoter();
  if (!listening.ok()) {
    StopServices();
    data_dir_lock_.Release();
    return listening;
  }
  running_ = true;
  log::Info("clusterd.started", "name", config_.name, "role", config::RoleName(config_.role), "peer_auth",
            cluster_key_.empty() ? "off" : "cluster-key", "api_auth", api_token_.empty() ? "off" : "bearer-token",
            "bootstrap",
            config::BootstrapModeName(config_.bootstrap_mode()), "data_dir", config_.data_dir, "peer_address",
            peer_listen_address().ToString(), "client_address", config_.client_address.ToString(),
            "advertise_peer_address",
            (config_.advertise_peer_address ? *config_.advertise_peer_address : peer_listen_address()).ToString(), "advertise_client_address",
            (config_.advertise_client_address ? *config_.advertise_client_address : client_listen_address()).ToString());
  return Status::Ok();
}

// ---- credentials ----

Status Supervisor::SetUpCredentials() {
  if (!config_.auth.api_token_file.empty()) {
    CAIRN_ASSIGN_OR_RETURN(api_token_, auth::ReadApiTokenFile(config_.auth.api_token_file));
    ::setenv("CAIRN_API_TOKEN_FILE", config_.auth.api_token_file.c_str(), 1);  // for cairn-mount and other children
    log::Info("clusterd.api_auth_on", "token_file", config_.auth.api_token_file);
  }
  return SetUpPeerAuth();
}

void Supervisor::UseClusterKey(std::string key, const std::string& path) {
  cluster_key_ = std::move(key);
  net::SetProcessClusterKey(cluster_key_);
  ::setenv(net::kClusterKeyFileEnv, path.c_str(), 1);
  log::Info("clusterd.peer_auth_on", "key_file", path);
}

// The key: received by joining (join mode, empty data dir, a cairn1 token), else read from the
// key file, else created (auth.peer: required on the cluster's first host), else none.
Status Supervisor::SetUpPeerAuth() {
  const std::string path = config_.ClusterKeyPath();
  if (config_.auth.peer == config::PeerAuth::kOff) {
    net::SetProcessClusterKey(std::string());
    log::Warn("clusterd.peer_auth_off", "reason", "auth.peer: off", "hint",
              "any process that reaches the peer port can send Raft messages and call bricks");
    return Status::Ok();
  }
  bool fresh = !std::filesystem::exists(config_.data_dir + "/coord");
  config::BootstrapMode mode = config_.bootstrap_mode();
  if (mode == config::BootstrapMode::kJoin && fresh && auth::LooksLikeJoinToken(config_.join->token)) {
    CAIRN_ASSIGN_OR_RETURN(std::string key, JoinWithToken());
    CAIRN_RETURN_IF_ERROR(auth::WriteClusterKeyFile(path, key));
    UseClusterKey(std::move(key), path);
    return Status::Ok();
  }
  auto key = net::ReadClusterKeyFile(path);
  if (key.ok()) {
    UseClusterKey(std::move(*key), path);
    return Status::Ok();
  }
  if (key.status().code() != StatusCode::kNotFound) return key.status();
  bool first_founder = mode == config::BootstrapMode::kStatic && fresh && config_.initial_cluster[0].name == config_.name;
  if (config_.auth.peer == config::PeerAuth::kRequired) {
    if (mode == config::BootstrapMode::kSingleNode || first_founder) {
      CAIRN_ASSIGN_OR_RETURN(std::string created, auth::CreateClusterKeyFile(path));
      log::Info("clusterd.cluster_key_created", "path", path, "next",
                mode == config::BootstrapMode::kSingleNode
                    ? "add hosts with: clusterctl token create, then join.token in their node.yaml"
                    : "copy this file to every other founding member (same path) before starting them");
      UseClusterKey(std::move(created), path);
      return Status::Ok();
    }
    return FailedPreconditionError(
        "auth.peer is required but the cluster key file " + path + " does not exist: " +
        (mode == config::BootstrapMode::kStatic
             ? "copy it from the founding member " + config_.initial_cluster[0].name + ", which creates it"
             : "this host already has store data, so it cannot join again; copy the key file from a member"));
  }
  net::SetProcessClusterKey(std::string());
  log::Warn("clusterd.peer_auth_off", "reason", "no cluster key file at " + path, "hint",
            "set auth.peer: required on the cluster's first host (docs/operations.md \"Security\")");
  return Status::Ok();
}

// Asks a member to admit this host (auth::JoinCluster); retries while the member cannot be reached
// (it may be starting too), gives up at once when it refuses the token.
Result<std::string> Supervisor::JoinWithToken() {
  auth::JoinParams params{.address = config_.join->address,
                          .token = config_.join->token,
                          .name = config_.name,
                          .peer_url = config_.AdvertisedPeerAddress().ToString(),
                          .role = std::string(config::RoleName(config_.role))};
  auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (true) {
    auto joined = auth::JoinCluster(params);
    if (joined.ok()) {
      log::Info("clusterd.joined", "name", config_.name, "via", params.address.ToString(), "member_id",
                IdToHex(joined->member_id), "role", joined->role, "members", joined->member_peer_urls.size());
      return std::move(joined->cluster_key);
    }
    StatusCode code = joined.status().code();
    bool transient = code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded;
    if (!transient || std::chrono::steady_clock::now() > give_up) {
      log::Error("clusterd.join_refused", "name", config_.name, "via", params.address.ToString(), "error",
                 joined.status());
      return joined.status().WithContext("joining the cluster via " + params.address.ToString());
    }
    log::Info("clusterd.join_retry", "via", params.address.ToString(), "error", joined.status());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the member may still be starting
  }
}

// ---- promotion of a joined learner ----

void Supervisor::StartPromoter() {
  if (config_.bootstrap_mode() != config::BootstrapMode::kJoin || !coord_node_) return;
  promoter_ = std::thread([this] { RunPromoter(); });
}

namespace {

template <typename Request, typename Response>
Result<Response> CallNode(coord::CoordNode& node,
                          void (coord::CoordNode::*method)(const Request&, const coord::CallOptions&,
                                                           coord::Done<Response>),
                          const Request& request) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  auto future = promise->get_future();
  (node.*method)(request, coord::CallOptions{std::chrono::seconds(5)},
                 [promise](Result<Response> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return DeadlineExceededError("the store did not answer");
  }
  return future.get();
}

}  // namespace

void Supervisor::RunPromoter() {
  uint64_t self = coord_node_->member_id();
  Status last;
  while (true) {
    {
      std::unique_lock lock(promoter_mu_);
      if (promoter_wake_.wait_for(lock, std::chrono::seconds(1), [&] { return promoter_stop_; })) return;
    }
    auto list = CallNode(*coord_node_, &coord::CoordNode::MemberList, etcd::MemberListRequest());
    bool learner = false, listed = false;
    if (list.ok()) {
      for (const etcd::Member& member : list->members()) {
        if (member.id() != self) continue;
        listed = true;
        learner = member.islearner();
      }
    }
    if (listed && !learner) {
      log::Info("clusterd.voter", "name", config_.name, "member_id", IdToHex(self), "role",
                config::RoleName(config_.role));
      return;
    }
    if (!listed) continue;  // not caught up with the member list yet
    etcd::MemberPromoteRequest promote;
    promote.set_id(self);
    auto promoted = CallNode(*coord_node_, &coord::CoordNode::MemberPromote, promote);
    if (promoted.ok()) {
      log::Info("clusterd.promoted", "name", config_.name, "member_id", IdToHex(self));
      return;
    }
    if (promoted.status().ToString() != last.ToString()) {
      log::Info("clusterd.promotion_waiting", "name", config_.name, "reason", promoted.status());
      last = promoted.status();
    }
  }
}

void Supervisor::StopPromoter() {
  {
    std::lock_guard lock(promoter_mu_);
    promoter_stop_ = true;
  }
  promoter_wake_.notify_all();
  if (promoter_.joinable()) promoter_.join();
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
  join_service_ = std::make_unique<auth::JoinService>(*coord_node_, auth::JoinServiceOptions{.cluster_key = cluster_key_});
  coord::GatewayOptions gateway_options;
  gateway_options.api_token = api_token_;
  gateway_options.extension = [service = join_service_.get()](coord::ExtensionRequest request,
                                                             std::function<void(coord::ExtensionReply)> reply) {
    service->HandleHttp(std::move(request.path), std::move(request.body), std::move(request.peer),
                        [reply](int status, std::string body) { reply({status, std::move(body)}); });
  };
  gateway_ = std::make_unique<coord::HttpGateway>(io_, *coord_node_, config_.client_address, std::move(gateway_options));
  Status listening = gateway_->Start();
  if (!listening.ok()) return listening.WithContext("client (HTTP API) listener on " + config_.client_address.ToString());
  return Status::Ok();
}

// The volume agent runs on the store it was given (the in-process node, no HTTP hop) and on the
// caller's io_context; its bricks listen on the IP of peer_address.
Status Supervisor::StartVolumeAgent() {
  if (config_.role == config::Role::kWitness) {
    log::Info("clusterd.witness", "name", config_.name, "runs", "the coordination store only (no bricks, mounts or containers)");
    return Status::Ok();
  }
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
  if (config_.role == config::Role::kWitness) return Status::Ok();
#if CAIRN_HAVE_MOUNT_AGENT
  mounts::MountAgentOptions options;
  options.node_name = config_.name;
  options.state_dir = config_.data_dir + "/mounts";
  // Its own gateway's bound address: with client_address port 0 (tests) no client URL is
  // published in the member list, and this host's store is the one surely reachable from here.
  options.endpoints = {client_listen_address().ToString()};
  mount_agent_ = std::make_unique<mounts::MountAgent>(io_, *coord_node_, std::move(options));
  return mount_agent_->Start().WithContext("mount agent");
#else
  return Status::Ok();
#endif
}

// Containers placed on this host by the store's records; their unionmount roots and LXC
// monitors are separate processes, so stopping clusterd leaves them running.
Status Supervisor::StartContainerAgent() {
  if (config_.role == config::Role::kWitness) return Status::Ok();
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
  StopPromoter();
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
  if (join_service_) join_service_->Stop();
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
