// clusterctl mount VOL DIR / umount DIR: mount a replicated volume through FUSE.
//
//   clusterctl mount VOL DIR [-o OPTIONS] [--wait 30s]
//   clusterctl umount DIR [--lazy]
//
// mount checks what it can first (the directory, the volume exists and is started), then runs
// `cairn-mount VOL DIR --endpoints E [-o OPTIONS]` (the program next to clusterctl, or
// $CAIRN_MOUNT), which returns once the mount is ready and leaves the FUSE process running on its
// own: every mount is its own process, never part of clusterd or clusterctl. umount runs
// `fusermount3 -u DIR`; --lazy detaches a busy mount (umount2 MNT_DETACH, or fusermount3 -u -z
// when not root).
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>

#include "cairn/common/process.h"
#include "cairn/common/strings.h"
#include "commands.h"
#include "store_client.h"
#include "volume_records.h"

namespace cairn::clusterctl {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

// ---- mount table --------------------------------------------------------------------------------------

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      int value = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = text[i + j];
        octal = octal && c >= '0' && c <= '7';
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out += static_cast<char>(value);
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

struct MountEntry {
  std::string mountpoint;
  std::string fstype;
};

// The last (topmost) mount at exactly `path`, from /proc/self/mountinfo.
std::optional<MountEntry> FindMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.size() < 10) continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size()) continue;
    if (Unescape(fields[4]) == path) found = MountEntry{path, fields[dash + 1]};
  }
  return found;
}

bool IsFuse(const MountEntry& entry) { return entry.fstype == "fuse" || StartsWith(entry.fstype, "fuse."); }

