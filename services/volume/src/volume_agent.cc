#include "cairn/volume_service/volume_agent.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cairn/brick/brick_server.h"
#include "cairn/brick/brick_store.h"
#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/net/client.h"
#include "cairn/net/server.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/primary_lease.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"
#include "cairn/volume_service/views.h"
#if CAIRN_HAVE_HEAL
#include "cairn/heal/heal_runner.h"
#include "cairn/volume/rebalance.h"
#include "cairn/volume_service/rebalance_mover.h"
#endif

namespace cairn::volume_service {

namespace pb = ::cairn::proto::volume;
namespace bpb = ::cairn::proto::brick;

namespace {

constexpr std::chrono::milliseconds kStoreDeadline{3000};

// Store leases are granted in whole seconds.
int64_t WholeSeconds(Duration duration) {
  auto seconds = std::chrono::ceil<std::chrono::seconds>(duration).count();
  return std::max<int64_t>(seconds, 1);
}

// The volume name of a spec key "/cairn/volumes/NAME/spec", or "" for any other key.
std::string VolumeOfSpecKey(const std::string& key) {
  std::string_view rest(key);
  if (rest.substr(0, volume::kVolumesPrefix.size()) != volume::kVolumesPrefix) return "";
  rest.remove_prefix(volume::kVolumesPrefix.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash) != "/spec") return "";
  return std::string(rest.substr(0, slash));
}

using SetName = std::pair<std::string, uint32_t>;  // volume, set id

std::string Hex(std::string_view text) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// The port a brick had last time (0: none remembered).
uint16_t RememberedPort(const std::string& state_dir, const std::string& brick) {
  if (state_dir.empty()) return 0;
  std::ifstream file(state_dir + "/ports/" + Hex(brick));
  unsigned port = 0;
  if (!(file >> port) || port > 65535) return 0;
  return static_cast<uint16_t>(port);
}

void RememberPort(const std::string& state_dir, const std::string& brick, uint16_t port) {
  if (state_dir.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(state_dir + "/ports", error);
  std::string path = state_dir + "/ports/" + Hex(brick);
  std::ofstream(path + ".new") << port << "\n";
  std::filesystem::rename(path + ".new", path, error);
}

// One brick this host serves: its files, its listener and its replication engine.
struct ServedBrick {
  std::string volume;
  uint32_t set_id = 0;
  std::string brick;  // "host:/path"
  std::string address;
  std::unique_ptr<brick::BrickStore> store;
  std::unique_ptr<net::Server> server;
  std::unique_ptr<brick::BrickServer> engine;
  std::optional<bpb::ReplicaView> installed;
  std::map<std::string, std::string> brick_of_address;  // from the installed view

  void Shutdown() {
    if (server) server->Stop();
    if (engine) engine->Stop();
  }
};

// The primary lease of a set whose primary brick is served here.
struct PrimaryDuty {
  int64_t lease_id = 0;
  volume::PrimaryLease lease;
  bool keepalive_in_flight = false;
  bool lost = false;
  PrimaryDuty(int64_t id, Duration ttl, Duration drift) : lease_id(id), lease(ttl, drift) {}
};

// What the agent tracks per replica set that has a brick here.
struct SetWork {
  std::optional<PrimaryDuty> duty;
  std::optional<TimePoint> no_primary_since;  // when the primary key was first seen missing
  bool txn_in_flight = false;                  // a take-over, no-quorum or drop in progress
  TimePoint next_attempt{};                    // take-over backoff
  std::set<std::string> suspects;              // backups our primary brick reported failed
  // Readmission of a healed replica: mutations are held on our primary brick meanwhile.
  struct Readmission {
    std::string brick;
    TimePoint held_at;
    bool committing = false;
    std::string primary;  // our brick whose mutations are held
  };
  std::optional<Readmission> readmitting;
  std::map<std::string, int64_t> readmit_tried;  // brick -> heal checkpoint revision already tried
  int64_t refused_lease = 0;                   // a lease from before our start we will not adopt (logged)
};

// Positions gathered for one take-over.
struct PositionCollector {
  std::mutex mu;
  size_t remaining = 0;
  std::vector<volume::ReplicaReport> reports;  // GUARDED_BY(mu)
};

}  // namespace

class VolumeAgent::Impl : public std::enable_shared_from_this<VolumeAgent::Impl> {
 public:
  Impl(boost::asio::io_context& io, coord::CoordApi& store, VolumeAgentOptions options)
      : io_(io), store_(store), options_(std::move(options)),
        clock_(options_.clock != nullptr ? *options_.clock : RealClock::Instance()), timer_(io) {
    if (options_.advertise_host.empty()) options_.advertise_host = options_.bind_host;
  }

  Status Start();
  void Stop();
  std::vector<BrickStatus> Bricks() const;

 private:
  // Runs fn(*this) on the io_context under mu_, unless the agent stopped or is gone. Every
  // asynchronous answer comes back through here, so no callback ever runs under mu_ of its own.
  template <class Fn>
  static void PostTo(const std::weak_ptr<Impl>& weak, Fn fn) {
    auto self = weak.lock();
    if (!self) return;
    boost::asio::post(self->io_, [weak, fn = std::move(fn)]() mutable {
      auto self = weak.lock();
      if (!self) return;
      std::lock_guard lock(self->mu_);
      if (self->stopped_) return;
      fn(*self);
    });
  }
  std::weak_ptr<Impl> weak() { return weak_from_this(); }

  // ---- the store mirror (REQUIRES: mu_) ----
  void Resync();
  void OpenWatch(int64_t from_revision);
  void OnWatch(const etcd::WatchResponse& response, uint64_t generation);
  void MirrorPut(const etcd::KeyValue& kv);
  void MirrorDelete(const std::string& key, int64_t revision);
  void MirrorApplyTxn(const etcd::TxnRequest& txn, int64_t revision);
  const etcd::KeyValue* Find(const std::string& key) const;
  std::string LiveAddress(const std::string& volume, const std::string& brick) const;
  std::string KnownAddress(const std::string& volume, const std::string& brick);

  // ---- reconcile (REQUIRES: mu_) ----
  void Tick();
  void Reconcile();
  void ServeBricks(const std::vector<volume::VolumeRecord>& volumes);
  void OpenBrick(const std::string& volume, uint32_t set_id, const pb::Brick& brick);
  void StopBrick(const std::string& brick);
  void KeepHostLease();
  void PublishAddresses();
  void ReconcileSet(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set);
  void InstallView(ServedBrick& served, const pb::ReplicaSetState& state, const pb::ReplicaSetSpec& set);
  void PrimaryDuties(const std::string& volume, const volume::ReplicaSetRecord& record, SetWork& work);
  void KeepPrimaryLease(const SetName& name, SetWork& work);
  void DropSuspects(const std::string& volume, const volume::ReplicaSetRecord& record, SetWork& work);
  void MaybeTakeOver(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set,
                     const volume::ReplicaSetRecord& record, SetWork& work);
  void StartTakeOver(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set);
  void CollectPositions(const SetName& name, const pb::ReplicaSetSpec& set, int64_t lease, int64_t ttl_seconds,
                        TimePoint sent_at);
  void FinishTakeOver(const SetName& name, int64_t lease, int64_t ttl_seconds, TimePoint sent_at,
                      std::vector<volume::ReplicaReport> reports);
  void Commit(const SetName& name, etcd::TxnRequest txn, std::string what);
  void Revoke(int64_t lease);
  void OnReplicaFailed(const SetName& name, const std::string& reporter, const std::string& address,
                       const Status& why);
  net::Client& ClientFor(const std::string& address);
  std::vector<std::string> MyBricksOf(const std::string& volume, const pb::ReplicaSetSpec& set) const;
  std::optional<volume::VolumeRecord> VolumeNamed(const std::string& volume) const;

