#include "cairn/mounts/mount_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "cairn/common/strings.h"

extern char** environ;

namespace cairn::mounts {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3') {
      out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += text[i];
  }
  return out;
}

std::string Hex(std::string_view text) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace

std::optional<std::string> MountTypeAt(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<std::string> found;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = Split(line, ' ');
    if (fields.size() < 10) continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size()) continue;
    if (Unescape(fields[4]) == path) found = fields[dash + 1];
  }
  return found;
}

bool IsFuseType(const std::string& fstype) { return fstype == "fuse" || fstype.starts_with("fuse."); }

Status ProbeMount(const std::string& path) {
  struct statfs info;
  if (::statfs(path.c_str(), &info) != 0) return UnavailableError("statfs " + path + ": " + ErrnoText(errno));
  return Status::Ok();
}

Status RunWithTimeout(std::function<Status()> fn, std::chrono::milliseconds timeout) {
  auto task = std::make_shared<std::packaged_task<Status()>>(std::move(fn));
  std::future<Status> result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  if (result.wait_for(timeout) != std::future_status::ready) {
    return DeadlineExceededError("no answer within " + std::to_string(timeout.count()) + " ms");
  }
  return result.get();
}

Status DetachMount(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) == 0) return Status::Ok();
  int error = errno;
  if (error == EINVAL || error == ENOENT) return Status::Ok();  // not mounted (any more)
  if (error != EPERM) return UnavailableError("umount " + path + ": " + ErrnoText(error));
  // Not root: the FUSE helper may detach the user's own mounts.
  auto pid = SpawnDetached({"fusermount3", "-u", "-z", path}, "/dev/null");
  if (!pid.ok()) return pid.status();
  int status = 0;
  ::waitpid(*pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return UnavailableError("fusermount3 -u -z " + path + " failed");
  return Status::Ok();
}

Result<pid_t> SpawnDetached(const std::vector<std::string>& args, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Nothing of clusterd's (sockets, the data dir lock) may live on in the mount process.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) return UnavailableError("starting " + args[0] + ": " + ErrnoText(rc));
  return pid;
}

bool ProcessAlive(pid_t pid, std::string* exit_text) {
  if (pid <= 0) return false;
  int status = 0;
  pid_t reaped = ::waitpid(pid, &status, WNOHANG);
  if (reaped == pid) {
    if (exit_text != nullptr) {
      *exit_text = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                     : "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return false;
  }
  // Not our child (adopted after a restart), or still running.
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    if (exit_text != nullptr) *exit_text = "process " + std::to_string(pid) + " is gone";
    return false;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(stat, text);
  size_t close = text.rfind(')');
  if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z') {
    if (exit_text != nullptr) *exit_text = "process " + std::to_string(pid) + " exited";
    return false;
  }
  return true;
}

std::string CommandLineOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (char& c : text) {
    if (c == '\0') c = ' ';
  }
  return text;
}

std::string StateFileName(const std::string& path) { return Hex(path) + ".mount"; }

// Five lines: pid, volume, options, path, restarts. Written to a temporary file and renamed.
Status SaveState(const std::string& state_dir, const MountState& state) {
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  std::string file = state_dir + "/" + StateFileName(state.path);
  {
    std::ofstream out(file + ".new", std::ios::trunc);
    out << state.pid << "\n" << state.volume << "\n" << state.options << "\n" << state.path << "\n" << state.restarts << "\n";
    if (!out) return IoError("writing " + file + ".new");
  }
  std::filesystem::rename(file + ".new", file, error);
  if (error) return IoError("renaming " + file + ": " + error.message());
  return Status::Ok();
}

std::optional<MountState> LoadState(const std::string& file) {
  std::ifstream in(file);
  MountState state;
  std::string pid;
  if (!std::getline(in, pid) || !std::getline(in, state.volume) || !std::getline(in, state.options) ||
      !std::getline(in, state.path)) {
    return std::nullopt;
  }
  try {
    state.pid = static_cast<pid_t>(std::stol(pid));
    std::string restarts;
    if (std::getline(in, restarts)) state.restarts = static_cast<uint32_t>(std::stoul(restarts));
  } catch (...) {
    return std::nullopt;
  }
  return state;
}

std::vector<MountState> LoadAllStates(const std::string& state_dir) {
  std::vector<MountState> states;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir, error)) {
    if (entry.path().extension() != ".mount") continue;
    if (auto state = LoadState(entry.path())) states.push_back(*state);
  }
  return states;
}

void RemoveState(const std::string& state_dir, const std::string& path) {
  std::error_code error;
  std::filesystem::remove(state_dir + "/" + StateFileName(path), error);
}

}  // namespace cairn::mounts
