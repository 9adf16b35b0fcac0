// clusterctl lease ...: grant, revoke, keepalive, ttl, list, over etcd's v3 JSON API
// (libs/etcdclient). Lease ids are hexadecimal, and messages are etcdctl's, so scripts carry over.
#include <memory>
#include <sstream>
#include <thread>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/etcdclient/etcdctl.h"
#include "commands.h"
#include "store_client.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;
using etcdclient::EtcdctlJson;
using etcdclient::HexId;

int RunGrant(Context& context, int64_t ttl) {
  return WithClient(context, "lease grant", [&](EtcdClient& client) -> Status {
    if (ttl <= 0) return InvalidArgumentError("TTL must be a positive number of seconds");
    etcd::LeaseGrantRequest request;
    request.set_ttl(ttl);
    CAIRN_ASSIGN_OR_RETURN(auto response, client.LeaseGrant(request));
    if (!response.error().empty()) return FailedPreconditionError(response.error());
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
    } else {
      *context.out << "lease " << HexId(static_cast<uint64_t>(response.id())) << " granted with TTL("
                   << response.ttl() << "s)\n";
    }
    return Status::Ok();
  });
}

int RunRevoke(Context& context, const std::string& id_text) {
  return WithClient(context, "lease revoke", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, etcdclient::ParseHexId(id_text, "lease id"));
    etcd::LeaseRevokeRequest request;
    request.set_id(static_cast<int64_t>(id));
    CAIRN_ASSIGN_OR_RETURN(auto response, client.LeaseRevoke(request));
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
    } else {
      *context.out << "lease " << HexId(id) << " revoked\n";
    }
    return Status::Ok();
  });
}

// Keeps the lease alive like `etcdctl lease keepalive`: a renewal every TTL/3 until Ctrl-C or the
// lease is gone (exit 1 then); --once renews a single time.
int RunKeepAlive(Context& context, const std::string& id_text, bool once) {
  return WithClient(context, "lease keepalive", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, etcdclient::ParseHexId(id_text, "lease id"));
    etcd::LeaseKeepAliveRequest request;
    request.set_id(static_cast<int64_t>(id));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(auto response, client.LeaseKeepAlive(request));
      if (JsonOutput(context)) {
        *context.out << EtcdctlJson(response) << "\n";
      } else {
        *context.out << "lease " << HexId(id) << " keepalived with TTL(" << response.ttl() << ")\n";
      }
      context.out->flush();
      if (once) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(response.ttl() * 1000 / 3, 500)));
    }
  });
}

int RunTimeToLive(Context& context, const std::string& id_text, bool keys) {
  return WithClient(context, "lease ttl", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, etcdclient::ParseHexId(id_text, "lease id"));
    etcd::LeaseTimeToLiveRequest request;
    request.set_id(static_cast<int64_t>(id));
    request.set_keys(keys);
    CAIRN_ASSIGN_OR_RETURN(auto response, client.LeaseTimeToLive(request));
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
      return Status::Ok();
    }
    if (response.ttl() == -1) {
      *context.out << "lease " << HexId(id) << " already expired\n";
      return Status::Ok();
    }
    *context.out << "lease " << HexId(id) << " granted with TTL(" << response.grantedttl() << "s), remaining("
                 << response.ttl() << "s)";
    if (keys) {
      *context.out << ", attached keys([";
      for (int i = 0; i < response.keys_size(); ++i) *context.out << (i > 0 ? " " : "") << response.keys(i);
      *context.out << "])";
    }
    *context.out << "\n";
    return Status::Ok();
  });
}

int RunList(Context& context) {
  return WithClient(context, "lease list", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto response, client.LeaseLeases());
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
      return Status::Ok();
    }
    *context.out << "found " << response.leases_size() << " leases\n";
    for (const auto& lease : response.leases()) *context.out << HexId(static_cast<uint64_t>(lease.id())) << "\n";
    return Status::Ok();
  });
}

}  // namespace

void AddLeaseCommands(CLI::App& root, Context& context) {
  CLI::App* lease = root.add_subcommand("lease", "grant, renew and revoke leases (keys attached to a lease expire with it)");
  lease->require_subcommand(1);

  auto ttl = std::make_shared<int64_t>(0);
  CLI::App* grant = lease->add_subcommand("grant", "create a lease of TTL seconds; prints its id");
  grant->add_option("TTL", *ttl, "time to live in seconds")->required();
  grant->callback([&context, ttl] { context.action = [&context, ttl] { return RunGrant(context, *ttl); }; });

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* revoke = lease->add_subcommand("revoke", "end a lease now, deleting its keys");
  revoke->add_option("ID", *revoke_id, "lease id (hex)")->required();
  revoke->callback([&context, revoke_id] { context.action = [&context, revoke_id] { return RunRevoke(context, *revoke_id); }; });

  auto keep_id = std::make_shared<std::string>();
  auto once = std::make_shared<bool>(false);
  CLI::App* keepalive = lease->add_subcommand("keepalive", "renew a lease every TTL/3 until Ctrl-C");
  keepalive->add_option("ID", *keep_id, "lease id (hex)")->required();
  keepalive->add_flag("--once", *once, "renew once and exit");
  keepalive->callback([&context, keep_id, once] {
    context.action = [&context, keep_id, once] { return RunKeepAlive(context, *keep_id, *once); };
  });

  auto ttl_id = std::make_shared<std::string>();
  auto keys = std::make_shared<bool>(false);
  CLI::App* time_to_live = lease->add_subcommand("ttl", "show a lease's granted and remaining time");
  time_to_live->add_option("ID", *ttl_id, "lease id (hex)")->required();
  time_to_live->add_flag("--keys", *keys, "also list the keys attached to it");
  time_to_live->callback([&context, ttl_id, keys] {
    context.action = [&context, ttl_id, keys] { return RunTimeToLive(context, *ttl_id, *keys); };
  });

  CLI::App* list = lease->add_subcommand("list", "list the live leases");
  list->callback([&context] { context.action = [&context] { return RunList(context); }; });
}

}  // namespace cairn::clusterctl
