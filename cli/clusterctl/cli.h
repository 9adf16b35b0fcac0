// The clusterctl command tree. Each verb group lives in its own file and registers itself on the
// root app through an Add...Commands function listed in commands.h:
//
//   void AddKvCommands(CLI::App& root, Context& context) {
//     CLI::App* kv = root.add_subcommand("kv", "read and write keys");
//     CLI::App* get = kv->add_subcommand("get", "...");
//     get->callback([&context, ...] { context.action = [&context, ...] { return RunGet(context, ...); }; });
//   }
//
// Callbacks only record what to run; Main() runs it after the whole command line parsed, so the
// global options (--endpoints, -o, --timeout) are known whatever their position. A verb is a
// thin edge: decode the arguments, call libs/ (or the HTTP API), print, return an exit code.
// Exceptions stop here: verbs catch nothing from libs (they return Status) and Main turns a stray
// exception into a message.
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"

namespace cairn::clusterctl {

// Exit codes shared by every verb.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // the operation ran and failed (invalid file, server error, ...)
constexpr int kExitUsage = 2;   // bad arguments

enum class OutputFormat { kTable, kJson, kYaml };

struct GlobalOptions {
  std::string endpoints;  // comma-separated host:port list, from --endpoints or CAIRN_ENDPOINTS
  std::string output = "table";
  std::string timeout = "5s";
  // The HTTP API's bearer token: --token-file, else $CAIRN_API_TOKEN, else $CAIRN_API_TOKEN_FILE, else
  // token / token_file in ~/.config/cairn/clusterctl.yaml (or $CAIRN_CLUSTERCTL_CONFIG). Main
  // exports the token it found as $CAIRN_API_TOKEN, which every EtcdClient sends
  // (etcdclient::DefaultApiToken), so verbs need not pass it along.
  std::string token_file;

  OutputFormat output_format() const;
  // Parsed endpoints. Errors: InvalidArgument naming the bad entry.
  Result<std::vector<HostPort>> EndpointList() const;
  // Parsed --timeout (validated while parsing the command line, so this does not fail then).
  std::chrono::nanoseconds TimeoutDuration() const;
};

struct Context {
  GlobalOptions globals;
  std::ostream* out = nullptr;  // results
  std::ostream* err = nullptr;  // errors and hints
  std::function<int()> action;  // set by the chosen verb's callback
};

// Builds the command tree, parses argv, runs the chosen verb. Returns the process exit code.
int Main(int argc, char** argv, std::ostream& out, std::ostream& err);

// clusterctl's own settings file: endpoints, token, token_file (all optional). Loaded by Main from
// $CAIRN_CLUSTERCTL_CONFIG or ~/.config/cairn/clusterctl.yaml when present.
struct ClientConfig {
  std::string endpoints;
  std::string token;
  std::string token_file;
};
// Errors: InvalidArgument with file:line:column for bad YAML or unknown fields; a missing file is
// an empty ClientConfig.
Result<ClientConfig> LoadClientConfig(const std::string& path);

// Finds the API token as GlobalOptions::token_file describes; empty when none is configured.
// Errors: the token file named cannot be read (the message names it).
Result<std::string> ResolveApiToken(const GlobalOptions& globals, const ClientConfig& file_config);

// Escapes text for a JSON string literal and adds the quotes.
std::string JsonString(std::string_view text);

// Prints rows as columns padded to their widest cell (two spaces between columns, no trailing blanks).
void PrintTable(std::ostream& out, const std::vector<std::vector<std::string>>& rows);

}  // namespace cairn::clusterctl