  boost::asio::io_context& io_;
  coord::CoordApi& store_;
  VolumeAgentOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  bool started_ = false;                                  // GUARDED_BY(mu_)
  bool stopped_ = false;                                  // GUARDED_BY(mu_)
  boost::asio::steady_timer timer_;                       // GUARDED_BY(mu_)
  // Everything under /cairn/volumes/, as of the watch.
  std::map<std::string, etcd::KeyValue> mirror_;          // GUARDED_BY(mu_)
  bool synced_ = false;                                   // GUARDED_BY(mu_): the first range arrived
  bool syncing_ = false;                                  // GUARDED_BY(mu_)
  int64_t start_revision_ = 0;                            // GUARDED_BY(mu_): store revision at our first read
  std::unique_ptr<coord::WatchStream> watch_;             // GUARDED_BY(mu_)
  uint64_t watch_generation_ = 0;                         // GUARDED_BY(mu_)
  int64_t host_lease_ = 0;                                // GUARDED_BY(mu_)
  bool host_lease_in_flight_ = false;                     // GUARDED_BY(mu_)
  TimePoint host_lease_next_keepalive_{};                 // GUARDED_BY(mu_)
  std::map<int64_t, TimePoint> granted_primary_leases_;   // GUARDED_BY(mu_): lease -> grant send time
  std::map<std::string, std::unique_ptr<ServedBrick>> bricks_;  // GUARDED_BY(mu_): by brick id
  std::map<std::string, std::string> open_errors_;        // GUARDED_BY(mu_): last logged, per brick
  std::map<std::string, std::string> known_addresses_;    // GUARDED_BY(mu_): brick key -> last address
  std::map<SetName, SetWork> sets_;                       // GUARDED_BY(mu_)
  std::set<std::string> publishing_;                      // GUARDED_BY(mu_): address puts in flight
  std::map<std::string, std::unique_ptr<net::Client>> clients_;  // GUARDED_BY(mu_): for brick.Position

  // Heal and readmission (docs/volumes.md "Heal").
  void MaybeReadmit(const std::string& volume, const pb::ReplicaSetSpec& set, const volume::ReplicaSetRecord& record,
                    SetWork& work);
  void EndReadmission(SetWork& work, const std::string& why);
#if CAIRN_HAVE_HEAL
  struct HealTask {
    std::shared_ptr<heal::HealRunner> runner;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void MaybeHeal(const std::string& volume, const pb::ReplicaSetSpec& set, const volume::ReplicaSetRecord& record);
  void StopHeal(const std::string& brick);  // REQUIRES: mu_; joins
  // Heal runners make synchronous calls through an io_context; never the agent's own (whose
  // thread may be the one stopping them).
  boost::asio::io_context heal_io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> heal_work_{heal_io_.get_executor()};
  std::thread heal_io_thread_;
  std::map<std::string, HealTask> heals_;        // GUARDED_BY(mu_): by brick
  std::map<std::string, TimePoint> next_heal_;   // GUARDED_BY(mu_)

  // Rebalance (docs/volumes.md "Rebalance"): the agent holding RebalanceOwnerKey runs the mover.
  struct RouteTable {
    std::mutex mu;
    std::map<uint32_t, SetRoute> routes;  // GUARDED_BY(mu)
  };
  struct RebalanceTask {
    std::shared_ptr<RebalanceMover> mover;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
    std::shared_ptr<RouteTable> routes;
  };
  void MaybeRebalance(const volume::VolumeRecord& volume);
  void ClaimRebalance(const std::string& volume);
  void StartRebalance(const volume::VolumeRecord& volume, std::shared_ptr<RouteTable> routes);
  void UpdateRoutes(const volume::VolumeRecord& volume, RouteTable& table);
  void StopRebalance(const std::string& volume);  // REQUIRES: mu_; joins
  std::map<std::string, RebalanceTask> rebalances_;  // GUARDED_BY(mu_): by volume
  std::map<std::string, TimePoint> next_rebalance_;   // GUARDED_BY(mu_)
  std::set<std::string> claiming_;                    // GUARDED_BY(mu_): owner txns in flight
#endif
};

// ---- lifecycle ----

Status VolumeAgent::Impl::Start() {
  if (options_.node_name.empty()) return InvalidArgumentError("volume agent: node_name is empty");
  std::lock_guard lock(mu_);
  if (started_) return FailedPreconditionError("volume agent started twice");
  started_ = true;
#if CAIRN_HAVE_HEAL
  heal_io_thread_ = std::thread([this] { heal_io_.run(); });
#endif
  log::Info("volume.agent_started", "node", options_.node_name, "bind_host", options_.bind_host,
            "primary_lease_ttl_ms", std::chrono::duration_cast<std::chrono::milliseconds>(options_.primary_lease_ttl).count());
  Resync();
  Tick();
  return cairn::Status::Ok();
}

void VolumeAgent::Impl::Stop() {
  std::map<std::string, std::unique_ptr<ServedBrick>> bricks;
  std::vector<int64_t> leases;
  std::map<std::string, std::unique_ptr<net::Client>> clients;
  std::unique_ptr<coord::WatchStream> watch;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || !started_) {
      stopped_ = true;
      return;
    }
    stopped_ = true;
    timer_.cancel();
    watch = std::move(watch_);
    bricks.swap(bricks_);
    clients.swap(clients_);
    for (auto& [name, work] : sets_) {
      if (work.duty && !work.duty->lost) leases.push_back(work.duty->lease_id);
    }
    if (host_lease_ != 0) leases.push_back(host_lease_);
  }
  watch.reset();
#if CAIRN_HAVE_HEAL
  {
    std::lock_guard lock(mu_);
    std::vector<std::string> healing;
    for (auto& [brick, task] : heals_) healing.push_back(brick);
    for (const auto& brick : healing) StopHeal(brick);
    std::vector<std::string> moving;
    for (auto& [volume, task] : rebalances_) moving.push_back(volume);
    for (const auto& volume : moving) StopRebalance(volume);
  }
  heal_work_.reset();
  heal_io_.stop();
  if (heal_io_thread_.joinable()) heal_io_thread_.join();
#endif
  for (auto& [id, served] : bricks) served->Shutdown();
  for (auto& [address, client] : clients) client->Close();
  // The bricks no longer take writes: give the leases back so a successor need not wait out the
  // TTL and the address keys disappear now (best effort; the store may be stopping too).
  for (int64_t lease : leases) {
    etcd::LeaseRevokeRequest request;
    request.set_id(lease);
    store_.LeaseRevoke(request, {std::chrono::milliseconds(500)}, [](Result<etcd::LeaseRevokeResponse>) {});
  }
  log::Info("volume.agent_stopped", "node", options_.node_name, "bricks", bricks.size());
}

void VolumeAgent::Impl::Tick() {
  if (stopped_) return;
  if (!synced_ && !syncing_) Resync();
  Reconcile();
  timer_.expires_after(options_.tick);
  timer_.async_wait([weak = weak()](const boost::system::error_code& error) {
    if (error) return;
    auto self = weak.lock();
    if (!self) return;
    std::lock_guard lock(self->mu_);
    self->Tick();
  });
}

// ---- the mirror of /cairn/volumes/ ----

void VolumeAgent::Impl::Resync() {
  syncing_ = true;
  watch_.reset();
  etcd::RangeRequest request;
  request.set_key(std::string(volume::kVolumesPrefix));
  request.set_range_end(volume::PrefixRangeEnd(volume::kVolumesPrefix));
  store_.Range(request, {kStoreDeadline}, [weak = weak()](Result<etcd::RangeResponse> reply) {
    PostTo(weak, [reply = std::move(reply)](Impl& self) {
      self.syncing_ = false;
      if (!reply.ok()) {
        log::Warn("volume.store_read_failed", "error", reply.status());
        return;  // the next tick retries
      }
      self.mirror_.clear();
      for (const auto& kv : reply->kvs()) self.mirror_[kv.key()] = kv;
      if (self.start_revision_ == 0) self.start_revision_ = reply->header().revision();
      self.synced_ = true;
      self.OpenWatch(reply->header().revision() + 1);
      self.Reconcile();
    });
  });
}

