// CoordNode: see the header and docs/coord.md. The Impl below is split by concern: opening and
// recovery, the Ready loop (persist -> send -> apply -> advance), proposals and forwarding, reads,
// leases and membership, and the inbound peer handlers.
#include "cairn/coord/node/coord_node.h"

#include <map>
#include <mutex>
#include <optional>
#include <set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/coord/node/backup_file.h"
#include "cairn/coord/node/member_table.h"
#include "cairn/coord/node/peer_transport.h"
#include "cairn/coord/node/proposal_tracker.h"
#include "cairn/coord/node/read_index_batcher.h"
#include "cairn/proto/coord.pb.h"
#include "cairn/raft/raft.h"
#include "cairn/wal/wal.h"

namespace cairn::coord {
namespace {

using Work = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

const RealClock& DefaultClock() {
  static const RealClock clock;
  return clock;
}

std::string StripScheme(std::string url) {
  for (const char* scheme : {"http://", "https://"}) {
    if (url.rfind(scheme, 0) == 0) url = url.substr(std::string(scheme).size());
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

wal::Entry ToWal(const raft::Entry& entry) {
  return wal::Entry{.index = entry.index(), .term = entry.term(), .type = static_cast<uint32_t>(entry.type()),
                    .data = entry.data()};
}

raft::Entry FromWal(wal::Entry& entry) {
  raft::Entry out;
  out.set_index(entry.index);
  out.set_term(entry.term);
  out.set_type(static_cast<raftpb::EntryType>(entry.type));
  out.set_data(std::move(entry.data));
  return out;
}

Status CreateDirIfMissing(env::Env* env, const std::string& dir) {
  if (env->FileExists(dir)) return Status::Ok();
  Status created = env->CreateDir(dir);
  if (created.code() == StatusCode::kAlreadyExists) return Status::Ok();
  return created;
}

}  // namespace

class CoordNodeImpl {
 public:
  explicit CoordNodeImpl(NodeOptions options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &DefaultClock()),
        kv_(options_.kv),
        env_(options_.env != nullptr ? options_.env : env::DefaultEnv()),
        reads_(options_.tick_interval * options_.election_ticks),
        tick_timer_(loop_io_),
        loop_work_(loop_io_.get_executor()),
        disk_work_(disk_io_.get_executor()),
        transport_work_(transport_io_.get_executor()) {}

  ~CoordNodeImpl() { StopAll(); }

  Status Open(net::Server* peer_server);
  void StopAll();

  // ---- entry points from CoordApi (any thread) ----
  void SubmitWrite(proto::ForwardRequest request, Duration timeout, ProposalTracker::Callback done);
  // Runs `read` on the loop once a read index covering this call has been applied (linearizable)
  // or at once (serializable). `read` gets the error instead when there is none.
  void SubmitRead(bool serializable, Duration timeout, std::function<void(cairn::Status)> read);
  // Runs `task` on the loop; `fail` instead (on the caller's thread) when the node is stopped.
  void OnLoop(std::function<void()> task, const std::function<void(cairn::Status)>& fail);

  etcd::ResponseHeader Header() const {
    etcd::ResponseHeader header;
    header.set_cluster_id(cluster_id_);
    header.set_member_id(self_);
    header.set_revision(kv_.revision());
    header.set_raft_term(raw_->term());
    return header;
  }

  // Loop-thread state and helpers used by the API adapters.
  NodeOptions options_;
  const Clock* clock_;
  boost::asio::io_context loop_io_, disk_io_, transport_io_;
  kv::KvStateMachine kv_;
  MemberTable members_;
  std::unique_ptr<raft::RawNode> raw_;
  uint64_t self_ = 0;
  std::atomic<uint64_t> cluster_id_{0};  // set once by a joining node on the loop; read anywhere
  uint64_t applied_ = 0;
  bool stopping_ = false;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> removed_{false};
  NodeMetrics metrics_;

  void Post(std::function<void()> task) { boost::asio::post(loop_io_, std::move(task)); }
  // Loop thread: the applied state as a backup file.
  std::string EncodeBackupNow();

 private:
  struct Inbox {  // what the peer server's handlers reach; cleared by StopAll
    std::mutex mu;
    CoordNodeImpl* impl = nullptr;
  };

  // Opening.
  void HandOffLeadership();
  Status PrepareIdentity(bool wal_is_fresh);
  Status CheckNotAlreadyMember();
  Status Recover(wal::Recovered& recovered);
  void RegisterHandlers(net::Server* server);
  void StartThreads();

  // Ready loop.
  void ScheduleReady();
  void Pump();
  Status Persist(const raft::Ready& ready);
  void AfterPersist(const std::shared_ptr<raft::Ready>& ready);
  void OnSoftState(const raft::SoftState& soft);
  void SendMessages(std::vector<raftpb::Message>& messages);
  void ApplyEntries(const std::vector<raft::Entry>& entries);
  void ApplyNormal(const raft::Entry& entry);
  void ApplyConfChange(const raft::Entry& entry);
  void RestoreSnapshot(const raft::Snapshot& snapshot);
  void MaybeSnapshot();
  void UpdateMetrics();

  // Timers.
  void ArmTick();
  void OnTick();
  void CheckLeases();
  void MaybePublish(TimePoint now);

  // Proposals.
  void Propose(proto::ForwardRequest request, Duration timeout, ProposalTracker::Callback done, bool may_forward);
  void ProposeKv(proto::KvCommand command, TimePoint deadline, ProposalTracker::Callback done);
  void ProposeMemberChange(const proto::ForwardRequest& request, TimePoint deadline, ProposalTracker::Callback done);
  uint64_t ProposeInternal(proto::KvCommand command);
  bool LearnerInSync(uint64_t id) const;
  int64_t WallMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->WallNow().time_since_epoch()).count();
  }
  size_t PendingRequests() const { return tracker_.pending() + reads_.waiting(); }

  // Inbound.
  void StepBatch(const proto::RaftBatch& batch);
  void HandleForward(std::string payload, net::Responder responder);
  void HandleMembers(net::Responder responder);

  env::Env* env_;
  std::string coord_dir_, wal_dir_, identity_path_;
  std::map<uint64_t, proto::CoordMember> seeds_;  // static initial cluster by id
  bool identity_saved_ = false;

  // Loop thread.
  raft::MemoryStorage storage_;
  raftpb::ConfState conf_state_;
  ProposalTracker tracker_;
  ReadIndexBatcher reads_;
  std::unique_ptr<PeerTransport> transport_;
  uint64_t snapshot_index_ = 0;
  bool disk_busy_ = false;
  bool ready_scheduled_ = false;
  uint64_t last_leader_ = 0;
  bool was_leader_ = false;
  uint64_t promote_request_ = 0, promote_term_ = 0, leases_ready_term_ = 0;
  uint64_t internal_requests_ = 0;
  std::map<int64_t, TimePoint> revoking_;  // lease id -> when a revoke may be proposed again
  TimePoint next_lease_check_{}, next_progress_notify_{}, next_publish_{};
  uint64_t ticks_ = 0;
  boost::asio::steady_timer tick_timer_;

