#include "subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

extern char** environ;

namespace cairn::test_support {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// What the child needs, prepared before fork: after fork it may only call async-signal-safe
// functions.
struct ForkRequest {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int out_fd = -1;  // becomes the child's stdout
  int err_fd = -1;  // becomes the child's stderr
};

// Forks and execs. The child asks for SIGKILL when its parent dies, so a test binary that
// crashes or is killed takes its clusterd & co with it. getppid() against the pid recorded before
// fork closes the race where the parent dies before prctl runs.
pid_t ForkAndExec(const ForkRequest& request) {
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(127);
    ::dup2(request.out_fd, STDOUT_FILENO);
    ::dup2(request.err_fd, STDERR_FILENO);
    ::execve(request.path, request.argv, request.envp);
    ::_exit(127);
  }
  return pid;
}

// PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process. A Subprocess made
// on a short-lived thread (coord_lincheck restarts a leader from a driver thread) would die with
// that thread. So every fork runs on this one thread, which lives until the process exits (never
// joined or destroyed; its state is on the heap so exit-time destructors do not pull it away).
class Spawner {
 public:
  // The spawner of this process. A forked child (a test forking a test process) gets its own,
  // since the parent's thread does not exist in the child.
  static Spawner& OfThisProcess() {
    static std::mutex mu;
    static Spawner* spawner = nullptr;
    std::lock_guard lock(mu);
    if (spawner == nullptr || spawner->owner_ != ::getpid()) spawner = new Spawner();  // never freed: see above
    return *spawner;
  }

  // Forks on the spawner thread; returns the child's pid (-1 when fork failed).
  pid_t Fork(const ForkRequest& request) {
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return request_ == nullptr; });  // one request at a time
    request_ = &request;
    result_ready_ = false;
    posted_.notify_all();
    done_.wait(lock, [&] { return result_ready_; });
    pid_t pid = result_;
    request_ = nullptr;
    done_.notify_all();
    return pid;
  }

 private:
  Spawner() : owner_(::getpid()) { std::thread([this] { Run(); }).detach(); }

  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      posted_.wait(lock, [&] { return request_ != nullptr && !result_ready_; });
      result_ = ForkAndExec(*request_);
      result_ready_ = true;
      done_.notify_all();
    }
  }

  const pid_t owner_;
  std::mutex mu_;
  std::condition_variable posted_;
  std::condition_variable done_;
  const ForkRequest* request_ = nullptr;  // GUARDED_BY mu_
  bool result_ready_ = false;             // GUARDED_BY mu_
  pid_t result_ = -1;                     // GUARDED_BY mu_
};

}  // namespace

Subprocess::Subprocess(const std::string& path, const std::vector<std::string>& args,
                       const std::vector<std::string>& extra_env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return;
  }
  // Build argv and envp before fork: the child may only call async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(path.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  ForkRequest request{.path = path.c_str(), .argv = argv.data(), .envp = envp.data(), .out_fd = out_pipe[1],
                      .err_fd = err_pipe[1]};
  pid_ = Spawner::OfThisProcess().Fork(request);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  if (pid_ < 0) {
    CloseFd(out_fd_);
    CloseFd(err_fd_);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  CloseFd(out_fd_);
  CloseFd(err_fd_);
}

bool Subprocess::ReadSome(std::chrono::steady_clock::time_point deadline) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (out_fd_ < 0 && err_fd_ < 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  int ready = ::poll(fds, 2, static_cast<int>(left.count()));
  if (ready < 0 && errno == EINTR) return true;
  if (ready <= 0) return false;
  int* fd_of[2] = {&out_fd_, &err_fd_};
  std::string* text_of[2] = {&out_, &err_};
  for (int i = 0; i < 2; ++i) {
    if (fds[i].revents == 0 || *fd_of[i] < 0) continue;
    char buffer[4096];
    ssize_t n = ::read(*fd_of[i], buffer, sizeof buffer);
    if (n > 0) {
      text_of[i]->append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      CloseFd(*fd_of[i]);
    }
  }
  return true;
}

bool Subprocess::WaitForOutput(const std::string& text, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (out_.find(text) != std::string::npos || err_.find(text) != std::string::npos) return true;
    if (!ReadSome(deadline)) return false;
  }
}

void Subprocess::Signal(int signal_number) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, signal_number);
}

int Subprocess::WaitForExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ReadSome(deadline)) {
  }
  if (out_fd_ >= 0 || err_fd_ >= 0) return -1;  // deadline passed with the streams still open
  // Both streams closed: the child has exited or is about to; waitpid returns promptly.
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) return -1;
  reaped_ = true;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

RunResult RunProcess(const std::string& path, const std::vector<std::string>& args,
              const std::vector<std::string>& extra_env) {
  Subprocess process(path, args, extra_env);
  RunResult result;
  result.exit_code = process.WaitForExit(std::chrono::seconds(20));
  result.out = process.out();
  result.err = process.err();
  return result;
}

namespace {

// True when nothing holds port on 127.0.0.1 right now.
bool CanBind(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

}  // namespace

// Below Linux's ephemeral range (32768-60999 by default): outgoing connections and other tests'
// port-0 listeners take their ports from that range, so a port handed out here stays free until
// the caller binds it (a port from bind(0) was once taken by another test's connection meanwhile).
uint16_t FreePort() {
  static std::mt19937 random(static_cast<uint32_t>(::getpid()) * 2654435761u ^
                             static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> in_range(20000, 32767);
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = static_cast<uint16_t>(in_range(random));
    if (CanBind(port)) return port;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);  // a crowded range: fall back to the kernel's choice
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace cairn::test_support
