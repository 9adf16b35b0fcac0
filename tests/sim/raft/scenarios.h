// Scripted, narrated Raft scenarios for raft-sim --scenario NAME and the golden-trace tests.
// Each runs a small cluster with a fixed seed and no random faults, so its narration is stable for a
// given libs/raft; a change in the narration means a change in behaviour worth reading.
#pragma once

#include <string>
#include <vector>

namespace cairn::sim {

struct ScenarioResult {
  bool ok = false;              // the script's expectations held and no invariant broke
  std::string failure;          // why not, when !ok
  std::vector<std::string> narration;
};

std::vector<std::string> ScenarioNames();
// Unknown names give ok=false with a message listing the known ones.
ScenarioResult RunScenario(const std::string& name);

}  // namespace cairn::sim
