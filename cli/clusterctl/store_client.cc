#include "store_client.h"

#include <algorithm>
#include <chrono>
#include <ostream>

namespace cairn::clusterctl {

Result<std::unique_ptr<etcdclient::EtcdClient>> MakeClient(const Context& context) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<HostPort> endpoints, context.globals.EndpointList());
  etcdclient::ClientOptions options;
  options.timeout = context.globals.TimeoutDuration();
  options.connect_timeout = std::min<std::chrono::nanoseconds>(options.timeout, std::chrono::seconds(1));
  return std::make_unique<etcdclient::EtcdClient>(std::move(endpoints), options);
}

int Fail(const Context& context, const std::string& verb, const Status& status) {
  *context.err << "clusterctl " << verb << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

bool JsonOutput(const Context& context) { return context.globals.output_format() != OutputFormat::kTable; }

}  // namespace cairn::clusterctl
