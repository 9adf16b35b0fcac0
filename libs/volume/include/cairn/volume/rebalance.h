// Rebalance after add-brick/remove-brick: which entries move from which set to which, where the
// mover keeps its progress, and the status `clusterctl volume rebalance VOL status` prints.
// Pure and thread-safe; the service (services/volume RebalanceMover) lists the bricks, feeds the
// listing here, executes the moves and commits FinishRebalanceTxn when a fresh listing plans
// nothing more (docs/volumes.md "Rebalance").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"

namespace cairn::volume {

// One directory entry as listed on a set.
struct ListedEntry {
  std::string parent_id;
  std::string name;
  bool directory = false;
  uint64_t bytes = 0;
  uint32_t set_id = 0;  // the set it was listed on (a directory is listed once, on any set)
  std::string id;       // the entry's file id (hard links: one id, several names)
  uint32_t nlink = 1;   // link count of a non-directory
};

struct FileMove {
  ListedEntry entry;
  uint32_t from_set = 0;
  uint32_t to_set = 0;
  // Further names of the same file (a hard link) moved with it: linked on the target after the
  // first name, removed on the source with it.
  std::vector<ListedEntry> other_names;
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
  // Names of hard-linked files left where they are (their set stays in the layout; the mount
  // finds a name whose hash names another set by trying every set).
  uint64_t hard_links_kept = 0;
};

// The plan from `spec.previous_layout` to `spec.layout`: every directory is created on each set
// the new layout names and the old did not; every non-directory whose set under the new layout
// differs from the set it was listed on moves there. A hard-linked file (nlink > 1, id given)
// moves only when its set leaves the layout (remove-brick), with all its listed names, to the
// set of its first name (by parent id, name); otherwise it stays, since one id cannot live on
// two sets. Errors: FailedPrecondition when no rebalance is pending; InvalidArgument when a
// listed file names a set the old layout does not.
Result<RebalancePlan> PlanRebalance(const pb::VolumeSpec& spec, const std::vector<ListedEntry>& listing);

// The name a moving file has on its target set while its data are copied (same directory, so
// the final rename stays within one directory): ".cairn-rebalance-" + 32 hex digits of its id.
// Lookups by its real name miss it, so readers keep using the source copy until the rename.
std::string RebalanceTempName(std::string_view file_id);
bool IsRebalanceTempName(std::string_view name);

// Store keys. RebalanceKey holds the mover's progress as a HealCheckpoint (the message has
// every field a progress record needs): brick = the node running the mover, epoch = the layout
// epoch being rebalanced to, files/bytes total and left, rates and ETA, failed = the last pass
// ended in an error (retried). RebalanceOwnerKey names the node whose agent runs the mover; it
// is put only when absent and attached to that agent's host lease, so exactly one runs and
// another agent takes over about a lease TTL after the owner's host dies.
std::string RebalanceKey(std::string_view volume);       // /cairn/volumes/NAME/rebalance
std::string RebalanceOwnerKey(std::string_view volume);  // /cairn/volumes/NAME/rebalance-owner

// The volume without previous_layout and without emptied sets (FinishRebalance), with the final
// progress record, releasing RebalanceOwnerKey, in one txn that compares the spec's mod_revision.
Result<etcd::TxnRequest> FinishRebalanceTxn(const VolumeRecord& current, const pb::HealCheckpoint& final_progress);

// What `volume rebalance VOL status` shows. progress: the record at RebalanceKey (null: none);
// owner: the value at RebalanceOwnerKey ("" when absent).
struct RebalanceStatus {
  std::string state;  // "not needed", "pending", "running", "retrying", "completed"
  std::string detail;  // one line saying why / where
  uint64_t from_epoch = 0;
  uint64_t to_epoch = 0;
  bool has_progress = false;  // the numbers below are from a progress record of this rebalance
  uint64_t files_moved = 0, files_left = 0, bytes_moved = 0, bytes_left = 0;
  double files_per_second = 0, bytes_per_second = 0;
  int64_t eta_ms = -1;
};
RebalanceStatus RebalanceStatusOf(const pb::VolumeSpec& spec, const pb::HealCheckpoint* progress, std::string_view owner);
std::string FormatRebalanceStatus(const std::string& volume, const RebalanceStatus& status);

}  // namespace cairn::volume
