#include "volume_view.h"

#include <algorithm>

#include "cairn/common/logging.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"

namespace cairn::volumemount {
namespace {

using namespace std::chrono_literals;

// Short deadlines: the records are small, and a member that does not answer within them is
// better left for the next one (the watch and every re-read move on after a failure).
etcdclient::ClientOptions StoreOptions() {
  return etcdclient::ClientOptions{.timeout = 2s, .connect_timeout = 500ms};
}

// "host" of a brick id "host:/path" ("[v6]:/path" keeps its brackets; only compared for equality).
std::string HostOf(const std::string& brick_id) {
  size_t colon = brick_id.find(":/");
  return colon == std::string::npos ? brick_id : brick_id.substr(0, colon);
}

}  // namespace

StoreConnection::StoreConnection(std::vector<HostPort> endpoints) : endpoints_(std::move(endpoints)) { Connect(); }

void StoreConnection::Connect() {
  std::vector<HostPort> order;
  for (size_t i = 0; i < endpoints_.size(); ++i) order.push_back(endpoints_[(first_ + i) % endpoints_.size()]);
  client_ = std::make_unique<etcdclient::EtcdClient>(std::move(order), StoreOptions());
}

void StoreConnection::Failed() {
  if (endpoints_.size() < 2) return;  // keep the connection: nothing else to try
  first_ = (first_ + 1) % endpoints_.size();
  Connect();
}

VolumeView::VolumeView(std::string volume, std::vector<HostPort> endpoints, std::string local_host)
    : volume_(std::move(volume)),
      prefix_(volume::VolumePrefix(volume_)),
      endpoints_(std::move(endpoints)),
      local_host_(std::move(local_host)),
      refresh_store_(endpoints_) {}

VolumeView::~VolumeView() { Stop(); }

Status VolumeView::ReadAll(StoreConnection& store, int64_t* revision) {
  etcd::RangeRequest range;
  range.set_key(prefix_);
  range.set_range_end(volume::PrefixRangeEnd(prefix_));
  Result<etcd::RangeResponse> read = store.client().Range(range);
  if (!read.ok()) store.Failed();
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse reply, std::move(read));
  std::map<std::string, std::string> records;
  for (const auto& kv : reply.kvs()) records[kv.key()] = kv.value();
  std::lock_guard lock(mu_);
  if (reply.header().revision() < revision_) return Status::Ok();  // the watch already knows more
  records_ = std::move(records);
  revision_ = reply.header().revision();
  *revision = revision_;
  Rebuild();
  return Status::Ok();
}

Status VolumeView::Load() {
  int64_t revision = 0;
  {
    // Each endpoint gets a turn: the first one may be a member that accepts but never answers.
    std::lock_guard lock(refresh_mu_);
    Status read;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      read = ReadAll(refresh_store_, &revision);
      if (read.ok() || (read.code() != StatusCode::kUnavailable && read.code() != StatusCode::kDeadlineExceeded)) break;
    }
    CAIRN_RETURN_IF_ERROR(read);
  }
  std::lock_guard lock(mu_);
  auto spec = records_.find(volume::SpecKey(volume_));
  if (spec == records_.end()) return NotFoundError("volume " + volume_ + " does not exist");
  if (spec_.name() != volume_) return CorruptionError("the spec of volume " + volume_ + " does not parse or is invalid");
  if (spec_.state() != vpb::VOLUME_STARTED) {
    return FailedPreconditionError("volume " + volume_ + " is not started (clusterctl volume start " + volume_ + ")");
  }
  return Status::Ok();
}

Status VolumeView::Refresh() {
  int64_t revision = 0;
  std::lock_guard lock(refresh_mu_);
  return ReadAll(refresh_store_, &revision);
}

// Derives spec, set states and addresses from the raw records. A record that does not parse is
// skipped with a warning (the previous spec stays): a bad write must not take the mount down.
void VolumeView::Rebuild() {
  std::map<uint32_t, vpb::ReplicaSetState> states;
  std::map<std::string, std::string> addresses;
  const std::string sets = prefix_ + "sets/";
  const std::string bricks = prefix_ + "bricks/";
  for (const auto& [key, value] : records_) {
    if (key == volume::SpecKey(volume_)) {
      vpb::VolumeSpec spec;
      if (spec.ParseFromString(value) && volume::ValidateVolumeSpec(spec).ok()) {
        spec_ = std::move(spec);
      } else {
        log::Warn("mount.bad_spec", "volume", volume_);
      }
    } else if (key.rfind(sets, 0) == 0 && key.find('/', sets.size()) == std::string::npos) {
      vpb::ReplicaSetState state;
      if (state.ParseFromString(value)) {
        states[state.set_id()] = std::move(state);
      } else {
        log::Warn("mount.bad_set_record", "key", key);
      }
    } else if (key.rfind(bricks, 0) == 0) {
      addresses[key.substr(bricks.size())] = value;
    }
  }
  states_ = std::move(states);
  addresses_ = std::move(addresses);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  changed_.notify_all();
}

