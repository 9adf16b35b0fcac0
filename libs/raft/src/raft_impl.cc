// Roles, terms, elections and message dispatch (Raft §5.1, §5.2, §9.6 PreVote, CheckQuorum).
#include "raft_impl.h"

#include <string>

#include "cairn/common/logging.h"

namespace cairn::raft {

namespace {
using raftpb::MessageType;
// Context of a vote request made on a leader's TimeoutNow: such requests bypass the lease check.
constexpr char kCampaignTransfer[] = "CampaignTransfer";
std::string N(uint64_t v) { return std::to_string(v); }

MessageType VoteResponseType(MessageType t) {
  return t == raftpb::MSG_VOTE ? raftpb::MSG_VOTE_RESP : raftpb::MSG_PRE_VOTE_RESP;
}
bool IsVoteMessage(MessageType t) {
  return t == raftpb::MSG_VOTE || t == raftpb::MSG_VOTE_RESP || t == raftpb::MSG_PRE_VOTE ||
         t == raftpb::MSG_PRE_VOTE_RESP;
}
}  // namespace

RaftImpl::RaftImpl(const Config& config)
    : id_(config.id),
      log_(config.storage, config.max_committed_size_per_ready),
      tracker_(config.max_inflight_msgs),
      election_timeout_(config.election_tick),
      heartbeat_timeout_(config.heartbeat_tick),
      check_quorum_(config.check_quorum),
      pre_vote_(config.pre_vote),
      disable_proposal_forwarding_(config.disable_proposal_forwarding),
      max_msg_size_(config.max_size_per_msg),
      max_uncommitted_size_(config.max_uncommitted_entries_size == 0 ? kNoLimit
                                                                     : config.max_uncommitted_entries_size),
      // Mix the id in so nodes sharing a seed still get different timeouts.
      random_(config.random_seed * 0x9E3779B97F4A7C15ULL + config.id),
      on_event_(config.on_event) {
  auto init = config.storage->GetInitialState();
  if (!init.ok()) Panic("raft: storage initial state: " + init.status().ToString(), __FILE__, __LINE__);
  ApplyConfState(init->conf_state);
  const HardState& hs = init->hard_state;
  bool empty_hard_state = hs.term() == 0 && hs.vote() == 0 && hs.commit() == 0;
  if (!empty_hard_state) {
    log_.CommitTo(hs.commit());
    term_ = hs.term();
    vote_ = hs.vote();
  }
  if (config.applied > 0) log_.AppliedTo(config.applied);
  BecomeFollower(term_, kNone);

  bool empty_storage = empty_hard_state && log_.LastIndex() == 0 && tracker_.voters.empty() &&
                       tracker_.learners.empty();
  if (empty_storage && !config.voters.empty()) {
    // Bootstrap: the founding membership becomes committed conf-change entries 1..n at term 1, so
    // the log alone describes the membership (the application applies them like any others).
    BecomeFollower(1, kNone);
    std::vector<Entry> entries;
    std::vector<ConfChange> changes;
    auto add = [&](uint64_t node, raftpb::ConfChangeType type) {
      ConfChange cc;
      cc.set_type(type);
      cc.set_node_id(node);
      Entry e = MakeConfChangeEntry(cc);
      e.set_term(1);
      e.set_index(entries.size() + 1);
      entries.push_back(e);
      changes.push_back(cc);
    };
    for (uint64_t v : config.voters) add(v, raftpb::CONF_CHANGE_ADD_NODE);
    for (uint64_t l : config.learners) add(l, raftpb::CONF_CHANGE_ADD_LEARNER);
    log_.Append(entries);
    log_.CommitTo(entries.size());
    for (const ConfChange& cc : changes) ApplyConfChange(cc);
  }
}

HardState RaftImpl::GetHardState() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  return hs;
}

void RaftImpl::Narrate(EventKind kind, uint64_t peer, uint64_t index, std::string text) {
  log::Debug("raft.event", "node", id_, "term", term_, "kind", EventKindName(kind), "text", text);
  if (!on_event_) return;
  on_event_(Event{.node = id_, .term = term_, .kind = kind, .peer = peer, .index = index, .text = std::move(text)});
}

// ---- roles ----

