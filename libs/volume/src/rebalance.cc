#include "cairn/volume/rebalance.h"

#include <algorithm>

namespace cairn::volume {

Result<RebalancePlan> PlanRebalance(const pb::VolumeSpec& spec, const std::vector<ListedEntry>& listing) {
  if (!spec.has_previous_layout()) {
    return FailedPreconditionError("volume " + spec.name() + " has no rebalance pending");
  }
  const auto old_sets = LayoutSets(spec.previous_layout());
  const auto new_sets = LayoutSets(spec.layout());
  std::vector<uint32_t> added;
  std::set_difference(new_sets.begin(), new_sets.end(), old_sets.begin(), old_sets.end(),
                      std::back_inserter(added));
  RebalancePlan plan;
  for (const auto& entry : listing) {
    ++plan.files_listed;
    if (entry.directory) {
      for (uint32_t set_id : added) plan.directories.push_back({entry, set_id});
      continue;
    }
    if (!std::binary_search(old_sets.begin(), old_sets.end(), entry.set_id)) {
      return InvalidArgumentError("entry " + entry.name + " was listed on set " + std::to_string(entry.set_id) +
                                  ", which the volume's previous layout does not name");
    }
    uint32_t target = SetForName(spec.layout(), entry.parent_id, entry.name);
    if (target == entry.set_id) continue;
    plan.moves.push_back({entry, entry.set_id, target});
    plan.bytes_to_move += entry.bytes;
  }
  return plan;
}

}  // namespace cairn::volume
