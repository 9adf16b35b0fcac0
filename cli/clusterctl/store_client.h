// Helpers shared by the verb groups that talk to the coordination store (kv, lease, member,
// status): a client for the global --endpoints/--timeout, and one way of printing failures.
#pragma once

#include <memory>
#include <string>

#include "cairn/common/status.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cli.h"

namespace cairn::clusterctl {

// A client for the global endpoints and timeout. Errors: InvalidArgument for a bad endpoint list.
Result<std::unique_ptr<etcdclient::EtcdClient>> MakeClient(const Context& context);

// Prints "clusterctl VERB: error" and returns the exit code (usage for InvalidArgument).
int Fail(const Context& context, const std::string& verb, const Status& status);

// -o json and -o yaml both print JSON (etcdctl -w json style).
bool JsonOutput(const Context& context);

// Runs call(client) with a client for the global endpoints, printing failures as `verb: error`.
template <typename Call>
int WithClient(Context& context, const std::string& verb, Call call) {
  auto client = MakeClient(context);
  if (!client.ok()) return Fail(context, verb, client.status());
  Status status = call(**client);
  return status.ok() ? kExitOk : Fail(context, verb, status);
}

}  // namespace cairn::clusterctl
