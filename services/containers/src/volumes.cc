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

// Runs args with stdout+stderr captured, waiting up to timeout. The daemon cairn-mount leaves
// behind closes its copies of the pipe, so waiting for the first process's exit is enough.
Result<std::pair<int, std::string>> RunCaptured(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return IoError("pipe: " + ErrnoText(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return UnavailableError("starting " + args[0] + ": " + ErrnoText(rc));
  }
  fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
  std::string output;
  auto drain = [&] {
    char buffer[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0) output.append(buffer, static_cast<size_t>(n));
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    drain();
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      drain();
      close(pipe_fds[0]);
      return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      close(pipe_fds[0]);
      return DeadlineExceededError(args[0] + " did not finish within " + std::to_string(timeout.count()) + " s: " + output);
    }
    pollfd wait_for_output{pipe_fds[0], POLLIN, 0};
    poll(&wait_for_output, 1, 20);  // wakes for output, else re-checks the child every 20 ms
  }
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

Result<std::string> FindCairnMount() {
  if (const char* env = std::getenv("CAIRN_MOUNT"); env != nullptr && *env != '\0') {
    if (access(env, X_OK) != 0) return NotFoundError("CAIRN_MOUNT=" + std::string(env) + ": " + ErrnoText(errno));
    return std::string(env);
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& candidate : {dir + "/cairn-mount", dir + "/../bin/cairn-mount"}) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return NotFoundError("cairn-mount not found next to this program; build it (target cairn-mount) or set CAIRN_MOUNT");
}

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