void VolumeAgent::Impl::OpenWatch(int64_t from_revision) {
  uint64_t generation = ++watch_generation_;
  auto opened = store_.OpenWatchStream([weak = weak(), generation](const etcd::WatchResponse& response) {
    PostTo(weak, [response, generation](Impl& self) { self.OnWatch(response, generation); });
  });
  if (!opened.ok()) {
    log::Warn("volume.watch_failed", "error", opened.status());
    synced_ = false;
    return;
  }
  watch_ = std::move(*opened);
  etcd::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(std::string(volume::kVolumesPrefix));
  create->set_range_end(volume::PrefixRangeEnd(volume::kVolumesPrefix));
  create->set_start_revision(from_revision);
  watch_->Handle(request, [weak = weak(), generation](Result<bool> created) {
    if (created.ok()) return;
    PostTo(weak, [generation, status = created.status()](Impl& self) {
      if (generation != self.watch_generation_) return;
      log::Warn("volume.watch_failed", "error", status);
      self.synced_ = false;  // the next tick reads everything again
    });
  });
}

void VolumeAgent::Impl::OnWatch(const etcd::WatchResponse& response, uint64_t generation) {
  if (generation != watch_generation_) return;
  if (response.canceled() || response.compact_revision() != 0) {
    log::Warn("volume.watch_lost", "reason", response.cancel_reason(), "compact_revision", response.compact_revision());
    synced_ = false;
    return;
  }
  for (const auto& event : response.events()) {
    if (event.type() == etcd::Event::DELETE) {
      MirrorDelete(event.kv().key(), event.kv().mod_revision());
    } else {
      MirrorPut(event.kv());
    }
  }
  if (!response.events().empty()) Reconcile();
}

// Our own txns are applied to the mirror at once (the watch repeats them later), so the order of
// revisions decides: an event never overwrites something newer.
void VolumeAgent::Impl::MirrorPut(const etcd::KeyValue& kv) {
  auto it = mirror_.find(kv.key());
  if (it != mirror_.end() && it->second.mod_revision() > kv.mod_revision()) return;
  mirror_[kv.key()] = kv;
}

void VolumeAgent::Impl::MirrorDelete(const std::string& key, int64_t revision) {
  auto it = mirror_.find(key);
  if (it != mirror_.end() && (revision == 0 || it->second.mod_revision() < revision)) mirror_.erase(it);
}

void VolumeAgent::Impl::MirrorApplyTxn(const etcd::TxnRequest& txn, int64_t revision) {
  for (const auto& op : txn.success()) {
    if (op.has_request_put()) {
      etcd::KeyValue kv;
      kv.set_key(op.request_put().key());
      kv.set_value(op.request_put().value());
      kv.set_lease(op.request_put().lease());
      kv.set_mod_revision(revision);
      MirrorPut(kv);
    } else if (op.has_request_delete_range() && op.request_delete_range().range_end().empty()) {
      MirrorDelete(op.request_delete_range().key(), revision);
    }
  }
}

const etcd::KeyValue* VolumeAgent::Impl::Find(const std::string& key) const {
  auto it = mirror_.find(key);
  return it == mirror_.end() ? nullptr : &it->second;
}

// Where the brick is served now (its address key exists), or "".
std::string VolumeAgent::Impl::LiveAddress(const std::string& volume, const std::string& brick) const {
  const etcd::KeyValue* kv = Find(volume::BrickAddressKey(volume, brick));
  return kv == nullptr ? "" : kv->value();
}

// Where the brick is served now, else where it was last seen served, else "".
std::string VolumeAgent::Impl::KnownAddress(const std::string& volume, const std::string& brick) {
  std::string key = volume::BrickAddressKey(volume, brick);
  std::string live = LiveAddress(volume, brick);
  if (!live.empty()) {
    known_addresses_[key] = live;
    return live;
  }
  auto it = known_addresses_.find(key);
  return it == known_addresses_.end() ? "" : it->second;
}

// ---- reconcile ----

std::optional<volume::VolumeRecord> VolumeAgent::Impl::VolumeNamed(const std::string& name) const {
  const etcd::KeyValue* kv = Find(volume::SpecKey(name));
  if (kv == nullptr) return std::nullopt;
  auto record = volume::ParseVolumeRecord(*kv);
  if (!record.ok()) return std::nullopt;
  return *record;
}

void VolumeAgent::Impl::Reconcile() {
  if (stopped_ || !synced_) return;
  std::vector<volume::VolumeRecord> started;
  for (const auto& [key, kv] : mirror_) {
    if (VolumeOfSpecKey(key).empty()) continue;
    auto record = volume::ParseVolumeRecord(kv);
    if (!record.ok()) {
      if (open_errors_[key] != record.status().ToString()) {
        open_errors_[key] = record.status().ToString();
        log::Error("volume.bad_spec", "key", key, "error", record.status());
      }
      continue;
    }
    if (record->spec.state() == pb::VOLUME_STARTED) started.push_back(std::move(*record));
  }
  ServeBricks(started);
  KeepHostLease();
  PublishAddresses();
  for (const auto& volume : started) {
    for (const auto& set : volume.spec.sets()) {
      if (!MyBricksOf(volume.spec.name(), set).empty()) ReconcileSet(volume, set);
    }
  }
#if CAIRN_HAVE_HEAL
  std::set<std::string> rebalancing;
  for (const auto& volume : started) {
    if (volume.spec.has_previous_layout()) rebalancing.insert(volume.spec.name());
    MaybeRebalance(volume);
  }
  std::vector<std::string> finished;
  for (const auto& [name, task] : rebalances_) {
    if (!rebalancing.count(name)) finished.push_back(name);
  }
  for (const auto& name : finished) StopRebalance(name);
#endif
  // Sets no brick of ours belongs to any more.
  for (auto it = sets_.begin(); it != sets_.end();) {
    bool mine = std::any_of(bricks_.begin(), bricks_.end(), [&](const auto& entry) {
      return entry.second->volume == it->first.first && entry.second->set_id == it->first.second;
    });
    it = mine ? std::next(it) : sets_.erase(it);
  }
}

std::vector<std::string> VolumeAgent::Impl::MyBricksOf(const std::string& volume, const pb::ReplicaSetSpec& set) const {
  std::vector<std::string> mine;
  for (const auto& brick : set.bricks()) {
    std::string id = volume::BrickId(brick);
    auto it = bricks_.find(id);
    if (it != bricks_.end() && it->second->volume == volume) mine.push_back(id);
  }
  return mine;
}

void VolumeAgent::Impl::ServeBricks(const std::vector<volume::VolumeRecord>& volumes) {
  std::map<std::string, std::pair<std::string, uint32_t>> wanted;  // brick -> volume, set
  std::map<std::string, pb::Brick> specs;
  for (const auto& volume : volumes) {
    for (const auto& set : volume.spec.sets()) {
      for (const auto& brick : set.bricks()) {
        if (brick.host() != options_.node_name) continue;
        std::string id = volume::BrickId(brick);
        wanted[id] = {volume.spec.name(), set.id()};
        specs[id] = brick;
      }
    }
  }
  std::vector<std::string> unwanted;
  for (const auto& [id, served] : bricks_) {
    auto it = wanted.find(id);
    if (it == wanted.end() || it->second != std::make_pair(served->volume, served->set_id)) unwanted.push_back(id);
  }
  for (const auto& id : unwanted) StopBrick(id);
  for (const auto& [id, where] : wanted) {
    if (!bricks_.count(id)) OpenBrick(where.first, where.second, specs[id]);
  }
}

