// RawNode: the public face of RaftImpl; builds Ready batches and tracks what the driver persisted.
#include <set>
#include <string>

#include "raft_impl.h"

namespace cairn::raft {

namespace {
std::string N(uint64_t v) { return std::to_string(v); }

bool SameHardState(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() && a.commit() == b.commit();
}
bool IsEmptyHardState(const HardState& hs) { return hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0; }

// Checks that storage is readable and self-consistent, so a bad WAL gives an error, not a panic.
Status ValidateStorage(const Config& config) {
  auto init = config.storage->GetInitialState();
  if (!init.ok()) return init.status().WithContext("raft: reading initial state");
  auto first = config.storage->FirstIndex();
  if (!first.ok()) return first.status().WithContext("raft: reading first index");
  auto last = config.storage->LastIndex();
  if (!last.ok()) return last.status().WithContext("raft: reading last index");
  const HardState& hs = init->hard_state;
  if (!IsEmptyHardState(hs) && (hs.commit() < *first - 1 || hs.commit() > *last)) {
    return CorruptionError("raft: hard state commit " + N(hs.commit()) + " outside the log [" + N(*first - 1) +
                           ", " + N(*last) + "]");
  }
  uint64_t commit = std::max(hs.commit(), *first - 1);
  if (config.applied > commit) {
    return InvalidArgumentError("raft: config.applied " + N(config.applied) + " is beyond commit " + N(commit));
  }
  if (config.applied > 0 && config.applied < *first - 1) {
    return InvalidArgumentError("raft: config.applied " + N(config.applied) + " is below the snapshot index " +
                                N(*first - 1));
  }
  std::set<uint64_t> voters(init->conf_state.voters().begin(), init->conf_state.voters().end());
  for (uint64_t l : init->conf_state.learners()) {
    if (voters.count(l)) return CorruptionError("raft: snapshot conf state has " + N(l) + " as voter and learner");
  }
  return Status::Ok();
}
// A malformed message from the network is refused here so the core can rely on its shape.
Status ValidateEntries(const Message& m) {
  if (m.type() != raftpb::MSG_APP) return Status::Ok();
  for (int i = 0; i < m.entries_size(); ++i) {
    if (m.entries(i).index() != m.index() + 1 + static_cast<uint64_t>(i) || m.entries(i).term() < m.log_term() ||
        m.entries(i).term() > m.term()) {
      return InvalidArgumentError("raft: malformed append (entry " + N(i) + " has index " +
                                  N(m.entries(i).index()) + " term " + N(m.entries(i).term()) + "): " +
                                  DescribeMessage(m));
    }
  }
  return Status::Ok();
}
}  // namespace

Status ValidateConfig(const Config& config) {
  if (config.id == kNone) return InvalidArgumentError("raft: config.id must be non-zero");
  if (config.storage == nullptr) return InvalidArgumentError("raft: config.storage is required");
  if (config.heartbeat_tick <= 0) return InvalidArgumentError("raft: heartbeat_tick must be > 0");
  if (config.election_tick <= config.heartbeat_tick) {
    return InvalidArgumentError("raft: election_tick must be greater than heartbeat_tick");
  }
  if (config.max_inflight_msgs == 0) return InvalidArgumentError("raft: max_inflight_msgs must be > 0");
  std::set<uint64_t> seen;
  for (const auto* list : {&config.voters, &config.learners}) {
    for (uint64_t id : *list) {
      if (id == kNone) return InvalidArgumentError("raft: member id 0 is reserved");
      if (!seen.insert(id).second) return InvalidArgumentError("raft: member " + N(id) + " listed twice");
    }
  }
  if (config.voters.empty() && !config.learners.empty()) {
    return InvalidArgumentError("raft: bootstrap learners need at least one voter");
  }
  return Status::Ok();
}

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& config) {
  CAIRN_RETURN_IF_ERROR(ValidateConfig(config));
  CAIRN_RETURN_IF_ERROR(ValidateStorage(config));
  auto initial = config.storage->GetInitialState();
  std::unique_ptr<RawNode> node(new RawNode(std::make_unique<RaftImpl>(config)));
  node->prev_hard_ = initial->hard_state;  // what is already durable
  node->prev_soft_ = SoftState{};
  return node;
}

RawNode::RawNode(std::unique_ptr<RaftImpl> raft) : raft_(std::move(raft)) {}
RawNode::~RawNode() = default;

void RawNode::Tick() { raft_->Tick(); }

Status RawNode::Campaign() {
  Message m;
  m.set_type(raftpb::MSG_HUP);
  return raft_->Step(m);
}

Status RawNode::Propose(std::string data) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  m.add_entries()->set_data(std::move(data));
  return raft_->Step(m);
}

Status RawNode::ProposeConfChange(const ConfChange& change) {
  Message m;
  m.set_type(raftpb::MSG_PROP);
  m.set_from(raft_->id());
  *m.add_entries() = MakeConfChangeEntry(change);
  return raft_->Step(m);
}

