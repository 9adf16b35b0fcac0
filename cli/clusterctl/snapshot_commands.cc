// clusterctl snapshot save|status (to be written)
#include "commands.h"

namespace cairn::clusterctl {

void AddSnapshotCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
