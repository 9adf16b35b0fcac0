#include "cairn/coord/node/member_table.h"

namespace cairn::coord {

void MemberTable::ApplyConfChange(const raftpb::ConfChange& change, const proto::CoordMember& member,
                                  const std::map<uint64_t, proto::CoordMember>& fallback) {
  uint64_t id = change.node_id();
  if (change.type() == raftpb::CONF_CHANGE_REMOVE_NODE) {
    members_.erase(id);
    return;
  }
  proto::CoordMember& slot = members_[id];
  if (slot.id() == 0) {
    if (member.id() == id) {
      slot = member;
    } else if (auto it = fallback.find(id); it != fallback.end()) {
      slot = it->second;
    }
    slot.set_id(id);
  } else if (member.id() == id && slot.peer_urls().empty()) {
    *slot.mutable_peer_urls() = member.peer_urls();
  }
  slot.set_learner(change.type() == raftpb::CONF_CHANGE_ADD_LEARNER);
}

void MemberTable::ApplyPublish(const proto::CoordMember& member) {
  auto it = members_.find(member.id());
  if (it == members_.end()) return;
  if (!member.name().empty()) it->second.set_name(member.name());
  // A member that joined later learns the founders' peer URLs from their publish entries.
  if (!member.peer_urls().empty()) *it->second.mutable_peer_urls() = member.peer_urls();
  *it->second.mutable_client_urls() = member.client_urls();
  it->second.set_published(true);
}

const proto::CoordMember* MemberTable::Find(uint64_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

const proto::CoordMember* MemberTable::FindByPeerUrl(const std::string& peer_url) const {
  for (const auto& [id, member] : members_) {
    for (const std::string& url : member.peer_urls()) {
      if (url == peer_url) return &member;
    }
  }
  return nullptr;
}

std::string MemberTable::PeerUrl(uint64_t id) const {
  const proto::CoordMember* member = Find(id);
  return member == nullptr || member->peer_urls().empty() ? std::string() : member->peer_urls(0);
}

etcd::Member ToEtcdMember(const proto::CoordMember& member) {
  etcd::Member out;
  out.set_id(member.id());
  out.set_name(member.name());
  for (const std::string& url : member.peer_urls()) out.add_peerurls("http://" + url);
  for (const std::string& url : member.client_urls()) out.add_clienturls("http://" + url);
  out.set_islearner(member.learner());
  return out;
}

std::vector<etcd::Member> MemberTable::ToEtcd() const {
  std::vector<etcd::Member> out;
  for (const auto& [id, member] : members_) out.push_back(ToEtcdMember(member));
  return out;
}

void MemberTable::SaveTo(proto::CoordSnapshot* snapshot) const {
  snapshot->clear_members();
  for (const auto& [id, member] : members_) *snapshot->add_members() = member;
}

void MemberTable::RestoreFrom(const proto::CoordSnapshot& snapshot) {
  members_.clear();
  for (const proto::CoordMember& member : snapshot.members()) members_[member.id()] = member;
}

}  // namespace cairn::coord
