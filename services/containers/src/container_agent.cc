#include "cairn/containers/container_agent.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cairn/common/logging.h"
#include "cairn/containers/containers.h"
#include "cairn/containers/convergence.h"
#include "cairn/containers/coord_registry.h"
#include "cairn/containers/placement.h"
#include "cairn/containers/registry.h"

namespace cairn::containers {
namespace {

// Issues call(done) and waits for done's result, or DeadlineExceeded after limit.
template <typename Response, typename Call>
Result<Response> Wait(Call call, std::chrono::milliseconds limit) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  std::future<Result<Response>> future = promise->get_future();
  call([promise](Result<Response> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(limit + std::chrono::seconds(1)) != std::future_status::ready) {
    return DeadlineExceededError("the store did not answer within " + std::to_string(limit.count()) + " ms");
  }
  return future.get();
}

// "http://127.0.0.1:2379" -> "127.0.0.1:2379".
std::string HostPortOfUrl(const std::string& url) {
  size_t scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  return rest.substr(0, rest.find('/'));
}

// "1 s", "60 s": a backoff as people read it.
std::string Seconds(Duration duration) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// "2026-11-27 12:00:01 UTC".
std::string FormatUtc(WallTime when) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

}  // namespace

class ContainerAgent::Impl {
 public:
  Impl(coord::CoordApi& store, ContainerAgentOptions options)
      : store_(store), options_(std::move(options)), registry_(store, coord::CallOptions{std::chrono::milliseconds(3000)}) {}

  Status Start();
  void Stop();

 private:
  void Run();
  // Waits up to duration or until the records change (watch) or Stop. True when stopping.
  bool WaitOrStop(Duration duration);
  // Opens the watch on /cairn/containers/ when there is none (or it broke).
  void EnsureWatch();
  void OnWatch(const etcd::WatchResponse& response, uint64_t generation);
  void OnWatchFailed(uint64_t generation, const Status& status);
  // The records from the store when they may have changed (a watch event, no watch, resync_every
  // passed), else the ones read last. nullopt while the store cannot be read.
  std::optional<std::vector<ContainerRecord>> Records();
  void KeepHeartbeat();
  void DropHeartbeat();
  void ConvergeAll(const std::vector<ContainerRecord>& records, bool level);
  LiveContainer Observe(const std::string& name) const;
  void Converge(const ContainerRecord& record, bool fresh);
  void ConvergeAfterMaterialize(const std::string& name, bool fresh);
  void NoteDown(const ContainerRecord& record, const Decision& decision, const RestartBackoff& backoff);
  Status Perform(const ContainerRecord& record, const Decision& decision);
  void CountRestart(const std::string& name, const std::string& reason);
  void Report(const std::string& name, uint64_t generation, const std::string& state, const Status& outcome);
  void RecordAddresses(const std::vector<ContainerRecord>& records);
  void RefreshEndpoints();

  coord::CoordApi& store_;
  ContainerAgentOptions options_;
  CoordRegistry registry_;
  std::unique_ptr<ImageStore> images_;
  std::unique_ptr<LxcRuntime> runtime_;
  std::unique_ptr<ContainerService> service_;
  int64_t lease_id_ = 0;  // worker thread only
  std::chrono::steady_clock::time_point next_keepalive_{};
  std::map<std::string, RestartBackoff> backoffs_;  // worker thread only; per placed container

