// Membership changes one at a time (§6 / thesis §4.1, single-server changes with learners),
// leader transfer (thesis §3.10) and ReadIndex (thesis §6.4).
#include <string>

#include "raft_impl.h"

namespace cairn::raft {

namespace {
std::string N(uint64_t v) { return std::to_string(v); }
}  // namespace

void RaftImpl::ApplyConfState(const ConfState& cs) {
  tracker_.voters = std::set<uint64_t>(cs.voters().begin(), cs.voters().end());
  tracker_.learners = std::set<uint64_t>(cs.learners().begin(), cs.learners().end());
  for (uint64_t id : tracker_.voters) {
    if (tracker_.learners.count(id)) Panic("raft: node " + N(id) + " is both voter and learner", __FILE__, __LINE__);
  }
  std::map<uint64_t, Progress> progress;
  uint64_t last = log_.LastIndex();
  auto keep_or_add = [&](uint64_t id, bool learner) {
    auto it = tracker_.progress.find(id);
    if (it != tracker_.progress.end()) {
      it->second.learner = learner;
      progress.emplace(id, std::move(it->second));
      return;
    }
    Progress pr(tracker_.max_inflight());
    pr.learner = learner;
    pr.next = last + 1;
    // A new node counts as active so CheckQuorum does not depose us before it first answers.
    pr.recent_active = true;
    if (id == id_) pr.match = last;
    progress.emplace(id, std::move(pr));
  };
  for (uint64_t id : tracker_.voters) keep_or_add(id, false);
  for (uint64_t id : tracker_.learners) keep_or_add(id, true);
  tracker_.progress = std::move(progress);
}

ConfState RaftImpl::ApplyConfChange(const ConfChange& change) {
  if (change.node_id() == kNone) return tracker_.GetConfState();  // a no-op change
  ConfState before = tracker_.GetConfState();
  std::set<uint64_t> voters = tracker_.voters;
  std::set<uint64_t> learners = tracker_.learners;
  uint64_t node = change.node_id();
  std::string what;
  switch (change.type()) {
    case raftpb::CONF_CHANGE_ADD_NODE:
      what = learners.count(node) ? "promoted learner " + N(node) + " to voter" : "added voter " + N(node);
      learners.erase(node);
      voters.insert(node);
      break;
    case raftpb::CONF_CHANGE_ADD_LEARNER:
      what = "added learner " + N(node);
      voters.erase(node);
      learners.insert(node);
      break;
    case raftpb::CONF_CHANGE_REMOVE_NODE:
      what = "removed node " + N(node);
      voters.erase(node);
      learners.erase(node);
      break;
    default:
      Panic("raft: unknown conf change type " + N(change.type()), __FILE__, __LINE__);
  }
  if (voters.empty()) {
    // The leader refuses such proposals, so a committed one means a bug or a corrupted log.
    Panic("raft: applying conf change would remove all voters", __FILE__, __LINE__);
  }
  ConfState cs;
  for (uint64_t id : voters) cs.add_voters(id);
  for (uint64_t id : learners) cs.add_learners(id);
  ApplyConfState(cs);
  Narrate(EventKind::kConfChangeApplied, node, 0, "conf change applied: " + what);
  AfterConfChange();
  return cs;
}

void RaftImpl::AfterConfChange() {
  if (role_ != Role::kLeader) return;
  if (!tracker_.IsVoter(id_)) {
    Narrate(EventKind::kSteppedDown, 0, 0, "stepping down: this leader was removed from the voters");
    BecomeFollower(term_, kNone);
    return;
  }
  // The quorum changed: commit may advance (e.g. a slow voter was removed).
  if (MaybeCommit()) {
    BroadcastAppend();
  } else {
    for (const auto& entry : tracker_.progress) {
      if (entry.first != id_) MaybeSendAppend(entry.first, false);
    }
  }
  if (lead_transferee_ != kNone && !tracker_.IsVoter(lead_transferee_)) {
    AbortLeaderTransfer("transferee " + N(lead_transferee_) + " is no longer a voter");
  }
}

Status RaftImpl::FilterConfChanges(std::vector<Entry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].type() != raftpb::ENTRY_CONF_CHANGE) continue;
    ConfChange cc;
    if (!cc.ParseFromString(entries[i].data())) {
      return InvalidArgumentError("raft: conf change entry does not parse as ConfChange");
    }
    if (!raftpb::ConfChangeType_IsValid(cc.type()) || cc.node_id() == kNone) {
      return InvalidArgumentError("raft: conf change refused: unknown type " + N(cc.type()) + " or node id 0");
    }
    if (pending_conf_index_ > log_.applied()) {
      Narrate(EventKind::kMessageIgnored, cc.node_id(), pending_conf_index_,
              "refused conf change: the previous one at " + N(pending_conf_index_) + " is not applied yet");
      return FailedPreconditionError("raft: conf change refused: previous conf change at index " +
                                     N(pending_conf_index_) + " is not applied yet (applied " +
                                     N(log_.applied()) + ")");
    }
    bool removes_last_voter = cc.type() != raftpb::CONF_CHANGE_ADD_NODE && tracker_.voters.size() == 1 &&
                              tracker_.IsVoter(cc.node_id());
    if (removes_last_voter) {
      return FailedPreconditionError("raft: conf change refused: it would remove the last voter " +
                                     N(cc.node_id()));
    }
    pending_conf_index_ = log_.LastIndex() + i + 1;
  }
  return Status::Ok();
}

