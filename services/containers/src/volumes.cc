#include "cairn/containers/volumes.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cairn/common/process.h"
#include "cairn/proto/volume.pb.h"

extern char** environ;

namespace cairn::containers {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

// mountinfo escapes space, tab, newline and backslash as \ooo; volume roots have none of those
// after validation, so a plain comparison of the mount point field is enough.
std::string FuseTypeAt(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string found;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mountpoint;
    fields >> id >> parent >> device >> root >> mountpoint;
    if (mountpoint != dir) continue;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    found = type;  // the last one is the topmost
  }
  return found;
}

// Runs args with stdout+stderr captured, waiting up to timeout: {exit code, output}. The daemon
// cairn-mount leaves behind keeps the pipe; RunProgram waits for the first process's exit only.
Result<std::pair<int, std::string>> RunCaptured(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(RunResult result, RunProgram(args, RunOptions{.timeout = timeout}));
  return std::make_pair(result.exit_code, std::move(result.output));
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

std::string DefaultVolumeRoot() {
  const char* env = std::getenv("CAIRN_VOLUME_ROOT");
  return env != nullptr && *env != '\0' ? env : "/run/cairn/volumes";
}

std::string DefaultImageVolume() {
  const char* env = std::getenv("CAIRN_IMAGE_VOLUME");
  return env != nullptr ? env : "";
}

Result<std::string> FindCairnMount() { return FindProgram("cairn-mount", "CAIRN_MOUNT"); }

Result<VolumeUse> ParseVolumeUse(const std::string& text) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ':');) parts.push_back(part);
  if (parts.size() < 2 || parts.size() > 3) return InvalidArgumentError("--volume " + text + ": expected VOL:/path[:ro|:rw]");
  VolumeUse use;
  use.volume = parts[0];
  CAIRN_RETURN_IF_ERROR(ValidateName("volume", use.volume));
  use.path = parts[1];
  bool path_ok = !use.path.empty() && use.path[0] == '/' && use.path != "/" &&
                 use.path.find("/../") == std::string::npos && use.path.find_first_of(" \t\n") == std::string::npos &&
                 (use.path.size() < 3 || use.path.substr(use.path.size() - 3) != "/..");
  if (!path_ok) return InvalidArgumentError("--volume " + text + ": container path must be absolute, not /, without '..' or spaces");
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") return InvalidArgumentError("--volume " + text + ": mode must be ro or rw");
    use.read_only = parts[2] == "ro";
  }
  return use;
}

std::string VolumeUseText(const VolumeUse& use) { return use.volume + ":" + use.path + (use.read_only ? ":ro" : ""); }

Status CheckVolumeStarted(Registry& registry, const std::string& volume) {
  const std::string key = "/cairn/volumes/" + volume + "/spec";
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, registry.Get(key));
  if (!value) return NotFoundError("volume " + volume + " does not exist (clusterctl volume list)");
  proto::volume::VolumeSpec spec;
  if (!spec.ParseFromString(*value)) return CorruptionError("record " + key + " does not parse");
  if (spec.state() != proto::volume::VOLUME_STARTED) {
    return FailedPreconditionError("volume " + volume + " is not started (clusterctl volume start " + volume + ")");
  }
  return Status::Ok();
}

Result<std::string> EnsureVolumeMounted(const VolumeMounting& mounting, const std::string& volume,
                                        std::chrono::seconds timeout) {
  CAIRN_RETURN_IF_ERROR(ValidateName("volume", volume));
  const std::string dir = mounting.volume_root + "/" + volume;
  struct stat st;
  bool dead = stat(dir.c_str(), &st) != 0 && errno == ENOTCONN;
  if (dead) {
    umount2(dir.c_str(), MNT_DETACH);
  } else if (FuseTypeAt(dir).rfind("fuse", 0) == 0) {
    return dir;  // this host's mount of the volume, shared by its containers
  }
  if (mounting.endpoints.empty()) return InvalidArgumentError("no store endpoints to give cairn-mount");
  std::string program = mounting.cairn_mount;
  if (program.empty()) {
    CAIRN_ASSIGN_OR_RETURN(program, FindCairnMount());
  }
  if (mkdir(mounting.volume_root.c_str(), 0755) != 0 && errno != EEXIST) {
    CAIRN_ASSIGN_OR_RETURN(auto made, RunCaptured({"/bin/mkdir", "-p", mounting.volume_root}, std::chrono::seconds(10)));
    if (made.first != 0) return IoError("creating " + mounting.volume_root + ": " + made.second);
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return IoError("mkdir " + dir + ": " + ErrnoText(errno));
  std::string endpoints;
  for (const std::string& endpoint : mounting.endpoints) endpoints += (endpoints.empty() ? "" : ",") + endpoint;
  CAIRN_ASSIGN_OR_RETURN(auto result, RunCaptured({program, volume, dir, "--endpoints", endpoints}, timeout));
  if (result.first != 0) {
    return UnavailableError("mounting volume " + volume + " at " + dir + " failed: " +
                            (Trimmed(result.second).empty() ? program + " exited with " + std::to_string(result.first)
                                                             : Trimmed(result.second)));
  }
  if (FuseTypeAt(dir).rfind("fuse", 0) != 0) return UnavailableError(program + " reported success, but " + dir + " is not mounted");
  return dir;
}

}  // namespace cairn::containers
