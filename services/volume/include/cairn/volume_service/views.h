// Pure decisions of the volume agent, apart from its I/O so unit tests reach them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cairn/proto/brick.pb.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volume_service {

// brick id -> "ip:port" where it is served, or "" when not known.
using AddressOf = std::function<std::string(const std::string& brick)>;

// The placeholder address of an in-sync brick whose address is unknown: not a valid host:port, so
// a primary's forward to it fails at once and the brick is reported failed (then dropped) rather
// than silently skipped while the record still counts it as holding every write.
std::string UnknownAddress(const std::string& brick);

// The view the contract derives from a set record (docs/volumes.md): epoch, primary = addr(primary)
// (empty without a primary or outside NORMAL mode), in_sync = addr(in_sync minus primary), out_of_sync
// = addr(set bricks not in sync whose address is known), self.
proto::brick::ReplicaView ViewFor(const proto::volume::ReplicaSetState& state, const proto::volume::ReplicaSetSpec& set,
                                  const AddressOf& address, const std::string& self_address);

// The role of `brick` in `state`, as BrickStatus shows it: "primary", "backup", "out-of-sync",
// "no-quorum" (the set is in a no-quorum mode), or "no-primary" (in sync, nobody primary yet).
std::string RoleOf(const proto::volume::ReplicaSetState& state, const std::string& brick);

// Take-over turn of `brick` when the set has no primary key: its position among the in-sync bricks
// that are live (live(b) true), leaving out the old primary (it may be what died), which goes last
// like the bricks that are not in sync. Lower goes first; ranks are dense from 0.
int TakeOverRank(const proto::volume::ReplicaSetState& state, const proto::volume::ReplicaSetSpec& set,
                 const std::string& brick, const std::function<bool(const std::string&)>& live);

}  // namespace cairn::volume_service
