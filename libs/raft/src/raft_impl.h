// RaftImpl: the Raft state machine behind RawNode. Split by concern into raft_impl.cc (roles, terms,
// elections, stepping), replication.cc (append/snapshot/commit) and membership.cc (conf changes,
// leader transfer, ReadIndex). Internal; not thread-safe.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/raft/raft.h"
#include "progress.h"
#include "raft_log.h"

namespace cairn::raft {

// Pending ReadIndex requests on the leader, answered once a heartbeat round confirms leadership.
struct ReadIndexStatus {
  Message request;  // entries[0].data is the request context
  uint64_t index = 0;
  std::map<uint64_t, bool> acks;
};

class RaftImpl {
 public:
  explicit RaftImpl(const Config& config);

  void Tick();
  // Feeds any message, local or remote. Returns kUnavailable for a dropped proposal.
  Status Step(Message message);
  ConfState ApplyConfChange(const ConfChange& change);

  uint64_t id() const { return id_; }
  Role role() const { return role_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t leader() const { return leader_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  RaftLog& log() { return log_; }
  const RaftLog& log() const { return log_; }
  const Tracker& tracker() const { return tracker_; }
  HardState GetHardState() const;
  SoftState GetSoftState() const { return SoftState{leader_, role_}; }

  // Uncommitted-size accounting (Config::max_uncommitted_entries_size); called with applied data size.
  void ReduceUncommittedSize(uint64_t bytes) { uncommitted_size_ = bytes > uncommitted_size_ ? 0 : uncommitted_size_ - bytes; }

  std::vector<Message> TakeMessages() { return std::exchange(messages_, {}); }
  std::vector<ReadState> TakeReadStates() { return std::exchange(read_states_, {}); }
  bool HasMessages() const { return !messages_.empty(); }
  bool HasReadStates() const { return !read_states_.empty(); }

 private:
  // raft_impl.cc: roles and elections.
  void BecomeFollower(uint64_t term, uint64_t leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(uint64_t term);
  void ResetRandomizedElectionTimeout();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  bool Promotable() const;
  void TickElection();
  void TickHeartbeat();
  enum class CampaignType { kPreElection, kElection, kTransfer };
  void Hup(CampaignType type);
  void Campaign(CampaignType type);
  quorum::VoteResult Poll(uint64_t from, bool granted);
  Status StepByTerm(const Message& m, bool* done);
  void HandleVoteRequest(const Message& m);
  Status StepLeader(Message& m);
  Status StepCandidate(Message& m);
  Status StepFollower(Message& m);
  void Send(Message m);
  void Narrate(EventKind kind, uint64_t peer, uint64_t index, std::string text);

  // replication.cc
  bool AppendEntry(std::vector<Entry> entries);
  bool IncreaseUncommittedSize(const std::vector<Entry>& entries);
  void SendAppend(uint64_t to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  void SendHeartbeat(uint64_t to, const std::string& context);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  void BroadcastHeartbeatWithContext(const std::string& context);
  bool MaybeCommit();
  void HandleAppendEntries(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeat(const Message& m);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& snapshot);

  // membership.cc
  void ApplyConfState(const ConfState& cs);
  void AfterConfChange();
  Status FilterConfChanges(std::vector<Entry>& entries);
  void HandleTransferLeader(const Message& m, Progress& pr);
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer(const std::string& why);
  void HandleReadIndex(Message& m);
  void AnswerReadIndex(const Message& request, uint64_t index);
  void HandleReadIndexAck(const Message& m);
  void ReleasePendingReadIndexMessages();
  bool CommittedEntryInCurrentTerm() const { return log_.TermOrZero(log_.committed()) == term_; }

  uint64_t id_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t leader_ = kNone;
  Role role_ = Role::kFollower;
  RaftLog log_;
  Tracker tracker_;
  std::vector<Message> messages_;
  std::vector<ReadState> read_states_;

  int election_timeout_;
  int heartbeat_timeout_;
  int randomized_election_timeout_ = 0;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  bool check_quorum_;
  bool pre_vote_;
  bool disable_proposal_forwarding_;
  uint64_t max_msg_size_;
  uint64_t max_uncommitted_size_;
  uint64_t uncommitted_size_ = 0;  // leader only: data bytes appended in this term, not yet applied
  uint64_t lead_transferee_ = kNone;
  // Index of the latest conf change proposed; a new one waits until it is applied.
  uint64_t pending_conf_index_ = 0;

  std::map<std::string, ReadIndexStatus> pending_read_index_;
  std::deque<std::string> read_index_queue_;
  std::vector<Message> pending_read_index_messages_;  // wait for a commit in this term

  Random random_;
  EventHook on_event_;
};

bool IsLocalMessage(raftpb::MessageType type);
bool IsResponseMessage(raftpb::MessageType type);
std::string_view MessageTypeName(raftpb::MessageType type);

}  // namespace cairn::raft
