#include "cairn/coord/node/peer_transport.h"

#include "cairn/common/logging.h"

namespace cairn::coord {

PeerTransport::PeerTransport(boost::asio::io_context& io, uint64_t self, std::string self_url)
    : io_(io), self_(self), self_url_(std::move(self_url)) {}

PeerTransport::~PeerTransport() { CloseAll(); }

void PeerTransport::SetPeer(uint64_t id, const std::string& url) {
  if (id == self_ || url.empty()) return;
  Peer& peer = peers_[id];
  if (peer.client && peer.url == url) return;
  if (peer.client) peer.client->Close();
  peer.url = url;
  // Short backoff cap: a restarted peer should hear from its leader within an election timeout.
  peer.client = std::make_unique<net::Client>(
      io_, net::ClientOptions{.address = url, .initial_backoff = std::chrono::milliseconds(20),
                              .max_backoff = std::chrono::milliseconds(500),
                              .connect_timeout = std::chrono::seconds(1)});
}

void PeerTransport::RemovePeer(uint64_t id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  it->second.client->Close();
  peers_.erase(it);
}

void PeerTransport::Send(std::vector<raftpb::Message>& messages, std::vector<uint64_t>* unreachable,
                         const SnapshotDone& snapshot_done) {
  std::map<uint64_t, proto::RaftBatch> batches;
  for (raftpb::Message& message : messages) {
    uint64_t to = message.to();
    auto peer = peers_.find(to);
    if (message.type() == raftpb::MSG_SNAP) {
      if (peer == peers_.end()) {
        snapshot_done(to, false);
        continue;
      }
      proto::RaftBatch batch;
      batch.set_from(self_);
      batch.set_from_peer_url(self_url_);
      batch.set_cluster_id(cluster_id_);
      *batch.add_messages() = std::move(message);
      log::Info("coord.snapshot_sending", "to", IdToHex(to), "index", batch.messages(0).snapshot().metadata().index());
      peer->second.client->Call(kRaftSnapshotMethod, batch.SerializeAsString(), std::chrono::seconds(30),
                                [to, snapshot_done](Result<std::string> reply) { snapshot_done(to, reply.ok()); });
      continue;
    }
    if (peer == peers_.end()) {
      unreachable->push_back(to);
      continue;
    }
    proto::RaftBatch& batch = batches[to];
    *batch.add_messages() = std::move(message);
  }
  messages.clear();
  for (auto& [to, batch] : batches) {
    batch.set_from(self_);
    batch.set_from_peer_url(self_url_);
    batch.set_cluster_id(cluster_id_);
    Status sent = peers_[to].client->Send(kRaftMessagesMethod, batch.SerializeAsString());
    if (!sent.ok()) unreachable->push_back(to);
  }
}

void PeerTransport::Call(uint64_t id, const std::string& method, std::string payload, Duration timeout,
                         net::CallCallback done) {
  auto peer = peers_.find(id);
  if (peer == peers_.end()) {
    done(UnavailableError("no address known for member " + IdToHex(id)));
    return;
  }
  peer->second.client->Call(method, std::move(payload), timeout, std::move(done));
}

void PeerTransport::CloseAll() {
  for (auto& [id, peer] : peers_) peer.client->Close();
  peers_.clear();
}

}  // namespace cairn::coord