void VolumeAgent::Impl::OpenBrick(const std::string& volume, uint32_t set_id, const pb::Brick& brick) {
  std::string id = volume::BrickId(brick);
  auto fail = [&](const cairn::Status& status) {
    // Logged once per distinct error; retried every tick (the disk may come back).
    if (open_errors_[id] == status.ToString()) return;
    open_errors_[id] = status.ToString();
    log::Error("volume.brick_open_failed", "volume", volume, "brick", id, "error", status);
  };
  std::error_code error;
  std::filesystem::create_directories(brick.path(), error);
  if (error) return fail(IoError("cannot create " + brick.path() + ": " + error.message()));
  auto store = brick::BrickStore::Open(brick.path());
  if (!store.ok()) return fail(store.status());
  auto served = std::make_unique<ServedBrick>();
  served->volume = volume;
  served->set_id = set_id;
  served->brick = id;
  served->store = std::move(*store);
  // The port it had before if still free, else any.
  uint16_t port = RememberedPort(options_.state_dir, id);
  served->server = std::make_unique<net::Server>(io_, net::ServerOptions{.address = HostPort{options_.bind_host, port}.ToString()});
  cairn::Status listening = served->server->Start();
  if (!listening.ok() && port != 0) {
    served->server = std::make_unique<net::Server>(io_, net::ServerOptions{.address = HostPort{options_.bind_host, 0}.ToString()});
    listening = served->server->Start();
  }
  if (!listening.ok()) return fail(listening);
  RememberPort(options_.state_dir, id, served->server->port());
  served->address = HostPort{options_.advertise_host, served->server->port()}.ToString();
  brick::BrickServerOptions engine_options;
  engine_options.self_address = served->address;
  engine_options.threads = options_.brick_threads;
  engine_options.replica_timeout = options_.replica_timeout;
  engine_options.clock = &clock_;
  SetName name{volume, set_id};
  engine_options.on_replica_failed = [weak = weak(), name, id](const std::string& replica, const cairn::Status& why) {
    PostTo(weak, [name, id, replica, why](Impl& self) { self.OnReplicaFailed(name, id, replica, why); });
  };
  served->engine = std::make_unique<brick::BrickServer>(io_, *served->server, *served->store, std::move(engine_options));
  // No writes until this host holds the set's primary lease.
  served->engine->SetWriteDeadline(TimePoint::min());
  open_errors_.erase(id);
  log::Info("volume.brick_serving", "volume", volume, "set", set_id, "brick", id, "address", served->address);
  bricks_[id] = std::move(served);
}

void VolumeAgent::Impl::StopBrick(const std::string& id) {
  auto it = bricks_.find(id);
  if (it == bricks_.end()) return;
#if CAIRN_HAVE_HEAL
  StopHeal(id);
#endif
  std::unique_ptr<ServedBrick> served = std::move(it->second);
  bricks_.erase(it);
  served->Shutdown();
  std::string key = volume::BrickAddressKey(served->volume, id);
  if (const etcd::KeyValue* kv = Find(key); kv != nullptr && kv->value() == served->address) {
    etcd::DeleteRangeRequest request;
    request.set_key(key);
    store_.DeleteRange(request, {kStoreDeadline}, [](Result<etcd::DeleteRangeResponse>) {});
  }
  log::Info("volume.brick_stopped", "volume", served->volume, "brick", id, "address", served->address);
}

void VolumeAgent::Impl::KeepHostLease() {
  if (host_lease_in_flight_ || bricks_.empty()) return;
  TimePoint now = clock_.Now();
  if (host_lease_ != 0 && now < host_lease_next_keepalive_) return;
  host_lease_in_flight_ = true;
  if (host_lease_ == 0) {
    etcd::LeaseGrantRequest request;
    request.set_ttl(WholeSeconds(options_.host_lease_ttl));
    store_.LeaseGrant(request, {kStoreDeadline}, [weak = weak(), now](Result<etcd::LeaseGrantResponse> reply) {
      PostTo(weak, [reply = std::move(reply), now](Impl& self) {
        self.host_lease_in_flight_ = false;
        if (!reply.ok() || reply->id() == 0) {
          log::Warn("volume.host_lease_failed", "error", reply.ok() ? cairn::Status::Ok() : reply.status());
          return;
        }
        self.host_lease_ = reply->id();
        self.host_lease_next_keepalive_ = now + std::chrono::seconds(reply->ttl()) / 3;
        log::Info("volume.host_lease", "lease", reply->id(), "ttl_s", reply->ttl());
        self.PublishAddresses();
      });
    });
    return;
  }
  etcd::LeaseKeepAliveRequest request;
  request.set_id(host_lease_);
  store_.LeaseKeepAlive(request, {kStoreDeadline}, [weak = weak(), now, lease = host_lease_](Result<etcd::LeaseKeepAliveResponse> reply) {
    PostTo(weak, [reply = std::move(reply), now, lease](Impl& self) {
      self.host_lease_in_flight_ = false;
      if (lease != self.host_lease_) return;
      if (reply.ok() && reply->ttl() > 0) {
        self.host_lease_next_keepalive_ = now + std::chrono::seconds(reply->ttl()) / 3;
      } else if (reply.ok() || reply.status().code() == StatusCode::kNotFound) {
        log::Warn("volume.host_lease_lost", "lease", lease);
        self.host_lease_ = 0;  // granted again (and the addresses republished) next tick
      }  // else a transient store error: the next tick tries again
    });
  });
}

void VolumeAgent::Impl::PublishAddresses() {
  if (host_lease_ == 0) return;
  for (const auto& [id, served] : bricks_) {
    std::string key = volume::BrickAddressKey(served->volume, id);
    const etcd::KeyValue* kv = Find(key);
    if ((kv != nullptr && kv->value() == served->address && kv->lease() == host_lease_) || publishing_.count(key)) continue;
    publishing_.insert(key);
    etcd::PutRequest request;
    request.set_key(key);
    request.set_value(served->address);
    request.set_lease(host_lease_);
    store_.Put(request, {kStoreDeadline}, [weak = weak(), request](Result<etcd::PutResponse> reply) {
      PostTo(weak, [reply = std::move(reply), request](Impl& self) {
        self.publishing_.erase(request.key());
        if (!reply.ok()) {
          log::Warn("volume.publish_failed", "key", request.key(), "error", reply.status());
          if (reply.status().code() == StatusCode::kNotFound && request.lease() == self.host_lease_) self.host_lease_ = 0;
          return;
        }
        etcd::KeyValue kv;
        kv.set_key(request.key());
        kv.set_value(request.value());
        kv.set_lease(request.lease());
        kv.set_mod_revision(reply->header().revision());
        self.MirrorPut(kv);
        log::Info("volume.address_published", "key", request.key(), "address", request.value());
        self.Reconcile();
      });
    });
  }
}

void VolumeAgent::Impl::ReconcileSet(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set) {
  const std::string& name = volume.spec.name();
  const etcd::KeyValue* kv = Find(volume::SetKey(name, set.id()));
  if (kv == nullptr) return;  // created without its record? nothing to derive a view from
  auto record = volume::ParseReplicaSetRecord(*kv);
  if (!record.ok()) return;
  SetWork& work = sets_[{name, set.id()}];
  for (const auto& id : MyBricksOf(name, set)) InstallView(*bricks_[id], record->state, set);
  PrimaryDuties(name, *record, work);
  DropSuspects(name, *record, work);
  MaybeReadmit(name, set, *record, work);
  MaybeTakeOver(volume, set, *record, work);
#if CAIRN_HAVE_HEAL
  MaybeHeal(name, set, *record);
#endif
}

