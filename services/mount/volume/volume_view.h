// VolumeView: the mount's copy of one volume's records in the store (spec, replica-set records,
// brick addresses), kept current by a watch on /cairn/volumes/NAME/, and the routes derived from
// them: where a set's mutations go (its primary, stamped with its epoch) and where reads go.
//
// Lifecycle: Load() reads everything once (before the mount, so a bad volume fails the command);
// StartWatching() starts the watch thread (after fuse_daemonize: a fork keeps no threads);
// Stop() ends it. Refresh() re-reads the records now (the ESTALE path). WaitForChange blocks a
// caller until a set's route differs from the one it used (the transport-error path).
//
// Threading: all methods are thread-safe; one mutex guards the records, a condition variable
// announces every change. Store calls of Refresh run under their own mutex (EtcdClient is not
// thread-safe); the watch thread has its own EtcdClient.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/common/strings.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volumemount {

namespace vpb = ::cairn::proto::volume;

// A store client whose first endpoint moves on after every failed call. EtcdClient starts each
// call at the endpoint that answered last, and a stopped (SIGSTOPped) member accepts connections
// but never answers, so without this every call would spend its whole deadline there.
// Threading: not thread-safe (as EtcdClient).
class StoreConnection {
 public:
  explicit StoreConnection(std::vector<HostPort> endpoints);
  etcdclient::EtcdClient& client() { return *client_; }
  void Failed();  // the next call starts at the next endpoint

 private:
  void Connect();
  std::vector<HostPort> endpoints_;
  size_t first_ = 0;
  std::unique_ptr<etcdclient::EtcdClient> client_;
};

// Where one replica set's calls go right now.
struct SetRoute {
  uint32_t set_id = 0;
  uint64_t epoch = 0;
  vpb::ReplicaSetMode mode = vpb::REPLICA_SET_NORMAL;
  std::string primary;                // the primary's "ip:port"; empty while unknown or none
  std::vector<std::string> readers;   // addresses for reads, best first (local in-sync, others, primary)
  bool operator==(const SetRoute&) const = default;
};

class VolumeView {
 public:
  // local_host: this machine's node name; reads prefer in-sync bricks whose host equals it.
  VolumeView(std::string volume, std::vector<HostPort> endpoints, std::string local_host);
  ~VolumeView();
  VolumeView(const VolumeView&) = delete;
  VolumeView& operator=(const VolumeView&) = delete;

  // Reads every record under the volume's prefix. Errors: Unavailable/DeadlineExceeded (store
  // unreachable), NotFound (no such volume), FailedPrecondition (volume not started), Corruption.
  Status Load();
  void StartWatching();
  void Stop();  // idempotent

  // Re-reads the records from the store (errors as Load, without the state checks).
  Status Refresh();

  vpb::VolumeSpec Spec() const;
  // The route of set_id; an unknown set gives a route with mode NO_QUORUM_EIO.
  SetRoute Route(uint32_t set_id) const;
  // Waits until Route(set_id) differs from `used` or deadline passes; returns whether it did.
  bool WaitForChange(uint32_t set_id, const SetRoute& used, TimePoint deadline);

  // Changes whenever the records change (any set): a cheap "maybe a route changed" test for
  // callers that poll while they wait for something else.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  const std::string& volume() const { return volume_; }

 private:
  // Reads every record; a failed read moves `store` to its next endpoint.
  Status ReadAll(StoreConnection& store, int64_t* revision);
  void Rebuild();  // REQUIRES: mu_ held
  void WatchLoop();
  SetRoute RouteLocked(uint32_t set_id) const;

  const std::string volume_;
  const std::string prefix_;
  const std::vector<HostPort> endpoints_;
  const std::string local_host_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::string> records_;  // key -> value, under prefix_ (GUARDED_BY mu_)
  vpb::VolumeSpec spec_;                         // GUARDED_BY mu_
  std::map<uint32_t, vpb::ReplicaSetState> states_;
  std::map<std::string, std::string> addresses_;  // brick id -> "ip:port"
  int64_t revision_ = 0;                          // store revision the records reflect

  std::mutex refresh_mu_;
  StoreConnection refresh_store_;  // GUARDED_BY refresh_mu_

  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace cairn::volumemount
