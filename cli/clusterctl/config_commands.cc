// clusterctl config ...: offline checks of configuration files.
#include <ostream>

#include "cairn/config/node_config.h"
#include "commands.h"

namespace cairn::clusterctl {
namespace {

void PrintJson(std::ostream& out, const std::string& file, const Result<config::NodeConfig>& config) {
  out << "{\"file\":" << JsonString(file) << ",\"valid\":" << (config.ok() ? "true" : "false");
  if (config.ok()) {
    out << ",\"name\":" << JsonString(config->name) << ",\"role\":" << JsonString(config::RoleName(config->role))
        << ",\"bootstrap\":" << JsonString(config::BootstrapModeName(config->bootstrap_mode()))
        << ",\"peer_address\":" << JsonString(config->peer_address.ToString())
        << ",\"client_address\":" << JsonString(config->client_address.ToString());
  } else {
    out << ",\"error\":" << JsonString(config.status().message());
  }
  out << "}\n";
}

void PrintTable(std::ostream& out, const std::string& file, const config::NodeConfig& config) {
  out << "OK " << file << ": node " << config.name << " (" << config::RoleName(config.role) << ", "
      << config::BootstrapModeName(config.bootstrap_mode());
  if (!config.initial_cluster.empty()) out << " with " << config.initial_cluster.size() << " founding members";
  out << "), peer " << config.AdvertisedPeerAddress().ToString() << ", client "
      << config.AdvertisedClientAddress().ToString() << "\n";
}

// Validates a node.yaml. Prints OK or FILE:LINE:COLUMN: FIELD: error; exit 1 when invalid.
// -o yaml prints the file as clusterd understands it, defaults filled in.
int RunConfigCheck(Context& context, const std::string& file) {
  auto config = config::LoadNodeConfig(file);
  switch (context.globals.output_format()) {
    case OutputFormat::kJson:
      PrintJson(*context.out, file, config);
      break;
    case OutputFormat::kYaml:
      if (config.ok()) *context.out << config::NodeConfigToYaml(*config);
      break;
    case OutputFormat::kTable:
      if (config.ok()) PrintTable(*context.out, file, *config);
      break;
  }
  if (!config.ok()) {
    *context.err << config.status().message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void AddConfigCommands(CLI::App& root, Context& context) {
  CLI::App* group = root.add_subcommand("config", "check configuration files offline");
  group->require_subcommand(1);
  CLI::App* check = group->add_subcommand("check", "validate a node.yaml; prints OK or FILE:LINE:COLUMN: error");
  auto file = std::make_shared<std::string>();
  check->add_option("FILE", *file, "the node.yaml to check")->required();
  check->callback([&context, file] { context.action = [&context, file] { return RunConfigCheck(context, *file); }; });
}

}  // namespace cairn::clusterctl
