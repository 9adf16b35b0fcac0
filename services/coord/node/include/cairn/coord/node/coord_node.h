// CoordNode: one member of the replicated coordination store. Drives the Raft core (libs/raft)
// with a WAL (libs/wal) and the etcd v3 state machine (libs/kv), talks to its peers over libs/net,
// and implements CoordApi for the front ends. docs/coord.md describes how it works.
//
//   net::Server peers(io, {.address = "127.0.0.1:0"});   // the supervisor's peer listener
//   auto node = CoordNode::Start(options, &peers);        // registers raft.* and coord.* methods
//   node->Put(request, {}, [](Result<etcd::PutResponse> r) { ... });
//   node->Stop();
//
// Threads: a loop thread owns the RawNode, the MemoryStorage, the KvStateMachine and the member
// table, and runs ticks, incoming messages, proposals and the Ready loop; a disk thread owns the
// WAL (writes and fsyncs happen there, never on the tick path); a transport thread runs the peer
// clients. The Ready loop keeps Raft's order: persist (one Save and one fsync per Ready), then send,
// then apply, then Advance; while the disk works the loop keeps stepping messages and queueing
// proposals, which then go out together in the next Ready (group commit).
//
// Consistency: writes are linearizable (acknowledged once applied on the node that proposed them,
// which is the leader: followers forward writes to it). Range with serializable=false and the lease
// reads go through ReadIndex (concurrent reads share one round); serializable reads are local and
// may be stale. CoordApi callbacks run on the loop or the transport thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/coord/api.h"
#include "cairn/coord/node/identity.h"
#include "cairn/coord/node/metrics.h"
#include "cairn/coord/node/snapshot_source.h"
#include "cairn/env/env.h"
#include "cairn/kv/state_machine.h"
#include "cairn/net/server.h"

namespace cairn::coord {

class CoordNodeImpl;  // src/coord_node.cc

struct NodeOptions {
  std::string name;
  // The node keeps DATA_DIR/coord/wal (WAL and snapshots) and DATA_DIR/coord/member (identity).
  std::string data_dir;
  std::string peer_url;                  // advertised "host:port" of this node's peer listener
  std::vector<std::string> client_urls;  // advertised "host:port" of the HTTP API (may be empty)
  // Static bootstrap: every founding member (this one included), the same list on every node.
  // Empty: this node joins a running cluster that added it (MemberAdd) and waits to be contacted.
  std::vector<MemberSeed> initial_cluster;
  // Raft timing: a tick every tick_interval; election after election_ticks silent ticks.
  // 25 ms x 10: a dead leader is noticed after 250-500 ms (failover target: 500 ms).
  Duration tick_interval = std::chrono::milliseconds(25);
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // A snapshot (and log compaction) after this many applied entries; the log keeps
  // snapshot_catchup_entries behind it for slow followers.
  // etcd's default: a snapshot stalls the loop (serialisation) and the disk (its fsync) briefly,
  // which shows in p99 latency when it happens every few seconds under write load.
  uint64_t snapshot_every = 100000;
  uint64_t snapshot_catchup_entries = 5000;
  Duration lease_check_interval = std::chrono::milliseconds(500);
  Duration progress_notify_interval = std::chrono::minutes(10);
  size_t max_pending_requests = 100000;  // beyond: ResourceExhausted
  // With static bootstrap and an empty data dir, ask the peers whether this member already ran
  // (and lost its data): refuse to start if so.
  bool check_rejoin = true;
  // Stop() on the leader first transfers leadership to the most caught-up voter (waits at most two
  // election timeouts), so a planned restart costs no election timeout.
  bool transfer_leadership_on_stop = true;
  kv::KvOptions kv;
  env::Env* env = nullptr;         // default env::DefaultEnv()
  const Clock* clock = nullptr;    // default a RealClock; Now() for deadlines, WallNow() for now_ms
  uint64_t random_seed = 0;        // 0: derived from the member id
};

class CoordNode final : public CoordApi, public SnapshotSource {
 public:
  // Opens (or creates) the data dir, recovers from snapshot + WAL, registers the peer methods on
  // `peer_server` (which must outlive the node's Stop) and starts the threads.
  // Errors: InvalidArgument (options), FailedPrecondition (identity mismatch, or a member that lost
  // its data dir trying to rejoin: use `clusterctl member replace`), Corruption / I/O from the WAL.
  static Result<std::unique_ptr<CoordNode>> Start(NodeOptions options, net::Server* peer_server);
  ~CoordNode() override;
  CoordNode(const CoordNode&) = delete;
  CoordNode& operator=(const CoordNode&) = delete;

