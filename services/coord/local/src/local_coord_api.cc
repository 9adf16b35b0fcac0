#include "cairn/coord/local_coord_api.h"

#include <algorithm>
#include <sstream>
#include <utility>

namespace cairn::coord {
namespace {

constexpr uint64_t kRaftTerm = 1;  // one node, elected once

}  // namespace

// One watch stream on the local hub. Handle and the destructor take the api's mutex; the hub
// calls the sink under that mutex.
class LocalCoordApi::LocalWatchStream final : public WatchStream {
 public:
  LocalWatchStream(LocalCoordApi* api, int64_t id) : api_(api), id_(id) {}
  ~LocalWatchStream() override {
    std::lock_guard lock(api_->mu_);
    api_->machine_.watch_hub().CloseStream(id_);
  }
  void Handle(const etcd::WatchRequest& request, Done<bool> done) override {
    cairn::Status status;
    {
      std::lock_guard lock(api_->mu_);
      api_->ExpireLeasesLocked();
      status = api_->machine_.watch_hub().Handle(id_, request);
    }
    if (status.ok()) {
      done(true);
    } else {
      done(status);
    }
  }

 private:
  LocalCoordApi* api_;
  int64_t id_;
};

LocalCoordApi::LocalCoordApi(Clock& clock, LocalCoordOptions options)
    : clock_(clock), options_(std::move(options)), machine_(options_.kv), random_(options_.random_seed) {
  etcd::Member self;
  self.set_id(options_.member_id);
  self.set_name(options_.name);
  for (const auto& url : options_.peer_urls) self.add_peerurls(url);
  for (const auto& url : options_.client_urls) self.add_clienturls(url);
  members_.push_back(std::move(self));
}

LocalCoordApi::~LocalCoordApi() = default;

int64_t LocalCoordApi::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch()).count();
}

void LocalCoordApi::FillHeader(etcd::ResponseHeader* header) const {
  header->set_cluster_id(options_.cluster_id);
  header->set_member_id(options_.member_id);
  header->set_raft_term(kRaftTerm);
}

Result<proto::KvResponse> LocalCoordApi::ApplyLocked(proto::KvCommand command) {
  command.set_now_ms(NowMs());
  Result<proto::KvResponse> result = machine_.Apply(command);
  if (result.ok()) {
    ++applied_;
    kv::FillHeaderIdentity(&*result, options_.cluster_id, options_.member_id, kRaftTerm);
  }
  return result;
}

void LocalCoordApi::ExpireLeasesLocked() {
  for (int64_t id : machine_.ExpiredLeases(NowMs())) {
    proto::KvCommand command;
    command.mutable_lease_revoke()->set_id(id);
    // A lease found expired a moment ago cannot be missing now; an error would be a bug.
    CAIRN_CHECK(ApplyLocked(std::move(command)).ok());
  }
}

void LocalCoordApi::ExpireLeases() {
  std::lock_guard lock(mu_);
  ExpireLeasesLocked();
}

void LocalCoordApi::SetHealth(Health health) {
  std::lock_guard lock(mu_);
  health_ = std::move(health);
}

int64_t LocalCoordApi::revision() const {
  std::lock_guard lock(mu_);
  return machine_.revision();
}

namespace {

// Runs `apply` under the lock, then `done` with its result outside the lock.
template <typename Response, typename Fn>
void RunLocked(std::mutex& mu, Done<Response>& done, Fn&& apply) {
  std::unique_lock lock(mu);
  Result<Response> result = apply();
  lock.unlock();
  done(std::move(result));
}

template <typename Response, typename Extract>
Result<Response> Unwrap(Result<proto::KvResponse> result, Extract extract) {
  if (!result.ok()) return result.status();
  return std::move(*extract(&*result));
}

}  // namespace

void LocalCoordApi::Range(const etcd::RangeRequest& request, const CallOptions&,
                          Done<etcd::RangeResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::RangeResponse> {
    ExpireLeasesLocked();
    Result<etcd::RangeResponse> result = machine_.Range(request);
    if (result.ok()) FillHeader(result->mutable_header());
    return result;
  });
}

void LocalCoordApi::Put(const etcd::PutRequest& request, const CallOptions&,
                        Done<etcd::PutResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::PutResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_put() = request;
    return Unwrap<etcd::PutResponse>(ApplyLocked(std::move(command)),
                                     [](proto::KvResponse* r) { return r->mutable_put(); });
  });
}

