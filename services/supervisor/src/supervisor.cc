#include "cairn/supervisor/supervisor.h"

#include "cairn/common/logging.h"

namespace cairn::supervisor {

Supervisor::Supervisor(boost::asio::io_context& io, config::NodeConfig config)
    : io_(io), config_(std::move(config)) {}

Supervisor::~Supervisor() { Stop(); }

Status Supervisor::Start() {
  if (started_) return FailedPreconditionError("Supervisor::Start called twice");
  started_ = true;
  CAIRN_ASSIGN_OR_RETURN(data_dir_lock_, PrepareDataDir(config_.data_dir));
  Status listening = StartPeerListener();
  if (!listening.ok()) {
    data_dir_lock_.Release();
    return listening;
  }
  running_ = true;
  log::Info("clusterd.started", "name", config_.name, "role", config::RoleName(config_.role), "bootstrap",
            config::BootstrapModeName(config_.bootstrap_mode()), "data_dir", config_.data_dir, "peer_address",
            peer_listen_address().ToString(), "client_address", config_.client_address.ToString(),
            "advertise_peer_address",
            (config_.advertise_peer_address ? *config_.advertise_peer_address : peer_listen_address()).ToString(), "advertise_client_address",
            config_.AdvertisedClientAddress().ToString());
  return Status::Ok();
}

// Listens on peer_address. Services register their methods on peer_server_ as they land (Raft
// messages, brick replication); until then peers can connect and get "unknown method" answers.
Status Supervisor::StartPeerListener() {
  peer_server_ = std::make_unique<net::Server>(io_, net::ServerOptions{.address = config_.peer_address.ToString()});
  Status started = peer_server_->Start();
  if (!started.ok()) {
    peer_server_.reset();
    return started.WithContext("peer listener on " + config_.peer_address.ToString());
  }
  return Status::Ok();
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
  if (peer_server_) peer_server_->Stop();
  peer_server_.reset();
  data_dir_lock_.Release();
  log::Info("clusterd.stopped", "name", config_.name);
}

}  // namespace cairn::supervisor