  // Disk thread.
  std::unique_ptr<wal::Wal> wal_;
  wal::HardState disk_hard_state_;

  Work loop_work_, disk_work_, transport_work_;
  std::thread loop_thread_, disk_thread_, transport_thread_;
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  bool opened_ = false;
};

// ---------------------------------------------------------------------------------------------
// Opening and recovery.

Status CoordNodeImpl::Open(net::Server* peer_server) {
  if (options_.name.empty()) return InvalidArgumentError("coord: name is required");
  if (options_.data_dir.empty()) return InvalidArgumentError("coord: data_dir is required");
  if (options_.peer_url.empty()) return InvalidArgumentError("coord: peer_url is required");
  if (peer_server == nullptr) return InvalidArgumentError("coord: a peer server is required");
  options_.peer_url = StripScheme(options_.peer_url);
  for (std::string& url : options_.client_urls) url = StripScheme(url);
  self_ = DeriveMemberId(options_.peer_url);
  bool is_seed = false;
  for (const MemberSeed& seed : options_.initial_cluster) {
    uint64_t id = DeriveMemberId(StripScheme(seed.peer_url));
    proto::CoordMember& member = seeds_[id];
    member.set_id(id);
    member.set_name(seed.name);
    member.add_peer_urls(StripScheme(seed.peer_url));
    if (id == self_) is_seed = true;
  }
  if (!options_.initial_cluster.empty() && !is_seed) {
    return InvalidArgumentError("coord: initial_cluster does not list this node's peer URL " + options_.peer_url);
  }
  if (!options_.initial_cluster.empty()) cluster_id_ = DeriveClusterId(options_.initial_cluster);

  coord_dir_ = env::JoinPath(options_.data_dir, "coord");
  wal_dir_ = env::JoinPath(coord_dir_, "wal");
  identity_path_ = env::JoinPath(coord_dir_, "member");
  CAIRN_RETURN_IF_ERROR(CreateDirIfMissing(env_, options_.data_dir));
  CAIRN_RETURN_IF_ERROR(CreateDirIfMissing(env_, coord_dir_));

  transport_thread_ = std::thread([this] { transport_io_.run(); });
  opened_ = true;  // from here on StopAll has threads to join
  transport_ = std::make_unique<PeerTransport>(transport_io_, self_, options_.peer_url);

  CAIRN_ASSIGN_OR_RETURN(wal::Opened opened, wal::Wal::Open(env_, wal_dir_));
  wal_ = std::move(opened.wal);
  wal::Recovered& recovered = opened.recovered;
  bool fresh = !recovered.snapshot && recovered.entries.empty() && recovered.hard_state.IsEmpty();
  CAIRN_RETURN_IF_ERROR(PrepareIdentity(fresh));
  CAIRN_RETURN_IF_ERROR(Recover(recovered));

  raft::Config config;
  config.id = self_;
  if (fresh) {
    for (const auto& [id, member] : seeds_) config.voters.push_back(id);
  }
  config.election_tick = options_.election_ticks;
  config.heartbeat_tick = options_.heartbeat_ticks;
  config.storage = &storage_;
  config.applied = applied_;
  config.random_seed = options_.random_seed != 0 ? options_.random_seed : self_;
  config.max_uncommitted_entries_size = 256u << 20;
  CAIRN_ASSIGN_OR_RETURN(raw_, raft::RawNode::Create(config));

  transport_->set_cluster_id(cluster_id_);
  for (const auto& [id, member] : seeds_) transport_->SetPeer(id, member.peer_urls(0));
  for (const auto& [id, member] : members_.members()) transport_->SetPeer(id, members_.PeerUrl(id));
  RegisterHandlers(peer_server);
  StartThreads();
  log::Info("coord.started", "name", options_.name, "member_id", IdToHex(self_), "cluster_id", IdToHex(cluster_id_),
            "applied", applied_, "snapshot_index", snapshot_index_, "fresh", fresh);
  return Status::Ok();
}

Status CoordNodeImpl::PrepareIdentity(bool wal_is_fresh) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<Identity> stored, LoadIdentity(env_, identity_path_));
  if (stored) {
    // After the first start the stored cluster id wins: initial_cluster may be edited later.
    cluster_id_ = stored->cluster_id;
    identity_saved_ = true;
    return CheckIdentity(*stored, Identity{cluster_id_, self_, options_.name}, identity_path_);
  }
  if (wal_is_fresh && !seeds_.empty() && options_.check_rejoin) CAIRN_RETURN_IF_ERROR(CheckNotAlreadyMember());
  if (cluster_id_ != 0) {
    CAIRN_RETURN_IF_ERROR(SaveIdentity(env_, identity_path_, Identity{cluster_id_, self_, options_.name}));
    identity_saved_ = true;
  }
  return Status::Ok();
}

// etcd's rule: a member that published itself has run before. Its data dir is empty now, so it
// lost votes and entries it acknowledged; rejoining under the same id could break safety.
Status CoordNodeImpl::CheckNotAlreadyMember() {
  for (const auto& [id, seed] : seeds_) {
    if (id == self_) continue;
    net::Client client(transport_io_, net::ClientOptions{.address = seed.peer_urls(0),
                                                        .connect_timeout = std::chrono::seconds(1)});
    auto reply = client.CallSync(kMembersMethod, "", std::chrono::seconds(1));
    client.Close();
    if (!reply.ok()) continue;  // not up yet: a new cluster starting
    proto::MembersResponse members;
    if (!members.ParseFromString(*reply)) continue;
    for (const proto::CoordMember& member : members.members()) {
      if (member.id() == self_ && member.published()) {
        return FailedPreconditionError(
            "member " + options_.name + " (id " + IdToHex(self_) + ") already ran in cluster " +
            IdToHex(members.cluster_id()) + " (member " + seed.name() + " says so), but its data dir " +
            options_.data_dir + " has no coordination data: it must not rejoin under its old identity. "
            "Replace it: `clusterctl member replace " + options_.name + " NEW_PEER_URL`, or restore its data dir");
      }
    }
  }
  return Status::Ok();
}

Status CoordNodeImpl::Recover(wal::Recovered& recovered) {
  if (recovered.snapshot) {
    raft::Snapshot snapshot;
    snapshot.set_data(std::move(recovered.snapshot->data));
    snapshot.mutable_metadata()->set_index(recovered.snapshot->index);
    snapshot.mutable_metadata()->set_term(recovered.snapshot->term);
    proto::CoordSnapshot image;
    if (!image.ParseFromString(snapshot.data())) {
      return CorruptionError("coord: snapshot at index " + std::to_string(recovered.snapshot->index) + " in " +
                             wal_dir_ + " does not parse");
    }
    *snapshot.mutable_metadata()->mutable_conf_state() = image.conf_state();
    CAIRN_RETURN_IF_ERROR(storage_.ApplySnapshot(snapshot));
    CAIRN_RETURN_IF_ERROR(kv_.Restore(image.kv()));
    members_.RestoreFrom(image);
    conf_state_ = image.conf_state();
    applied_ = snapshot_index_ = recovered.snapshot->index;
  }
  raft::HardState hard_state;
  hard_state.set_term(recovered.hard_state.term);
  hard_state.set_vote(recovered.hard_state.vote);
  hard_state.set_commit(recovered.hard_state.commit);
  storage_.SetHardState(hard_state);
  disk_hard_state_ = recovered.hard_state;
  std::vector<raft::Entry> entries;
  entries.reserve(recovered.entries.size());
  for (wal::Entry& entry : recovered.entries) entries.push_back(FromWal(entry));
  return storage_.Append(entries);
}

