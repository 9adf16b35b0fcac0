// A child process with its stdout and stderr captured, for tests that run the real binaries.
// Every wait takes a deadline; nothing sleeps. The destructor kills (SIGKILL) and reaps a child
// that is still running, so a failing test leaves no process behind.
//
// A test binary that crashes or is killed runs no destructor: so each child also asks the kernel
// for SIGKILL when its parent dies (PR_SET_PDEATHSIG). The kernel sends that signal when the
// *thread* that forked exits, not the process; so every fork runs on one helper thread that lives
// until the process exits, and a Subprocess may be created from any thread, short-lived ones
// included (coord_lincheck restarts a leader from a driver thread). Not covered: processes a child
// leaves behind on purpose (a daemonised FUSE mount), which the test must unmount or kill itself.
//
// Threading: a Subprocess object is used by one thread at a time; constructing them from several
// threads at once is safe (forks are serialised).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace cairn::test_support {

class Subprocess {
 public:
  // Starts path with args (argv[0] is path). extra_env entries are "NAME=value" added to ours.
  Subprocess(const std::string& path, const std::vector<std::string>& args,
             const std::vector<std::string>& extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Reads output until text appears in stdout or stderr, or the deadline passes, or both close.
  // True when the text appeared.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds timeout);

  // Sends a signal (no-op once reaped).
  void Signal(int signal_number);

  // Reads until both streams close, then reaps. Returns the exit code, 128+N for death by signal
  // N, or -1 when the deadline passed (the child is then still running; the destructor kills it).
  int WaitForExit(std::chrono::milliseconds timeout);

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

 private:
  // One poll round; false when both streams are closed or the deadline passed.
  bool ReadSome(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  std::string out_;
  std::string err_;
};

// Runs to completion (deadline 20 s); returns the exit code and fills out/err.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunProcess(const std::string& path, const std::vector<std::string>& args,
              const std::vector<std::string>& extra_env = {});

// A 127.0.0.1 port nobody holds right now, chosen at random below the kernel's ephemeral range so
// that outgoing connections and port-0 listeners cannot take it before the caller binds it.
uint16_t FreePort();

// Polls condition every 20 ms until it holds or limit passes; returns its last value.
template <typename Fn>
bool WaitFor(Fn&& condition, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace cairn::test_support
