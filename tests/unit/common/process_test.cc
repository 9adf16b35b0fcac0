#include "cairn/common/process.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace cairn {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string SelfPath() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  return n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string();
}

// Sets an environment variable for the scope of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(FindProgramTest, TheVariableWinsWhenItNamesAnExecutable) {
  ScopedEnv env("CAIRN_TEST_PROGRAM", "/bin/sh");
  auto found = FindProgram("no-such-program", "CAIRN_TEST_PROGRAM");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, "/bin/sh");
}

TEST(FindProgramTest, AVariableNamingNothingRunnableIsAnErrorNotAFallback) {
  ScopedEnv env("CAIRN_TEST_PROGRAM", "/nonexistent/prog");
  std::string self = SelfPath();
  auto found = FindProgram(self.substr(self.rfind('/') + 1), "CAIRN_TEST_PROGRAM");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(found.status().message(), "CAIRN_TEST_PROGRAM=/nonexistent/prog cannot be run: No such file or directory");
}

TEST(FindProgramTest, FindsAProgramNextToTheRunningExecutable) {
  unsetenv("CAIRN_TEST_PROGRAM");
  std::string self = SelfPath();
  ASSERT_FALSE(self.empty());
  auto found = FindProgram(self.substr(self.rfind('/') + 1), "CAIRN_TEST_PROGRAM");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, self);
}

TEST(FindProgramTest, TheErrorSaysWhereItLookedAndWhatToSet) {
  unsetenv("CAIRN_TEST_PROGRAM");
  std::string self = SelfPath();
  std::string dir = self.substr(0, self.rfind('/'));
  auto found = FindProgram("no-such-program", "CAIRN_TEST_PROGRAM");
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(found.status().message(), "no-such-program is missing: not found next to " + self.substr(self.rfind('/') + 1) +
                                          " (" + dir + "); build it (target no-such-program) or set CAIRN_TEST_PROGRAM to its path");
}

TEST(FindProgramTest, PathIsSearchedOnlyWhenAsked) {
  unsetenv("CAIRN_TEST_PROGRAM");
  auto without = FindProgram("sh", "CAIRN_TEST_PROGRAM");
  EXPECT_FALSE(without.ok());
  auto with = FindProgram(ProgramSearch{.name = "sh", .env_var = "CAIRN_TEST_PROGRAM", .search_path = true});
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_EQ(access(with->c_str(), X_OK), 0) << *with;
  EXPECT_EQ(with->substr(with->size() - 3), "/sh");
  auto missing = FindProgram(ProgramSearch{.name = "no-such-program", .env_var = "X", .search_path = true});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), " or on $PATH; ")) << missing.status().message();
}

TEST(RunProgramTest, CapturesStdoutAndStderrAndTheExitCode) {
  auto result = RunProgram({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, RunOptions{.timeout = 20s});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->output, "out\nerr\n");
}

TEST(RunProgramTest, StdinIsEmptyWhenCapturing) {
  auto result = RunProgram({"/bin/sh", "-c", "cat; echo done"}, RunOptions{.timeout = 20s});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->output, "done\n");
}

TEST(RunProgramTest, DeathBySignalIs128PlusTheSignal) {
  auto result = RunProgram({"/bin/sh", "-c", "kill -TERM $$"}, RunOptions{.timeout = 20s});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 128 + SIGTERM);
}

TEST(RunProgramTest, AChildPastItsDeadlineIsKilledAndTheErrorQuotesIt) {
  auto started = std::chrono::steady_clock::now();
  auto result = RunProgram({"/bin/sh", "-c", "echo waiting; exec sleep 30"}, RunOptions{.timeout = 300ms});
  ASSERT_FALSE(result.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(result.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(result.status().message(), "/bin/sh did not finish within 300 ms; it said: waiting");
}

// cairn-mount and unionmount return once their daemon serves; the daemon keeps the output pipe.
TEST(RunProgramTest, ADaemonLeftBehindDoesNotDelayTheReturn) {
  auto started = std::chrono::steady_clock::now();
  auto result = RunProgram({"/bin/sh", "-c", "sleep 30 & echo $!"}, RunOptions{.timeout = 20s});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_EQ(result->exit_code, 0);
  pid_t daemon = std::atoi(result->output.c_str());
  ASSERT_GT(daemon, 0) << result->output;
  kill(daemon, SIGKILL);
}

TEST(RunProgramTest, AProgramThatCannotStartIsUnavailable) {
  auto result = RunProgram({"/nonexistent/prog", "x"}, RunOptions{.timeout = 20s});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message(), "starting /nonexistent/prog: No such file or directory");
  auto empty = RunProgram({}, RunOptions{});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(RunProgramTest, ABareNameIsLookedUpOnPathOnlyWhenAsked) {
  auto without = RunProgram({"sh", "-c", "exit 0"}, RunOptions{.timeout = 20s});
  EXPECT_EQ(without.status().code(), StatusCode::kUnavailable);
  auto with = RunProgram({"sh", "-c", "exit 4"}, RunOptions{.timeout = 20s, .search_path = true});
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_EQ(with->exit_code, 4);
}

TEST(RunProgramTest, WithoutCaptureTheOutputIsOurs) {
  auto result = RunProgram({"/bin/sh", "-c", "exit 5"}, RunOptions{.timeout = 20s, .capture_output = false});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->exit_code, 5);
  EXPECT_EQ(result->output, "");
  auto late = RunProgram({"/bin/sleep", "30"}, RunOptions{.timeout = 100ms, .capture_output = false});
  EXPECT_EQ(late.status().message(), "/bin/sleep did not finish within 100 ms");
}

// The daemons started this way (unionmount, cairn-mount) outlive clusterd: an inherited listening
// socket would keep clusterd's ports bound, and a restarted clusterd could not listen again.
TEST(RunProgramTest, TheChildInheritsNoDescriptorBeyondTheStandardThree) {
  int inheritable = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, like an Asio socket
  ASSERT_GE(inheritable, 3);
  // Exits 0 only when the descriptor is closed in the child.
  std::string probe = "test ! -e /proc/self/fd/" + std::to_string(inheritable);
  for (bool capture : {true, false}) {
    auto result = RunProgram({"/bin/sh", "-c", probe}, RunOptions{.timeout = 20s, .capture_output = capture});
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->exit_code, 0) << "fd " << inheritable << " was inherited (capture_output " << capture << ")";
  }
  ::close(inheritable);
}

TEST(DurationTextTest, SecondsWhenWholeElseMilliseconds) {
  EXPECT_EQ(DurationText(10s), "10 s");
  EXPECT_EQ(DurationText(250ms), "250 ms");
  EXPECT_EQ(DurationText(1500ms), "1.5 s");
  EXPECT_EQ(DurationText(2005ms), "2.005 s");
  EXPECT_EQ(DurationText(0s), "0 ms");
}

}  // namespace
}  // namespace cairn
