#include "cairn/common/process.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "cairn/common/strings.h"

extern char** environ;

namespace cairn {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string ErrnoText(int error) { return std::strerror(error); }

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// The running executable's path, from /proc/self/exe; empty when it cannot be read.
std::string SelfPath() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  return n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string();
}

std::optional<std::string> FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  for (const std::string& dir : Split(path, ':')) {
    if (dir.empty()) continue;  // "" means the current directory; never run what happens to be there
    std::string candidate = dir + "/" + name;
    if (IsExecutable(candidate)) return candidate;
  }
  return std::nullopt;
}

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// The read end of a pipe that collects a child's output; closes itself.
class OutputPipe {
 public:
  OutputPipe() = default;
  ~OutputPipe() {
    CloseRead();
    CloseWrite();
  }
  OutputPipe(const OutputPipe&) = delete;
  OutputPipe& operator=(const OutputPipe&) = delete;

  Status Open() {
    if (pipe2(fds_, O_CLOEXEC) != 0) return IoError("pipe: " + ErrnoText(errno));
    return Status::Ok();
  }
  int read_fd() const { return fds_[0]; }
  int write_fd() const { return fds_[1]; }
  void CloseWrite() {
    if (fds_[1] >= 0) close(fds_[1]);
    fds_[1] = -1;
  }
  void CloseRead() {
    if (fds_[0] >= 0) close(fds_[0]);
    fds_[0] = -1;
  }
  // Appends what can be read without blocking (the read end is non-blocking); at end of file
  // the read end is closed, so a child that closed its output is not polled in a busy loop.
  void Drain(std::string& output) {
    if (fds_[0] < 0) return;
    char buffer[4096];
    ssize_t n;
    while ((n = read(fds_[0], buffer, sizeof buffer)) > 0) output.append(buffer, static_cast<size_t>(n));
    if (n == 0) CloseRead();
  }

 private:
  int fds_[2] = {-1, -1};
};

Result<pid_t> Spawn(const std::vector<std::string>& args, const RunOptions& options, OutputPipe& pipe) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.capture_output) {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, pipe.write_fd(), 1);
    posix_spawn_file_actions_adddup2(&actions, pipe.write_fd(), 2);
  }
  // Nothing else of the caller's may live on in the child: Asio opens sockets without
  // close-on-exec, and a daemon (unionmount, cairn-mount) holding clusterd's listening sockets
  // would keep its ports bound after clusterd exits, so clusterd could not start again.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = options.search_path ? posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ)
                               : posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  pipe.CloseWrite();  // the child holds its copy; EOF then means every holder has closed it
  if (rc != 0) return UnavailableError("starting " + args[0] + ": " + ErrnoText(rc));
  return pid;
}

}  // namespace

std::string DurationText(std::chrono::nanoseconds duration) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  std::string text = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    std::string fraction = std::to_string(1000 + ms % 1000).substr(1);
    while (fraction.back() == '0') fraction.pop_back();
    text += "." + fraction;
  }
  return text + " s";
}

Result<std::string> FindProgram(const ProgramSearch& search) {
  if (const char* env = std::getenv(search.env_var.c_str()); env != nullptr && *env != '\0') {
    if (!IsExecutable(env)) {
      int error = errno;
      return NotFoundError(search.env_var + "=" + env + " cannot be run: " + ErrnoText(error));
    }
    return std::string(env);
  }
  const std::string self = SelfPath();
  const std::string dir = self.substr(0, self.rfind('/') == std::string::npos ? 0 : self.rfind('/'));
  if (!self.empty()) {
    for (const std::string& candidate : {dir + "/" + search.name, dir + "/../bin/" + search.name}) {
      if (IsExecutable(candidate)) return candidate;
    }
  }
  if (search.search_path) {
    if (auto found = FindOnPath(search.name)) return *found;
  }
  const std::string self_name = self.empty() ? "this program" : self.substr(self.rfind('/') + 1);
  return NotFoundError(search.name + " is missing: not found next to " + self_name + " (" + dir + ")" +
                       (search.search_path ? " or on $PATH" : "") + "; build it (target " + search.name +
                       ") or set " + search.env_var + " to its path");
}

Result<std::string> FindProgram(const std::string& name, const std::string& env_var) {
  return FindProgram(ProgramSearch{.name = name, .env_var = env_var});
}

Result<RunResult> RunProgram(const std::vector<std::string>& args, const RunOptions& options) {
  if (args.empty() || args[0].empty()) return InvalidArgumentError("no program to run");
  OutputPipe pipe;
  if (options.capture_output) CAIRN_RETURN_IF_ERROR(pipe.Open());
  CAIRN_ASSIGN_OR_RETURN(pid_t pid, Spawn(args, options, pipe));
  if (options.capture_output) fcntl(pipe.read_fd(), F_SETFL, O_NONBLOCK);
  RunResult result;
  const auto deadline = SteadyClock::now() + options.timeout;
  for (;;) {
    pipe.Drain(result.output);
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      pipe.Drain(result.output);
      result.exit_code = ExitCode(status);
      return result;
    }
    if (done < 0 && errno != EINTR) return UnavailableError("waiting for " + args[0] + ": " + ErrnoText(errno));
    if (SteadyClock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      std::string said(Trim(result.output));
      return DeadlineExceededError(args[0] + " did not finish within " + DurationText(options.timeout) +
                                   (said.empty() ? "" : "; it said: " + said));
    }
    // Wakes for output, else re-checks the child every 20 ms (5 ms without a pipe to wait on;
    // poll ignores a negative fd).
    pollfd wait_for_output{pipe.read_fd(), POLLIN, 0};
    poll(&wait_for_output, 1, pipe.read_fd() >= 0 ? 20 : 5);
  }
}

}  // namespace cairn
