// Log replication (§5.3), commitment (§5.4.2 Figure 8 rule), heartbeats and InstallSnapshot (§7).
#include <algorithm>
#include <string>

#include "raft_impl.h"

namespace cairn::raft {

namespace {
std::string N(uint64_t v) { return std::to_string(v); }
}  // namespace

bool RaftImpl::AppendEntry(std::vector<Entry> entries) {
  uint64_t last = log_.LastIndex();
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].set_term(term_);
    entries[i].set_index(last + 1 + i);
  }
  last = log_.Append(entries);
  // The leader counts itself; the driver persists these entries before anything is sent or applied.
  tracker_.Find(id_)->MaybeUpdate(last);
  MaybeCommit();
  return true;
}

bool RaftImpl::IncreaseUncommittedSize(const std::vector<Entry>& entries) {
  uint64_t bytes = 0;
  for (const Entry& e : entries) bytes += e.data().size();
  // An empty tail accepts any proposal, so one oversized entry cannot wedge the node; empty entries
  // (the leader's no-op) always pass.
  if (uncommitted_size_ > 0 && bytes > 0 && uncommitted_size_ + bytes > max_uncommitted_size_) return false;
  uncommitted_size_ += bytes;
  return true;
}

bool RaftImpl::MaybeCommit() {
  uint64_t before = log_.committed();
  // Only an entry of the current term is committed by counting replicas (Figure 8); earlier ones
  // commit indirectly with it.
  if (!log_.MaybeCommit(tracker_.Committed(), term_)) return false;
  Narrate(EventKind::kCommitted, 0, log_.committed(),
          "committed up to " + N(log_.committed()) + " (was " + N(before) + "): replicated on a quorum");
  return true;
}

bool RaftImpl::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress* pr = tracker_.Find(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  Message m;
  m.set_to(to);
  auto prev_term = log_.Term(pr->next - 1);
  auto entries = log_.EntriesFrom(pr->next, max_msg_size_);
  if (entries.ok() && entries->empty() && !send_if_empty) return false;
  if (!prev_term.ok() || !entries.ok()) {
    // The entries this follower needs were compacted: send the snapshot instead.
    if (!pr->recent_active) return false;
    auto snapshot = log_.GetSnapshot();
    if (!snapshot.ok()) {
      if (IsSnapshotTemporarilyUnavailable(snapshot.status())) return false;
      Panic("raft: cannot read snapshot for follower " + N(to) + ": " + snapshot.status().ToString(), __FILE__,
            __LINE__);
    }
    if (snapshot->metadata().index() == 0) {
      Panic("raft: log compacted below follower " + N(to) + "'s next index but storage has no snapshot", __FILE__,
            __LINE__);
    }
    m.set_type(raftpb::MSG_SNAP);
    *m.mutable_snapshot() = *snapshot;
    pr->BecomeSnapshot(snapshot->metadata().index());
    Send(std::move(m));
    return true;
  }
  m.set_type(raftpb::MSG_APP);
  m.set_index(pr->next - 1);
  m.set_log_term(*prev_term);
  m.set_commit(log_.committed());
  for (Entry& e : *entries) *m.add_entries() = std::move(e);
  if (m.entries_size() > 0) {
    uint64_t last = m.entries(m.entries_size() - 1).index();
    switch (pr->state) {
      case ProgressState::kReplicate:  // pipelining: assume success, bounded by the window
        pr->next = last + 1;
        pr->inflights.Add(last);
        break;
      case ProgressState::kProbe:  // one probe at a time until the match point is known
        pr->probe_sent = true;
        break;
      case ProgressState::kSnapshot:
        Panic("raft: sending entries to follower " + N(to) + " in snapshot state", __FILE__, __LINE__);
    }
  }
  Send(std::move(m));
  return true;
}

void RaftImpl::SendHeartbeat(uint64_t to, const std::string& context) {
  // Never tell a follower to commit beyond what it is known to hold.
  uint64_t commit = std::min(tracker_.Find(to)->match, log_.committed());
  Message m;
  m.set_to(to);
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_commit(commit);
  m.set_context(context);
  Send(std::move(m));
}

void RaftImpl::BroadcastAppend() {
  for (const auto& entry : tracker_.progress) {
    if (entry.first != id_) SendAppend(entry.first);
  }
}

void RaftImpl::BroadcastHeartbeat() {
  // Piggy-back the newest pending read so a lost heartbeat round is retried.
  BroadcastHeartbeatWithContext(read_index_queue_.empty() ? std::string() : read_index_queue_.back());
}

void RaftImpl::BroadcastHeartbeatWithContext(const std::string& context) {
  for (const auto& entry : tracker_.progress) {
    if (entry.first != id_) SendHeartbeat(entry.first, context);
  }
}

