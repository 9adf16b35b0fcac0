// Rebalance planning after add-brick/remove-brick: which entries move from which set to which.
// Pure; the service lists the bricks, feeds the listing here, executes the moves (copy to a
// temporary name on the target, fsync, rename, then unlink on the source), and calls
// FinishRebalance (layout.h) when every move is done.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/volume/layout.h"

namespace cairn::volume {

// One directory entry as listed on a set.
struct ListedEntry {
  std::string parent_id;
  std::string name;
  bool directory = false;
  uint64_t bytes = 0;
  uint32_t set_id = 0;  // the set it was listed on (a directory is listed once, on any set)
};

struct FileMove {
  ListedEntry entry;
  uint32_t from_set = 0;
  uint32_t to_set = 0;
};

struct DirectoryCreate {
  ListedEntry entry;
  uint32_t set_id = 0;
};

struct RebalancePlan {
  // Directories first, in listing order (list parents before children), then file moves.
  std::vector<DirectoryCreate> directories;
  std::vector<FileMove> moves;
  uint64_t files_listed = 0;
  uint64_t bytes_to_move = 0;
};

// The plan from `spec.previous_layout` to `spec.layout`: every directory is created on each set
// the new layout names and the old did not; every non-directory whose set under the new layout
// differs from the set it was listed on moves there. Errors: FailedPrecondition when no
// rebalance is pending; InvalidArgument when a listed file names a set the old layout does not.
Result<RebalancePlan> PlanRebalance(const pb::VolumeSpec& spec, const std::vector<ListedEntry>& listing);

}  // namespace cairn::volume
