// Temporary stub so callers can compile against the API; the real core lands next.
#include "cairn/raft/raft.h"

namespace cairn::raft {

class RaftImpl {};

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config&) { return UnimplementedError("raft: stub"); }
RawNode::RawNode(std::unique_ptr<RaftImpl> raft) : raft_(std::move(raft)) {}
RawNode::~RawNode() = default;
void RawNode::Tick() {}
Status RawNode::Campaign() { return UnimplementedError("stub"); }
Status RawNode::Propose(std::string) { return UnimplementedError("stub"); }
Status RawNode::ProposeConfChange(const ConfChange&) { return UnimplementedError("stub"); }
Status RawNode::Step(const Message&) { return UnimplementedError("stub"); }
void RawNode::ReadIndex(std::string) {}
void RawNode::TransferLeadership(uint64_t) {}
ConfState RawNode::ApplyConfChange(const ConfChange&) { return {}; }
void RawNode::ReportUnreachable(uint64_t) {}
void RawNode::ReportSnapshot(uint64_t, bool) {}
bool RawNode::HasReady() const { return false; }
Ready RawNode::GetReady() { return {}; }
void RawNode::Advance() {}
NodeStatus RawNode::GetStatus() const { return {}; }
uint64_t RawNode::id() const { return 0; }
Role RawNode::role() const { return Role::kFollower; }
uint64_t RawNode::term() const { return 0; }
uint64_t RawNode::leader() const { return 0; }
uint64_t RawNode::commit_index() const { return 0; }
Entry MakeConfChangeEntry(const ConfChange&) { return {}; }
std::string DescribeMessage(const Message&) { return ""; }
Status ValidateConfig(const Config&) { return Status::Ok(); }
std::string_view EventKindName(EventKind) { return ""; }
std::string_view ProgressStateName(ProgressState) { return ""; }

}  // namespace cairn::raft
