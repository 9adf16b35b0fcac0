// Names for enums and messages, for logs, narration and test failure messages.
#include <string>

#include "raft_impl.h"

namespace cairn::raft {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kBecameFollower: return "became-follower";
    case EventKind::kBecamePreCandidate: return "became-pre-candidate";
    case EventKind::kBecameCandidate: return "became-candidate";
    case EventKind::kBecameLeader: return "became-leader";
    case EventKind::kVoteGranted: return "vote-granted";
    case EventKind::kVoteRejected: return "vote-rejected";
    case EventKind::kAppendRejected: return "append-rejected";
    case EventKind::kCommitted: return "committed";
    case EventKind::kSteppedDown: return "stepped-down";
    case EventKind::kSnapshotRestored: return "snapshot-restored";
    case EventKind::kConfChangeApplied: return "conf-change-applied";
    case EventKind::kTransferStarted: return "transfer-started";
    case EventKind::kTransferAborted: return "transfer-aborted";
    case EventKind::kMessageIgnored: return "message-ignored";
    case EventKind::kReadIndex: return "read-index";
  }
  return "unknown";
}

std::string_view ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "unknown";
}

std::string_view MessageTypeName(raftpb::MessageType type) {
  const std::string& name = raftpb::MessageType_Name(type);
  return name.empty() ? std::string_view("MSG_UNKNOWN") : std::string_view(name);
}

bool IsLocalMessage(raftpb::MessageType type) {
  return type == raftpb::MSG_HUP || type == raftpb::MSG_BEAT || type == raftpb::MSG_UNREACHABLE ||
         type == raftpb::MSG_SNAP_STATUS || type == raftpb::MSG_CHECK_QUORUM;
}

bool IsResponseMessage(raftpb::MessageType type) {
  return type == raftpb::MSG_APP_RESP || type == raftpb::MSG_VOTE_RESP || type == raftpb::MSG_HEARTBEAT_RESP ||
         type == raftpb::MSG_UNREACHABLE || type == raftpb::MSG_PRE_VOTE_RESP;
}

Entry MakeConfChangeEntry(const ConfChange& change) {
  Entry e;
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data(change.SerializeAsString());
  return e;
}

std::string DescribeMessage(const Message& m) {
  std::string out = std::to_string(m.from()) + "->" + std::to_string(m.to()) + " " +
                    std::string(MessageTypeName(m.type())) + " t" + std::to_string(m.term());
  if (m.type() == raftpb::MSG_APP || m.type() == raftpb::MSG_VOTE || m.type() == raftpb::MSG_PRE_VOTE) {
    out += " i" + std::to_string(m.index()) + "/t" + std::to_string(m.log_term());
  } else if (m.index() != 0) {
    out += " i" + std::to_string(m.index());
  }
  if (m.entries_size() > 0) out += " ents=" + std::to_string(m.entries_size());
  if (m.commit() != 0) out += " c" + std::to_string(m.commit());
  if (m.reject()) out += " reject hint=" + std::to_string(m.reject_hint());
  if (m.has_snapshot() && m.snapshot().metadata().index() != 0) {
    out += " snap=i" + std::to_string(m.snapshot().metadata().index());
  }
  return out;
}

}  // namespace cairn::raft
