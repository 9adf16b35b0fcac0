// clusterctl token create|list|revoke: join tokens for new hosts (docs/operations.md).
#include "commands.h"

namespace cairn::clusterctl {

void AddTokenCommands(CLI::App& /*root*/, Context& /*context*/) {}

}  // namespace cairn::clusterctl