  std::unique_ptr<coord::WatchStream> watch_;           // worker thread only
  std::vector<ContainerRecord> records_;                // worker thread only: the last read
  std::chrono::steady_clock::time_point next_resync_{};  // worker thread only

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;         // GUARDED_BY(mu_)
  bool dirty_ = true;             // GUARDED_BY(mu_): the records may have changed since read
  bool watching_ = false;         // GUARDED_BY(mu_): the watch is open and delivering
  uint64_t watch_generation_ = 0; // GUARDED_BY(mu_): events of older watches are ignored
  std::thread worker_;
};

Status ContainerAgent::Impl::Start() {
  if (worker_.joinable()) return FailedPreconditionError("container agent already started");
  if (options_.node_name.empty()) return InvalidArgumentError("container agent needs a node name");
  if (options_.state_dir.empty()) return InvalidArgumentError("container agent needs a state directory");
  if (options_.unionmount.empty()) {
    // A host without unionmount (a store-only box, a partial build) still runs the store and its
    // bricks: it just takes no containers, and placement sees no live agent on it.
    Result<std::string> found = FindUnionmount();
    if (!found.ok()) {
      log::Warn("containers.agent_disabled", "node", options_.node_name, "reason", found.status().message());
      return Status::Ok();
    }
    options_.unionmount = *found;
  }
  mkdir(options_.state_dir.c_str(), 0700);  // Prepare makes it too; here so the path exists early
  if (!options_.image_volume.empty()) options_.layer_root = options_.volume_root + "/" + options_.image_volume;
  images_ = std::make_unique<ImageStore>(registry_, options_.layer_root, RealClock::Instance());
  if (!options_.image_volume.empty()) images_->set_verified_cache(options_.state_dir + "/.verified");
  runtime_ = std::make_unique<LxcRuntime>(options_.state_dir, options_.unionmount);
  service_ = std::make_unique<ContainerService>(registry_, *images_, *runtime_, options_.node_name, RealClock::Instance());
  VolumeMounting mounting;
  mounting.volume_root = options_.volume_root;
  mounting.cairn_mount = options_.cairn_mount;
  service_->set_volume_mounting(mounting);
  service_->set_image_volume(options_.image_volume);
  worker_ = std::thread([this] { Run(); });
  log::Info("containers.agent_started", "node", options_.node_name, "lxc_path", options_.state_dir, "layer_root",
            options_.layer_root);
  return Status::Ok();
}

void ContainerAgent::Impl::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

bool ContainerAgent::Impl::WaitOrStop(Duration duration) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, duration, [this] { return stopping_ || (dirty_ && watching_); });
  return stopping_;
}

// With the watch, a change wakes the agent at once and the store is read only then (and every
// resync_every); without one (it failed to open or broke) the records are read every poll.
void ContainerAgent::Impl::Run() {
  auto next_level = std::chrono::steady_clock::now();
  for (;;) {
    KeepHeartbeat();
    EnsureWatch();
    const auto now = std::chrono::steady_clock::now();
    const bool level = now >= next_level;
    std::optional<std::vector<ContainerRecord>> records = Records();
    if (records) ConvergeAll(*records, level);
    if (level) {
      if (records) RecordAddresses(*records);
      next_level = std::chrono::steady_clock::now() + options_.check_every;
    }
    bool watching;
    {
      std::lock_guard lock(mu_);
      watching = watching_;
    }
    Duration wait = options_.poll;
    if (watching) wait = std::max<Duration>(next_level - std::chrono::steady_clock::now(), Duration(0));
    if (WaitOrStop(wait)) break;
  }
  watch_.reset();  // no event arrives after this
  DropHeartbeat();
}

void ContainerAgent::Impl::EnsureWatch() {
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    if (watching_ && watch_) return;
    generation = ++watch_generation_;
  }
  watch_.reset();
  auto opened = store_.OpenWatchStream(
      [this, generation](const etcd::WatchResponse& response) { OnWatch(response, generation); });
  if (!opened.ok()) {
    log::Debug("containers.watch_failed", "error", opened.status().message());
    return;  // polling meanwhile; the next round tries again
  }
  watch_ = std::move(*opened);
  {
    std::lock_guard lock(mu_);
    watching_ = true;
  }
  etcd::WatchRequest request;
  auto* create = request.mutable_create_request();
  create->set_key(kContainerPrefix);
  std::string end = kContainerPrefix;
  end.back() = static_cast<char>(end.back() + 1);
  create->set_range_end(end);
  watch_->Handle(request, [this, generation](Result<bool> created) {
    if (!created.ok()) return OnWatchFailed(generation, created.status());
    // A change between the last read and the watcher's start is in no event: read once more.
    etcd::WatchResponse started;
    OnWatch(started, generation);
  });
}

