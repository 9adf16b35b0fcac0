#include "cairn/mounts/mount_agent.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "cairn/clusterspec/records.h"
#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/mounts/mount_process.h"

namespace cairn::mounts {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Waits for one asynchronous CoordApi answer (the agent thread may block; callbacks may not).
template <typename T, typename Call>
Result<T> Await(Call call, std::chrono::milliseconds deadline) {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  auto future = promise->get_future();
  call(coord::CallOptions{deadline}, [promise](Result<T> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(deadline + std::chrono::seconds(1)) != std::future_status::ready) {
    return DeadlineExceededError("the store did not answer");
  }
  return future.get();
}

std::string ExecutableDirectory() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string();
  return path.substr(0, path.rfind('/'));
}

// What the agent tracks per mount path.
struct Work {
  clusterspec::MountRecord record;  // what runs (or is to run)
  pid_t pid = 0;
  bool ever_started = false;
  SteadyClock::time_point started_at{};
  SteadyClock::time_point next_attempt{};
  std::chrono::milliseconds backoff{0};
  MountReport report;
  std::string reported;  // the status JSON last written to the store
};

}  // namespace

class MountAgent::Impl {
 public:
  Impl(coord::CoordApi& store, MountAgentOptions options) : store_(store), options_(std::move(options)) {}

  Status Start() {
    if (options_.node_name.empty()) return InvalidArgumentError("mount agent: node_name is empty");
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return FailedPreconditionError("mount agent already started");
    stopping_ = false;
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  std::vector<MountReport> Mounts() const {
    std::lock_guard lock(mu_);
    std::vector<MountReport> out;
    for (const auto& [path, work] : work_) out.push_back(work.report);
    return out;
  }

 private:
  void Run() {
    Adopt();
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      Reconcile();
      lock.lock();
      wake_.wait_for(lock, options_.tick, [this] { return stopping_; });
    }
  }

  // Processes a previous clusterd started: taken over as they are when still alive.
  void Adopt() {
    if (options_.state_dir.empty()) return;
    for (const MountState& state : LoadAllStates(options_.state_dir)) {
      Work work;
      work.record.set_host(options_.node_name);
      work.record.set_path(state.path);
      work.record.set_volume(state.volume);
      work.record.set_options(state.options);
      work.report.path = state.path;
      work.report.volume = state.volume;
      work.report.restarts = state.restarts;
      work.ever_started = true;  // a new process for it is a restart
      std::string why;
      if (ProcessAlive(state.pid, &why) && CommandLineOf(state.pid).find(state.path) != std::string::npos) {
        work.pid = state.pid;
        work.started_at = SteadyClock::now();
        work.report.state = "starting";
        work.report.pid = state.pid;
        log::Info("mount.adopted", "path", state.path, "volume", state.volume, "pid", state.pid);
      }
      std::lock_guard lock(mu_);
      work_[state.path] = std::move(work);
    }
  }

  Result<std::map<std::string, clusterspec::MountRecord>> Desired() {
    etcd::RangeRequest request;
    std::string prefix = clusterspec::HostMountsPrefix(options_.node_name);
    request.set_key(prefix);
    request.set_range_end(prefix.substr(0, prefix.size() - 1) + static_cast<char>('/' + 1));
    CAIRN_ASSIGN_OR_RETURN(auto response, Await<etcd::RangeResponse>(
                                              [&](const coord::CallOptions& o, coord::Done<etcd::RangeResponse> done) {
                                                store_.Range(request, o, std::move(done));
                                              },
                                              options_.store_deadline));
    std::map<std::string, clusterspec::MountRecord> desired;
    for (const etcd::KeyValue& kv : response.kvs()) {
      clusterspec::MountRecord record;
      Status parsed = clusterspec::ParseRecord(kv.key(), kv.value(), &record);
      if (!parsed.ok() || record.path().empty() || record.path()[0] != '/') {
        log::Warn("mount.bad_record", "key", kv.key(), "error", parsed.ok() ? "path is not absolute" : parsed.message());
        continue;
      }
      desired[record.path()] = record;
    }
    return desired;
  }

  void Reconcile() {
    auto desired = Desired();
    if (!desired.ok()) {
      log::Debug("mount.store_unreadable", "error", desired.status().message());
      return;  // change nothing while the store cannot say what is wanted
    }
    std::vector<std::string> gone;
    {
      std::lock_guard lock(mu_);
      for (const auto& [path, work] : work_) {
        if (desired->count(path) == 0) gone.push_back(path);
      }
    }
    for (const std::string& path : gone) Remove(path);
    for (const auto& [path, record] : *desired) Converge(record);
  }

  Work Snapshot(const std::string& path) {
    std::lock_guard lock(mu_);
    return work_[path];
  }

  void Save(const Work& work) {
    std::lock_guard lock(mu_);
    work_[work.record.path()] = work;
  }

