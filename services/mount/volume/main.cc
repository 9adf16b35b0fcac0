// cairn-mount: mounts a replicated volume over FUSE (see docs/mount.md).
//
//   cairn-mount VOLUME MOUNTPOINT --endpoints HOST:PORT[,HOST:PORT...] [-f] [-o OPTIONS]
//   cairn-mount VOLUME MOUNTPOINT -o endpoints=HOST:PORT,...   (mount(8) / fstab helper style)
//
// Without -f the program returns (exit 0) once the mount is ready and serves it from a background
// process; errors before that are one line on stderr and exit 1.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/volume/layout.h"
#include "fuse_ops.h"

namespace cairn::volumemount {
namespace {

constexpr bool kWritebackDefault = false;

constexpr const char* kUsage = R"(usage: cairn-mount VOLUME MOUNTPOINT --endpoints HOST:PORT[,HOST:PORT...] [-f] [-o OPTIONS]

Mounts the replicated volume VOLUME at MOUNTPOINT. The volume's records are read from the
coordination store at the endpoints (any members' client addresses) and followed as they change.

options (-o, comma-separated; -o may be repeated):
  endpoints=HOST:PORT[,HOST:PORT...]  the store, as --endpoints
  host=NAME            this host's node name: reads prefer its in-sync bricks (default: hostname)
  timeout=SECONDS      kernel cache lifetime of names and attributes (default 1)
  call_timeout=SECONDS one brick call's deadline (default 10)
  failover_timeout=SECONDS  how long an operation waits for a new primary (default 10)
  writeback=on|off     the kernel's write-back cache (default off)
  log=LEVEL            trace, debug, info, warn (default), error
  log_file=PATH        log here (default: stderr, which is /dev/null once in the background)
  any other option is passed to FUSE (e.g. allow_other, ro)
flags:
  -f   stay in the foreground      -d   FUSE debug output (implies -f)
  -s   single-threaded             -h, --help   this text
unmount with: fusermount3 -u MOUNTPOINT (or umount MOUNTPOINT)
)";

struct CommandLine {
  std::vector<std::string> positional;
  std::vector<HostPort> endpoints;
  std::string host;
  double timeout = 1.0;
  double call_timeout = 10.0;
  double failover_timeout = 10.0;
  bool writeback = kWritebackDefault;
  std::string log_level = "warn";
  std::string log_file;
  std::string fuse_options;
  bool foreground = false;
  bool debug = false;
  bool single_thread = false;
  bool help = false;
};

Status AddEndpoints(std::string_view text, CommandLine* line) {
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) continue;
    CAIRN_ASSIGN_OR_RETURN(HostPort endpoint, ParseHostPort(part));
    line->endpoints.push_back(endpoint);
  }
  return Status::Ok();
}

Result<double> Seconds(std::string_view key, std::string_view value) {
  char* end = nullptr;
  std::string text(value);
  double seconds = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || seconds < 0) {
    return InvalidArgumentError(std::string(key) + "= wants a number of seconds, not '" + text + "'");
  }
  return seconds;
}

// One -o string. A bare HOST:PORT right after endpoints= continues the endpoint list (so the
// mount(8) form "-o endpoints=a:2379,b:2379" works although options are comma-separated).
Status ParseOptions(std::string_view text, CommandLine* line) {
  bool in_endpoints = false;
  for (std::string_view option : Split(text, ',')) {
    if (option.empty()) continue;
    size_t equals = option.find('=');
    std::string_view key = option.substr(0, equals);
    std::string_view value = equals == std::string_view::npos ? std::string_view() : option.substr(equals + 1);
    if (in_endpoints && equals == std::string_view::npos && ParseHostPort(option).ok()) {
      CAIRN_RETURN_IF_ERROR(AddEndpoints(option, line));
      continue;
    }
    in_endpoints = false;
    if (key == "endpoints") {
      CAIRN_RETURN_IF_ERROR(AddEndpoints(value, line));
      in_endpoints = true;
    } else if (key == "host") {
      line->host = std::string(value);
    } else if (key == "timeout") {
      CAIRN_ASSIGN_OR_RETURN(line->timeout, Seconds(key, value));
    } else if (key == "call_timeout") {
      CAIRN_ASSIGN_OR_RETURN(line->call_timeout, Seconds(key, value));
    } else if (key == "failover_timeout") {
      CAIRN_ASSIGN_OR_RETURN(line->failover_timeout, Seconds(key, value));
    } else if (key == "writeback") {
      if (value != "on" && value != "off") return InvalidArgumentError("writeback= wants on or off, not '" + std::string(value) + "'");
      line->writeback = value == "on";
    } else if (key == "log") {
      CAIRN_RETURN_IF_ERROR(log::ParseLevel(value).status());
      line->log_level = std::string(value);
    } else if (key == "log_file") {
      line->log_file = std::string(value);
    } else if (key == "_netdev" || key == "auto" || key == "noauto" || key == "nofail" || key == "defaults") {
      // fstab words that mean nothing to FUSE
    } else {
      if (!line->fuse_options.empty()) line->fuse_options += ",";
      line->fuse_options += std::string(option);
    }
  }
  return Status::Ok();
}

