// The plan: what `clusterctl apply` would create, change and delete to bring the cluster from its
// current state (read from the store into a ClusterSpec, see records.h) to the desired one (the
// file), printed like `terraform plan`:
//
//   + volume gv0 (replicate, replica 3: host1:/b/gv0 host2:/b/gv0 host3:/b/gv0)
//   ~ container c1: state stopped -> running
//   - mount host1:/mnt/gv0 (volume gv0)
//   Plan: 1 to create, 1 to change, 1 to delete.
//
// Only kinds whose section the file has are compared (spec.h); a thing in the store that the file
// does not list is deleted. Some changes cannot be applied by writing records (a volume's bricks, an
// image's content, a container's image or host): they are in the plan as unsupported, with what to
// do instead, and apply refuses the whole plan. Pure functions; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "cairn/clusterspec/spec.h"

namespace cairn::clusterspec {

enum class Action { kCreate, kChange, kDelete };

struct Change {
  Action action = Action::kCreate;
  Kind kind = Kind::kVolume;
  std::string name;                  // a mount's name is "HOST:PATH"
  std::string summary;               // "(replicate, replica 3: ...)" for create/delete, "" for change
  std::vector<std::string> fields;   // for a change: "state stopped -> running", one per field
  bool holds_data = false;           // a delete that loses data (volume, image, container): needs confirmation
  std::string unsupported;           // non-empty: apply cannot make this change; says what to do instead
};

struct Plan {
  std::vector<Change> changes;  // deletes first (containers, mounts, images, volumes, hosts), then creates and changes in kAllKinds order

  bool empty() const { return changes.empty(); }
  size_t Count(Action action) const;
  // Changes that need --prune (every delete) and those that lose data.
  std::vector<const Change*> Deletes() const;
  std::vector<const Change*> Unsupported() const;
  // The terraform-like text, one line per change (a change's fields joined by ", "), then the
  // "Plan: ..." line, or "No changes." when empty.
  std::string Render() const;
  // {"create":N,"change":N,"delete":N,"changes":[{"action":"create","kind":"volume","name":...},...]}
  std::string ToJson() const;
};

// Compares desired with current kind by kind (only kinds in desired.present). Both are normalized
// copies internally; the inputs are not modified.
Plan ComputePlan(const ClusterSpec& desired, const ClusterSpec& current);

// "+ volume gv0 (...)": one line of Render().
std::string RenderChange(const Change& change);

}  // namespace cairn::clusterspec
