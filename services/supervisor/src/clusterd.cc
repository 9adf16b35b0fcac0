#include "cairn/supervisor/clusterd.h"

#include <signal.h>

#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cairn/common/logging.h"
#include "cairn/supervisor/supervisor.h"

namespace cairn::supervisor {
namespace {

constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

struct Arguments {
  std::string config_path;
  std::string log_level;  // empty: from node.yaml
};

Status SetUpLogging(const config::NodeConfig& config, const Arguments& arguments) {
  log::Options options{.level = config.log.level, .format = config.log.format, .file = config.log.file,
                       .component = "clusterd"};
  if (!arguments.log_level.empty()) options.level = arguments.log_level;
  return log::Init(options);
}

}  // namespace

int RunUntilSignalled(const config::NodeConfig& config) {
  boost::asio::io_context io;
  // Installed before Start so a signal that arrives right after "started" is never lost.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  Supervisor supervisor(io, config);
  Status started = supervisor.Start();
  if (!started.ok()) {
    log::Error("clusterd.start_failed", "name", config.name, "error", started);
    return kExitStartFailed;
  }
  signals.async_wait([&](const boost::system::error_code& error, int signal_number) {
    if (error) return;
    log::Info("clusterd.stopping", "signal", ::strsignal(signal_number));
    supervisor.Stop();
    io.stop();  // anything still queued belongs to services that are already stopped
  });
  io.run();
  supervisor.Stop();
  return 0;
}

int ClusterdMain(int argc, char** argv) {
  CLI::App app{"clusterd: the Cairn supervisor. Runs one host's share of the cluster.", "clusterd"};
  Arguments arguments;
  app.add_option("-c,--config", arguments.config_path, "node.yaml of this host (see docs/config.md)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", arguments.log_level, "override log.level: trace, debug, info, warn, error")
      ->check([](const std::string& level) {
        auto parsed = log::ParseLevel(level);
        return parsed.ok() ? std::string() : parsed.status().message();
      });
  app.set_version_flag("--version", std::string("clusterd ") + CAIRN_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int code = app.exit(error);  // prints help, version or the error; 0 for help and version
    return code == 0 ? 0 : kExitUsage;
  }

  auto config = config::LoadNodeConfig(arguments.config_path);
  if (!config.ok()) {
    std::cerr << config.status().message() << "\n"
              << "clusterd: invalid configuration; check it with: clusterctl config check "
              << arguments.config_path << "\n";
    return kExitUsage;
  }
  Status logging = SetUpLogging(*config, arguments);
  if (!logging.ok()) {
    std::cerr << "clusterd: cannot set up logging: " << logging.message() << "\n";
    return kExitStartFailed;
  }
  int code = RunUntilSignalled(*config);
  spdlog::shutdown();  // flushes a log file before exit
  return code;
}

}  // namespace cairn::supervisor
