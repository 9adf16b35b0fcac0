#include "cli.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <ostream>

#include <filesystem>
#include <fstream>

#include "cairn/common/logging.h"
#include "cairn/config/yaml_reader.h"
#include "commands.h"

namespace cairn::clusterctl {
namespace {

constexpr const char* kDefaultEndpoint = "127.0.0.1:2379";

std::string DefaultEndpoints() {
  const char* from_env = std::getenv("CAIRN_ENDPOINTS");
  return from_env != nullptr && *from_env != '\0' ? from_env : kDefaultEndpoint;
}

// CLI11 validators return an empty string for "fine" or the error text.
std::string CheckEndpoints(const std::string& text) {
  GlobalOptions options;
  options.endpoints = text;
  auto parsed = options.EndpointList();
  return parsed.ok() ? std::string() : parsed.status().message();
}

std::string CheckDuration(const std::string& text) {
  auto parsed = ParseDuration(text);
  return parsed.ok() ? std::string() : parsed.status().message();
}

void AddGlobalOptions(CLI::App& app, GlobalOptions& globals) {
  app.add_option("--endpoints", globals.endpoints,
                 "comma-separated host:port of cluster members' client API (env CAIRN_ENDPOINTS)")
      ->check(CheckEndpoints)
      ->capture_default_str();
  app.add_option("-o,--output", globals.output, "output format")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->capture_default_str();
  app.add_option("--timeout", globals.timeout, "how long to wait for the cluster, e.g. 500ms, 10s")
      ->check(CheckDuration)
      ->capture_default_str();
  app.add_option("--token-file", globals.token_file,
                 "file whose first line is the API bearer token (else $CAIRN_API_TOKEN, $CAIRN_API_TOKEN_FILE, "
                 "~/.config/cairn/clusterctl.yaml)");
}

std::string ClientConfigPath() {
  if (const char* path = std::getenv("CAIRN_CLUSTERCTL_CONFIG"); path != nullptr && *path != '\0') return path;
  const char* home = std::getenv("HOME");
  return home != nullptr && *home != '\0' ? std::string(home) + "/.config/cairn/clusterctl.yaml" : std::string();
}

Result<std::string> FirstLineOf(const std::string& path) {
  std::ifstream file(path);
  if (!file) return NotFoundError("cannot read token file " + path);
  std::string line;
  std::getline(file, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.empty()) return InvalidArgumentError("token file " + path + " is empty (its first line is the token)");
  return line;
}

void AddAllCommands(CLI::App& root, Context& context) {
  AddConfigCommands(root, context);
  AddKvCommands(root, context);
  AddLeaseCommands(root, context);
  AddMemberCommands(root, context);
  AddUnionCommands(root, context);
  AddVolumeCommands(root, context);
  AddMountCommands(root, context);
  AddSnapshotCommands(root, context);
  AddImageCommands(root, context);
  AddContainerCommands(root, context);
  AddTokenCommands(root, context);
  AddApplyCommands(root, context);
  AddStatusCommands(root, context);
}

}  // namespace

OutputFormat GlobalOptions::output_format() const {
  if (output == "json") return OutputFormat::kJson;
  if (output == "yaml") return OutputFormat::kYaml;
  return OutputFormat::kTable;
}

Result<std::vector<HostPort>> GlobalOptions::EndpointList() const {
  std::vector<HostPort> list;
  for (const std::string& part : Split(endpoints, ',')) {
    std::string_view trimmed = Trim(part);
    if (trimmed.empty()) continue;
    auto parsed = ParseHostPort(trimmed);
    if (!parsed.ok()) return InvalidArgumentError("endpoint " + parsed.status().message());
    list.push_back(*parsed);
  }
  if (list.empty()) return InvalidArgumentError("no endpoints given (e.g. --endpoints 127.0.0.1:2379)");
  return list;
}

std::chrono::nanoseconds GlobalOptions::TimeoutDuration() const {
  return ParseDuration(timeout).value_or(std::chrono::seconds(5));
}

Result<ClientConfig> LoadClientConfig(const std::string& path) {
  ClientConfig config;
  std::error_code ignored;
  if (path.empty() || !std::filesystem::exists(path, ignored)) return config;
  CAIRN_ASSIGN_OR_RETURN(config::YamlValue root, config::LoadYamlFile(path));
  if (root.IsNull()) return config;
  CAIRN_ASSIGN_OR_RETURN(config::YamlMap top, root.Map({"endpoints", "token", "token_file"}));
  CAIRN_RETURN_IF_ERROR(top.ReadString("endpoints", &config.endpoints));
  CAIRN_RETURN_IF_ERROR(top.ReadString("token", &config.token));
  CAIRN_RETURN_IF_ERROR(top.ReadString("token_file", &config.token_file));
  return config;
}

Result<std::string> ResolveApiToken(const GlobalOptions& globals, const ClientConfig& file_config) {
  if (!globals.token_file.empty()) return FirstLineOf(globals.token_file);
  if (const char* token = std::getenv("CAIRN_API_TOKEN"); token != nullptr && *token != '\0') return std::string(token);
  if (const char* path = std::getenv("CAIRN_API_TOKEN_FILE"); path != nullptr && *path != '\0') return FirstLineOf(path);
  if (!file_config.token.empty()) return file_config.token;
  if (!file_config.token_file.empty()) return FirstLineOf(file_config.token_file);
  return std::string();
}

std::string JsonString(std::string_view text) { return "\"" + log::JsonEscape(text) + "\""; }

int Main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  Context context;
  context.out = &out;
  context.err = &err;
  context.globals.endpoints = DefaultEndpoints();
  auto file_config = LoadClientConfig(ClientConfigPath());
  if (!file_config.ok()) {
    err << "clusterctl: " << file_config.status().message() << "\n";
    return kExitUsage;
  }
  const char* endpoints_env = std::getenv("CAIRN_ENDPOINTS");
  if (!file_config->endpoints.empty() && (endpoints_env == nullptr || *endpoints_env == '\0')) {
    context.globals.endpoints = file_config->endpoints;
  }