void CoordNodeImpl::StartThreads() {
  disk_thread_ = std::thread([this] { disk_io_.run(); });
  loop_thread_ = std::thread([this] { loop_io_.run(); });
  Post([this] {
    TimePoint now = clock_->Now();
    next_lease_check_ = now + options_.lease_check_interval;
    next_progress_notify_ = now + options_.progress_notify_interval;
    ArmTick();
    ScheduleReady();
  });
}

// A leader that stops on purpose hands over first, so clients see no election timeout (rolling
// restarts). Waits at most two election timeouts; a crash skips this, of course.
void CoordNodeImpl::HandOffLeadership() {
  if (!options_.transfer_leadership_on_stop || !metrics_.is_leader.load() || !loop_thread_.joinable()) return;
  Post([this] {
    if (stopping_ || raw_->role() != raft::Role::kLeader) return;
    raft::NodeStatus status = raw_->GetStatus();
    uint64_t best = raft::kNone, best_match = 0;
    for (uint64_t id : conf_state_.voters()) {
      auto progress = status.progress.find(id);
      if (id == self_ || progress == status.progress.end() || !progress->second.recent_active) continue;
      if (best == raft::kNone || progress->second.match > best_match) {
        best = id;
        best_match = progress->second.match;
      }
    }
    if (best == raft::kNone) return;
    log::Info("coord.transferring_leadership", "name", options_.name, "to", IdToHex(best));
    raw_->TransferLeadership(best);
    ScheduleReady();
  });
  auto deadline = std::chrono::steady_clock::now() + 2 * options_.tick_interval * options_.election_ticks;
  while (metrics_.is_leader.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(options_.tick_interval / 5);
  }
}

void CoordNodeImpl::StopAll() {
  if (!opened_ || stopped_.load()) return;
  HandOffLeadership();
  if (stopped_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->impl = nullptr;
  }
  Post([this] {
    stopping_ = true;
    tick_timer_.cancel();
    tracker_.FailAll(UnavailableError("coord: node stopping"));
    reads_.FailAll(UnavailableError("coord: node stopping"));
    loop_work_.reset();
    loop_io_.stop();
  });
  if (loop_thread_.joinable()) loop_thread_.join();
  // Handlers posted after the loop stopped: run them now so every callback gets its answer.
  stopping_ = true;
  loop_io_.restart();
  loop_io_.poll();
  disk_work_.reset();
  if (disk_thread_.joinable()) disk_thread_.join();
  if (wal_) {
    Status closed = wal_->Close();
    if (!closed.ok()) log::Warn("coord.wal_close_failed", "error", closed);
  }
  if (transport_) transport_->CloseAll();
  transport_work_.reset();
  transport_io_.stop();
  if (transport_thread_.joinable()) transport_thread_.join();
  transport_.reset();
  log::Info("coord.stopped", "name", options_.name, "member_id", IdToHex(self_));
}

// ---------------------------------------------------------------------------------------------
// The Ready loop.

void CoordNodeImpl::ScheduleReady() {
  if (ready_scheduled_ || stopping_) return;
  ready_scheduled_ = true;
  // Posted, not run: proposals already queued on the loop join this Ready (batching).
  Post([this] {
    ready_scheduled_ = false;
    Pump();
  });
}

void CoordNodeImpl::Pump() {
  if (stopping_ || disk_busy_) return;
  if (auto context = reads_.TakeRequest(clock_->Now())) {
    raw_->ReadIndex(std::move(*context));
    metrics_.read_indexes.fetch_add(1, std::memory_order_relaxed);
  }
  if (!raw_->HasReady()) return;
  auto ready = std::make_shared<raft::Ready>(raw_->GetReady());
  if (ready->soft_state) OnSoftState(*ready->soft_state);
  for (const raft::ReadState& state : ready->read_states) reads_.OnReadState(state.request_context, state.index, applied_);
  if (!ready->snapshot && ready->entries.empty() && !ready->hard_state) {
    AfterPersist(ready);
    return;
  }
  disk_busy_ = true;
  boost::asio::post(disk_io_, [this, ready] {
    Status persisted = Persist(*ready);
    Post([this, ready, persisted] {
      disk_busy_ = false;
      if (stopping_) return;
      if (!persisted.ok()) {
        // The WAL refuses all work after a failed write or fsync; acknowledging anything now could
        // lose it. Stop this member; a restart recovers what reached the disk.
        Panic("coord: WAL write failed: " + persisted.ToString(), __FILE__, __LINE__);
      }
      AfterPersist(ready);
    });
  });
}