Result<CommandLine> Parse(int argc, char** argv) {
  CommandLine line;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
    } else if (arg == "-f") {
      line.foreground = true;
    } else if (arg == "-d" || arg == "-odebug") {
      line.debug = line.foreground = true;
    } else if (arg == "-s") {
      line.single_thread = true;
    } else if (arg == "-o" || arg == "--endpoints") {
      if (i + 1 >= argc) return InvalidArgumentError(arg + " needs a value");
      std::string value = argv[++i];
      CAIRN_RETURN_IF_ERROR(arg == "-o" ? ParseOptions(value, &line) : AddEndpoints(value, &line));
    } else if (arg.rfind("--endpoints=", 0) == 0) {
      CAIRN_RETURN_IF_ERROR(AddEndpoints(arg.substr(12), &line));
    } else if (arg.rfind("-o", 0) == 0) {
      CAIRN_RETURN_IF_ERROR(ParseOptions(arg.substr(2), &line));
    } else if (!arg.empty() && arg[0] == '-') {
      return InvalidArgumentError("unknown flag " + arg);
    } else {
      line.positional.push_back(arg);
    }
  }
  if (line.help) return line;
  if (line.positional.size() != 2) return InvalidArgumentError("expected VOLUME MOUNTPOINT");
  if (line.endpoints.empty()) return InvalidArgumentError("no store endpoints (--endpoints HOST:PORT[,HOST:PORT...])");
  CAIRN_RETURN_IF_ERROR(volume::ValidateVolumeName(line.positional[0]));
  return line;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "cairn-mount: %s\n", message.c_str());
  return 1;
}

Status CheckMountpoint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return InvalidArgumentError("mount point " + path + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError("mount point " + path + " is not a directory");
  return Status::Ok();
}

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

Duration ToDuration(double seconds) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
}

// Runs the session loop with the brick I/O threads and the store watch running beside it.
// Called in the process that serves the mount (after fuse_daemonize), so threads start here.
int Loop(fuse_session* session, Context* context, VolumeView* view, const CommandLine& line) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 2; ++i) io_threads.emplace_back([&io] { io.run(); });
  int rc;
  {
    VolumeFs fs(*view, io, FsOptions{.call_timeout = ToDuration(line.call_timeout),
                                     .failover_timeout = ToDuration(line.failover_timeout)});
    context->fs = &fs;
    view->StartWatching();
    log::Info("mount.serving", "volume", view->volume(), "mountpoint", line.positional[1]);
    if (line.single_thread) {
      rc = fuse_session_loop(session);
    } else {
      fuse_loop_config* config = fuse_loop_cfg_create();
      fuse_loop_cfg_set_clone_fd(config, 1);
      fuse_loop_cfg_set_max_threads(config, 32);
      rc = fuse_session_loop_mt(session, config);
      fuse_loop_cfg_destroy(config);
    }
    view->Stop();
  }
  guard.reset();
  io.stop();
  for (auto& thread : io_threads) thread.join();
  return rc;
}

int Serve(const CommandLine& line, VolumeView* view) {
  const std::string& mountpoint = line.positional[1];
  std::string fuse_options = "default_permissions,fsname=cairn:" + line.positional[0] + ",subtype=cairn";
  if (geteuid() == 0) fuse_options += ",allow_other";
  if (!line.fuse_options.empty()) fuse_options += "," + line.fuse_options;
  std::vector<std::string> words = {"cairn-mount", "-o", fuse_options};
  if (line.debug) words.push_back("-d");
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  Context context;
  context.timeout = line.timeout;
  context.writeback = line.writeback;
  fuse_session* session = fuse_session_new(&args, &Operations(), sizeof(fuse_lowlevel_ops), &context);
  if (session == nullptr) return Fail("could not create the FUSE session (bad FUSE option in " + fuse_options + "?)");
  context.session = session;
  int rc = 1;
  if (fuse_set_signal_handlers(session) == 0) {
    if (fuse_session_mount(session, mountpoint.c_str()) == 0) {
      fuse_daemonize(line.foreground ? 1 : 0);
      rc = Loop(session, &context, view, line);
      fuse_session_unmount(session);
    } else {
      Fail("could not mount on " + mountpoint);
    }
    fuse_remove_signal_handlers(session);
  }
  fuse_session_destroy(session);
  fuse_opt_free_args(&args);
  return rc == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  auto line = Parse(argc, argv);
  if (!line.ok()) return Fail(line.status().message() + " (see cairn-mount --help)");
  if (line->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status logging = log::Init({.level = line->log_level, .file = line->log_file, .component = "cairn-mount"});
  if (!logging.ok()) return Fail(logging.message());
  if (Status ok = CheckMountpoint(line->positional[1]); !ok.ok()) return Fail(ok.message());
  if (line->host.empty()) line->host = HostName();
  VolumeView view(line->positional[0], line->endpoints, line->host);
  if (Status loaded = view.Load(); !loaded.ok()) {
    if (loaded.code() == StatusCode::kUnavailable || loaded.code() == StatusCode::kDeadlineExceeded) {
      return Fail("the store is unreachable: " + loaded.message());
    }
    return Fail(loaded.message());
  }
  umask(0);  // modes arrive from the kernel already masked by the caller's umask
  return Serve(*line, &view);
}

}  // namespace
}  // namespace cairn::volumemount

int main(int argc, char** argv) { return cairn::volumemount::Main(argc, argv); }