  CLI::App app{"clusterctl: control a Cairn cluster (store, volumes, union images, containers).", "clusterctl"};
  app.set_version_flag("--version", std::string("clusterctl ") + CAIRN_VERSION);
  // Global options may also follow the verb: "clusterctl config check f.yaml -o json".
  app.fallthrough();
  app.require_subcommand(1);
  AddGlobalOptions(app, context.globals);
  AddAllCommands(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 reports an unknown verb as "A subcommand is required"; name the word instead.
    CLI::App* deepest = &app;
    std::string command = "clusterctl";
    while (!deepest->get_subcommands().empty()) {
      deepest = deepest->get_subcommands().front();
      command += " " + deepest->get_name();
    }
    std::vector<std::string> left = app.remaining();
    if (error.get_exit_code() != 0 && !left.empty() && deepest->get_require_subcommand_min() > 0) {
      err << command << ": unknown command \"" << left.front() << "\"; see " << command << " --help\n";
      return kExitUsage;
    }
    int code = app.exit(error, out, err);  // prints help, version, or the error with a hint
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (!context.action) {
    err << "clusterctl: no command given; see clusterctl --help\n";
    return kExitUsage;
  }
  auto token = ResolveApiToken(context.globals, *file_config);
  if (!token.ok()) {
    err << "clusterctl: " << token.status().message() << "\n";
    return kExitUsage;
  }
  // Every EtcdClient of this process sends it (etcdclient::DefaultApiToken).
  if (!token->empty()) ::setenv("CAIRN_API_TOKEN", token->c_str(), 1);
  try {
    return context.action();
  } catch (const std::exception& e) {
    err << "clusterctl: unexpected error: " << e.what() << "\n";
    return kExitFailed;
  }
}

void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
}

}  // namespace cairn::clusterctl