void LocalCoordApi::DeleteRange(const etcd::DeleteRangeRequest& request, const CallOptions&,
                                Done<etcd::DeleteRangeResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::DeleteRangeResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_delete_range() = request;
    return Unwrap<etcd::DeleteRangeResponse>(
        ApplyLocked(std::move(command)), [](proto::KvResponse* r) { return r->mutable_delete_range(); });
  });
}

void LocalCoordApi::Txn(const etcd::TxnRequest& request, const CallOptions&,
                        Done<etcd::TxnResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::TxnResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_txn() = request;
    return Unwrap<etcd::TxnResponse>(ApplyLocked(std::move(command)),
                                     [](proto::KvResponse* r) { return r->mutable_txn(); });
  });
}

void LocalCoordApi::Compact(const etcd::CompactionRequest& request, const CallOptions&,
                            Done<etcd::CompactionResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::CompactionResponse> {
    proto::KvCommand command;
    *command.mutable_compaction() = request;
    return Unwrap<etcd::CompactionResponse>(
        ApplyLocked(std::move(command)), [](proto::KvResponse* r) { return r->mutable_compaction(); });
  });
}

Result<std::unique_ptr<WatchStream>> LocalCoordApi::OpenWatchStream(WatchSink sink) {
  std::lock_guard lock(mu_);
  // etcd fills the whole header of watch responses; the hub sets only the revision.
  auto with_identity = [this, sink = std::move(sink)](const etcd::WatchResponse& response) {
    etcd::WatchResponse filled = response;
    FillHeader(filled.mutable_header());
    sink(filled);
  };
  int64_t id = machine_.watch_hub().OpenStream(std::move(with_identity));
  return std::unique_ptr<WatchStream>(std::make_unique<LocalWatchStream>(this, id));
}

void LocalCoordApi::LeaseGrant(const etcd::LeaseGrantRequest& request, const CallOptions&,
                               Done<etcd::LeaseGrantResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::LeaseGrantResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_lease_grant() = request;
    return Unwrap<etcd::LeaseGrantResponse>(
        ApplyLocked(std::move(command)), [](proto::KvResponse* r) { return r->mutable_lease_grant(); });
  });
}

void LocalCoordApi::LeaseRevoke(const etcd::LeaseRevokeRequest& request, const CallOptions&,
                                Done<etcd::LeaseRevokeResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::LeaseRevokeResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_lease_revoke() = request;
    return Unwrap<etcd::LeaseRevokeResponse>(
        ApplyLocked(std::move(command)), [](proto::KvResponse* r) { return r->mutable_lease_revoke(); });
  });
}

void LocalCoordApi::LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request, const CallOptions&,
                                   Done<etcd::LeaseKeepAliveResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::LeaseKeepAliveResponse> {
    ExpireLeasesLocked();
    proto::KvCommand command;
    *command.mutable_lease_keepalive() = request;
    return Unwrap<etcd::LeaseKeepAliveResponse>(
        ApplyLocked(std::move(command)), [](proto::KvResponse* r) { return r->mutable_lease_keepalive(); });
  });
}

void LocalCoordApi::LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request, const CallOptions&,
                                    Done<etcd::LeaseTimeToLiveResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::LeaseTimeToLiveResponse> {
    ExpireLeasesLocked();
    Result<etcd::LeaseTimeToLiveResponse> result = machine_.LeaseTimeToLive(request, NowMs());
    if (result.ok()) FillHeader(result->mutable_header());
    return result;
  });
}

void LocalCoordApi::LeaseLeases(const etcd::LeaseLeasesRequest&, const CallOptions&,
                                Done<etcd::LeaseLeasesResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::LeaseLeasesResponse> {
    ExpireLeasesLocked();
    etcd::LeaseLeasesResponse response = machine_.LeaseLeases();
    FillHeader(response.mutable_header());
    return response;
  });
}

Result<etcd::MemberListResponse> LocalCoordApi::MembersLocked() const {
  etcd::MemberListResponse response;
  FillHeader(response.mutable_header());  // etcd's member responses carry no revision
  for (const etcd::Member& member : members_) *response.add_members() = member;
  return response;
}

void LocalCoordApi::MemberList(const etcd::MemberListRequest&, const CallOptions&,
                               Done<etcd::MemberListResponse> done) {
  RunLocked(mu_, done, [&]() { return MembersLocked(); });
}

