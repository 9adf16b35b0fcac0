// PeerTransport: the node's outgoing peer traffic over libs/net, one net::Client per peer.
// Raft messages of one Ready go to each peer as one ONEWAY "raft.Messages" frame (RaftBatch);
// a MSG_SNAP goes alone as a REQUEST "raft.Snapshot" so its outcome can be reported to the core.
// Sending never blocks: a peer that is down (its client waiting to reconnect) fails at once and is
// reported unreachable.
//
// Threading: every method is called on the node's loop thread. The clients run on `io` (the
// transport thread); callbacks (snapshot results, forwarded calls) run there.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/common/status.h"
#include "cairn/net/client.h"
#include "cairn/proto/coord.pb.h"
#include "cairn/proto/raft.pb.h"

namespace cairn::coord {

inline constexpr char kRaftMessagesMethod[] = "raft.Messages";
inline constexpr char kRaftSnapshotMethod[] = "raft.Snapshot";
inline constexpr char kForwardMethod[] = "coord.Forward";
inline constexpr char kMembersMethod[] = "coord.Members";

class PeerTransport {
 public:
  using SnapshotDone = std::function<void(uint64_t to, bool ok)>;

  PeerTransport(boost::asio::io_context& io, uint64_t self, std::string self_url);
  ~PeerTransport();

  void set_cluster_id(uint64_t cluster_id) { cluster_id_ = cluster_id; }
  // Sets the address of peer `id` (a new client when it changed). Ignores self and empty URLs.
  void SetPeer(uint64_t id, const std::string& url);
  void RemovePeer(uint64_t id);
  bool HasPeer(uint64_t id) const { return peers_.count(id) > 0; }

  // Sends `messages` (consumed), grouped by destination in order. Appends the ids that could not be
  // reached (no address, client down, backlog full) to `unreachable`. MSG_SNAP results are
  // reported through `snapshot_done` (on the transport thread), a failure to start at once.
  void Send(std::vector<raftpb::Message>& messages, std::vector<uint64_t>* unreachable,
            const SnapshotDone& snapshot_done);

  // A REQUEST to peer `id`. Unavailable at once when its address is unknown.
  void Call(uint64_t id, const std::string& method, std::string payload, Duration timeout,
            net::CallCallback done);

  // Closes every client (pending calls fail with Cancelled).
  void CloseAll();

 private:
  struct Peer {
    std::string url;
    std::unique_ptr<net::Client> client;
  };

  boost::asio::io_context& io_;
  uint64_t self_;
  std::string self_url_;
  uint64_t cluster_id_ = 0;
  std::map<uint64_t, Peer> peers_;
};

}  // namespace cairn::coord