// On a store thread: note and wake the worker, never block.
void ContainerAgent::Impl::OnWatch(const etcd::WatchResponse& response, uint64_t generation) {
  {
    std::lock_guard lock(mu_);
    if (generation != watch_generation_) return;
    dirty_ = true;
    if (response.canceled() || response.compact_revision() != 0) watching_ = false;
  }
  wake_.notify_all();
}

void ContainerAgent::Impl::OnWatchFailed(uint64_t generation, const Status& status) {
  {
    std::lock_guard lock(mu_);
    if (generation != watch_generation_) return;
    watching_ = false;
    dirty_ = true;
  }
  log::Debug("containers.watch_failed", "error", status.message());
  wake_.notify_all();
}

std::optional<std::vector<ContainerRecord>> ContainerAgent::Impl::Records() {
  const auto now = std::chrono::steady_clock::now();
  bool read;
  {
    std::lock_guard lock(mu_);
    read = dirty_ || !watching_ || now >= next_resync_;
    dirty_ = false;
  }
  if (!read) return records_;
  Result<std::vector<ContainerRecord>> records = ListContainers(registry_);
  if (!records.ok()) {
    std::lock_guard lock(mu_);
    dirty_ = true;  // read again next round
    return std::nullopt;  // the store is away: change nothing
  }
  records_ = std::move(*records);
  next_resync_ = now + options_.resync_every;
  return records_;
}

// The heartbeat key lives on a lease this agent keeps alive: when the host dies it goes a TTL
// later and clusterctl stops placing containers there.
void ContainerAgent::Impl::KeepHeartbeat() {
  auto now = std::chrono::steady_clock::now();
  if (lease_id_ != 0 && now < next_keepalive_) return;
  const std::chrono::milliseconds limit(3000);
  if (lease_id_ != 0) {
    etcd::LeaseKeepAliveRequest request;
    request.set_id(lease_id_);
    auto kept = Wait<etcd::LeaseKeepAliveResponse>(
        [&](auto done) { store_.LeaseKeepAlive(request, coord::CallOptions{limit}, done); }, limit);
    if (kept.ok() && kept->ttl() > 0) {
      next_keepalive_ = now + options_.heartbeat_ttl / 3;
      return;
    }
    lease_id_ = 0;  // expired or unknown: a new lease and key
  }
  etcd::LeaseGrantRequest grant;
  grant.set_ttl(options_.heartbeat_ttl.count());
  auto granted = Wait<etcd::LeaseGrantResponse>(
      [&](auto done) { store_.LeaseGrant(grant, coord::CallOptions{limit}, done); }, limit);
  if (!granted.ok()) return;  // no store yet: next round
  etcd::PutRequest put;
  put.set_key(kAgentPrefix + options_.node_name);
  put.set_value("{\"node\":\"" + options_.node_name + "\",\"lxc_path\":\"" + options_.state_dir + "\"}");
  put.set_lease(granted->id());
  auto written = Wait<etcd::PutResponse>([&](auto done) { store_.Put(put, coord::CallOptions{limit}, done); }, limit);
  if (!written.ok()) return;
  lease_id_ = granted->id();
  next_keepalive_ = now + options_.heartbeat_ttl / 3;
}

void ContainerAgent::Impl::DropHeartbeat() {
  if (lease_id_ == 0) return;
  const std::chrono::milliseconds limit(1000);
  etcd::LeaseRevokeRequest request;
  request.set_id(lease_id_);
  (void)Wait<etcd::LeaseRevokeResponse>([&](auto done) { store_.LeaseRevoke(request, coord::CallOptions{limit}, done); },
                                        limit);
  lease_id_ = 0;
}

