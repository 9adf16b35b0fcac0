#include "cairn/supervisor/clusterd.h"

#include <signal.h>

#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/coord/node/offline.h"
#include "cairn/supervisor/data_dir.h"
#include "cairn/supervisor/supervisor.h"

namespace cairn::supervisor {
namespace {

constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

struct Arguments {
  std::string config_path;
  std::string log_level;  // empty: from node.yaml
  std::string snapshot_path;  // restore
  bool force = false;         // restore
  bool dry_run = false;       // recover
};

Status SetUpLogging(const config::NodeConfig& config, const Arguments& arguments) {
  log::Options options{.level = config.log.level, .format = config.log.format, .file = config.log.file,
                       .component = "clusterd"};
  if (!arguments.log_level.empty()) options.level = arguments.log_level;
  return log::Init(options);
}

// ---- offline subcommands (docs/coord.md "Backup and restore", "Recovering from quorum loss") ----

// This member's advertised peer URL; the member id derives from it, so port 0 cannot work offline.
Result<std::string> OfflinePeerUrl(const config::NodeConfig& config) {
  HostPort peer = config.AdvertisedPeerAddress();
  if (peer.port == 0) {
    return InvalidArgumentError("peer_address has port 0: set a fixed peer_address (or advertise_peer_address), the "
                                "member id derives from it");
  }
  return peer.ToString();
}

std::string JoinIds(const std::vector<uint64_t>& ids) {
  std::string text;
  for (uint64_t id : ids) text += (text.empty() ? "" : ", ") + IdToHex(id);
  return text;
}

int RunRestore(const config::NodeConfig& config, const Arguments& arguments) {
  if (config.bootstrap_mode() == config::BootstrapMode::kJoin) {
    std::cerr << "clusterd restore: " << arguments.config_path << " has `join`: a restore makes a new cluster. Use a "
              << "node.yaml with initial_cluster (every member restored from the same file) or with neither "
              << "initial_cluster nor join (a one-member cluster; add members later with clusterctl member add)\n";
    return kExitUsage;
  }
  auto peer_url = OfflinePeerUrl(config);
  if (!peer_url.ok()) {
    std::cerr << "clusterd restore: " << peer_url.status().message() << "\n";
    return kExitUsage;
  }
  auto backup = coord::ReadBackupFile(env::DefaultEnv(), arguments.snapshot_path);
  if (!backup.ok()) {
    std::cerr << "clusterd restore: refusing the snapshot: " << backup.status().message() << "\n";
    return kExitStartFailed;
  }
  auto lock = PrepareDataDir(config.data_dir);
  if (!lock.ok()) {
    std::cerr << "clusterd restore: " << lock.status().message() << " (stop that clusterd first)\n";
    return kExitStartFailed;
  }
  coord::RestoreOptions options{.data_dir = config.data_dir, .name = config.name, .peer_url = *peer_url,
                                .force = arguments.force};
  if (config.bootstrap_mode() == config::BootstrapMode::kStatic) {
    for (const config::InitialMember& member : config.initial_cluster) {
      bool self = member.name == config.name;
      options.members.push_back({member.name, self ? *peer_url : member.peer_address.ToString()});
    }
  }
  auto report = coord::RestoreFromBackup(options, *backup);
  if (!report.ok()) {
    std::cerr << "clusterd restore: " << report.status().message() << "\n";
    return report.status().code() == StatusCode::kFailedPrecondition ? kExitUsage : kExitStartFailed;
  }
  std::cout << "restored " << arguments.snapshot_path << " (revision " << report->revision << ", " << report->key_count
            << " keys, raft index " << report->raft_index << ", sha256 " << backup->checksum_hex << ")\n"
            << "into " << config.data_dir << " as member " << config.name << " (id " << IdToHex(report->member_id)
            << ") of the new cluster " << IdToHex(report->cluster_id) << " with " << report->voters.size()
            << " member(s): " << JoinIds(report->voters) << "\n";
  if (!report->moved_aside.empty()) std::cout << "the previous coordination data is kept in " << report->moved_aside << "\n";
  std::cout << "next: start clusterd --config " << arguments.config_path
            << (report->voters.size() > 1 ? " on every member listed, each restored from this same file\n"
                                          : "; add more members with clusterctl member add\n");
  return 0;
}

int RunRecover(const config::NodeConfig& config, const Arguments& arguments) {
  auto peer_url = OfflinePeerUrl(config);
  if (!peer_url.ok()) {
    std::cerr << "clusterd recover: " << peer_url.status().message() << "\n";
    return kExitUsage;
  }
  auto lock = PrepareDataDir(config.data_dir);
  if (!lock.ok()) {
    std::cerr << "clusterd recover: " << lock.status().message() << " (stop that clusterd first)\n";
    return kExitStartFailed;
  }
  auto report = coord::ForceNewCluster(
      {.data_dir = config.data_dir, .name = config.name, .peer_url = *peer_url, .dry_run = arguments.dry_run});
  if (!report.ok()) {
    std::cerr << "clusterd recover: " << report.status().message() << "\n";
    return kExitStartFailed;
  }
  std::string removed;
  for (const std::string& member : report->removed_members) removed += (removed.empty() ? "" : ", ") + member;
  std::cout << "member " << config.name << " (id " << IdToHex(report->member_id) << ") of cluster "
            << IdToHex(report->old_cluster_id) << ": snapshot index " << report->snapshot_index << ", commit index "
            << report->commit_index << ", last log index " << report->last_index << " (term " << report->last_term
            << "), revision " << report->revision << ", " << report->key_count << " keys\n";
  if (arguments.dry_run) {
    std::cout << "dry run: nothing changed. recover would keep every entry up to index " << report->last_index
              << " and remove: " << (removed.empty() ? "(no other member)" : removed) << "\n";
    return 0;
  }
  std::cout << "recovered: " << config.name << " is now the only member of the new cluster "
            << IdToHex(report->new_cluster_id) << "; kept every log entry up to index " << report->last_index << " ("
            << report->last_index - std::min(report->last_index, report->commit_index)
            << " past the last known commit); removed: " << (removed.empty() ? "(no other member)" : removed) << "\n"
            << "the previous coordination data is kept in " << report->moved_aside << "\n"
            << "next: start clusterd --config " << arguments.config_path
            << ", then add members back one by one: clusterctl member add NAME --peer-urls HOST:PORT --learner, start "
               "each with a join node.yaml and an empty data dir, clusterctl member promote ID\n";
  return 0;
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
  auto log_level_check = [](const std::string& level) {
    auto parsed = log::ParseLevel(level);
    return parsed.ok() ? std::string() : parsed.status().message();
  };
  app.add_option("-c,--config", arguments.config_path, "node.yaml of this host (see docs/config.md)")
      ->check(CLI::ExistingFile);
  app.add_option("--log-level", arguments.log_level, "override log.level: trace, debug, info, warn, error")
      ->check(log_level_check);
  app.set_version_flag("--version", std::string("clusterd ") + CAIRN_VERSION);

  CLI::App* restore = app.add_subcommand(
      "restore", "offline: make this host's data dir a member of a new cluster holding a snapshot's keys");
  restore->add_option("-c,--config", arguments.config_path, "node.yaml of this host")->required()->check(CLI::ExistingFile);
  restore->add_option("--snapshot", arguments.snapshot_path, "the file `clusterctl snapshot save` wrote")
      ->required()
      ->check(CLI::ExistingFile);
  restore->add_flag("--force", arguments.force, "replace existing coordination data (moved aside, not deleted)");

  CLI::App* recover = app.add_subcommand(
      "recover", "offline, after losing quorum for good: make this member the only member of a new cluster, "
                 "keeping all its data (etcd's --force-new-cluster)");
  recover->add_option("-c,--config", arguments.config_path, "node.yaml of this host")->required()->check(CLI::ExistingFile);
  recover->add_flag("--dry-run", arguments.dry_run, "only show this member's log position and what would change");

  try {
    app.parse(argc, argv);
    if (app.get_subcommands().empty() && arguments.config_path.empty()) {
      throw CLI::RequiredError("--config");
    }
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
  int code = restore->parsed()   ? RunRestore(*config, arguments)
             : recover->parsed() ? RunRecover(*config, arguments)
                                 : RunUntilSignalled(*config);
  spdlog::shutdown();  // flushes a log file before exit
  return code;
}

}  // namespace cairn::supervisor
