// clusterctl lease ...: grant, revoke, keepalive, ttl. Not written yet.
#include "commands.h"

namespace cairn::clusterctl {

void AddLeaseCommands(CLI::App& root, Context& context) {
  (void)root;
  (void)context;
}

}  // namespace cairn::clusterctl
