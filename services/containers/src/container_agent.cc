#include "cairn/containers/container_agent.h"

#include <sys/stat.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "cairn/common/logging.h"
#include "cairn/containers/containers.h"
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

}  // namespace

class ContainerAgent::Impl {
 public:
  Impl(coord::CoordApi& store, ContainerAgentOptions options)
      : store_(store), options_(std::move(options)), registry_(store, coord::CallOptions{std::chrono::milliseconds(3000)}) {}

  Status Start();
  void Stop();

 private:
  void Run();
  bool WaitOrStop(Duration duration);
  void KeepHeartbeat();
  void DropHeartbeat();
  void ConvergeAll();
  void Converge(const ContainerRecord& record);
  void Report(const std::string& name, uint64_t generation, const Status& outcome);
  void Check();
  void RefreshEndpoints();

  coord::CoordApi& store_;
  ContainerAgentOptions options_;
  CoordRegistry registry_;
  std::unique_ptr<ImageStore> images_;
  std::unique_ptr<LxcRuntime> runtime_;
  std::unique_ptr<ContainerService> service_;
  int64_t lease_id_ = 0;  // worker thread only
  std::chrono::steady_clock::time_point next_keepalive_{};

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
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
  return wake_.wait_for(lock, duration, [this] { return stopping_; });
}

void ContainerAgent::Impl::Run() {
  auto next_check = std::chrono::steady_clock::now();
  for (;;) {
    KeepHeartbeat();
    ConvergeAll();
    if (std::chrono::steady_clock::now() >= next_check) {
      Check();
      next_check = std::chrono::steady_clock::now() + options_.check_every;
    }
    if (WaitOrStop(options_.poll)) break;
  }
  DropHeartbeat();
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

void ContainerAgent::Impl::ConvergeAll() {
  Result<std::vector<ContainerRecord>> records = ListContainers(registry_);
  if (!records.ok()) return;  // the store is away: next round
  for (const ContainerRecord& record : *records) {
    if (record.host() != options_.node_name || record.desired().empty()) continue;
    if (record.observed_generation() >= record.generation()) continue;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    Converge(record);
  }
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

void ContainerAgent::Impl::Converge(const ContainerRecord& record) {
  const std::string& name = record.name();
  const uint64_t generation = record.generation();
  const auto timeout = options_.operation_timeout;
  const std::chrono::seconds grace(record.grace_seconds() > 0 ? record.grace_seconds() : 10);
  log::Info("containers.converge", "name", name, "desired", record.desired(), "state", record.state(), "generation",
            generation);
  if (record.volumes_size() > 0 || !options_.image_volume.empty()) RefreshEndpoints();
  if (record.desired() == kDesiredRemoved) {
    Status removed = service_->Remove(name, true, grace);  // deletes the record on success
    if (!removed.ok()) Report(name, generation, removed);
    log::Info("containers.removed", "name", name, "ok", removed.ok(), "error", removed.message());
    return;
  }
  Status outcome = Status::Ok();
  if (record.state() == kStatePending) outcome = service_->Materialize(name, timeout);
  if (outcome.ok() && record.desired() == kDesiredRunning) {
    Result<std::string> live = runtime_->State(name);
    if (!live.ok() || *live != "RUNNING" || !runtime_->RootfsAlive(name)) {
      if (live.ok() && *live == "RUNNING") (void)runtime_->Stop(name, std::chrono::seconds(0));
      outcome = service_->Start(name, timeout);
    }
  } else if (outcome.ok() && record.desired() == kDesiredStopped) {
    outcome = service_->Stop(name, grace);
  }
  Report(name, generation, outcome);
}

// Records that generation was acted on, with the failure if there was one (the service already
// recorded running / stopped / created on success).
void ContainerAgent::Impl::Report(const std::string& name, uint64_t generation, const Status& outcome) {
  Status saved = UpdateContainer(registry_, name, [&](ContainerRecord& record) {
    record.set_observed_generation(std::max(record.observed_generation(), generation));
    if (!outcome.ok()) {
      record.set_state("failed");
      record.set_error(outcome.message());
    }
    return Status::Ok();
  });
  if (!outcome.ok()) log::Info("containers.converge_failed", "name", name, "error", outcome.message());
  if (!saved.ok()) log::Info("containers.report_failed", "name", name, "error", saved.message());
}

void ContainerAgent::Impl::Check() {
  Result<std::vector<std::string>> changes = ReconcileHost(*service_, *runtime_, registry_);
  if (changes.ok()) {
    for (const std::string& change : *changes) log::Info("containers.reconciled", "change", change);
  }
  Result<std::vector<ContainerRecord>> records = ListContainers(registry_);
  if (!records.ok()) return;
  for (const ContainerRecord& record : *records) {
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