void RaftImpl::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  leader_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  lead_transferee_ = kNone;
  tracker_.votes.clear();
  uint64_t last = log_.LastIndex();
  for (auto& [node, pr] : tracker_.progress) {
    bool learner = pr.learner;
    pr = Progress(tracker_.max_inflight());
    pr.learner = learner;
    pr.next = last + 1;
    if (node == id_) pr.match = last;
  }
  pending_conf_index_ = 0;
  uncommitted_size_ = 0;
  pending_read_index_.clear();
  read_index_queue_.clear();
}

void RaftImpl::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ = election_timeout_ + static_cast<int>(random_.Uniform(election_timeout_));
}

void RaftImpl::BecomeFollower(uint64_t term, uint64_t leader) {
  bool was_leader = role_ == Role::kLeader;
  Reset(term);
  leader_ = leader;
  role_ = Role::kFollower;
  if (was_leader) Narrate(EventKind::kSteppedDown, leader, 0, "stepped down to follower at term " + N(term));
  Narrate(EventKind::kBecameFollower, leader, 0,
          "became follower at term " + N(term) + (leader != kNone ? ", leader " + N(leader) : ""));
}

void RaftImpl::BecomePreCandidate() {
  if (role_ == Role::kLeader) Panic("raft: invalid transition leader -> pre-candidate", __FILE__, __LINE__);
  // PreVote changes neither term nor vote: a node that cannot win does not disturb anyone.
  tracker_.votes.clear();
  leader_ = kNone;
  role_ = Role::kPreCandidate;
  Narrate(EventKind::kBecamePreCandidate, 0, 0, "became pre-candidate at term " + N(term_) +
          " (no leader heard for " + N(election_elapsed_) + " ticks)");
}

void RaftImpl::BecomeCandidate() {
  if (role_ == Role::kLeader) Panic("raft: invalid transition leader -> candidate", __FILE__, __LINE__);
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
  Narrate(EventKind::kBecameCandidate, 0, 0, "became candidate at term " + N(term_));
}

void RaftImpl::BecomeLeader() {
  if (role_ == Role::kFollower) Panic("raft: invalid transition follower -> leader", __FILE__, __LINE__);
  Reset(term_);
  leader_ = id_;
  role_ = Role::kLeader;
  Progress* self = tracker_.Find(id_);
  if (self == nullptr) Panic("raft: became leader without being in the configuration", __FILE__, __LINE__);
  self->BecomeReplicate();
  self->recent_active = true;
  // Any conf change still in the log may be unapplied: block new ones until it is (conservative).
  pending_conf_index_ = log_.LastIndex();
  Narrate(EventKind::kBecameLeader, 0, log_.LastIndex() + 1,
          "became leader at term " + N(term_) + "; appending a no-op at index " + N(log_.LastIndex() + 1));
  // §5.4.2 / §8: an entry from the new term lets earlier entries commit, and answers ReadIndex.
  AppendEntry({Entry()});
}

bool RaftImpl::Promotable() const { return tracker_.IsVoter(id_) && !log_.UnstableSnapshot().has_value(); }

// ---- ticks ----

void RaftImpl::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void RaftImpl::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_HUP);
    m.set_from(id_);
    (void)Step(m);
  }
}

void RaftImpl::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.set_type(raftpb::MSG_CHECK_QUORUM);
      m.set_from(id_);
      (void)Step(m);
    }
    // A transfer that has not finished within an election timeout is abandoned.
    if (role_ == Role::kLeader && lead_transferee_ != kNone) {
      AbortLeaderTransfer("transfer did not complete within an election timeout");
    }
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_type(raftpb::MSG_BEAT);
    m.set_from(id_);
    (void)Step(m);
  }
}

// ---- elections ----

void RaftImpl::Hup(CampaignType type) {
  if (role_ == Role::kLeader) return;
  if (!Promotable()) {
    Narrate(EventKind::kMessageIgnored, 0, 0, "cannot campaign: not a voter (or restoring a snapshot)");
    return;
  }
  if (log_.committed() > log_.applied()) {
    auto pending = log_.Slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
    if (!pending.ok()) Panic("raft: unapplied committed entries unavailable", __FILE__, __LINE__);
    for (const Entry& e : *pending) {
      if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
        Narrate(EventKind::kMessageIgnored, 0, e.index(),
                "cannot campaign: committed conf change at " + N(e.index()) + " is not applied yet");
        return;
      }
    }
  }
  Campaign(type);
}