// Disk thread.
Status CoordNodeImpl::Persist(const raft::Ready& ready) {
  if (ready.snapshot) {
    const raft::Snapshot& snapshot = *ready.snapshot;
    if (snapshot.metadata().index() > wal_->SnapshotIndex()) {
      CAIRN_RETURN_IF_ERROR(wal_->SaveSnapshot(
          wal::Snapshot{snapshot.metadata().index(), snapshot.metadata().term(), snapshot.data()}));
    }
  }
  if (ready.hard_state) {
    disk_hard_state_ = wal::HardState{ready.hard_state->term(), ready.hard_state->vote(), ready.hard_state->commit()};
  }
  std::vector<wal::Entry> entries;
  entries.reserve(ready.entries.size());
  for (const raft::Entry& entry : ready.entries) entries.push_back(ToWal(entry));
  TimePoint start = std::chrono::steady_clock::now();
  CAIRN_RETURN_IF_ERROR(wal_->Save(disk_hard_state_, entries, ready.must_sync));
  if (ready.must_sync) {
    metrics_.fsync_seconds.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return Status::Ok();
}

void CoordNodeImpl::AfterPersist(const std::shared_ptr<raft::Ready>& ready) {
  if (ready->snapshot) {
    Status applied = storage_.ApplySnapshot(*ready->snapshot);
    if (!applied.ok()) Panic("coord: applying a snapshot to storage: " + applied.ToString(), __FILE__, __LINE__);
    RestoreSnapshot(*ready->snapshot);
  }
  if (!ready->entries.empty()) {
    Status appended = storage_.Append(ready->entries);
    if (!appended.ok()) Panic("coord: appending to storage: " + appended.ToString(), __FILE__, __LINE__);
  }
  if (ready->hard_state) storage_.SetHardState(*ready->hard_state);
  SendMessages(ready->messages);
  ApplyEntries(ready->committed_entries);
  raw_->Advance();
  UpdateMetrics();
  MaybeSnapshot();
  Pump();
}

void CoordNodeImpl::OnSoftState(const raft::SoftState& soft) {
  if (soft.leader != last_leader_) {
    last_leader_ = soft.leader;
    metrics_.leader_changes.fetch_add(1, std::memory_order_relaxed);
    log::Info("coord.leader_changed", "name", options_.name, "leader", IdToHex(soft.leader), "term", raw_->term(),
              "role", raft::RoleName(soft.role));
  }
  bool leader_now = soft.role == raft::Role::kLeader;
  if (leader_now && !was_leader_) {
    // Leases restart their TTL under the new leader's clock before it may expire any (libs/kv).
    revoking_.clear();
    proto::KvCommand promote;
    promote.mutable_lease_promote();
    promote_term_ = raw_->term();
    promote_request_ = ProposeInternal(std::move(promote));
  }
  if (!leader_now && was_leader_) {
    leases_ready_term_ = 0;
    tracker_.FailAll(UnavailableError("etcdserver: leader changed"));
  }
  was_leader_ = leader_now;
  metrics_.leader.store(soft.leader);
  metrics_.is_leader.store(leader_now);
}

void CoordNodeImpl::SendMessages(std::vector<raftpb::Message>& messages) {
  if (messages.empty()) return;
  std::vector<uint64_t> unreachable;
  transport_->Send(messages, &unreachable, [this](uint64_t to, bool ok) {
    Post([this, to, ok] {
      if (stopping_) return;
      raw_->ReportSnapshot(to, ok);
      ScheduleReady();
    });
  });
  for (uint64_t id : unreachable) raw_->ReportUnreachable(id);
}

void CoordNodeImpl::ApplyEntries(const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& entry : entries) {
    if (entry.index() <= applied_) continue;  // already in the restored snapshot
    if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
      ApplyConfChange(entry);
    } else if (!entry.data().empty()) {
      ApplyNormal(entry);
    }
    applied_ = entry.index();
  }
  reads_.OnApplied(applied_);
}

void CoordNodeImpl::ApplyNormal(const raft::Entry& entry) {
  proto::CoordEntry command;
  if (!command.ParseFromString(entry.data())) {
    log::Error("coord.bad_entry", "index", entry.index(), "reason", "does not parse as CoordEntry");
    return;
  }
  if (command.has_publish()) {
    members_.ApplyPublish(command.publish());
    transport_->SetPeer(command.publish().id(), members_.PeerUrl(command.publish().id()));
    return;
  }
  if (!command.has_kv()) return;
  Result<proto::KvResponse> result = kv_.Apply(command.kv());
  if (command.proposer() != self_) return;
  if (command.request_id() == promote_request_ && command.kv().has_lease_promote() && raw_->term() == promote_term_) {
    leases_ready_term_ = promote_term_;
  }
  if (command.request_id() == 0 || command.request_id() > (uint64_t{1} << 62)) return;  // internal
  if (!result.ok()) {
    metrics_.proposals_failed.fetch_add(1, std::memory_order_relaxed);
    tracker_.Complete(command.request_id(), result.status());
    return;
  }
  metrics_.proposals_committed.fetch_add(1, std::memory_order_relaxed);
  kv::FillHeaderIdentity(&*result, cluster_id_, self_, raw_->term());
  proto::ForwardResponse response;
  *response.mutable_kv() = std::move(*result);
  tracker_.Complete(command.request_id(), std::move(response));
}

void CoordNodeImpl::ApplyConfChange(const raft::Entry& entry) {
  raftpb::ConfChange change;
  if (entry.data().empty() || !change.ParseFromString(entry.data())) return;
  proto::CoordConfChangeContext context;
  if (!change.context().empty()) (void)context.ParseFromString(change.context());
  uint64_t id = change.node_id();
  const proto::CoordMember* before = members_.Find(id);
  bool was_learner = before != nullptr && before->learner();
  conf_state_ = raw_->ApplyConfChange(change);
  members_.ApplyConfChange(change, context.member(), seeds_);
  if (change.type() == raftpb::CONF_CHANGE_REMOVE_NODE) {
    transport_->RemovePeer(id);
    if (id == self_) {
      removed_.store(true);
      log::Warn("coord.removed", "name", options_.name, "member_id", IdToHex(self_));
    }
  } else {
    transport_->SetPeer(id, members_.PeerUrl(id));
  }
  log::Info("coord.member_changed", "name", options_.name, "member", IdToHex(id), "change",
            raftpb::ConfChangeType_Name(change.type()), "index", entry.index());
  if (context.proposer() != self_ || context.request_id() == 0) return;
  etcd::ResponseHeader header = Header();
  proto::ForwardResponse response;
  auto fill_members = [&](auto* out) {
    *out->mutable_header() = header;
    for (etcd::Member& member : members_.ToEtcd()) *out->add_members() = std::move(member);
  };
  if (change.type() == raftpb::CONF_CHANGE_REMOVE_NODE) {
    fill_members(response.mutable_member_remove());
  } else if (change.type() == raftpb::CONF_CHANGE_ADD_NODE && was_learner) {
    fill_members(response.mutable_member_promote());
  } else {
    fill_members(response.mutable_member_add());
    if (const proto::CoordMember* added = members_.Find(id)) {
      *response.mutable_member_add()->mutable_member() = ToEtcdMember(*added);
    }
  }
  tracker_.Complete(context.request_id(), std::move(response));
}

void CoordNodeImpl::RestoreSnapshot(const raft::Snapshot& snapshot) {
  proto::CoordSnapshot image;
  if (!image.ParseFromString(snapshot.data())) {
    Panic("coord: a snapshot from the leader does not parse", __FILE__, __LINE__);
  }
  Status restored = kv_.Restore(image.kv());
  if (!restored.ok()) Panic("coord: restoring a snapshot: " + restored.ToString(), __FILE__, __LINE__);
  members_.RestoreFrom(image);
  conf_state_ = snapshot.metadata().conf_state();
  applied_ = snapshot_index_ = snapshot.metadata().index();
  for (const auto& [id, member] : members_.members()) transport_->SetPeer(id, members_.PeerUrl(id));
  metrics_.snapshots_applied.fetch_add(1, std::memory_order_relaxed);
  reads_.OnApplied(applied_);
  log::Info("coord.snapshot_restored", "name", options_.name, "index", applied_);
}

