// What replicas of a brick must agree on, to compare bricks' trees on disk after faults.
#pragma once

#include <map>
#include <string>

namespace cairn::itest {

// Per path below root (relative, starting with '/'): type and mode, owner, size and content hash
// of files, symlink targets, and the trusted.cairn.id attribute. Times are left out, and so are
// the per-brick temp area (.cairn/tmp) and the primary's change journal (.cairn/journal), which
// replicas do not share.
using BrickSnapshot = std::map<std::string, std::string>;
BrickSnapshot SnapshotBrick(const std::string& root);

// The first difference between two snapshots in words ("" when they are equal), for a readable
// failure message.
std::string FirstDifference(const BrickSnapshot& a, const BrickSnapshot& b);

}  // namespace cairn::itest