void LocalCoordApi::MemberAdd(const etcd::MemberAddRequest& request, const CallOptions&,
                              Done<etcd::MemberAddResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::MemberAddResponse> {
    if (request.peerurls().empty()) return InvalidArgumentError("etcdserver: peer URLs are empty");
    for (const etcd::Member& member : members_) {
      for (const std::string& url : request.peerurls()) {
        if (std::count(member.peerurls().begin(), member.peerurls().end(), url) > 0) {
          return FailedPreconditionError("etcdserver: Peer URLs already exists");
        }
      }
    }
    etcd::Member added;
    added.set_id(NewId64(random_));
    *added.mutable_peerurls() = request.peerurls();
    added.set_islearner(request.islearner());
    members_.push_back(added);
    etcd::MemberAddResponse response;
    *response.mutable_header() = MembersLocked()->header();
    *response.mutable_member() = added;
    for (const etcd::Member& member : members_) *response.add_members() = member;
    return response;
  });
}

void LocalCoordApi::MemberRemove(const etcd::MemberRemoveRequest& request, const CallOptions&,
                                 Done<etcd::MemberRemoveResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::MemberRemoveResponse> {
    if (request.id() == options_.member_id) {
      return FailedPreconditionError("etcdserver: the local member of a single-node store cannot be removed");
    }
    auto it = std::find_if(members_.begin(), members_.end(),
                           [&](const etcd::Member& m) { return m.id() == request.id(); });
    if (it == members_.end()) return NotFoundError("etcdserver: member not found");
    members_.erase(it);
    etcd::MemberRemoveResponse response;
    *response.mutable_header() = MembersLocked()->header();
    for (const etcd::Member& member : members_) *response.add_members() = member;
    return response;
  });
}

void LocalCoordApi::MemberPromote(const etcd::MemberPromoteRequest& request, const CallOptions&,
                                  Done<etcd::MemberPromoteResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::MemberPromoteResponse> {
    auto it = std::find_if(members_.begin(), members_.end(),
                           [&](const etcd::Member& m) { return m.id() == request.id(); });
    if (it == members_.end()) return NotFoundError("etcdserver: member not found");
    if (!it->islearner()) return FailedPreconditionError("etcdserver: can only promote a learner member");
    it->set_islearner(false);
    etcd::MemberPromoteResponse response;
    *response.mutable_header() = MembersLocked()->header();
    for (const etcd::Member& member : members_) *response.add_members() = member;
    return response;
  });
}

void LocalCoordApi::Status(const etcd::StatusRequest&, const CallOptions&,
                           Done<etcd::StatusResponse> done) {
  RunLocked(mu_, done, [&]() -> Result<etcd::StatusResponse> {
    etcd::StatusResponse response;
    FillHeader(response.mutable_header());
    response.mutable_header()->set_revision(machine_.revision());
    response.set_version(options_.version);
    // No database file: the snapshot's size is what a database would hold.
    int64_t size = static_cast<int64_t>(machine_.Snapshot().size());
    response.set_dbsize(size);
    response.set_dbsizeinuse(size);
    response.set_leader(options_.member_id);
    response.set_raftindex(applied_);
    response.set_raftterm(kRaftTerm);
    response.set_raftappliedindex(applied_);
    return response;
  });
}

Health LocalCoordApi::GetHealth() {
  std::lock_guard lock(mu_);
  return health_;
}

std::string LocalCoordApi::Metrics() {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  out << "# HELP cairn_kv_revision The store's current revision.\n"
      << "# TYPE cairn_kv_revision gauge\n"
      << "cairn_kv_revision " << machine_.revision() << "\n"
      << "# HELP cairn_kv_compact_revision The store's compaction revision.\n"
      << "# TYPE cairn_kv_compact_revision gauge\n"
      << "cairn_kv_compact_revision " << machine_.compact_revision() << "\n"
      << "# HELP cairn_kv_watchers Watchers open.\n"
      << "# TYPE cairn_kv_watchers gauge\n"
      << "cairn_kv_watchers " << machine_.watch_hub().watcher_count() << "\n"
      << "# HELP cairn_raft_applied_index Commands applied.\n"
      << "# TYPE cairn_raft_applied_index gauge\n"
      << "cairn_raft_applied_index " << applied_ << "\n"
      << "# HELP cairn_raft_term The current term.\n"
      << "# TYPE cairn_raft_term gauge\n"
      << "cairn_raft_term " << kRaftTerm << "\n"
      << "# HELP cairn_raft_is_leader 1 when this node is the leader.\n"
      << "# TYPE cairn_raft_is_leader gauge\n"
      << "cairn_raft_is_leader 1\n";
  return out.str();
}

}  // namespace cairn::coord
