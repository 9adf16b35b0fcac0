// MemberTable: the cluster's members (id, name, peer and client URLs, learner flag) as part of the
// replicated state. Changed only by applying committed log entries (conf changes and publish
// entries), so every member holds the same table at the same index; saved in and restored from
// snapshots.
//
// Threading: not thread-safe; owned by the node's loop thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/coord.pb.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/proto/raft.pb.h"

namespace cairn::coord {

class MemberTable {
 public:
  // Applies a committed conf change. `member` is the metadata from the change's context (may be
  // empty for the bootstrap entries the Raft core writes; then `fallback` from the static
  // configuration is used). ADD_LEARNER adds a learner; ADD_NODE adds a voter or promotes a
  // learner; REMOVE_NODE removes.
  void ApplyConfChange(const raftpb::ConfChange& change, const proto::CoordMember& member,
                       const std::map<uint64_t, proto::CoordMember>& fallback);
  // A member announced its name and client URLs. Unknown ids are ignored (removed meanwhile).
  void ApplyPublish(const proto::CoordMember& member);

  const proto::CoordMember* Find(uint64_t id) const;
  const proto::CoordMember* FindByPeerUrl(const std::string& peer_url) const;
  // The first peer URL of `id`, or "" when unknown.
  std::string PeerUrl(uint64_t id) const;
  std::vector<etcd::Member> ToEtcd() const;
  size_t size() const { return members_.size(); }
  const std::map<uint64_t, proto::CoordMember>& members() const { return members_; }

  void SaveTo(proto::CoordSnapshot* snapshot) const;
  void RestoreFrom(const proto::CoordSnapshot& snapshot);

 private:
  std::map<uint64_t, proto::CoordMember> members_;
};

etcd::Member ToEtcdMember(const proto::CoordMember& member);

}  // namespace cairn::coord