void RaftImpl::Campaign(CampaignType type) {
  uint64_t vote_term;
  MessageType vote_type;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_type = raftpb::MSG_PRE_VOTE;
    vote_term = term_ + 1;  // the term we would campaign in; ours stays unchanged
  } else {
    BecomeCandidate();
    vote_type = raftpb::MSG_VOTE;
    vote_term = term_;
  }
  if (Poll(id_, true) == quorum::VoteResult::kWon) {  // single-voter cluster
    if (type == CampaignType::kPreElection) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t voter : tracker_.voters) {
    if (voter == id_) continue;
    Message m;
    m.set_to(voter);
    m.set_term(vote_term);
    m.set_type(vote_type);
    m.set_index(log_.LastIndex());
    m.set_log_term(log_.LastTerm());
    if (type == CampaignType::kTransfer) m.set_context(kCampaignTransfer);
    Send(m);
  }
}

quorum::VoteResult RaftImpl::Poll(uint64_t from, bool granted) { return tracker_.RecordVote(from, granted); }

// Term rules shared by every role. Sets *done when the message was fully handled here.
Status RaftImpl::StepByTerm(const Message& m, bool* done) {
  *done = false;
  if (m.term() == 0) return Status::Ok();  // local message
  if (m.term() > term_) {
    bool is_vote_request = m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE;
    if (is_vote_request) {
      bool force = m.context() == kCampaignTransfer;
      bool in_lease = check_quorum_ && leader_ != kNone && election_elapsed_ < election_timeout_;
      if (!force && in_lease) {
        // CheckQuorum: we heard from a live leader less than an election timeout ago, so this
        // candidate is partitioned or removed; do not let it depose a healthy leader.
        Narrate(EventKind::kMessageIgnored, m.from(), 0,
                std::string("ignored ") + std::string(MessageTypeName(m.type())) + " from " + N(m.from()) +
                    " at term " + N(m.term()) + ": leader " + N(leader_) + " was heard from recently");
        *done = true;
        return Status::Ok();
      }
    }
    if (m.type() == raftpb::MSG_PRE_VOTE) {
      // Never change our term in response to a PreVote.
    } else if (m.type() == raftpb::MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the term we would campaign in; we bump it only on winning.
    } else if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_SNAP) {
      BecomeFollower(m.term(), m.from());
    } else {
      BecomeFollower(m.term(), kNone);
    }
    return Status::Ok();
  }
  if (m.term() < term_) {
    if ((check_quorum_ || pre_vote_) && (m.type() == raftpb::MSG_HEARTBEAT || m.type() == raftpb::MSG_APP)) {
      // A stale leader (e.g. back from a partition) would otherwise never learn our term, because
      // with PreVote/CheckQuorum nobody sends it a higher-term vote request.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(raftpb::MSG_APP_RESP);
      Send(resp);
    } else if (m.type() == raftpb::MSG_PRE_VOTE) {
      Message resp;
      resp.set_to(m.from());
      resp.set_term(term_);
      resp.set_type(raftpb::MSG_PRE_VOTE_RESP);
      resp.set_reject(true);
      Send(resp);
      Narrate(EventKind::kVoteRejected, m.from(), 0,
              "rejected pre-vote from " + N(m.from()) + ": its term " + N(m.term()) + " is stale");
    } else {
      Narrate(EventKind::kMessageIgnored, m.from(), 0,
              std::string("ignored stale ") + std::string(MessageTypeName(m.type())) + " from " + N(m.from()) +
                  " (term " + N(m.term()) + " < " + N(term_) + ")");
    }
    *done = true;
  }
  return Status::Ok();
}

