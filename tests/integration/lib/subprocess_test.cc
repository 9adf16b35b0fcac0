// The Subprocess helper's promise that test processes die with their test: a test binary that
// dies without running destructors takes its children with it (PR_SET_PDEATHSIG), also children
// started from a thread that has ended since.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "subprocess.h"

namespace cairn::test_support {
namespace {

using namespace std::chrono_literals;

// The process's state letter and start time from /proc/PID/stat; state '-' when it is gone.
struct ProcState {
  char state = '-';
  unsigned long long start_time = 0;
};

ProcState ReadProcState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ProcState result;
  size_t close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return result;
  std::istringstream fields(text.substr(close_paren + 2));
  fields >> result.state;
  std::string skipped;
  for (int field = 4; field < 22; ++field) fields >> skipped;  // fields 4..21
  fields >> result.start_time;                                  // field 22
  return result;
}

// Dead: gone, a zombie, or its pid now names another process.
bool IsDead(pid_t pid, unsigned long long start_time) {
  ProcState now = ReadProcState(pid);
  return now.state == '-' || now.state == 'Z' || now.state == 'X' || now.start_time != start_time;
}

bool ReadExactly(int fd, void* data, size_t size) {
  auto* bytes = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, bytes, size);
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Forks a "test process" that starts `sleep 60` through Subprocess (from a thread that has ended,
// when from_thread), reports the sleeper's pid and then dies at once with _exit: no destructor
// runs. Returns the sleeper's pid and start time once the test process has died.
void RunDyingTestProcess(bool from_thread, pid_t* sleeper, unsigned long long* start_time) {
  // This process forks through its own spawner thread first; the forked test process must not
  // count on that thread, which fork does not copy.
  Subprocess warm_up("/bin/true", {});
  ASSERT_EQ(warm_up.WaitForExit(20s), 0);
  int pid_pipe[2], go_pipe[2];
  ASSERT_EQ(::pipe(pid_pipe), 0);
  ASSERT_EQ(::pipe(go_pipe), 0);
  pid_t test_process = ::fork();
  ASSERT_GE(test_process, 0);
  if (test_process == 0) {
    ::close(pid_pipe[0]);
    ::close(go_pipe[1]);
    std::unique_ptr<Subprocess> child;
    auto start = [&] { child = std::make_unique<Subprocess>("/bin/sleep", std::vector<std::string>{"60"}); };
    if (from_thread) {
      std::thread(start).join();
    } else {
      start();
    }
    pid_t pid = child->started() ? child->pid() : -1;
    if (::write(pid_pipe[1], &pid, sizeof pid) != sizeof pid) ::_exit(2);
    char go;
    if (::read(go_pipe[0], &go, 1) < 0) ::_exit(3);  // returns 0 when the test closes its end
    ::_exit(0);  // a crash: no destructor kills the child
  }
  ::close(pid_pipe[1]);
  ::close(go_pipe[0]);
  pid_t pid = -1;
  bool got = ReadExactly(pid_pipe[0], &pid, sizeof pid);
  ::close(pid_pipe[0]);
  ProcState before = got && pid > 0 ? ReadProcState(pid) : ProcState{};
  ::close(go_pipe[1]);  // let the test process die
  int status = 0;
  ASSERT_EQ(::waitpid(test_process, &status, 0), test_process);
  ASSERT_TRUE(got);
  ASSERT_GT(pid, 0) << "the test process could not start its child";
  ASSERT_NE(before.state, '-') << "the child was gone before its parent died";
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  *sleeper = pid;
  *start_time = before.start_time;
}

void ExpectChildDiesWithTheTestProcess(bool from_thread) {
  pid_t sleeper = -1;
  unsigned long long start_time = 0;
  ASSERT_NO_FATAL_FAILURE(RunDyingTestProcess(from_thread, &sleeper, &start_time));
  bool dead = WaitFor([&] { return IsDead(sleeper, start_time); }, 20s);
  if (!dead) ::kill(sleeper, SIGKILL);
  EXPECT_TRUE(dead) << "sleep " << sleeper << " outlived the test process that started it";
}

TEST(SubprocessTest, ChildrenDieWhenTheTestProcessDies) { ExpectChildDiesWithTheTestProcess(false); }

TEST(SubprocessTest, ChildrenStartedFromAnEndedThreadDieWhenTheTestProcessDies) {
  ExpectChildDiesWithTheTestProcess(true);
}

// PR_SET_PDEATHSIG follows the thread that forked; Subprocess forks on a thread of its own, so a
// node restarted from a driver thread (coord_lincheck) keeps running after that thread ends.
TEST(SubprocessTest, AChildStartedFromAThreadOutlivesTheThread) {
  std::unique_ptr<Subprocess> child;
  std::thread([&] {
    child = std::make_unique<Subprocess>("/bin/sh", std::vector<std::string>{"-c", "echo ready; exec sleep 60"});
  }).join();
  ASSERT_TRUE(child->started());
  ASSERT_TRUE(child->WaitForOutput("ready", 20s));
  // Killed with the thread, it would be reaped here at once (exit code 137); alive, the wait runs out.
  EXPECT_EQ(child->WaitForExit(1s), -1) << "the child died with the thread that created it";
}

TEST(SubprocessTest, TheDestructorStillKillsAndReaps) {
  pid_t pid = -1;
  {
    Subprocess child("/bin/sleep", {"60"});
    ASSERT_TRUE(child.started());
    pid = child.pid();
  }
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

}  // namespace
}  // namespace cairn::test_support
