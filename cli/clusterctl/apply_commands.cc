// clusterctl apply|get|describe|diff: the declarative cluster.yaml (docs/config.md).
#include "commands.h"

namespace cairn::clusterctl {

void AddApplyCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