vpb::VolumeSpec VolumeView::Spec() const {
  std::lock_guard lock(mu_);
  return spec_;
}

SetRoute VolumeView::RouteLocked(uint32_t set_id) const {
  SetRoute route;
  route.set_id = set_id;
  auto found = states_.find(set_id);
  if (found == states_.end()) {
    route.mode = vpb::REPLICA_SET_NO_QUORUM_EIO;
    return route;
  }
  const vpb::ReplicaSetState& state = found->second;
  route.epoch = state.epoch();
  route.mode = state.mode();
  auto address = [&](const std::string& brick) {
    auto it = addresses_.find(brick);
    return it == addresses_.end() ? std::string() : it->second;
  };
  if (state.mode() == vpb::REPLICA_SET_NO_QUORUM_READONLY) {
    if (!address(state.read_source()).empty()) route.readers.push_back(address(state.read_source()));
    return route;
  }
  route.primary = address(state.primary());
  std::vector<std::string> local, remote;
  for (const std::string& brick : state.in_sync()) {
    std::string at = address(brick);
    if (at.empty() || brick == state.primary()) continue;
    (HostOf(brick) == local_host_ ? local : remote).push_back(at);
  }
  // The primary counts as local too when it is on this host.
  if (!route.primary.empty() && HostOf(state.primary()) == local_host_) local.insert(local.begin(), route.primary);
  route.readers = local;
  route.readers.insert(route.readers.end(), remote.begin(), remote.end());
  if (!route.primary.empty() && std::find(route.readers.begin(), route.readers.end(), route.primary) == route.readers.end()) {
    route.readers.push_back(route.primary);
  }
  return route;
}

SetRoute VolumeView::Route(uint32_t set_id) const {
  std::lock_guard lock(mu_);
  return RouteLocked(set_id);
}

bool VolumeView::WaitForChange(uint32_t set_id, const SetRoute& used, TimePoint deadline) {
  std::unique_lock lock(mu_);
  return changed_.wait_until(lock, deadline, [&] { return stopping_ || !(RouteLocked(set_id) == used); }) &&
         !stopping_;
}

void VolumeView::StartWatching() {
  if (watcher_.joinable()) return;
  watcher_ = std::thread([this] { WatchLoop(); });
}

void VolumeView::Stop() {
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    changed_.notify_all();
  }
  if (watcher_.joinable()) watcher_.join();
}

// Watches the prefix in slices of one second (so Stop is heard soon), resuming after the last
// revision seen. A compacted start revision or a broken store connection leads to a full re-read
// from the next endpoint. Each slice starts a new watch, so a member that went silent (its stream
// just stops delivering) is noticed within a slice: the new watch is not answered in time.
void VolumeView::WatchLoop() {
  StoreConnection store(endpoints_);
  int64_t next = 0;
  {
    std::lock_guard lock(mu_);
    next = revision_ + 1;
  }
  bool reread = false;
  while (!stopping_) {
    if (reread) {
      int64_t revision = 0;
      Status read = ReadAll(store, &revision);
      if (!read.ok()) {
        log::Warn("mount.store_unreachable", "volume", volume_, "error", read.message());
        for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(50ms);  // retry pause
        continue;
      }
      std::lock_guard lock(mu_);
      next = revision_ + 1;
      reread = false;
    }
    etcd::WatchCreateRequest request;
    request.set_key(prefix_);
    request.set_range_end(volume::PrefixRangeEnd(prefix_));
    request.set_start_revision(next);
    Status watched = store.client().Watch(
        request,
        [&](const etcd::WatchResponse& response) {
          if (response.events_size() > 0) {
            std::lock_guard lock(mu_);
            for (const etcd::Event& event : response.events()) {
              if (event.type() == etcd::Event::DELETE) {
                records_.erase(event.kv().key());
              } else {
                records_[event.kv().key()] = event.kv().value();
              }
              next = std::max(next, event.kv().mod_revision() + 1);
              revision_ = std::max(revision_, event.kv().mod_revision());
            }
            Rebuild();
          }
          return !stopping_;
        },
        std::chrono::steady_clock::now() + 1s);
    if (!watched.ok()) {
      log::Warn("mount.watch_failed", "volume", volume_, "error", watched.message());
      store.Failed();
      reread = true;
    }
  }
}

}  // namespace cairn::volumemount
