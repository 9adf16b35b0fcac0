// clusterctl container ...: LXC containers (to be written)
#include "commands.h"

namespace cairn::clusterctl {

void AddContainerCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