  void Converge(const clusterspec::MountRecord& record) {
    Work work = Snapshot(record.path());
    bool changed = work.record.volume() != record.volume() || work.record.options() != record.options();
    if (work.pid > 0 && changed) {
      log::Info("mount.changed", "path", record.path(), "volume", record.volume(), "options", record.options());
      Terminate(work);
    }
    work.record = record;
    work.report.path = record.path();
    work.report.volume = record.volume();
    if (work.pid > 0) {
      Check(work);
    }
    if (work.pid == 0 && SteadyClock::now() >= work.next_attempt) Launch(work);
    if (work.pid == 0 && work.report.state != "failed") work.report.state = "backoff";
    Publish(work);
    Save(work);
  }

  // A running process: is it alive, is its mount there and answering?
  void Check(Work& work) {
    const std::string& path = work.record.path();
    std::string why;
    if (!ProcessAlive(work.pid, &why)) {
      Failed(work, "cairn-mount " + why + LogTail(path));
      return;
    }
    auto fstype = MountTypeAt(path);
    if (!fstype || !IsFuseType(*fstype)) {
      if (SteadyClock::now() - work.started_at > options_.start_timeout) {
        ::kill(work.pid, SIGKILL);
        Failed(work, "not mounted " + std::to_string(options_.start_timeout.count() / 1000) + " s after start" +
                         LogTail(path));
      } else {
        work.report.state = "starting";
      }
      return;
    }
    Status probe = RunWithTimeout([path] { return ProbeMount(path); }, options_.probe_timeout);
    if (probe.code() == StatusCode::kDeadlineExceeded) {
      work.report.state = "unresponsive";
      work.report.last_error = "statfs " + path + ": " + probe.message();
      return;
    }
    if (!probe.ok()) {
      ::kill(work.pid, SIGKILL);
      Failed(work, probe.message());
      return;
    }
    if (work.report.state != "mounted") log::Info("mount.mounted", "path", path, "volume", work.record.volume(), "pid", work.pid);
    work.report.state = "mounted";
    work.backoff = std::chrono::milliseconds(0);
  }

  void Failed(Work& work, const std::string& error) {
    log::Warn("mount.failed", "path", work.record.path(), "volume", work.record.volume(), "pid", work.pid, "error", error);
    work.pid = 0;
    work.report.pid = 0;
    work.report.state = "failed";
    work.report.last_error = error;
    work.backoff = std::clamp(work.backoff * 2, options_.backoff_initial, options_.backoff_max);
    work.next_attempt = SteadyClock::now() + work.backoff;
  }

  std::string LogPath(const std::string& path) const {
    return options_.state_dir.empty() ? "/dev/null" : options_.state_dir + "/" + StateFileName(path) + ".log";
  }

  // The last line cairn-mount wrote, which usually says why it stopped.
  std::string LogTail(const std::string& path) const {
    std::ifstream in(LogPath(path));
    std::string line, last;
    while (std::getline(in, line)) {
      if (!Trim(line).empty()) last = line;
    }
    return last.empty() ? "" : " (its log: " + last + ")";
  }

  Result<std::string> Program() const {
    if (!options_.mount_program.empty()) return options_.mount_program;
    if (const char* env = std::getenv("CAIRN_MOUNT"); env != nullptr && *env != '\0') return std::string(env);
    std::string candidate = ExecutableDirectory() + "/cairn-mount";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    return NotFoundError("cairn-mount not found next to clusterd (" + candidate + "); set CAIRN_MOUNT");
  }

  Result<std::string> Endpoints() {
    std::vector<std::string> list = options_.endpoints;
    if (list.empty()) {
      auto members = Await<etcd::MemberListResponse>(
          [&](const coord::CallOptions& o, coord::Done<etcd::MemberListResponse> done) {
            store_.MemberList(etcd::MemberListRequest(), o, std::move(done));
          },
          options_.store_deadline);
      if (members.ok()) {
        for (bool own : {true, false}) {
          for (const etcd::Member& member : members->members()) {
            if ((member.name() == options_.node_name) != own) continue;
            for (const std::string& url : member.clienturls()) list.push_back(url);
          }
        }
      }
    }
    if (list.empty()) {
      if (const char* env = std::getenv("CAIRN_ENDPOINTS"); env != nullptr && *env != '\0') list.push_back(env);
    }
    if (list.empty()) return UnavailableError("no store client address is known (no member publishes one)");
    std::string joined;
    for (std::string entry : list) {
      for (std::string_view scheme : {"http://", "https://"}) {
        if (entry.starts_with(scheme)) entry = entry.substr(scheme.size());
      }
      joined += (joined.empty() ? "" : ",") + entry;
    }
    return joined;
  }