void CoordNodeImpl::MaybeSnapshot() {
  if (applied_ < snapshot_index_ + options_.snapshot_every) return;
  proto::CoordSnapshot image;
  image.set_format_version(1);
  image.set_kv(kv_.Snapshot());
  members_.SaveTo(&image);
  *image.mutable_conf_state() = conf_state_;
  image.set_cluster_id(cluster_id_);
  std::string data = image.SerializeAsString();
  auto created = storage_.CreateSnapshot(applied_, &conf_state_, data);
  if (!created.ok()) {
    log::Warn("coord.snapshot_failed", "index", applied_, "error", created.status());
    return;
  }
  snapshot_index_ = applied_;
  uint64_t term = created->metadata().term();
  if (applied_ > options_.snapshot_catchup_entries) {
    uint64_t compact_to = applied_ - options_.snapshot_catchup_entries;
    auto first = storage_.FirstIndex();
    if (first.ok() && compact_to >= *first) (void)storage_.Compact(compact_to);
  }
  uint64_t index = applied_;
  boost::asio::post(disk_io_, [this, index, term, data = std::move(data)]() mutable {
    Status saved = wal_->SaveSnapshot(wal::Snapshot{index, term, std::move(data)});
    if (!saved.ok()) log::Warn("coord.snapshot_save_failed", "index", index, "error", saved);
  });
  metrics_.snapshots_saved.fetch_add(1, std::memory_order_relaxed);
  log::Info("coord.snapshot_saved", "name", options_.name, "index", index);
}

std::string CoordNodeImpl::EncodeBackupNow() {
  proto::CoordSnapshot image;
  image.set_format_version(1);
  image.set_kv(kv_.Snapshot());
  members_.SaveTo(&image);
  *image.mutable_conf_state() = conf_state_;
  image.set_cluster_id(cluster_id_);
  BackupHeader header;
  header.cluster_id = cluster_id_;
  header.member_id = self_;
  header.raft_index = applied_;
  auto term = storage_.Term(applied_);
  header.raft_term = term.ok() ? *term : raw_->term();
  header.revision = kv_.revision();
  header.compact_revision = kv_.compact_revision();
  etcd::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  all.set_count_only(true);
  auto counted = kv_.Range(all);
  header.key_count = counted.ok() ? static_cast<uint64_t>(counted->count()) : 0;
  header.member_count = static_cast<uint64_t>(image.members_size());
  header.created_unix_ms = WallMs();
  std::string bytes = EncodeBackup(header, image.SerializeAsString());
  log::Info("coord.backup_taken", "name", options_.name, "index", applied_, "revision", header.revision, "keys",
            header.key_count, "bytes", bytes.size());
  return bytes;
}

void CoordNodeImpl::UpdateMetrics() {
  metrics_.term.store(raw_->term());
  metrics_.commit_index.store(raw_->commit_index());
  metrics_.applied_index.store(applied_);
}

// ---------------------------------------------------------------------------------------------
// Timers: Raft ticks, expiry of requests, leases, progress notifications, publishing.

void CoordNodeImpl::ArmTick() {
  tick_timer_.expires_after(options_.tick_interval);
  tick_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || stopping_) return;
    OnTick();
    ArmTick();
  });
}

void CoordNodeImpl::OnTick() {
  raw_->Tick();
  ++ticks_;
  TimePoint now = clock_->Now();
  tracker_.Expire(now);
  reads_.Expire(now);
  if (now >= next_lease_check_) {
    next_lease_check_ = now + options_.lease_check_interval;
    CheckLeases();
  }
  if (now >= next_progress_notify_) {
    next_progress_notify_ = now + options_.progress_notify_interval;
    kv_.watch_hub().NotifyProgress();
  }
  MaybePublish(now);
  if (ticks_ % 100 == 1) metrics_.db_size_bytes.store(kv_.store().approximate_bytes());
  ScheduleReady();
}

void CoordNodeImpl::CheckLeases() {
  if (raw_->role() != raft::Role::kLeader || leases_ready_term_ != raw_->term()) return;
  TimePoint now = clock_->Now();
  for (auto it = revoking_.begin(); it != revoking_.end();) it = it->second <= now ? revoking_.erase(it) : std::next(it);
  for (int64_t id : kv_.ExpiredLeases(WallMs())) {
    if (!revoking_.emplace(id, now + std::chrono::seconds(3)).second) continue;
    proto::KvCommand revoke;
    revoke.mutable_lease_revoke()->set_id(id);
    ProposeInternal(std::move(revoke));
  }
}

void CoordNodeImpl::MaybePublish(TimePoint now) {
  if (now < next_publish_ || raw_->leader() == raft::kNone || removed_.load()) return;
  const proto::CoordMember* me = members_.Find(self_);
  if (me == nullptr) return;
  bool same_urls = me->client_urls_size() == static_cast<int>(options_.client_urls.size()) &&
                   std::equal(options_.client_urls.begin(), options_.client_urls.end(), me->client_urls().begin());
  if (me->published() && me->name() == options_.name && same_urls) return;
  next_publish_ = now + std::chrono::seconds(1);
  proto::CoordEntry entry;
  entry.set_proposer(self_);
  proto::CoordMember* publish = entry.mutable_publish();
  publish->set_id(self_);
  publish->set_name(options_.name);
  publish->add_peer_urls(options_.peer_url);
  for (const std::string& url : options_.client_urls) publish->add_client_urls(url);
  (void)raw_->Propose(entry.SerializeAsString());  // forwarded by the core on a follower
}

// ---------------------------------------------------------------------------------------------
// Proposals.

void CoordNodeImpl::OnLoop(std::function<void()> task, const std::function<void(cairn::Status)>& fail) {
  if (stopped_.load()) {
    fail(UnavailableError("coord: node stopped"));
    return;
  }
  Post(std::move(task));
}

void CoordNodeImpl::SubmitWrite(proto::ForwardRequest request, Duration timeout, ProposalTracker::Callback done) {
  auto shared_done = std::make_shared<ProposalTracker::Callback>(std::move(done));
  OnLoop(
      [this, request = std::move(request), timeout, shared_done]() mutable {
        Propose(std::move(request), timeout, std::move(*shared_done), /*may_forward=*/true);
      },
      [shared_done](cairn::Status status) { (*shared_done)(status); });
}