void VolumeAgent::Impl::InstallView(ServedBrick& served, const pb::ReplicaSetState& state, const pb::ReplicaSetSpec& set) {
  std::map<std::string, std::string> brick_of_address;
  auto address = [&](const std::string& brick) {
    std::string at = brick == served.brick ? served.address : KnownAddress(served.volume, brick);
    brick_of_address[at.empty() ? UnknownAddress(brick) : at] = brick;
    return at;
  };
  bpb::ReplicaView view = ViewFor(state, set, address, served.address);
  if (served.installed && served.installed->SerializeAsString() == view.SerializeAsString()) return;
  cairn::Status installed = served.engine->SetView(view);
  if (!installed.ok()) {
    log::Warn("volume.view_refused", "brick", served.brick, "epoch", state.epoch(), "error", installed);
    return;
  }
  served.installed = view;
  served.brick_of_address = std::move(brick_of_address);
  log::Info("volume.view_installed", "volume", served.volume, "set", state.set_id(), "brick", served.brick, "epoch",
            state.epoch(), "role", RoleOf(state, served.brick), "primary", view.primary(), "in_sync", view.in_sync_size(),
            "out_of_sync", view.out_of_sync_size());
}

// The primary's lease: adopt it when the record names our brick, keep it alive, hand its
// deadline to the brick; every other brick of ours gets a deadline in the past.
void VolumeAgent::Impl::PrimaryDuties(const std::string& volume, const volume::ReplicaSetRecord& record, SetWork& work) {
  const pb::ReplicaSetState& state = record.state;
  SetName name{volume, state.set_id()};
  bool ours = state.mode() == pb::REPLICA_SET_NORMAL && bricks_.count(state.primary()) &&
              bricks_[state.primary()]->volume == volume;
  const etcd::KeyValue* key = Find(volume::PrimaryKey(volume, state.set_id()));
  bool key_held = key != nullptr && key->value() == state.primary() && key->lease() == state.primary_lease_id();
  if (!ours) {
    if (work.duty) log::Info("volume.primary_duty_ended", "volume", volume, "set", state.set_id(), "epoch", state.epoch());
    work.duty.reset();
  } else if (!work.duty || work.duty->lease_id != state.primary_lease_id()) {
    work.duty.reset();
    auto granted = granted_primary_leases_.find(state.primary_lease_id());
    // A record from before this process started names a primary whose brick state (sequence
    // numbers) died with the old process: let that lease run out and take over afresh instead.
    bool adopt = key_held && (granted != granted_primary_leases_.end() || record.mod_revision > start_revision_);
    if (adopt) {
      work.duty.emplace(state.primary_lease_id(), std::chrono::milliseconds(state.primary_lease_ttl_ms()),
                        options_.drift_margin);
      if (granted != granted_primary_leases_.end()) work.duty->lease.Renewed(granted->second);
      log::Info("volume.primary_duty_started", "volume", volume, "set", state.set_id(), "epoch", state.epoch(),
                "brick", state.primary(), "lease", state.primary_lease_id());
    } else if (work.refused_lease != state.primary_lease_id()) {
      work.refused_lease = state.primary_lease_id();
      log::Info("volume.primary_lease_not_adopted", "volume", volume, "set", state.set_id(), "epoch", state.epoch(),
                "lease", state.primary_lease_id(), "why", key_held ? "granted before this process started" : "key gone");
    }
  }
  if (work.duty && !key_held && !work.duty->lost) {
    work.duty->lease.Lost();
    work.duty->lost = true;
    log::Warn("volume.primary_lease_lost", "volume", volume, "set", state.set_id(), "epoch", state.epoch(), "lease",
              work.duty->lease_id);
  }
  if (work.duty && !work.duty->lost) KeepPrimaryLease(name, work);
  for (const auto& [id, served] : bricks_) {
    if (served->volume != volume || served->set_id != state.set_id()) continue;
    std::optional<TimePoint> deadline;
    if (id == state.primary() && work.duty && !work.duty->lost) deadline = work.duty->lease.deadline();
    served->engine->SetWriteDeadline(deadline.value_or(TimePoint::min()));
  }
}

void VolumeAgent::Impl::KeepPrimaryLease(const SetName& name, SetWork& work) {
  PrimaryDuty& duty = *work.duty;
  TimePoint now = clock_.Now();
  auto next = duty.lease.NextKeepAlive();
  if (duty.keepalive_in_flight || (next && now < *next)) return;
  duty.keepalive_in_flight = true;
  etcd::LeaseKeepAliveRequest request;
  request.set_id(duty.lease_id);
  store_.LeaseKeepAlive(request, {kStoreDeadline}, [weak = weak(), name, lease = duty.lease_id, now](Result<etcd::LeaseKeepAliveResponse> reply) {
    PostTo(weak, [name, lease, now, reply = std::move(reply)](Impl& self) {
      auto it = self.sets_.find(name);
      if (it == self.sets_.end() || !it->second.duty || it->second.duty->lease_id != lease) return;
      PrimaryDuty& duty = *it->second.duty;
      duty.keepalive_in_flight = false;
      if (reply.ok() && reply->ttl() > 0) {
        duty.lease.Renewed(now);  // measured from the send: see PrimaryLease
      } else if ((reply.ok() || reply.status().code() == StatusCode::kNotFound) && !duty.lost) {
        duty.lease.Lost();
        duty.lost = true;
        log::Warn("volume.primary_lease_lost", "volume", name.first, "set", name.second, "lease", lease, "why",
                  "the store no longer has it");
      }
      self.Reconcile();
    });
  });
}

void VolumeAgent::Impl::OnReplicaFailed(const SetName& name, const std::string& reporter, const std::string& address,
                                        const cairn::Status& why) {
  auto served = bricks_.find(reporter);
  if (served == bricks_.end()) return;
  auto brick = served->second->brick_of_address.find(address);
  if (brick == served->second->brick_of_address.end()) return;
  SetWork& work = sets_[name];
  if (work.suspects.insert(brick->second).second) {
    log::Warn("volume.replica_failed", "volume", name.first, "set", name.second, "replica", brick->second, "address",
              address, "why", why);
  }
  Reconcile();
}

void VolumeAgent::Impl::DropSuspects(const std::string& volume, const volume::ReplicaSetRecord& record, SetWork& work) {
  const pb::ReplicaSetState& state = record.state;
  for (auto it = work.suspects.begin(); it != work.suspects.end();) {
    it = volume::IsInSync(state, *it) && *it != state.primary() ? std::next(it) : work.suspects.erase(it);
  }
  if (work.suspects.empty() || work.txn_in_flight || !work.duty || work.duty->lost) return;
  const std::string& failed = *work.suspects.begin();
  auto change = volume::DropBackup(volume, record, state.primary(), failed);
  if (!change.ok()) {
    log::Warn("volume.drop_refused", "volume", volume, "set", state.set_id(), "replica", failed, "error", change.status());
    work.suspects.erase(failed);
    return;
  }
  log::Info("volume.dropping_backup", "volume", volume, "set", state.set_id(), "replica", failed, "epoch",
            change->next.epoch());
  Commit({volume, state.set_id()}, std::move(change->txn), "drop " + failed);
}

// ---- take-over ----

void VolumeAgent::Impl::MaybeTakeOver(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set,
                                      const volume::ReplicaSetRecord& record, SetWork& work) {
  const std::string& name = volume.spec.name();
  const pb::ReplicaSetState& state = record.state;
  if (Find(volume::PrimaryKey(name, set.id())) != nullptr) {
    work.no_primary_since.reset();
    return;
  }
  TimePoint now = clock_.Now();
  if (!work.no_primary_since) work.no_primary_since = now;
  if (work.txn_in_flight || now < work.next_attempt) return;
  auto live = [&](const std::string& brick) { return !LiveAddress(name, brick).empty(); };
  int rank = -1;
  for (const auto& mine : MyBricksOf(name, set)) {
    int r = TakeOverRank(state, set, mine, live);
    if (rank < 0 || r < rank) rank = r;
  }
  bool all_published = std::all_of(state.in_sync().begin(), state.in_sync().end(), [&](const std::string& brick) {
    return brick == state.primary() || live(brick);
  });
  Duration wait = options_.takeover_stagger * rank;
  if (!all_published) wait = std::max(wait, options_.address_grace);
  if (now - *work.no_primary_since < wait) return;
  StartTakeOver(volume, set);
}