void RaftImpl::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (m.index() < log_.committed()) {
    // Already committed here, so it matches; tell the leader where we are.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  uint64_t committed_before = log_.committed();
  std::vector<Entry> entries(m.entries().begin(), m.entries().end());
  if (auto last_new = log_.MaybeAppend(m.index(), m.log_term(), m.commit(), entries)) {
    resp.set_index(*last_new);
    Send(std::move(resp));
    if (log_.committed() > committed_before) {
      Narrate(EventKind::kCommitted, m.from(), log_.committed(),
              "committed up to " + N(log_.committed()) + " as told by leader " + N(m.from()));
    }
    return;
  }
  // Fast backtracking: hint the largest index whose term is <= the leader's term at m.index, so the
  // leader can skip a whole term of mismatching entries per round trip.
  uint64_t hint_term = 0;
  uint64_t hint_index = log_.FindConflictByTerm(std::min(m.index(), log_.LastIndex()), m.log_term(), &hint_term);
  auto our_term = log_.Term(m.index());
  std::string why = our_term.ok() ? "our entry there has term " + N(*our_term)
                                  : "our log ends at " + N(log_.LastIndex());
  Narrate(EventKind::kAppendRejected, m.from(), m.index(),
          "rejected append from " + N(m.from()) + " after (i" + N(m.index()) + ",t" + N(m.log_term()) + "): " +
              why + "; hint i" + N(hint_index) + " t" + N(hint_term));
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(hint_index);
  resp.set_log_term(hint_term);
  Send(std::move(resp));
}

void RaftImpl::HandleAppendResponse(const Message& m, Progress& pr) {
  if (m.index() > log_.LastIndex()) {
    // A peer cannot have matched entries we never had; trusting it would corrupt flow control.
    Narrate(EventKind::kMessageIgnored, m.from(), m.index(),
            "ignored append response from " + N(m.from()) + " for index " + N(m.index()) + " beyond our last " +
                N(log_.LastIndex()));
    return;
  }
  if (m.reject()) {
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // Skip back past every entry of ours whose term is above the follower's term at the hint.
      uint64_t ignored = 0;
      next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term(), &ignored);
    }
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from());
    }
    return;
  }
  bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index()) && !(pr.match == m.index() && pr.state == ProgressState::kProbe)) return;
  switch (pr.state) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The follower caught up past the compaction point (snapshot applied, or entries suffice).
      if (pr.match + 1 >= log_.FirstIndex()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights.FreeLE(m.index());
      break;
  }
  if (MaybeCommit()) {
    ReleasePendingReadIndexMessages();
    BroadcastAppend();
  } else if (was_paused) {
    SendAppend(m.from());
  }
  // Pipelining: keep sending while the window allows.
  while (MaybeSendAppend(m.from(), false)) {
  }
  if (m.from() == lead_transferee_ && pr.match == log_.LastIndex()) {
    Narrate(EventKind::kTransferStarted, m.from(), pr.match,
            "transferee " + N(m.from()) + " caught up at " + N(pr.match) + ": sending TimeoutNow");
    SendTimeoutNow(m.from());
  }
}

void RaftImpl::HandleHeartbeat(const Message& m) {
  uint64_t before = log_.committed();
  log_.CommitTo(m.commit());
  if (log_.committed() > before) {
    Narrate(EventKind::kCommitted, m.from(), log_.committed(),
            "committed up to " + N(log_.committed()) + " from leader " + N(m.from()) + "'s heartbeat");
  }
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  Send(std::move(resp));
}

void RaftImpl::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.probe_sent = false;
  // Heartbeat responses free a slot so a full window with lost acks cannot stall forever.
  if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirstOne();
  if (pr.match < log_.LastIndex()) SendAppend(m.from());
  HandleReadIndexAck(m);
}

void RaftImpl::HandleSnapshot(const Message& m) {
  const auto& meta = m.snapshot().metadata();
  Message resp;
  resp.set_to(m.from());
  resp.set_type(raftpb::MSG_APP_RESP);
  if (Restore(m.snapshot())) {
    Narrate(EventKind::kSnapshotRestored, m.from(), meta.index(),
            "restored snapshot (i" + N(meta.index()) + ",t" + N(meta.term()) + ") from " + N(m.from()));
    resp.set_index(log_.LastIndex());
  } else {
    Narrate(EventKind::kMessageIgnored, m.from(), meta.index(),
            "ignored snapshot at " + N(meta.index()) + ": already committed up to " + N(log_.committed()));
    resp.set_index(log_.committed());
  }
  Send(std::move(resp));
}

bool RaftImpl::Restore(const Snapshot& snapshot) {
  const auto& meta = snapshot.metadata();
  if (meta.index() <= log_.committed()) return false;
  if (role_ != Role::kFollower) {
    // Only a leader of our term sends snapshots, and that makes us a follower first.
    Panic("raft: snapshot received while " + std::string(RoleName(role_)), __FILE__, __LINE__);
  }
  if (log_.MatchTerm(meta.index(), meta.term())) {
    // We already have the snapshot's last entry: just fast-forward the commit index.
    log_.CommitTo(meta.index());
    return false;
  }
  log_.Restore(snapshot);
  ApplyConfState(meta.conf_state());
  return true;
}

}  // namespace cairn::raft