void RaftImpl::HandleVoteRequest(const Message& m) {
  bool pre = m.type() == raftpb::MSG_PRE_VOTE;
  const char* what = pre ? "pre-vote" : "vote";
  bool can_vote = vote_ == m.from() || (vote_ == kNone && leader_ == kNone) || (pre && m.term() > term_);
  bool up_to_date = log_.IsUpToDate(m.index(), m.log_term());
  Message resp;
  resp.set_to(m.from());
  resp.set_type(VoteResponseType(m.type()));
  std::string their_log = "(t" + N(m.log_term()) + ",i" + N(m.index()) + ")";
  std::string our_log = "(t" + N(log_.LastTerm()) + ",i" + N(log_.LastIndex()) + ")";
  if (can_vote && up_to_date) {
    // The response carries the request's term so a pre-candidate can count it.
    resp.set_term(m.term());
    Send(resp);
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
    Narrate(EventKind::kVoteGranted, m.from(), 0,
            std::string("granted ") + what + " to " + N(m.from()) + " for term " + N(m.term()) + ": its log " +
                their_log + " is at least as up to date as ours " + our_log);
  } else {
    resp.set_term(term_);
    resp.set_reject(true);
    Send(resp);
    std::string why = !can_vote ? "already voted for " + N(vote_) + (leader_ != kNone ? " / leader " + N(leader_) : "")
                                : "its log " + their_log + " is behind ours " + our_log;
    Narrate(EventKind::kVoteRejected, m.from(), 0,
            std::string("rejected ") + what + " from " + N(m.from()) + " for term " + N(m.term()) + ": " + why);
  }
}

// ---- dispatch ----

Status RaftImpl::Step(Message m) {
  bool done = false;
  Status status = StepByTerm(m, &done);
  if (done) return status;
  switch (m.type()) {
    case raftpb::MSG_HUP:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return Status::Ok();
    case raftpb::MSG_VOTE:
    case raftpb::MSG_PRE_VOTE:
      HandleVoteRequest(m);
      return Status::Ok();
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader: return StepLeader(m);
    case Role::kCandidate:
    case Role::kPreCandidate: return StepCandidate(m);
    case Role::kFollower: return StepFollower(m);
  }
  return Status::Ok();
}

Status RaftImpl::StepLeader(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_BEAT:
      BroadcastHeartbeat();
      return Status::Ok();
    case raftpb::MSG_CHECK_QUORUM:
      if (!tracker_.QuorumActive(id_)) {
        Narrate(EventKind::kSteppedDown, 0, 0,
                "stepping down: no contact with a quorum of voters for an election timeout");
        BecomeFollower(term_, kNone);
      }
      for (auto& [node, pr] : tracker_.progress) {
        if (node != id_) pr.recent_active = false;
      }
      return Status::Ok();
    case raftpb::MSG_PROP: {
      if (m.entries_size() == 0) return InvalidArgumentError("raft: empty proposal");
      if (tracker_.Find(id_) == nullptr) return UnavailableError("raft: proposal dropped: leader was removed");
      if (lead_transferee_ != kNone) {
        return UnavailableError("raft: proposal dropped: leadership transfer to " + N(lead_transferee_) +
                                " in progress");
      }
      std::vector<Entry> entries(m.entries().begin(), m.entries().end());
      CAIRN_RETURN_IF_ERROR(FilterConfChanges(entries));
      if (!IncreaseUncommittedSize(entries)) {
        return UnavailableError("raft: proposal dropped: " + N(uncommitted_size_) +
                                " bytes of entries are still uncommitted (limit " + N(max_uncommitted_size_) + ")");
      }
      AppendEntry(std::move(entries));
      BroadcastAppend();
      return Status::Ok();
    }
    case raftpb::MSG_READ_INDEX:
      HandleReadIndex(m);
      return Status::Ok();
    default:
      break;
  }
  Progress* pr = tracker_.Find(m.from());
  if (pr == nullptr) return Status::Ok();  // from a node not (or no longer) in the configuration
  switch (m.type()) {
    case raftpb::MSG_APP_RESP:
      pr->recent_active = true;
      HandleAppendResponse(m, *pr);
      break;
    case raftpb::MSG_HEARTBEAT_RESP:
      pr->recent_active = true;
      HandleHeartbeatResponse(m, *pr);
      break;
    case raftpb::MSG_SNAP_STATUS:
      if (pr->state != ProgressState::kSnapshot) break;
      if (m.reject()) pr->pending_snapshot = 0;
      pr->BecomeProbe();
      // Wait for an append response or heartbeat before probing again.
      pr->probe_sent = true;
      break;
    case raftpb::MSG_UNREACHABLE:
      // Optimistic replication is likely losing messages; fall back to probing.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    case raftpb::MSG_TRANSFER_LEADER:
      HandleTransferLeader(m, *pr);
      break;
    default:
      break;
  }
  return Status::Ok();
}