// Every round acts on the generations it has not observed; a level round (every check_every)
// also looks at every container placed here and converges the ones that drifted.
void ContainerAgent::Impl::ConvergeAll(const std::vector<ContainerRecord>& records, bool level) {
  std::set<std::string> placed;
  for (const ContainerRecord& record : records) {
    if (record.host() != options_.node_name || record.desired().empty()) continue;
    placed.insert(record.name());
    const bool fresh = record.observed_generation() < record.generation();
    if (!fresh && !level) continue;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    Converge(record, fresh);
  }
  // Records that are gone take their backoff with them.
  for (auto it = backoffs_.begin(); it != backoffs_.end();) {
    it = placed.count(it->first) > 0 ? std::next(it) : backoffs_.erase(it);
  }
}

LiveContainer ContainerAgent::Impl::Observe(const std::string& name) const {
  LiveContainer live;
  Result<std::string> state = runtime_->State(name);
  live.defined = state.ok();
  live.lxc_state = state.value_or("");
  live.rootfs_alive = live.defined && runtime_->RootfsAlive(name);
  return live;
}

void ContainerAgent::Impl::RefreshEndpoints() {
  const std::chrono::milliseconds limit(3000);
  etcd::MemberListRequest request;
  auto members = Wait<etcd::MemberListResponse>(
      [&](auto done) { store_.MemberList(request, coord::CallOptions{limit}, done); }, limit);
  if (!members.ok()) return;
  VolumeMounting mounting;
  mounting.volume_root = options_.volume_root;
  mounting.cairn_mount = options_.cairn_mount;
  for (const etcd::Member& member : members->members()) {
    for (const std::string& url : member.clienturls()) mounting.endpoints.push_back(HostPortOfUrl(url));
  }
  service_->set_volume_mounting(mounting);
}

void ContainerAgent::Impl::Converge(const ContainerRecord& record, bool fresh) {
  const std::string& name = record.name();
  RestartBackoff& backoff = backoffs_.try_emplace(name, options_.restart_backoff).first->second;
  if (fresh) {
    backoff.Reset();  // the operator asked for something: act now, whatever failed before
    log::Info("containers.converge", "name", name, "desired", record.desired(), "state", record.state(), "generation",
              record.generation());
  }
  Decision decision = Decide(record, Observe(name));
  const TimePoint now = options_.clock->Now();
  if (decision.step == Step::kNothing) {
    if (record.desired() != kDesiredCreated) backoff.NoteUp(now);
    if (fresh || !decision.record_state.empty()) Report(name, record.generation(), decision.record_state, Status::Ok());
    return;
  }
  if (decision.restart && backoff.NoteDown(now)) NoteDown(record, decision, backoff);
  if (!fresh && !backoff.Due(now)) return;  // backing off: a later round tries again
  Status outcome = Perform(record, decision);
  if (outcome.ok()) {
    // Made: what else the record wants (a start) is the next decision, in this round.
    if (decision.step == Step::kMaterialize) return ConvergeAfterMaterialize(name, fresh);
    backoff.NoteUp(options_.clock->Now());
    if (fresh) Report(name, record.generation(), "", outcome);
    return;
  }
  backoff.AttemptFailed(options_.clock->Now());
  std::string retry = "; next attempt in " + Seconds(backoff.current());
  if (decision.restart) retry += " (restart " + std::to_string(record.restarts() + 1) + ")";
  Report(name, fresh ? record.generation() : 0, "failed", Status(outcome.code(), outcome.message() + retry));
}

void ContainerAgent::Impl::ConvergeAfterMaterialize(const std::string& name, bool fresh) {
  Result<std::optional<ContainerRecord>> made = GetContainer(registry_, name);
  if (!made.ok() || !made->has_value()) return;
  Converge(**made, fresh);
}