Status RawNode::Step(const Message& message) {
  if (IsLocalMessage(message.type())) {
    return InvalidArgumentError("raft: cannot step local message type " +
                                std::string(MessageTypeName(message.type())) + " from the network");
  }
  if (message.from() == kNone && message.type() != raftpb::MSG_PROP && message.type() != raftpb::MSG_READ_INDEX) {
    return InvalidArgumentError("raft: message without a sender: " + DescribeMessage(message));
  }
  CAIRN_RETURN_IF_ERROR(ValidateEntries(message));
  return raft_->Step(message);
}

void RawNode::ReadIndex(std::string request_context) {
  Message m;
  m.set_type(raftpb::MSG_READ_INDEX);
  m.add_entries()->set_data(std::move(request_context));
  (void)raft_->Step(m);
}

void RawNode::TransferLeadership(uint64_t transferee) {
  Message m;
  m.set_type(raftpb::MSG_TRANSFER_LEADER);
  m.set_from(transferee);
  (void)raft_->Step(m);
}

ConfState RawNode::ApplyConfChange(const ConfChange& change) { return raft_->ApplyConfChange(change); }

void RawNode::ReportUnreachable(uint64_t id) {
  Message m;
  m.set_type(raftpb::MSG_UNREACHABLE);
  m.set_from(id);
  (void)raft_->Step(m);
}

void RawNode::ReportSnapshot(uint64_t id, bool success) {
  Message m;
  m.set_type(raftpb::MSG_SNAP_STATUS);
  m.set_from(id);
  m.set_reject(!success);
  (void)raft_->Step(m);
}

bool RawNode::HasReady() const {
  if (!(raft_->GetSoftState() == prev_soft_)) return true;
  HardState hs = raft_->GetHardState();
  if (!IsEmptyHardState(hs) && !SameHardState(hs, prev_hard_)) return true;
  const RaftLog& log = raft_->log();
  return log.UnstableSnapshot().has_value() || !log.UnstableEntries().empty() || raft_->HasMessages() ||
         log.HasNextCommittedEntries() || raft_->HasReadStates();
}

Ready RawNode::GetReady() {
  if (pending_) Panic("raft: GetReady called again before Advance", __FILE__, __LINE__);
  Ready rd;
  Handed handed;
  SoftState soft = raft_->GetSoftState();
  if (!(soft == prev_soft_)) {
    rd.soft_state = soft;
    prev_soft_ = soft;
  }
  HardState hs = raft_->GetHardState();
  if (!IsEmptyHardState(hs) && !SameHardState(hs, prev_hard_)) {
    rd.hard_state = hs;
    handed.hard_state = hs;
  }
  RaftLog& log = raft_->log();
  rd.entries = log.UnstableEntries();
  rd.snapshot = log.UnstableSnapshot();
  rd.committed_entries = log.NextCommittedEntries();
  rd.messages = raft_->TakeMessages();
  rd.read_states = raft_->TakeReadStates();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 (rd.hard_state && (hs.term() != prev_hard_.term() || hs.vote() != prev_hard_.vote()));
  if (!rd.entries.empty()) {
    handed.last_entry_index = rd.entries.back().index();
    handed.last_entry_term = rd.entries.back().term();
  }
  if (rd.snapshot) handed.snapshot_index = rd.snapshot->metadata().index();
  for (const Entry& e : rd.committed_entries) handed.applied_bytes += e.data().size();
  if (!rd.committed_entries.empty()) {
    handed.applied_to = rd.committed_entries.back().index();
  } else if (rd.snapshot) {
    handed.applied_to = handed.snapshot_index;
  }
  pending_ = handed;
  return rd;
}

void RawNode::Advance() {
  if (!pending_) Panic("raft: Advance called without a Ready", __FILE__, __LINE__);
  RaftLog& log = raft_->log();
  if (pending_->hard_state) prev_hard_ = *pending_->hard_state;
  if (pending_->snapshot_index > 0) log.StableSnapTo(pending_->snapshot_index);
  if (pending_->last_entry_index > 0) log.StableTo(pending_->last_entry_index, pending_->last_entry_term);
  if (pending_->applied_to > 0) log.AppliedTo(pending_->applied_to);
  raft_->ReduceUncommittedSize(pending_->applied_bytes);
  pending_.reset();
}

NodeStatus RawNode::GetStatus() const {
  NodeStatus status;
  status.id = raft_->id();
  status.hard_state = raft_->GetHardState();
  status.soft_state = raft_->GetSoftState();
  status.applied = raft_->log().applied();
  status.lead_transferee = raft_->lead_transferee();
  status.conf_state = raft_->tracker().GetConfState();
  if (raft_->role() == Role::kLeader) {
    for (const auto& [id, pr] : raft_->tracker().progress) {
      status.progress[id] = ProgressStatus{.match = pr.match,
                                           .next = pr.next,
                                           .state = pr.state,
                                           .learner = pr.learner,
                                           .recent_active = pr.recent_active,
                                           .inflight = pr.inflights.Count(),
                                           .pending_snapshot = pr.pending_snapshot};
    }
  }
  return status;
}

uint64_t RawNode::id() const { return raft_->id(); }
Role RawNode::role() const { return raft_->role(); }
uint64_t RawNode::term() const { return raft_->term(); }
uint64_t RawNode::leader() const { return raft_->leader(); }
uint64_t RawNode::commit_index() const { return raft_->log().committed(); }

}  // namespace cairn::raft