// An absolute path for `path` without touching it beyond the parent (a dead FUSE mount fails
// every stat with ENOTCONN, and umount must still reach it).
std::string AbsolutePath(const std::string& path) {
  std::string absolute = path;
  if (path.empty() || path[0] != '/') {
    char cwd[PATH_MAX];
    absolute = getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" + path : path;
  }
  while (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();
  auto slash = absolute.rfind('/');
  if (slash == std::string::npos) return absolute;
  // Resolve the parent (symlinks, "..") but not the last component itself.
  std::string parent = slash == 0 ? "/" : absolute.substr(0, slash);
  char real[PATH_MAX];
  if (realpath(parent.c_str(), real) == nullptr) return absolute;
  std::string base = absolute.substr(slash + 1);
  if (base == "." || base == "..") {
    if (realpath(absolute.c_str(), real) != nullptr) return real;
    return absolute;
  }
  return std::string(real) == "/" ? "/" + base : std::string(real) + "/" + base;
}

// ---- running helper programs -------------------------------------------------------------------------

// Runs args (a bare name is looked up on $PATH) with stdin from /dev/null and output captured,
// until it exits or `timeout` passes (then it is killed). A daemon it left behind that holds the
// pipe open does not delay us.
Result<RunResult> RunHelper(const std::vector<std::string>& args, std::chrono::nanoseconds timeout) {
  return RunProgram(args, RunOptions{.timeout = timeout, .search_path = true});
}

// ---- mount ------------------------------------------------------------------------------------------

// The cairn-mount program: $CAIRN_MOUNT, else the one in clusterctl's own directory.
Result<std::string> FindCairnMount() {
  auto found = FindProgram("cairn-mount", "CAIRN_MOUNT");
  if (!found.ok()) return Status(found.status().code(), "the mount program " + found.status().message());
  return found;
}

Result<std::string> MountDirectory(const std::string& path) {
  std::string dir = AbsolutePath(path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    int error = errno;
    if (error == ENOTCONN) {
      return FailedPreconditionError("mount point " + dir + ": " + ErrnoText(error) +
                                     " (a mount whose process died is still there; clusterctl umount " + dir + " first)");
    }
    return NotFoundError("mount point " + dir + ": " + ErrnoText(error) + " (create the directory first)");
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError("mount point " + dir + " is not a directory");
  if (auto mounted = FindMount(dir)) {
    return FailedPreconditionError(dir + " is already a mount point (" + mounted->fstype + "); clusterctl umount " +
                                   dir + " first, or use another directory");
  }
  return dir;
}

Status CheckVolumeMountable(const Context& context, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(auto client, MakeClient(context));
  CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(*client, name));
  if (view.spec().state() != vpb::VOLUME_STARTED) {
    return FailedPreconditionError("volume " + name + " is not started (clusterctl volume start " + name + ")");
  }
  return Status::Ok();
}

std::string EndpointArgument(const Context& context) {
  std::string list;
  for (const HostPort& endpoint : context.globals.EndpointList().value_or(std::vector<HostPort>{})) {
    list += (list.empty() ? "" : ",") + endpoint.ToString();
  }
  return list;
}

struct MountArgs {
  std::string volume;
  std::string dir;
  std::string options;
  std::string wait = "30s";
};

Status Mount(Context& context, const MountArgs& args) {
  CAIRN_ASSIGN_OR_RETURN(std::chrono::nanoseconds wait, ParseWait(args.wait));
  CAIRN_ASSIGN_OR_RETURN(std::string dir, MountDirectory(args.dir));
  CAIRN_RETURN_IF_ERROR(CheckVolumeMountable(context, args.volume));
  CAIRN_ASSIGN_OR_RETURN(std::string program, FindCairnMount());
  std::vector<std::string> command{program, args.volume, dir, "--endpoints", EndpointArgument(context)};
  if (!args.options.empty()) {
    command.push_back("-o");
    command.push_back(args.options);
  }
  CAIRN_ASSIGN_OR_RETURN(RunResult result, RunHelper(command, wait));
  std::string said(Trim(result.output));
  if (result.exit_code != 0) {
    return InternalError("mounting " + args.volume + " at " + dir + " failed: " +
                         (said.empty() ? program + " exited with status " + std::to_string(result.exit_code) : said));
  }
  if (!said.empty()) *context.err << said << "\n";
  if (!FindMount(dir)) return InternalError(program + " reported success, but " + dir + " is not mounted");
  *context.out << "mounted volume " << args.volume << " at " << dir << "\n";
  return Status::Ok();
}

// ---- umount -------------------------------------------------------------------------------------------

Status Umount(Context& context, const std::string& path, bool lazy) {
  const std::string dir = AbsolutePath(path);
  auto entry = FindMount(dir);
  if (!entry) return FailedPreconditionError(dir + " is not a mount point");
  if (!IsFuse(*entry)) {
    return FailedPreconditionError(dir + " is a " + entry->fstype + " mount, not a volume mount; use umount(8)");
  }
  const auto timeout = context.globals.TimeoutDuration();
  if (lazy) {
    if (umount2(dir.c_str(), MNT_DETACH) != 0) {
      int error = errno;
      if (error != EPERM) return UnavailableError("detaching " + dir + ": " + ErrnoText(error));
      // Not root: the FUSE helper may detach the user's own mounts.
      CAIRN_ASSIGN_OR_RETURN(RunResult result, RunHelper({"fusermount3", "-u", "-z", dir}, timeout));
      if (result.exit_code != 0) return UnavailableError("fusermount3 -u -z " + dir + " failed: " + std::string(Trim(result.output)));
    }
    *context.out << "detached " << dir << " (the mount goes away once nothing uses it)\n";
    return Status::Ok();
  }
  CAIRN_ASSIGN_OR_RETURN(RunResult result, RunHelper({"fusermount3", "-u", dir}, timeout));
  if (result.exit_code != 0) {
    return UnavailableError("fusermount3 -u " + dir + " failed: " + std::string(Trim(result.output)) +
                            "; if files are open or a process works inside it, stop them, or use --lazy");
  }
  *context.out << "unmounted " << dir << "\n";
  return Status::Ok();
}

int Report(Context& context, const std::string& verb, const Status& status) {
  if (status.ok()) return kExitOk;
  *context.err << "clusterctl " << verb << ": " << status.message() << "\n";
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

}  // namespace

void AddMountCommands(CLI::App& root, Context& context) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* mount = root.add_subcommand("mount", "mount a started volume (runs cairn-mount; returns once mounted)");
  mount->add_option("VOLUME", args->volume, "volume name")->required();
  mount->add_option("DIR", args->dir, "an existing, empty directory")->required();
  mount->add_option("-o,--options", args->options, "mount options passed to cairn-mount, comma-separated");
  mount->add_option("--wait", args->wait, "how long cairn-mount may take to get ready")->capture_default_str();
  mount->callback([&context, args] {
    context.action = [&context, args] { return Report(context, "mount", Mount(context, *args)); };
  });

  auto dir = std::make_shared<std::string>();
  auto lazy = std::make_shared<bool>(false);
  CLI::App* umount = root.add_subcommand("umount", "unmount a volume mount (fusermount3 -u)");
  umount->add_option("DIR", *dir, "the mount point")->required();
  umount->add_flag("--lazy,-l", *lazy, "detach now even if busy; the mount goes away once nothing uses it");
  umount->callback([&context, dir, lazy] {
    context.action = [&context, dir, lazy] { return Report(context, "umount", Umount(context, *dir, *lazy)); };
  });
}

}  // namespace cairn::clusterctl