// A container found down that should run: recorded failed with the reason (visible in container
// list/show and clusterctl status until the restart succeeds). A running container whose union
// died is killed now: its processes see no root file system.
void ContainerAgent::Impl::NoteDown(const ContainerRecord& record, const Decision& decision,
                                   const RestartBackoff& backoff) {
  const std::string& name = record.name();
  log::Warn("containers.down", "name", name, "reason", decision.reason, "restart_in_ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(backoff.current()).count());
  if (decision.reason == "union process died") (void)runtime_->Stop(name, std::chrono::seconds(0));
  std::string error = decision.reason + "; restarting in " + Seconds(backoff.current()) + " (restart " +
                      std::to_string(record.restarts() + 1) + ")";
  Report(name, 0, "failed", UnavailableError(error));
}

Status ContainerAgent::Impl::Perform(const ContainerRecord& record, const Decision& decision) {
  const std::string& name = record.name();
  const auto timeout = options_.operation_timeout;
  const std::chrono::seconds grace(record.grace_seconds() > 0 ? record.grace_seconds() : 10);
  log::Info("containers.step", "name", name, "step", StepName(decision.step), "reason", decision.reason);
  if (record.volumes_size() > 0 || !options_.image_volume.empty()) RefreshEndpoints();
  switch (decision.step) {
    case Step::kNothing: return Status::Ok();
    case Step::kMaterialize: return service_->Materialize(name, timeout);
    case Step::kStop: return service_->Stop(name, grace);
    case Step::kRemove: return service_->Remove(name, true, grace);  // deletes the record on success
    case Step::kStart: break;
  }
  if (decision.restart) CountRestart(name, decision.reason);
  Result<std::string> live = runtime_->State(name);
  if (live.ok() && *live != "STOPPED") (void)runtime_->Stop(name, std::chrono::seconds(0));  // a dead union's
  return service_->Start(name, timeout);
}

void ContainerAgent::Impl::CountRestart(const std::string& name, const std::string& reason) {
  std::string when = FormatUtc(options_.clock->WallNow());
  Status saved = UpdateContainer(registry_, name, [&](ContainerRecord& record) {
    record.set_restarts(record.restarts() + 1);
    record.set_last_failure(when + ": " + reason);
    return Status::Ok();
  });
  if (!saved.ok()) log::Info("containers.report_failed", "name", name, "error", saved.message());
}

// Writes what the agent found or did: generation (when not 0) as observed, state when not empty,
// and the error (cleared on success).
void ContainerAgent::Impl::Report(const std::string& name, uint64_t generation, const std::string& state,
                                  const Status& outcome) {
  Status saved = UpdateContainer(registry_, name, [&](ContainerRecord& record) {
    record.set_observed_generation(std::max(record.observed_generation(), generation));
    if (!state.empty()) record.set_state(state);
    if (!outcome.ok()) record.set_error(outcome.message());
    if (outcome.ok() && !state.empty()) record.set_error("");
    return Status::Ok();
  });
  if (!outcome.ok()) log::Info("containers.converge_failed", "name", name, "error", outcome.message());
  if (!saved.ok() && saved.code() != StatusCode::kNotFound) {
    log::Info("containers.report_failed", "name", name, "error", saved.message());
  }
}

// The IPs of the running containers placed here, for container list on other hosts.
void ContainerAgent::Impl::RecordAddresses(const std::vector<ContainerRecord>& records) {
  for (const ContainerRecord& record : records) {
    if (record.host() != options_.node_name || record.container_dir() != runtime_->ContainerDir(record.name())) continue;
    std::string ip = record.state() == "running" ? runtime_->Addresses(record.name()) : "";
    if (ip == record.ip()) continue;
    (void)UpdateContainer(registry_, record.name(), [&](ContainerRecord& current) {
      current.set_ip(ip);
      return Status::Ok();
    });
  }
}

ContainerAgent::ContainerAgent(boost::asio::io_context& io, coord::CoordApi& store, ContainerAgentOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {
  (void)io;
}

ContainerAgent::~ContainerAgent() { Stop(); }

Status ContainerAgent::Start() { return impl_->Start(); }

void ContainerAgent::Stop() { impl_->Stop(); }

}  // namespace cairn::containers