void VolumeAgent::Impl::StartTakeOver(const volume::VolumeRecord& volume, const pb::ReplicaSetSpec& set) {
  SetName name{volume.spec.name(), set.id()};
  sets_[name].txn_in_flight = true;
  TimePoint sent_at = clock_.Now();
  etcd::LeaseGrantRequest request;
  request.set_ttl(WholeSeconds(options_.primary_lease_ttl));
  store_.LeaseGrant(request, {kStoreDeadline}, [weak = weak(), name, set, sent_at](Result<etcd::LeaseGrantResponse> reply) {
    PostTo(weak, [name, set, sent_at, reply = std::move(reply)](Impl& self) {
      SetWork& work = self.sets_[name];
      if (!reply.ok() || reply->id() == 0) {
        work.txn_in_flight = false;
        work.next_attempt = self.clock_.Now() + self.options_.retry_backoff;
        log::Warn("volume.takeover_lease_failed", "volume", name.first, "set", name.second, "error",
                  reply.ok() ? cairn::Status::Ok() : reply.status());
        return;
      }
      self.CollectPositions(name, set, reply->id(), reply->ttl(), sent_at);
    });
  });
}

void VolumeAgent::Impl::CollectPositions(const SetName& name, const pb::ReplicaSetSpec& set, int64_t lease,
                                         int64_t ttl_seconds, TimePoint sent_at) {
  auto collector = std::make_shared<PositionCollector>();
  std::vector<std::pair<std::string, std::string>> remote;  // brick, address
  for (const auto& brick : set.bricks()) {
    std::string id = volume::BrickId(brick);
    auto served = bricks_.find(id);
    if (served != bricks_.end() && served->second->volume == name.first) {
      brick::BrickPosition position = served->second->engine->Position();
      collector->reports.push_back({id, position.sequence, position.epoch});
      continue;
    }
    std::string address = LiveAddress(name.first, id);
    if (!address.empty()) remote.emplace_back(id, address);
  }
  auto finish = [weak = weak(), name, lease, ttl_seconds, sent_at, collector] {
    PostTo(weak, [name, lease, ttl_seconds, sent_at, collector](Impl& self) {
      std::vector<volume::ReplicaReport> reports;
      {
        std::lock_guard lock(collector->mu);
        reports = collector->reports;
      }
      self.FinishTakeOver(name, lease, ttl_seconds, sent_at, std::move(reports));
    });
  };
  collector->remaining = remote.size();
  if (remote.empty()) return finish();
  for (const auto& [id, address] : remote) {
    ClientFor(address).Call("brick.Position", bpb::PositionRequest().SerializeAsString(), options_.position_timeout,
                            [collector, id = id, finish](Result<std::string> reply) {
                              bpb::PositionResponse response;
                              bool last;
                              {
                                std::lock_guard lock(collector->mu);
                                if (reply.ok() && response.ParseFromString(*reply) && response.err() == 0) {
                                  collector->reports.push_back({id, response.sequence(), response.epoch()});
                                }
                                last = --collector->remaining == 0;
                              }
                              if (last) finish();
                            });
  }
}

void VolumeAgent::Impl::FinishTakeOver(const SetName& name, int64_t lease, int64_t ttl_seconds, TimePoint sent_at,
                                       std::vector<volume::ReplicaReport> reports) {
  SetWork& work = sets_[name];
  work.txn_in_flight = false;
  work.next_attempt = clock_.Now() + options_.retry_backoff;
  auto volume = VolumeNamed(name.first);
  const etcd::KeyValue* kv = Find(volume::SetKey(name.first, name.second));
  if (!volume || kv == nullptr || Find(volume::PrimaryKey(name.first, name.second)) != nullptr) {
    return Revoke(lease);  // gone, or someone else won meanwhile
  }
  auto record = volume::ParseReplicaSetRecord(*kv);
  if (!record.ok()) return Revoke(lease);
  auto change = volume::TakeOverPrimary(name.first, *record, reports, lease, ttl_seconds * 1000,
                                        volume::OthersAfterTakeOver::kKeepOnlyMatching);
  if (change.ok()) {
    const std::string& candidate = change->next.primary();
    bool ours = bricks_.count(candidate) > 0;
    if (ours) granted_primary_leases_[lease] = sent_at;
    log::Info("volume.taking_over", "volume", name.first, "set", name.second, "epoch", change->next.epoch(), "primary",
              candidate, "in_sync", change->next.in_sync_size(), "reports", reports.size(), "lease", lease);
    // The txn carries the lease; if it loses, nobody uses it: Commit revokes it then.
    Commit(name, std::move(change->txn), "take over for " + candidate);
    return;
  }
  Revoke(lease);
  if (change.status().code() != StatusCode::kUnavailable) {
    log::Warn("volume.takeover_refused", "volume", name.first, "set", name.second, "error", change.status());
    return;
  }
  auto no_quorum = volume::EnterNoQuorum(name.first, *record, volume->spec.options().no_quorum(), reports);
  if (!no_quorum.ok()) return;  // already in that mode
  log::Warn("volume.entering_no_quorum", "volume", name.first, "set", name.second, "epoch", no_quorum->next.epoch(),
            "mode", pb::ReplicaSetMode_Name(no_quorum->next.mode()), "read_source", no_quorum->next.read_source());
  Commit(name, std::move(no_quorum->txn), "no quorum");
}

void VolumeAgent::Impl::Commit(const SetName& name, etcd::TxnRequest txn, std::string what) {
  sets_[name].txn_in_flight = true;
  int64_t lease = 0;  // a take-over's fresh lease: revoked when the txn loses
  for (const auto& op : txn.success()) {
    if (op.has_request_put() && op.request_put().lease() != 0) lease = op.request_put().lease();
  }
  store_.Txn(txn, {kStoreDeadline}, [weak = weak(), name, txn, what, lease](Result<etcd::TxnResponse> reply) {
    PostTo(weak, [name, txn, what, lease, reply = std::move(reply)](Impl& self) {
      SetWork& work = self.sets_[name];
      work.txn_in_flight = false;
      if (reply.ok() && reply->succeeded()) {
        self.MirrorApplyTxn(txn, reply->header().revision());
        log::Info("volume.committed", "volume", name.first, "set", name.second, "change", what, "revision",
                  reply->header().revision());
        work.next_attempt = {};
      } else {
        log::Info("volume.commit_lost", "volume", name.first, "set", name.second, "change", what, "error",
                  reply.ok() ? cairn::Status::Ok() : reply.status());
        if (lease != 0) {
          self.granted_primary_leases_.erase(lease);
          self.Revoke(lease);
        }
      }
      self.Reconcile();  // installs the new view first
      SetWork& after = self.sets_[name];
      if (after.readmitting && after.readmitting->committing) self.EndReadmission(after, "committed or lost");
    });
  });
}

void VolumeAgent::Impl::Revoke(int64_t lease) {
  granted_primary_leases_.erase(lease);
  etcd::LeaseRevokeRequest request;
  request.set_id(lease);
  store_.LeaseRevoke(request, {kStoreDeadline}, [](Result<etcd::LeaseRevokeResponse>) {});
}

net::Client& VolumeAgent::Impl::ClientFor(const std::string& address) {
  auto& client = clients_[address];
  if (!client) client = std::make_unique<net::Client>(io_, net::ClientOptions{.address = address});
  return *client;
}

// ---- heal and readmission ----