  // Hands leadership over (see transfer_leadership_on_stop), stops taking peer traffic, fails
  // pending requests with Unavailable, joins the threads and closes the WAL. Idempotent. Must not
  // be called from a CoordApi callback.
  void Stop();

  // CoordApi.
  void Range(const etcd::RangeRequest& request, const CallOptions& options, Done<etcd::RangeResponse> done) override;
  void Put(const etcd::PutRequest& request, const CallOptions& options, Done<etcd::PutResponse> done) override;
  void DeleteRange(const etcd::DeleteRangeRequest& request, const CallOptions& options,
                   Done<etcd::DeleteRangeResponse> done) override;
  void Txn(const etcd::TxnRequest& request, const CallOptions& options, Done<etcd::TxnResponse> done) override;
  void Compact(const etcd::CompactionRequest& request, const CallOptions& options,
               Done<etcd::CompactionResponse> done) override;
  Result<std::unique_ptr<WatchStream>> OpenWatchStream(WatchSink sink) override;
  void LeaseGrant(const etcd::LeaseGrantRequest& request, const CallOptions& options,
                  Done<etcd::LeaseGrantResponse> done) override;
  void LeaseRevoke(const etcd::LeaseRevokeRequest& request, const CallOptions& options,
                   Done<etcd::LeaseRevokeResponse> done) override;
  void LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request, const CallOptions& options,
                      Done<etcd::LeaseKeepAliveResponse> done) override;
  void LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request, const CallOptions& options,
                       Done<etcd::LeaseTimeToLiveResponse> done) override;
  void LeaseLeases(const etcd::LeaseLeasesRequest& request, const CallOptions& options,
                   Done<etcd::LeaseLeasesResponse> done) override;
  void MemberList(const etcd::MemberListRequest& request, const CallOptions& options,
                  Done<etcd::MemberListResponse> done) override;
  void MemberAdd(const etcd::MemberAddRequest& request, const CallOptions& options,
                 Done<etcd::MemberAddResponse> done) override;
  void MemberRemove(const etcd::MemberRemoveRequest& request, const CallOptions& options,
                    Done<etcd::MemberRemoveResponse> done) override;
  void MemberPromote(const etcd::MemberPromoteRequest& request, const CallOptions& options,
                     Done<etcd::MemberPromoteResponse> done) override;
  void Status(const etcd::StatusRequest& request, const CallOptions& options,
              Done<etcd::StatusResponse> done) override;
  Health GetHealth() override;
  std::string Metrics() override;

  // SnapshotSource: a backup file (backup_file.h) of the applied state, taken on the loop thread
  // at the applied index (serializable: works without a leader). The whole image is serialised in
  // memory and the loop pauses while it is (as for the periodic snapshots).
  void SaveBackup(Done<std::string> done) override;

  uint64_t member_id() const;
  uint64_t cluster_id() const;
  // Snapshots of the loop's state, safe from any thread (may be a moment old).
  uint64_t leader() const { return metrics().leader.load(); }
  bool is_leader() const { return metrics().is_leader.load(); }
  uint64_t applied_index() const { return metrics().applied_index.load(); }
  uint64_t term() const { return metrics().term.load(); }
  const NodeMetrics& metrics() const;

 private:
  explicit CoordNode(std::shared_ptr<CoordNodeImpl> impl);
  std::shared_ptr<CoordNodeImpl> impl_;
};

}  // namespace cairn::coord
