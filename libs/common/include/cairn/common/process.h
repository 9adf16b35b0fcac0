// Finding and running helper programs (unionmount, cairn-mount, fusermount3, mkdir) from the CLI
// and the services: one place for the search order, the error texts that tell an operator what to
// set, and running a child with a deadline.
//
// Threading: plain functions, safe from any thread. RunProgram blocks the calling thread until the
// child exits or the deadline passes; it reaps only the child it started (waitpid on its pid).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn {

// Where FindProgram looks for a program called `name`.
struct ProgramSearch {
  std::string name;          // the file name, e.g. "unionmount"
  std::string env_var;       // e.g. "CAIRN_UNIONMOUNT": when set and non-empty, that path and nothing else
  bool search_path = false;  // after the running program's directory, also each directory of $PATH
};

// The program's path: $env_var when set (it must be executable), else `name` in the directory of
// the running executable (or ../bin next to it, for tools run from a build tree's other folders),
// else (search_path) the first executable `name` on $PATH.
// Errors (both NotFound; the texts name what to do):
//   "<ENV>=<value> cannot be run: <reason>"
//   "<name> is missing: not found next to <self> (<dir>)[ or on $PATH]; build it (target <name>)
//    or set <ENV> to its path"
Result<std::string> FindProgram(const ProgramSearch& search);
Result<std::string> FindProgram(const std::string& name, const std::string& env_var);

struct RunOptions {
  std::chrono::nanoseconds timeout = std::chrono::seconds(30);
  // true: stdin from /dev/null, stdout and stderr captured together into RunResult::output.
  // false: the child shares our stdin, stdout and stderr.
  bool capture_output = true;
  // true: an args[0] without a '/' is looked up on $PATH (posix_spawnp).
  bool search_path = false;
};

struct RunResult {
  int exit_code = -1;  // the exit status, or 128+N after death by signal N
  std::string output;  // stdout and stderr interleaved (capture_output only)
};

// Runs args (args[0] is the program) with our environment and waits for it to exit, at most
// options.timeout; then it is killed (SIGKILL) and reaped. Only the child's own exit is awaited:
// a daemon it leaves behind holding the output pipe open does not delay the return (its output
// after that point is not read). The child inherits stdin/stdout/stderr only: every other
// descriptor of ours is closed in it, close-on-exec or not.
// Errors: InvalidArgument (empty args), Unavailable (cannot start: "starting <prog>: <reason>"),
// DeadlineExceeded ("<prog> did not finish within <timeout>[; it said: <output>]"), IoError (pipe).
// A non-zero exit is not an error: it is in RunResult::exit_code.
Result<RunResult> RunProgram(const std::vector<std::string>& args, const RunOptions& options);

// "10 s", "1.5 s", "250 ms": a timeout as error messages print it.
std::string DurationText(std::chrono::nanoseconds duration);

}  // namespace cairn