void VolumeAgent::Impl::EndReadmission(SetWork& work, const std::string& why) {
  if (!work.readmitting) return;
  auto served = bricks_.find(work.readmitting->primary);
  if (served != bricks_.end()) served->second->engine->ResumeMutations();
  log::Info("volume.readmit_resumed", "replica", work.readmitting->brick, "why", why);
  work.readmitting.reset();
}

// On the primary: a replica whose heal checkpoint says nothing is left in this epoch is
// readmitted with client mutations held, once the journal kept for it is still empty with every
// stamped mutation journaled, so it misses nothing (docs/volumes.md, ReadmitReplica).
void VolumeAgent::Impl::MaybeReadmit(const std::string& volume, const pb::ReplicaSetSpec& set,
                                     const volume::ReplicaSetRecord& record, SetWork& work) {
  const pb::ReplicaSetState& state = record.state;
  bool primary = work.duty && !work.duty->lost && bricks_.count(state.primary());
  if (!primary) return EndReadmission(work, "no longer primary");
  brick::BrickServer& engine = *bricks_[state.primary()]->engine;
  TimePoint now = clock_.Now();
  if (work.readmitting) {
    auto& readmission = *work.readmitting;
    if (readmission.committing) return;
    if (engine.MutationsInFlight() > 0) {
      if (now - readmission.held_at > std::chrono::seconds(3)) EndReadmission(work, "mutations did not drain");
      return;
    }
    std::string address = KnownAddress(volume, readmission.brick);
    const etcd::KeyValue* kv = Find(volume::HealKey(volume, readmission.brick));
    pb::HealCheckpoint heal;
    if (address.empty() || kv == nullptr || !heal.ParseFromString(kv->value())) return EndReadmission(work, "no checkpoint");
    if (!engine.JournalIds(address).empty()) return EndReadmission(work, "changes since the heal; another round");
    uint64_t sequence = engine.Position().sequence;
    heal.set_healed_through(sequence);
    auto change = volume::ReadmitReplica(volume, record, state.primary(), heal, sequence, kv->mod_revision());
    if (!change.ok()) {
      log::Info("volume.readmit_refused", "volume", volume, "set", state.set_id(), "replica", readmission.brick, "error",
                change.status());
      return EndReadmission(work, "refused");
    }
    log::Info("volume.readmitting", "volume", volume, "set", state.set_id(), "replica", readmission.brick, "epoch",
              change->next.epoch(), "healed_through", sequence);
    readmission.committing = true;
    Commit({volume, state.set_id()}, std::move(change->txn), "readmit " + readmission.brick);
    return;
  }
  if (work.txn_in_flight) return;
  for (const auto& brick : volume::OutOfSyncBricks(set, state)) {
    const etcd::KeyValue* kv = Find(volume::HealKey(volume, brick));
    pb::HealCheckpoint heal;
    if (kv == nullptr || !heal.ParseFromString(kv->value())) continue;
    if (heal.files_left() != 0 || heal.bytes_left() != 0 || heal.failed() || heal.epoch() != state.epoch() ||
        heal.set_id() != state.set_id() || work.readmit_tried[brick] == kv->mod_revision()) {
      continue;
    }
    work.readmit_tried[brick] = kv->mod_revision();
    engine.HoldMutations();
    work.readmitting = SetWork::Readmission{brick, now, false, state.primary()};
    log::Info("volume.readmit_hold", "volume", volume, "set", state.set_id(), "replica", brick, "epoch", state.epoch());
    return;
  }
}

#if CAIRN_HAVE_HEAL
// On the host of an out-of-sync brick: pull heal from the primary, in rounds until clean, on a
// thread of its own; again a second after each run ends while the brick stays out of sync.
void VolumeAgent::Impl::MaybeHeal(const std::string& volume, const pb::ReplicaSetSpec& set,
                                  const volume::ReplicaSetRecord& record) {
  const pb::ReplicaSetState& state = record.state;
  for (const auto& brick : MyBricksOf(volume, set)) {
    auto task = heals_.find(brick);
    bool in_sync = volume::IsInSync(state, brick);
    if (task != heals_.end() && (task->second.done->load() || in_sync)) StopHeal(brick);
    if (in_sync || heals_.count(brick) || state.mode() != pb::REPLICA_SET_NORMAL || state.primary().empty()) continue;
    if (Find(volume::PrimaryKey(volume, set.id())) == nullptr) continue;
    std::string primary_address = LiveAddress(volume, state.primary());
    if (primary_address.empty() || clock_.Now() < next_heal_[brick]) continue;
    ServedBrick& served = *bricks_[brick];
    heal::HealRunnerOptions options;
    options.brick_id = brick;
    options.set_id = set.id();
    options.epoch = state.epoch();
    options.clock = &clock_;
    if (const etcd::KeyValue* kv = Find(volume::HealKey(volume, brick))) {
      pb::HealCheckpoint checkpoint;
      if (checkpoint.ParseFromString(kv->value())) options.resume_from = checkpoint;
    }
    coord::CoordApi* store = &store_;
    std::string key = volume::HealKey(volume, brick);
    options.checkpoint = [store, key](const pb::HealCheckpoint& checkpoint) -> cairn::Status {
      etcd::PutRequest request;
      request.set_key(key);
      request.set_value(checkpoint.SerializeAsString());
      auto stored = std::make_shared<std::promise<cairn::Status>>();
      auto future = stored->get_future();
      store->Put(request, {kStoreDeadline}, [stored](Result<etcd::PutResponse> reply) {
        stored->set_value(reply.ok() ? cairn::Status::Ok() : reply.status());
      });
      if (future.wait_for(kStoreDeadline + std::chrono::seconds(1)) != std::future_status::ready) {
        return DeadlineExceededError("heal checkpoint not stored in time");
      }
      return future.get();
    };
    HealTask fresh;
    fresh.runner = std::make_shared<heal::HealRunner>(heal_io_, *served.store, primary_address, served.address, options);
    fresh.done = std::make_shared<std::atomic<bool>>(false);
    log::Info("volume.heal_started", "volume", volume, "set", set.id(), "brick", brick, "primary", primary_address, "epoch",
              state.epoch());
    fresh.thread = std::thread([runner = fresh.runner, done = fresh.done, weak = weak(), brick] {
      cairn::Status healed = runner->HealUntilClean(5);
      done->store(true);
      PostTo(weak, [brick, healed](Impl& self) {
        log::Info("volume.heal_run_ended", "brick", brick, "result", healed);
        self.next_heal_[brick] = self.clock_.Now() + std::chrono::seconds(1);
        self.Reconcile();
      });
    });
    heals_[brick] = std::move(fresh);
  }
}

void VolumeAgent::Impl::StopHeal(const std::string& brick) {
  auto it = heals_.find(brick);
  if (it == heals_.end()) return;
  it->second.runner->Stop();
  if (it->second.thread.joinable()) it->second.thread.join();
  heals_.erase(it);
}

// ---- rebalance ----

namespace {

// Blocking store calls for the mover's thread (never the agent's: the answers come on the
// store's threads, so waiting there could deadlock).
template <class Resp, class Call>
Result<Resp> WaitFor(Call call) {
  auto promise = std::make_shared<std::promise<Result<Resp>>>();
  auto future = promise->get_future();
  call([promise](Result<Resp> reply) { promise->set_value(std::move(reply)); });
  if (future.wait_for(kStoreDeadline + std::chrono::seconds(1)) != std::future_status::ready) {
    return DeadlineExceededError("the store did not answer in time");
  }
  return future.get();
}

}  // namespace