void CoordNodeImpl::Propose(proto::ForwardRequest request, Duration timeout, ProposalTracker::Callback done,
                              bool may_forward) {
  if (stopping_) return done(UnavailableError("coord: node stopping"));
  if (removed_.load()) return done(UnavailableError("coord: this member was removed from the cluster"));
  if (PendingRequests() >= options_.max_pending_requests) {
    return done(ResourceExhaustedError("etcdserver: too many requests"));
  }
  uint64_t leader = raw_->leader();
  if (leader == raft::kNone) return done(UnavailableError("etcdserver: no leader"));
  if (leader != self_) {
    if (!may_forward) return done(UnavailableError("etcdserver: not the leader (leader changed)"));
    request.set_deadline_ms(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
    metrics_.proposals_forwarded.fetch_add(1, std::memory_order_relaxed);
    transport_->Call(leader, kForwardMethod, request.SerializeAsString(), timeout,
                     [done = std::move(done)](Result<std::string> reply) {
                       if (!reply.ok()) return done(reply.status());
                       proto::ForwardResponse response;
                       if (!response.ParseFromString(*reply)) {
                         return done(InternalError("coord: the leader's answer does not parse"));
                       }
                       done(std::move(response));
                     });
    return;
  }
  TimePoint deadline = clock_->Now() + timeout;
  if (request.has_kv()) {
    ProposeKv(std::move(*request.mutable_kv()), deadline, std::move(done));
  } else {
    ProposeMemberChange(request, deadline, std::move(done));
  }
}

void CoordNodeImpl::ProposeKv(proto::KvCommand command, TimePoint deadline, ProposalTracker::Callback done) {
  uint64_t id = tracker_.Register(std::move(done), deadline);
  proto::CoordEntry entry;
  entry.set_proposer(self_);
  entry.set_request_id(id);
  command.set_now_ms(WallMs());
  *entry.mutable_kv() = std::move(command);
  Status proposed = raw_->Propose(entry.SerializeAsString());
  if (!proposed.ok()) {
    metrics_.proposals_failed.fetch_add(1, std::memory_order_relaxed);
    tracker_.Complete(id, proposed);
    return;
  }
  ScheduleReady();
}

// Leader-internal commands (lease revoke and promote): nobody waits for them. Their request ids
// live above 2^62 so they never collide with the tracker's.
uint64_t CoordNodeImpl::ProposeInternal(proto::KvCommand command) {
  proto::CoordEntry entry;
  uint64_t id = (uint64_t{1} << 62) + ++internal_requests_;
  entry.set_proposer(self_);
  entry.set_request_id(id);
  command.set_now_ms(WallMs());
  *entry.mutable_kv() = std::move(command);
  (void)raw_->Propose(entry.SerializeAsString());
  ScheduleReady();
  return id;
}

bool CoordNodeImpl::LearnerInSync(uint64_t id) const {
  raft::NodeStatus status = raw_->GetStatus();
  auto learner = status.progress.find(id);
  auto leader = status.progress.find(self_);
  if (learner == status.progress.end() || leader == status.progress.end()) return false;
  // etcd's rule: the learner's match index is at least 90% of the leader's.
  return learner->second.match >= leader->second.match - leader->second.match / 10;
}

void CoordNodeImpl::ProposeMemberChange(const proto::ForwardRequest& request, TimePoint deadline,
                                          ProposalTracker::Callback done) {
  raftpb::ConfChange change;
  proto::CoordConfChangeContext context;
  proto::CoordMember member;
  if (request.has_member_add()) {
    if (request.member_add().peerurls().empty()) return done(InvalidArgumentError("etcdserver: no peer URLs given"));
    std::string url = StripScheme(request.member_add().peerurls(0));
    if (members_.FindByPeerUrl(url) != nullptr) return done(FailedPreconditionError("etcdserver: Peer URLs already exists"));
    member.set_id(DeriveMemberId(url));
    member.add_peer_urls(url);
    member.set_learner(request.member_add().islearner());
    change.set_type(member.learner() ? raftpb::CONF_CHANGE_ADD_LEARNER : raftpb::CONF_CHANGE_ADD_NODE);
  } else if (request.has_member_remove()) {
    const proto::CoordMember* existing = members_.Find(request.member_remove().id());
    if (existing == nullptr) return done(NotFoundError("etcdserver: member not found"));
    member = *existing;
    change.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  } else if (request.has_member_promote()) {
    const proto::CoordMember* existing = members_.Find(request.member_promote().id());
    if (existing == nullptr) return done(NotFoundError("etcdserver: member not found"));
    if (!existing->learner()) return done(FailedPreconditionError("etcdserver: can only promote a learner member"));
    if (!LearnerInSync(existing->id())) {
      return done(FailedPreconditionError("etcdserver: can only promote a learner member which is in sync with leader"));
    }
    member = *existing;
    change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  } else {
    return done(InvalidArgumentError("coord: empty request"));
  }
  uint64_t id = tracker_.Register(std::move(done), deadline);
  context.set_proposer(self_);
  context.set_request_id(id);
  *context.mutable_member() = member;
  change.set_node_id(member.id());
  change.set_id(id);
  change.set_context(context.SerializeAsString());
  Status proposed = raw_->ProposeConfChange(change);
  if (!proposed.ok()) {
    tracker_.Complete(id, FailedPreconditionError("etcdserver: unhealthy cluster (" + proposed.message() + ")"));
    return;
  }
  ScheduleReady();
}

// ---------------------------------------------------------------------------------------------
// Reads.

void CoordNodeImpl::SubmitRead(bool serializable, Duration timeout, std::function<void(cairn::Status)> read) {
  auto shared_read = std::make_shared<std::function<void(cairn::Status)>>(std::move(read));
  OnLoop(
      [this, serializable, timeout, shared_read] {
        auto& run = *shared_read;
        if (stopping_) return run(UnavailableError("coord: node stopping"));
        if (serializable) return run(cairn::Status::Ok());
        if (raw_->leader() == raft::kNone) return run(UnavailableError("etcdserver: no leader"));
        if (PendingRequests() >= options_.max_pending_requests) {
          return run(ResourceExhaustedError("etcdserver: too many requests"));
        }
        reads_.Add(std::move(run), clock_->Now() + timeout);
        ScheduleReady();
      },
      [shared_read](cairn::Status status) { (*shared_read)(status); });
}

// ---------------------------------------------------------------------------------------------
// Inbound peer traffic. Handlers run on the peer server's threads; they parse there and post
// the work to the loop.

void CoordNodeImpl::RegisterHandlers(net::Server* server) {
  inbox_->impl = this;
  std::shared_ptr<Inbox> inbox = inbox_;
  auto with_impl = [inbox](auto&& fn) {
    std::lock_guard<std::mutex> lock(inbox->mu);
    if (inbox->impl != nullptr) fn(inbox->impl);
  };
  server->HandleOneWay(kRaftMessagesMethod, [with_impl](std::string payload, const std::string& peer) {
    auto batch = std::make_shared<proto::RaftBatch>();
    if (!batch->ParseFromString(payload)) {
      log::Warn("coord.bad_raft_batch", "peer", peer);
      return;
    }
    with_impl([&](CoordNodeImpl* impl) { impl->Post([impl, batch] { impl->StepBatch(*batch); }); });
  });
  server->Handle(kRaftSnapshotMethod, [with_impl](std::string payload, net::Responder responder) {
    auto batch = std::make_shared<proto::RaftBatch>();
    if (!batch->ParseFromString(payload)) return responder.Respond(InvalidArgumentError("bad snapshot message"));
    bool posted = false;
    with_impl([&](CoordNodeImpl* impl) {
      posted = true;
      impl->Post([impl, batch, responder]() mutable {
        impl->StepBatch(*batch);
        responder.Respond(std::string());
      });
    });
    if (!posted) responder.Respond(UnavailableError("coord: node stopped"));
  });
  server->Handle(kForwardMethod, [with_impl](std::string payload, net::Responder responder) {
    bool posted = false;
    with_impl([&](CoordNodeImpl* impl) {
      posted = true;
      impl->Post([impl, payload = std::move(payload), responder]() mutable {
        impl->HandleForward(std::move(payload), std::move(responder));
      });
    });
    if (!posted) responder.Respond(UnavailableError("coord: node stopped"));
  });
  server->Handle(kMembersMethod, [with_impl](std::string, net::Responder responder) {
    bool posted = false;
    with_impl([&](CoordNodeImpl* impl) {
      posted = true;
      impl->Post([impl, responder]() mutable { impl->HandleMembers(std::move(responder)); });
    });
    if (!posted) responder.Respond(UnavailableError("coord: node stopped"));
  });
}

void CoordNodeImpl::StepBatch(const proto::RaftBatch& batch) {
  if (stopping_) return;
  if (cluster_id_ != 0 && batch.cluster_id() != 0 && batch.cluster_id() != cluster_id_) {
    log::Warn("coord.foreign_cluster", "from", IdToHex(batch.from()), "cluster_id", IdToHex(batch.cluster_id()));
    return;
  }
  if (cluster_id_ == 0 && batch.cluster_id() != 0) {  // a joining node learns its cluster
    cluster_id_ = batch.cluster_id();
    transport_->set_cluster_id(cluster_id_);
    if (!identity_saved_) {
      Status saved = SaveIdentity(env_, identity_path_, Identity{cluster_id_, self_, options_.name});
      if (!saved.ok()) log::Warn("coord.identity_save_failed", "error", saved);
      identity_saved_ = saved.ok();
    }
  }
  if (!transport_->HasPeer(batch.from()) && !batch.from_peer_url().empty()) {
    transport_->SetPeer(batch.from(), batch.from_peer_url());
  }
  for (const raftpb::Message& message : batch.messages()) {
    Status stepped = raw_->Step(message);
    if (!stepped.ok()) log::Debug("coord.step_failed", "from", IdToHex(batch.from()), "error", stepped);
  }
  ScheduleReady();
}

void CoordNodeImpl::HandleForward(std::string payload, net::Responder responder) {
  proto::ForwardRequest request;
  if (!request.ParseFromString(payload)) return responder.Respond(InvalidArgumentError("coord: bad forward request"));
  Duration timeout = std::chrono::milliseconds(request.deadline_ms() == 0 ? 5000 : request.deadline_ms());
  Propose(std::move(request), timeout,
          [responder](Result<proto::ForwardResponse> result) mutable {
            if (!result.ok()) return responder.Respond(result.status());
            responder.Respond(result->SerializeAsString());
          },
          /*may_forward=*/false);
}

void CoordNodeImpl::HandleMembers(net::Responder responder) {
  proto::MembersResponse response;
  response.set_cluster_id(cluster_id_);
  response.set_leader(raw_->leader());
  response.set_applied_index(applied_);
  for (const auto& [id, member] : members_.members()) *response.add_members() = member;
  responder.Respond(response.SerializeAsString());
}

// ---------------------------------------------------------------------------------------------
// CoordNode: the CoordApi adapters.

namespace {

// Calls done with the part of a ForwardResponse that `get` picks.
template <typename T, typename Get>
ProposalTracker::Callback Unwrap(Done<T> done, Get get) {
  return [done = std::move(done), get](Result<proto::ForwardResponse> result) {
    if (!result.ok()) return done(result.status());
    T* part = get(*result);
    if (part == nullptr) return done(InternalError("coord: response of the wrong kind"));
    done(std::move(*part));
  };
}

template <typename T, typename Get>
ProposalTracker::Callback UnwrapKv(Done<T> done, Get get) {
  return Unwrap<T>(std::move(done), [get](proto::ForwardResponse& response) -> T* {
    return response.has_kv() ? get(*response.mutable_kv()) : nullptr;
  });
}

}  // namespace

Result<std::unique_ptr<CoordNode>> CoordNode::Start(NodeOptions options, net::Server* peer_server) {
  auto impl = std::make_shared<CoordNodeImpl>(std::move(options));
  cairn::Status opened = impl->Open(peer_server);
  if (!opened.ok()) {
    impl->StopAll();
    return opened;
  }
  return std::unique_ptr<CoordNode>(new CoordNode(std::move(impl)));
}

CoordNode::CoordNode(std::shared_ptr<CoordNodeImpl> impl) : impl_(std::move(impl)) {}
CoordNode::~CoordNode() { Stop(); }
void CoordNode::Stop() { impl_->StopAll(); }
uint64_t CoordNode::member_id() const { return impl_->self_; }
uint64_t CoordNode::cluster_id() const { return impl_->cluster_id_; }
const NodeMetrics& CoordNode::metrics() const { return impl_->metrics_; }

void CoordNode::Range(const etcd::RangeRequest& request, const CallOptions& options, Done<etcd::RangeResponse> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(request.serializable(), options.deadline, [impl, request, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    auto response = impl->kv_.Range(request);
    if (!response.ok()) return done(response.status());
    int64_t revision = response->header().revision();
    *response->mutable_header() = impl->Header();
    if (revision != 0) response->mutable_header()->set_revision(revision);
    done(std::move(*response));
  });
}

void CoordNode::Put(const etcd::PutRequest& request, const CallOptions& options, Done<etcd::PutResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_put() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline,
                     UnwrapKv(std::move(done), [](proto::KvResponse& r) { return r.has_put() ? r.mutable_put() : nullptr; }));
}

