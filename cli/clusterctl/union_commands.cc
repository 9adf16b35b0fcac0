// clusterctl union ...: mount, umount, branch add|del|mod, show. Not written yet.
#include "commands.h"

namespace cairn::clusterctl {

void AddUnionCommands(CLI::App& root, Context& context) {
  (void)root;
  (void)context;
}

}  // namespace cairn::clusterctl
