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
            config_.peer_address.ToString(), "client_address", config_.client_address.ToString(),
            "advertise_peer_address", config_.AdvertisedPeerAddress().ToString(), "advertise_client_address",
            config_.AdvertisedClientAddress().ToString());
  return Status::Ok();
}

Status Supervisor::StartPeerListener() { return Status::Ok(); }

void Supervisor::Stop() {
  if (!running_) return;
  running_ = false;
  data_dir_lock_.Release();
  log::Info("clusterd.stopped", "name", config_.name);
}

}  // namespace cairn::supervisor
