// Runs unionmount as a child process for a test and always takes it down again: the destructor
// detaches the mount and kills the process even when the test failed half-way.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cairn::unionfs::testing {

inline bool IsMounted(const std::string& mountpoint) {
  char real[PATH_MAX];
  if (realpath(mountpoint.c_str(), real) == nullptr) return false;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == real) return true;
  }
  return false;
}

// Output and exit code of a command run through the shell (stderr merged).
inline int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  output->clear();
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) output->append(buffer, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class UnionMount {
 public:
  UnionMount(std::string options, std::string mountpoint)
      : options_(std::move(options)), mountpoint_(std::move(mountpoint)) {}
  ~UnionMount() { Stop(); }
  UnionMount(const UnionMount&) = delete;
  UnionMount& operator=(const UnionMount&) = delete;

  // Starts `unionmount -f -o OPTIONS MOUNTPOINT` and waits (deadline 10 s) until the mount shows up
  // in /proc/self/mountinfo. False (with *error) when the process exits or the deadline passes.
  bool Start(std::string* error) {
    pid_ = fork();
    if (pid_ == 0) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, 1);
      execl(UNIONMOUNT_BIN, "unionmount", "-f", "-o", options_.c_str(), mountpoint_.c_str(), nullptr);
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (IsMounted(mountpoint_)) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *error = "unionmount exited before mounting";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition, not a delay
    }
    *error = "mount did not appear within 10 s";
    return false;
  }

  // Unmounts (lazily, so busy files cannot block cleanup) and reaps the process.
  void Stop() {
    if (IsMounted(mountpoint_)) umount2(mountpoint_.c_str(), MNT_DETACH);
    if (pid_ <= 0) return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

  // kill -9 without unmounting (the destructor still cleans up).
  void Kill() {
    if (pid_ > 0) kill(pid_, SIGKILL);
  }

 private:
  std::string options_;
  std::string mountpoint_;
  pid_t pid_ = -1;
};

}  // namespace cairn::unionfs::testing
