// unionmount: an AUFS-style union mount over FUSE (libs/union does the work; see docs/union.md).
//
//   unionmount -o dirs=/upper=rw:/lower=ro[,create=tdp|rr|mfs][,whiteout=aufs|overlay] MOUNTPOINT [-f]
//   unionmount -o lowerdir=A:B,upperdir=U,workdir=W MOUNTPOINT        (fuse-overlayfs style)
//   unionmount SOURCE MOUNTPOINT -o OPTIONS                           (mount(8) FUSE helper style)
//
// Without -f the program returns once the mount is ready and serves it from a background process.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cairn/common/logging.h"
#include "cairn/union/options.h"
#include "fuse_ops.h"

namespace cairn::unionmount {
namespace {

constexpr const char* kUsage = R"(usage: unionmount [-f] [-d] [-s] -o OPTIONS [SOURCE] MOUNTPOINT

Merges directories (branches) into one view at MOUNTPOINT, AUFS style.

options (-o, comma-separated; -o may be repeated):
  dirs=/a=rw:/b=ro:/c=rr   branches, top first; rw read-write, ro read-only (its whiteouts
                           are obeyed), rr real read-only (never written, never interpreted)
  create=tdp|rr|mfs        create policy with several rw branches: top-down parent (default),
                           round-robin, most free space
  whiteout=aufs|overlay    whiteout format written: .wh.NAME files (default) or overlayfs
                           0/0 character devices and trusted.overlay.opaque
  timeout=SECONDS          kernel cache lifetime of names and attributes (default 10)
  rotimeout=SECONDS        the same for files from ro/rr branches (default 600)
  lowerdir=A:B,upperdir=U,workdir=W   fuse-overlayfs compatible branch options
  any other option is passed to FUSE (e.g. allow_other, ro)
flags:
  -f   stay in the foreground      -d   FUSE debug output (implies -f)
  -s   single-threaded             -h, --help   this text
SOURCE (mount(8) helper convention) may hold the branch list when no dirs= is given.

live branch changes (on the mounted union's root directory):
  getfattr -n user.unionmount.branches MOUNTPOINT
  setfattr -n user.unionmount.add -v "[INDEX:]/dir[=ro]" MOUNTPOINT    (0 = top)
  setfattr -n user.unionmount.del -v "/dir" MOUNTPOINT
  setfattr -n user.unionmount.mod -v "/dir=rw|ro|rr" MOUNTPOINT
  setfattr -n user.unionmount.set -v "/a=rw:/b=ro" MOUNTPOINT
)";

struct CommandLine {
  std::vector<std::string> options;
  std::vector<std::string> positional;
  bool foreground = false;
  bool debug = false;
  bool single_thread = false;
  bool help = false;
};

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
    } else if (arg == "-o") {
      if (i + 1 >= argc) return InvalidArgumentError("-o needs an option string");
      line.options.push_back(argv[++i]);
    } else if (arg.rfind("-o", 0) == 0) {
      line.options.push_back(arg.substr(2));
    } else if (!arg.empty() && arg[0] == '-') {
      return InvalidArgumentError("unknown flag " + arg);
    } else {
      line.positional.push_back(arg);
    }
  }
  if (line.help) return line;
  if (line.positional.empty()) return InvalidArgumentError("no mount point given");
  if (line.positional.size() > 2) return InvalidArgumentError("too many arguments (expected [SOURCE] MOUNTPOINT)");
  return line;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "unionmount: %s\n", message.c_str());
  return 1;
}

// Every node the kernel holds keeps O_PATH descriptors of its layers, so a walk over a big tree
// needs about one descriptor per cached file. As root the hard limit itself is raised to the
// kernel's maximum (fs.nr_open); otherwise the soft limit goes up to the hard one.
void RaiseFileLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t most = 0;
  if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
    unsigned long value = 0;
    if (std::fscanf(f, "%lu", &value) == 1) most = value;
    std::fclose(f);
  }
  if (most > limit.rlim_max) {
    struct rlimit raised = {most, most};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
  }
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

int Serve(Context* context, const std::string& mountpoint, const std::string& fuse_options, const CommandLine& line) {
  std::vector<std::string> words = {"unionmount", "-o", fuse_options};
  if (line.debug) words.push_back("-d");
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* session = fuse_session_new(&args, &Operations(), sizeof(fuse_lowlevel_ops), context);
  if (session == nullptr) return Fail("could not create the FUSE session (bad FUSE option in " + fuse_options + "?)");
  context->session = session;
  int rc = 1;
  if (fuse_set_signal_handlers(session) == 0) {
    if (fuse_session_mount(session, mountpoint.c_str()) == 0) {
      fuse_daemonize(line.foreground ? 1 : 0);
      if (line.single_thread) {
        rc = fuse_session_loop(session);
      } else {
        fuse_loop_config* config = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(config, 1);
        fuse_loop_cfg_set_max_threads(config, 16);
        rc = fuse_session_loop_mt(session, config);
        fuse_loop_cfg_destroy(config);
      }
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
  if (!line.ok()) return Fail(line.status().message() + " (see unionmount --help)");
  if (line->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  unionfs::MountOptions options;
  std::string fuse_options = "default_permissions,fsname=unionmount,subtype=unionmount";
  if (geteuid() == 0) fuse_options += ",allow_other";
  std::string passthrough;
  for (const std::string& text : line->options) {
    Status status = unionfs::ParseMountOptionString(text, &options, &passthrough);
    if (!status.ok()) return Fail(status.message());
  }
  std::string mountpoint = line->positional.back();
  if (options.branches.empty() && line->positional.size() == 2) {
    auto branches = unionfs::ParseBranchList(line->positional[0]);
    if (!branches.ok()) return Fail("no dirs= option and SOURCE is not a branch list: " + branches.status().message());
    options.branches = std::move(branches).value();
  }
  Status valid = unionfs::ValidateMountOptions(options, mountpoint);
  if (!valid.ok()) return Fail(valid.message());
  if (!passthrough.empty()) fuse_options += "," + passthrough;

  umask(0);  // modes arrive from the kernel already masked by the caller's umask
  RaiseFileLimit();
  auto fs = unionfs::UnionFs::Open(options);
  if (!fs.ok()) return Fail(fs.status().message());
  Context context;
  context.fs = std::move(fs).value();
  context.timeout = options.cache_timeout;
  context.lower_timeout = options.lower_cache_timeout;
  char real[PATH_MAX];
  if (realpath(mountpoint.c_str(), real) == nullptr) return Fail("mount point " + mountpoint + ": " + std::strerror(errno));
  context.real_mountpoint = real;
  return Serve(&context, mountpoint, fuse_options, *line);
}

}  // namespace
}  // namespace cairn::unionmount

int main(int argc, char** argv) { return cairn::unionmount::Main(argc, argv); }