void CoordNode::DeleteRange(const etcd::DeleteRangeRequest& request, const CallOptions& options,
                            Done<etcd::DeleteRangeResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_delete_range() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, UnwrapKv(std::move(done), [](proto::KvResponse& r) {
                       return r.has_delete_range() ? r.mutable_delete_range() : nullptr;
                     }));
}

void CoordNode::Txn(const etcd::TxnRequest& request, const CallOptions& options, Done<etcd::TxnResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_txn() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline,
                     UnwrapKv(std::move(done), [](proto::KvResponse& r) { return r.has_txn() ? r.mutable_txn() : nullptr; }));
}

void CoordNode::Compact(const etcd::CompactionRequest& request, const CallOptions& options,
                        Done<etcd::CompactionResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_compaction() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, UnwrapKv(std::move(done), [](proto::KvResponse& r) {
                       return r.has_compaction() ? r.mutable_compaction() : nullptr;
                     }));
}

void CoordNode::LeaseGrant(const etcd::LeaseGrantRequest& request, const CallOptions& options,
                           Done<etcd::LeaseGrantResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_lease_grant() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, UnwrapKv(std::move(done), [](proto::KvResponse& r) {
                       return r.has_lease_grant() ? r.mutable_lease_grant() : nullptr;
                     }));
}

void CoordNode::LeaseRevoke(const etcd::LeaseRevokeRequest& request, const CallOptions& options,
                            Done<etcd::LeaseRevokeResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_lease_revoke() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, UnwrapKv(std::move(done), [](proto::KvResponse& r) {
                       return r.has_lease_revoke() ? r.mutable_lease_revoke() : nullptr;
                     }));
}

