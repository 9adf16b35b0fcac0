// clusterctl image ...: container images (to be written)
#include "commands.h"

namespace cairn::clusterctl {

void AddImageCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