// ---- leader transfer ----

void RaftImpl::HandleTransferLeader(const Message& m, Progress& pr) {
  uint64_t transferee = m.from();
  if (pr.learner) {
    Narrate(EventKind::kMessageIgnored, transferee, 0, "refused transfer to learner " + N(transferee));
    return;
  }
  if (lead_transferee_ != kNone) {
    if (lead_transferee_ == transferee) return;  // already in progress
    AbortLeaderTransfer("superseded by a transfer to " + N(transferee));
  }
  if (transferee == id_) return;  // already leader
  // The transfer must finish within an election timeout (TickHeartbeat aborts it otherwise).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr.match == log_.LastIndex()) {
    Narrate(EventKind::kTransferStarted, transferee, pr.match,
            "transferring leadership to " + N(transferee) + ": it is up to date, sending TimeoutNow");
    SendTimeoutNow(transferee);
  } else {
    Narrate(EventKind::kTransferStarted, transferee, pr.match,
            "transferring leadership to " + N(transferee) + ": catching it up from " + N(pr.match) + " first");
    SendAppend(transferee);
  }
}

void RaftImpl::SendTimeoutNow(uint64_t to) {
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_TIMEOUT_NOW);
  Send(std::move(m));
}

void RaftImpl::AbortLeaderTransfer(const std::string& why) {
  if (lead_transferee_ == kNone) return;
  Narrate(EventKind::kTransferAborted, lead_transferee_, 0,
          "aborted leadership transfer to " + N(lead_transferee_) + ": " + why);
  lead_transferee_ = kNone;
}

// ---- ReadIndex ----

void RaftImpl::HandleReadIndex(Message& m) {
  if (m.entries_size() != 1) return;
  if (tracker_.IsSingleton()) {
    AnswerReadIndex(m, log_.committed());
    return;
  }
  // Until an entry of this term commits, our commit index may lag the true one (§8).
  if (!CommittedEntryInCurrentTerm()) {
    pending_read_index_messages_.push_back(m);
    return;
  }
  const std::string& context = m.entries(0).data();
  if (pending_read_index_.count(context)) return;  // same request already waiting
  ReadIndexStatus status;
  status.request = m;
  status.index = log_.committed();
  status.acks[id_] = true;
  pending_read_index_.emplace(context, std::move(status));
  read_index_queue_.push_back(context);
  // Confirm we are still leader: a quorum must answer a heartbeat carrying this context.
  BroadcastHeartbeatWithContext(context);
}

void RaftImpl::AnswerReadIndex(const Message& request, uint64_t index) {
  if (request.from() == kNone || request.from() == id_) {
    read_states_.push_back(ReadState{index, request.entries(0).data()});
    Narrate(EventKind::kReadIndex, 0, index, "read index " + N(index) + " confirmed");
    return;
  }
  Message resp;
  resp.set_to(request.from());
  resp.set_type(raftpb::MSG_READ_INDEX_RESP);
  resp.set_index(index);
  *resp.mutable_entries() = request.entries();
  Send(std::move(resp));
}

void RaftImpl::HandleReadIndexAck(const Message& m) {
  if (m.context().empty()) return;
  auto it = pending_read_index_.find(m.context());
  if (it == pending_read_index_.end()) return;
  it->second.acks[m.from()] = true;
  if (quorum::TallyVotes(tracker_.voters, it->second.acks) != quorum::VoteResult::kWon) return;
  // Leadership confirmed at this point, which also confirms every earlier request in the queue.
  std::vector<ReadIndexStatus> done;
  while (!read_index_queue_.empty()) {
    std::string context = std::move(read_index_queue_.front());
    read_index_queue_.pop_front();
    auto node = pending_read_index_.extract(context);
    if (node.empty()) Panic("raft: read index queue and pending map disagree", __FILE__, __LINE__);
    done.push_back(std::move(node.mapped()));
    if (context == m.context()) break;
  }
  for (const ReadIndexStatus& status : done) AnswerReadIndex(status.request, status.index);
}

void RaftImpl::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> pending = std::exchange(pending_read_index_messages_, {});
  for (Message& m : pending) HandleReadIndex(m);
}

}  // namespace cairn::raft
