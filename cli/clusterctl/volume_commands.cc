// clusterctl volume ...: replicated volumes (to be written)
#include "commands.h"

namespace cairn::clusterctl {

void AddVolumeCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
