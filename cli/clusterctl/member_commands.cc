// clusterctl member ... and status: the store's members. Not written yet.
#include "commands.h"

namespace cairn::clusterctl {

void AddMemberCommands(CLI::App& root, Context& context) {
  (void)root;
  (void)context;
}

}  // namespace cairn::clusterctl