  // Starts cairn-mount for work.record; on failure schedules the next attempt.
  void Launch(Work& work) {
    const std::string& path = work.record.path();
    auto fstype = MountTypeAt(path);
    if (fstype && IsFuseType(*fstype)) {
      // A mount whose server died (ENOTCONN), or one nobody here started: detach it first.
      Status detached = DetachMount(path);
      if (!detached.ok()) return Failed(work, "detaching the dead mount: " + detached.message());
      log::Info("mount.detached_dead", "path", path);
    }
    std::error_code error;
    std::filesystem::create_directories(path, error);
    auto program = Program();
    if (!program.ok()) return Failed(work, program.status().message());
    auto endpoints = Endpoints();
    if (!endpoints.ok()) return Failed(work, endpoints.status().message());
    std::string mount_options = "host=" + options_.node_name;
    if (!work.record.options().empty()) mount_options += "," + work.record.options();
    if (!options_.state_dir.empty()) std::filesystem::create_directories(options_.state_dir, error);
    auto pid = SpawnDetached({*program, work.record.volume(), path, "--endpoints", *endpoints, "-f", "-o", mount_options},
                             LogPath(path));
    if (!pid.ok()) return Failed(work, pid.status().message());
    if (work.ever_started) ++work.report.restarts;
    work.ever_started = true;
    work.pid = *pid;
    work.started_at = SteadyClock::now();
    work.report.pid = *pid;
    work.report.state = "starting";
    log::Info("mount.started", "path", path, "volume", work.record.volume(), "pid", *pid, "restarts", work.report.restarts);
    if (!options_.state_dir.empty()) {
      Status saved = SaveState(options_.state_dir, {*pid, work.record.volume(), work.record.options(), path, work.report.restarts});
      if (!saved.ok()) log::Warn("mount.state_not_saved", "path", path, "error", saved.message());
    }
  }

  // Unmounts and ends the process (the mount first, so the FUSE server sees its session end).
  void Terminate(Work& work) {
    const std::string& path = work.record.path();
    auto fstype = MountTypeAt(path);
    if (fstype && IsFuseType(*fstype)) {
      Status detached = DetachMount(path);
      if (!detached.ok()) log::Warn("mount.unmount_failed", "path", path, "error", detached.message());
    }
    if (work.pid > 0 && ProcessAlive(work.pid, nullptr)) ::kill(work.pid, SIGTERM);
    ProcessAlive(work.pid, nullptr);  // reaps it if it already ended
    work.pid = 0;
    work.report.pid = 0;
    work.ever_started = false;
    if (!options_.state_dir.empty()) RemoveState(options_.state_dir, path);
  }

  void Remove(const std::string& path) {
    Work work = Snapshot(path);
    log::Info("mount.removed", "path", path, "volume", work.record.volume(), "pid", work.pid);
    Terminate(work);
    etcd::DeleteRangeRequest request;
    request.set_key(clusterspec::MountStatusKey(options_.node_name, path));
    auto deleted = Await<etcd::DeleteRangeResponse>(
        [&](const coord::CallOptions& o, coord::Done<etcd::DeleteRangeResponse> done) {
          store_.DeleteRange(request, o, std::move(done));
        },
        options_.store_deadline);
    if (!deleted.ok()) log::Warn("mount.status_not_deleted", "path", path, "error", deleted.status().message());
    std::lock_guard lock(mu_);
    work_.erase(path);
  }

  // Writes the status record when what it says changed.
  void Publish(Work& work) {
    clusterspec::MountStatus status;
    status.set_host(options_.node_name);
    status.set_path(work.record.path());
    status.set_volume(work.record.volume());
    status.set_state(work.report.state);
    status.set_pid(work.report.pid);
    status.set_restarts(work.report.restarts);
    status.set_last_error(work.report.last_error);
    std::string json = clusterspec::RecordJson(status);
    if (json == work.reported) return;
    status.set_updated_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count());
    etcd::PutRequest request;
    request.set_key(clusterspec::MountStatusKey(options_.node_name, work.record.path()));
    request.set_value(clusterspec::RecordJson(status));
    auto put = Await<etcd::PutResponse>(
        [&](const coord::CallOptions& o, coord::Done<etcd::PutResponse> done) { store_.Put(request, o, std::move(done)); },
        options_.store_deadline);
    if (put.ok()) work.reported = json;  // else retried next tick
  }

  coord::CoordApi& store_;
  MountAgentOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                 // GUARDED_BY(mu_)
  std::map<std::string, Work> work_;      // GUARDED_BY(mu_); by mount path
  std::thread thread_;
};

MountAgent::MountAgent(boost::asio::io_context& /*io*/, coord::CoordApi& store, MountAgentOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

MountAgent::~MountAgent() { Stop(); }

Status MountAgent::Start() { return impl_->Start(); }

void MountAgent::Stop() { impl_->Stop(); }

std::vector<MountReport> MountAgent::Mounts() const { return impl_->Mounts(); }

}  // namespace cairn::mounts