Status RaftImpl::StepCandidate(Message& m) {
  MessageType my_response =
      role_ == Role::kPreCandidate ? raftpb::MSG_PRE_VOTE_RESP : raftpb::MSG_VOTE_RESP;
  switch (m.type()) {
    case raftpb::MSG_PROP:
      return UnavailableError("raft: proposal dropped: no leader (election in progress)");
    case raftpb::MSG_APP:
      BecomeFollower(m.term(), m.from());
      HandleAppendEntries(m);
      return Status::Ok();
    case raftpb::MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      return Status::Ok();
    case raftpb::MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      return Status::Ok();
    default:
      break;
  }
  if (m.type() != my_response) return Status::Ok();
  switch (Poll(m.from(), !m.reject())) {
    case quorum::VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        Campaign(CampaignType::kElection);
      } else {
        BecomeLeader();
        BroadcastAppend();
      }
      break;
    case quorum::VoteResult::kLost:
      Narrate(EventKind::kMessageIgnored, 0, 0, "lost the election at term " + N(term_));
      // PreVote: the term comes from a rejecting node, it was already adopted in StepByTerm.
      BecomeFollower(term_, kNone);
      break;
    case quorum::VoteResult::kPending:
      break;
  }
  return Status::Ok();
}

Status RaftImpl::StepFollower(Message& m) {
  switch (m.type()) {
    case raftpb::MSG_PROP:
      if (leader_ == kNone) return UnavailableError("raft: proposal dropped: no leader known");
      if (disable_proposal_forwarding_) return UnavailableError("raft: proposal dropped: forwarding disabled");
      m.set_to(leader_);
      m.set_term(0);
      Send(m);
      return Status::Ok();
    case raftpb::MSG_APP:
      election_elapsed_ = 0;
      leader_ = m.from();
      HandleAppendEntries(m);
      return Status::Ok();
    case raftpb::MSG_HEARTBEAT:
      election_elapsed_ = 0;
      leader_ = m.from();
      HandleHeartbeat(m);
      return Status::Ok();
    case raftpb::MSG_SNAP:
      election_elapsed_ = 0;
      leader_ = m.from();
      HandleSnapshot(m);
      return Status::Ok();
    case raftpb::MSG_TRANSFER_LEADER:
    case raftpb::MSG_READ_INDEX:
      if (leader_ == kNone) {
        Narrate(EventKind::kMessageIgnored, 0, 0,
                std::string("dropped ") + std::string(MessageTypeName(m.type())) + ": no leader known");
        return Status::Ok();
      }
      m.set_to(leader_);
      m.set_term(0);  // re-stamped by Send with our term
      Send(m);
      return Status::Ok();
    case raftpb::MSG_TIMEOUT_NOW:
      Narrate(EventKind::kTransferStarted, m.from(), 0,
              "received TimeoutNow from " + N(m.from()) + ": campaigning immediately");
      // Leadership transfer skips PreVote: the old leader asked for this election.
      Hup(CampaignType::kTransfer);
      return Status::Ok();
    case raftpb::MSG_READ_INDEX_RESP:
      if (m.entries_size() != 1) return Status::Ok();
      read_states_.push_back(ReadState{m.index(), m.entries(0).data()});
      Narrate(EventKind::kReadIndex, m.from(), m.index(), "read index " + N(m.index()) + " confirmed by leader");
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

void RaftImpl::Send(Message m) {
  if (m.from() == kNone) m.set_from(id_);
  if (IsVoteMessage(m.type())) {
    if (m.term() == 0) Panic("raft: vote message sent without a term", __FILE__, __LINE__);
  } else {
    if (m.term() != 0) Panic("raft: term set on a non-vote message: " + DescribeMessage(m), __FILE__, __LINE__);
    // Proposals and read requests forwarded to the leader are treated as local messages there.
    if (m.type() != raftpb::MSG_PROP && m.type() != raftpb::MSG_READ_INDEX) m.set_term(term_);
  }
  messages_.push_back(std::move(m));
}

}  // namespace cairn::raft
