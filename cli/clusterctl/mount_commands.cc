// clusterctl mount VOL DIR / umount DIR (to be written)
#include "commands.h"

namespace cairn::clusterctl {

void AddMountCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