// On an agent with a brick of a started volume whose rebalance is pending: claim the owner key
// (on the host lease, so it goes with this host), and while it is ours keep one mover running,
// again 2 s after a run that failed.
void VolumeAgent::Impl::MaybeRebalance(const volume::VolumeRecord& volume) {
  const std::string& name = volume.spec.name();
  if (!volume.spec.has_previous_layout()) return;
  bool mine = std::any_of(volume.spec.sets().begin(), volume.spec.sets().end(),
                          [&](const pb::ReplicaSetSpec& set) { return !MyBricksOf(name, set).empty(); });
  if (!mine) return;
  const etcd::KeyValue* owner = Find(volume::RebalanceOwnerKey(name));
  if (owner == nullptr) {
    ClaimRebalance(name);
    return;
  }
  if (owner->value() != options_.node_name || owner->lease() != host_lease_) {
    StopRebalance(name);  // another agent's (or ours from before a restart, until its lease ends)
    return;
  }
  auto task = rebalances_.find(name);
  if (task != rebalances_.end()) {
    UpdateRoutes(volume, *task->second.routes);
    if (!task->second.done->load()) return;
    StopRebalance(name);
  }
  if (clock_.Now() < next_rebalance_[name]) return;
  auto routes = std::make_shared<RouteTable>();
  UpdateRoutes(volume, *routes);
  StartRebalance(volume, std::move(routes));
}

void VolumeAgent::Impl::ClaimRebalance(const std::string& volume) {
  if (host_lease_ == 0 || claiming_.count(volume)) return;
  claiming_.insert(volume);
  etcd::TxnRequest txn;
  *txn.add_compare() = volume::KeyAbsent(volume::RebalanceOwnerKey(volume));
  *txn.add_success() = volume::PutOp(volume::RebalanceOwnerKey(volume), options_.node_name, host_lease_);
  store_.Txn(txn, {kStoreDeadline}, [weak = weak(), volume, lease = host_lease_](Result<etcd::TxnResponse> reply) {
    PostTo(weak, [reply = std::move(reply), volume, lease](Impl& self) {
      self.claiming_.erase(volume);
      if (!reply.ok() || !reply->succeeded()) return;  // another agent was first, or the store is busy
      etcd::KeyValue kv;
      kv.set_key(volume::RebalanceOwnerKey(volume));
      kv.set_value(self.options_.node_name);
      kv.set_lease(lease);
      kv.set_mod_revision(reply->header().revision());
      self.MirrorPut(kv);
      log::Info("volume.rebalance_owner", "volume", volume, "node", self.options_.node_name);
      self.Reconcile();
    });
  });
}

// Each set's primary with a live address and its record's epoch, for the mover's thread.
void VolumeAgent::Impl::UpdateRoutes(const volume::VolumeRecord& volume, RouteTable& table) {
  std::map<uint32_t, SetRoute> routes;
  for (const auto& set : volume.spec.sets()) {
    const etcd::KeyValue* kv = Find(volume::SetKey(volume.spec.name(), set.id()));
    if (kv == nullptr || Find(volume::PrimaryKey(volume.spec.name(), set.id())) == nullptr) continue;
    auto record = volume::ParseReplicaSetRecord(*kv);
    if (!record.ok() || record->state.mode() != pb::REPLICA_SET_NORMAL || record->state.primary().empty()) continue;
    std::string address = LiveAddress(volume.spec.name(), record->state.primary());
    if (!address.empty()) routes[set.id()] = SetRoute{address, record->state.epoch()};
  }
  std::lock_guard lock(table.mu);
  table.routes = std::move(routes);
}

void VolumeAgent::Impl::StartRebalance(const volume::VolumeRecord& volume, std::shared_ptr<RouteTable> routes) {
  const std::string name = volume.spec.name();
  coord::CoordApi* store = &store_;
  RebalanceMoverOptions options;
  options.volume = name;
  options.node_name = options_.node_name;
  options.clock = &clock_;
  if (const etcd::KeyValue* kv = Find(volume::RebalanceKey(name))) {
    pb::HealCheckpoint progress;
    if (progress.ParseFromString(kv->value()) && progress.epoch() == volume.spec.layout().epoch()) {
      options.resume_from = progress;
    }
  }
  options.read_spec = [store, name]() -> Result<volume::VolumeRecord> {
    etcd::RangeRequest request;
    request.set_key(volume::SpecKey(name));
    CAIRN_ASSIGN_OR_RETURN(auto reply, WaitFor<etcd::RangeResponse>([&](auto done) {
                             store->Range(request, {kStoreDeadline}, std::move(done));
                           }));
    if (reply.kvs_size() == 0) return NotFoundError("volume " + name + " was deleted");
    return volume::ParseVolumeRecord(reply.kvs(0));
  };
  options.route = [routes, name](uint32_t set) -> Result<SetRoute> {
    std::lock_guard lock(routes->mu);
    auto it = routes->routes.find(set);
    if (it == routes->routes.end()) {
      return UnavailableError("volume " + name + ": set " + std::to_string(set) + " has no serving primary");
    }
    return it->second;
  };
  options.save_progress = [store, name](const pb::HealCheckpoint& progress) -> cairn::Status {
    etcd::PutRequest request;
    request.set_key(volume::RebalanceKey(name));
    request.set_value(progress.SerializeAsString());
    auto reply = WaitFor<etcd::PutResponse>([&](auto done) { store->Put(request, {kStoreDeadline}, std::move(done)); });
    return reply.ok() ? cairn::Status::Ok() : reply.status();
  };
  options.commit = [store](const etcd::TxnRequest& txn) -> cairn::Status {
    auto reply = WaitFor<etcd::TxnResponse>([&](auto done) { store->Txn(txn, {kStoreDeadline}, std::move(done)); });
    if (!reply.ok()) return reply.status();
    return reply->succeeded() ? cairn::Status::Ok() : FailedPreconditionError("the volume changed meanwhile");
  };
  RebalanceTask task;
  task.routes = std::move(routes);
  task.mover = std::make_shared<RebalanceMover>(heal_io_, std::move(options));
  task.done = std::make_shared<std::atomic<bool>>(false);
  log::Info("volume.rebalance_started", "volume", name, "epoch", volume.spec.layout().epoch());
  task.thread = std::thread([mover = task.mover, done = task.done, weak = weak(), name] {
    cairn::Status moved = mover->Run();
    done->store(true);
    PostTo(weak, [name, moved](Impl& self) {
      log::Info("volume.rebalance_run_ended", "volume", name, "result", moved);
      self.next_rebalance_[name] = self.clock_.Now() + (moved.ok() ? Duration::zero() : std::chrono::seconds(2));
      self.Reconcile();
    });
  });
  rebalances_[name] = std::move(task);
}

void VolumeAgent::Impl::StopRebalance(const std::string& volume) {
  auto it = rebalances_.find(volume);
  if (it == rebalances_.end()) return;
  it->second.mover->Stop();
  if (it->second.thread.joinable()) it->second.thread.join();
  rebalances_.erase(it);
}
#endif

// ---- status ----

std::vector<BrickStatus> VolumeAgent::Impl::Bricks() const {
  std::lock_guard lock(mu_);
  std::vector<BrickStatus> out;
  for (const auto& [id, served] : bricks_) {
    BrickStatus status;
    status.volume = served->volume;
    status.set_id = served->set_id;
    status.brick = id;
    status.address = served->address;
    status.role = "starting";
    const etcd::KeyValue* kv = Find(volume::SetKey(served->volume, served->set_id));
    if (kv != nullptr) {
      if (auto record = volume::ParseReplicaSetRecord(*kv); record.ok()) {
        status.role = RoleOf(record->state, id);
        status.epoch = record->state.epoch();
      }
    }
    out.push_back(std::move(status));
  }
  return out;
}

VolumeAgent::VolumeAgent(boost::asio::io_context& io, coord::CoordApi& store, VolumeAgentOptions options)
    : impl_(std::make_shared<Impl>(io, store, std::move(options))) {}
VolumeAgent::~VolumeAgent() { Stop(); }
Status VolumeAgent::Start() { return impl_->Start(); }
void VolumeAgent::Stop() { impl_->Stop(); }
std::vector<BrickStatus> VolumeAgent::Bricks() const { return impl_->Bricks(); }

}  // namespace cairn::volume_service