void CoordNode::LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& request, const CallOptions& options,
                               Done<etcd::LeaseKeepAliveResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_kv()->mutable_lease_keepalive() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, UnwrapKv(std::move(done), [](proto::KvResponse& r) {
                       return r.has_lease_keepalive() ? r.mutable_lease_keepalive() : nullptr;
                     }));
}

void CoordNode::LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request, const CallOptions& options,
                                Done<etcd::LeaseTimeToLiveResponse> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(false, options.deadline, [impl, request, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(impl->clock_->WallNow().time_since_epoch()).count();
    auto response = impl->kv_.LeaseTimeToLive(request, now_ms);
    if (!response.ok()) return done(response.status());
    *response->mutable_header() = impl->Header();
    done(std::move(*response));
  });
}

void CoordNode::LeaseLeases(const etcd::LeaseLeasesRequest&, const CallOptions& options,
                            Done<etcd::LeaseLeasesResponse> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(false, options.deadline, [impl, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    etcd::LeaseLeasesResponse response = impl->kv_.LeaseLeases();
    *response.mutable_header() = impl->Header();
    done(std::move(response));
  });
}

void CoordNode::MemberList(const etcd::MemberListRequest& request, const CallOptions& options,
                           Done<etcd::MemberListResponse> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(!request.linearizable(), options.deadline, [impl, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    etcd::MemberListResponse response;
    *response.mutable_header() = impl->Header();
    for (etcd::Member& member : impl->members_.ToEtcd()) *response.add_members() = std::move(member);
    done(std::move(response));
  });
}

void CoordNode::MemberAdd(const etcd::MemberAddRequest& request, const CallOptions& options,
                          Done<etcd::MemberAddResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_member_add() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, Unwrap(std::move(done), [](proto::ForwardResponse& r) {
                       return r.has_member_add() ? r.mutable_member_add() : nullptr;
                     }));
}

void CoordNode::MemberRemove(const etcd::MemberRemoveRequest& request, const CallOptions& options,
                             Done<etcd::MemberRemoveResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_member_remove() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, Unwrap(std::move(done), [](proto::ForwardResponse& r) {
                       return r.has_member_remove() ? r.mutable_member_remove() : nullptr;
                     }));
}

void CoordNode::MemberPromote(const etcd::MemberPromoteRequest& request, const CallOptions& options,
                              Done<etcd::MemberPromoteResponse> done) {
  proto::ForwardRequest forward;
  *forward.mutable_member_promote() = request;
  impl_->SubmitWrite(std::move(forward), options.deadline, Unwrap(std::move(done), [](proto::ForwardResponse& r) {
                       return r.has_member_promote() ? r.mutable_member_promote() : nullptr;
                     }));
}

void CoordNode::Status(const etcd::StatusRequest&, const CallOptions&, Done<etcd::StatusResponse> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(true, std::chrono::seconds(1), [impl, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    etcd::StatusResponse response;
    *response.mutable_header() = impl->Header();
    response.set_version("3.5.0");
    int64_t size = impl->kv_.store().approximate_bytes();
    impl->metrics_.db_size_bytes.store(size);
    response.set_dbsize(size);
    response.set_dbsizeinuse(size);
    response.set_leader(impl->raw_->leader());
    response.set_raftindex(impl->raw_->commit_index());
    response.set_raftterm(impl->raw_->term());
    response.set_raftappliedindex(impl->applied_);
    const proto::CoordMember* me = impl->members_.Find(impl->self_);
    response.set_islearner(me != nullptr && me->learner());
    if (impl->raw_->leader() == raft::kNone) response.add_errors("etcdserver: no leader");
    done(std::move(response));
  });
}

Health CoordNode::GetHealth() {
  if (impl_->stopped_.load()) return Health{false, "stopped"};
  if (impl_->removed_.load()) return Health{false, "removed from the cluster"};
  if (impl_->metrics_.leader.load() == 0) return Health{false, "no leader"};
  return Health{true, ""};
}

std::string CoordNode::Metrics() { return impl_->metrics_.Render(); }

void CoordNode::SaveBackup(Done<std::string> done) {
  CoordNodeImpl* impl = impl_.get();
  impl->SubmitRead(true, std::chrono::seconds(5), [impl, done](cairn::Status status) {
    if (!status.ok()) return done(status);
    done(impl->EncodeBackupNow());
  });
}

// ---------------------------------------------------------------------------------------------
// Watch streams.

namespace {

class NodeWatchStream final : public WatchStream {
 public:
  struct Shared {
    std::recursive_mutex mu;  // held while the sink runs; the destructor waits for it
    bool alive = true;
    CoordApi::WatchSink sink;
    int64_t stream_id = 0;  // loop thread only
  };

  NodeWatchStream(CoordNodeImpl* impl, std::shared_ptr<void> keep_alive, CoordApi::WatchSink sink)
      : impl_(impl), keep_alive_(std::move(keep_alive)), shared_(std::make_shared<Shared>()) {
    shared_->sink = std::move(sink);
  }

  ~NodeWatchStream() override {
    {
      std::lock_guard<std::recursive_mutex> lock(shared_->mu);
      shared_->alive = false;
    }
    CoordNodeImpl* impl = impl_;
    std::shared_ptr<Shared> shared = shared_;
    impl->OnLoop(
        [impl, shared] {
          if (shared->stream_id != 0) impl->kv_.watch_hub().CloseStream(shared->stream_id);
        },
        [](cairn::Status) {});
  }

  void Handle(const etcd::WatchRequest& request, Done<bool> done) override {
    CoordNodeImpl* impl = impl_;
    std::shared_ptr<Shared> shared = shared_;
    impl->OnLoop(
        [impl, shared, request, done] {
          if (impl->stopping_) return done(UnavailableError("coord: node stopping"));
          if (shared->stream_id == 0) {
            shared->stream_id = impl->kv_.watch_hub().OpenStream([impl, shared](const etcd::WatchResponse& response) {
              std::lock_guard<std::recursive_mutex> lock(shared->mu);
              if (!shared->alive) return;
              etcd::WatchResponse copy = response;
              copy.mutable_header()->set_cluster_id(impl->cluster_id_);
              copy.mutable_header()->set_member_id(impl->self_);
              copy.mutable_header()->set_raft_term(impl->raw_->term());
              shared->sink(copy);
            });
          }
          cairn::Status handled = impl->kv_.watch_hub().Handle(shared->stream_id, request);
          if (!handled.ok()) return done(handled);
          done(true);
        },
        [done](cairn::Status status) { done(status); });
  }

 private:
  CoordNodeImpl* impl_;
  std::shared_ptr<void> keep_alive_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace

Result<std::unique_ptr<WatchStream>> CoordNode::OpenWatchStream(WatchSink sink) {
  if (impl_->stopped_.load()) return UnavailableError("coord: node stopped");
  return std::unique_ptr<WatchStream>(new NodeWatchStream(impl_.get(), impl_, std::move(sink)));
}

}  // namespace cairn::coord
