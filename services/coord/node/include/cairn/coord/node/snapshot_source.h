// SnapshotSource: a CoordApi implementation that can also hand out a backup of its state (etcd's
// Maintenance.Snapshot). The HTTP gateway serves POST /v3/maintenance/snapshot when the CoordApi it
// fronts implements this interface too (CoordNode does), and answers Unimplemented otherwise.
// It is a separate interface so front ends and test doubles of CoordApi need not know about it.
#pragma once

#include <string>

#include "cairn/coord/api.h"

namespace cairn::coord {

class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // The whole backup file (backup_file.h) of this member's applied state at one index. Serializable
  // (no leader needed: the survivor of a lost quorum can still be backed up; a lagging member gives
  // an older image). `done` runs once, on the implementation's thread; it must not block.
  // Errors: Unavailable when the node is stopped.
  virtual void SaveBackup(Done<std::string> done) = 0;
};

}  // namespace cairn::coord
