// clusterctl kv ...: put, get, del, watch, txn (etcd v3 API). Not written yet.
#include "commands.h"

namespace cairn::clusterctl {

void AddKvCommands(CLI::App& root, Context& context) {
  (void)root;
  (void)context;
}

}  // namespace cairn::clusterctl
