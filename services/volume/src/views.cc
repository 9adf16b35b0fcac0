#include "cairn/volume_service/views.h"

#include <algorithm>

#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"

namespace cairn::volume_service {

std::string UnknownAddress(const std::string& brick) { return "unknown-address/" + brick; }

proto::brick::ReplicaView ViewFor(const proto::volume::ReplicaSetState& state, const proto::volume::ReplicaSetSpec& set,
                                  const AddressOf& address, const std::string& self_address) {
  proto::brick::ReplicaView view;
  view.set_epoch(state.epoch());
  view.set_self(self_address);
  auto known = [&](const std::string& brick) {
    std::string at = address(brick);
    return at.empty() ? UnknownAddress(brick) : at;
  };
  bool serving = state.mode() == proto::volume::REPLICA_SET_NORMAL && !state.primary().empty();
  if (serving) view.set_primary(known(state.primary()));
  for (const auto& brick : state.in_sync()) {
    if (serving && brick == state.primary()) continue;
    view.add_in_sync(known(brick));
  }
  for (const auto& brick : volume::OutOfSyncBricks(set, state)) {
    std::string at = address(brick);
    if (!at.empty()) view.add_out_of_sync(at);
  }
  return view;
}

std::string RoleOf(const proto::volume::ReplicaSetState& state, const std::string& brick) {
  if (state.mode() != proto::volume::REPLICA_SET_NORMAL) return "no-quorum";
  if (!volume::IsInSync(state, brick)) return "out-of-sync";
  if (state.primary() == brick) return "primary";
  return state.primary().empty() ? "no-primary" : "backup";
}

int TakeOverRank(const proto::volume::ReplicaSetState& state, const proto::volume::ReplicaSetSpec& set,
                 const std::string& brick, const std::function<bool(const std::string&)>& live) {
  int rank = 0;
  for (const auto& member : state.in_sync()) {
    if (member == state.primary()) continue;
    if (member == brick) return rank;
    if (live(member)) ++rank;
  }
  // The old primary and the bricks that are not in sync: after every live in-sync one, in set order.
  if (brick == state.primary()) return rank;
  ++rank;
  for (const auto& member : set.bricks()) {
    std::string id = volume::BrickId(member);
    if (id == brick) return rank;
    if (!volume::IsInSync(state, id) && live(id)) ++rank;
  }
  return rank;
}

}  // namespace cairn::volume_service
