// The operating-system side of the mount agent: starting a cairn-mount process in its own session,
// telling whether a process and a mount are alive, unmounting, and the small per-mount state file
// that lets a restarted clusterd adopt the processes its predecessor started.
//
// Threading: plain functions, safe from any thread. ProbeMount may block as long as a hung FUSE
// server does, so the agent runs it with a timeout (RunWithTimeout).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::mounts {

// The fstype of the topmost mount exactly at path (from /proc/self/mountinfo), or nullopt.
std::optional<std::string> MountTypeAt(const std::string& path);
bool IsFuseType(const std::string& fstype);

// statfs(path): Ok when the mount answers; the errno text otherwise (ENOTCONN: its server died).
Status ProbeMount(const std::string& path);

// Runs fn on a separate thread and waits up to timeout. DeadlineExceeded when it did not finish
// (the thread is left to finish on its own; fn must only touch what it owns).
Status RunWithTimeout(std::function<Status()> fn, std::chrono::milliseconds timeout);

// Detaches the mount at path (umount2 MNT_DETACH; fusermount3 -u -z when not permitted).
Status DetachMount(const std::string& path);

// Starts program with args in a new session (so signals to clusterd's group do not reach it),
// stdin from /dev/null, stdout and stderr appended to log_path, no inherited descriptors.
// Returns the pid. Errors: Unavailable with the reason.
Result<pid_t> SpawnDetached(const std::vector<std::string>& args, const std::string& log_path);

// Whether pid runs (a zombie counts as dead). A child of this process is reaped when it ended;
// *exit_text then says how it ended ("exited with status 1", "killed by signal 9").
bool ProcessAlive(pid_t pid, std::string* exit_text);

// The process's command line (NUL-separated arguments joined with spaces), "" when it is gone.
std::string CommandLineOf(pid_t pid);

// What the agent remembers per mount across clusterd restarts.
struct MountState {
  pid_t pid = 0;
  std::string volume;
  std::string options;
  std::string path;
  uint32_t restarts = 0;  // kept across clusterd restarts, for the status record
};
std::string StateFileName(const std::string& path);  // hex of the path + ".mount"
Status SaveState(const std::string& state_dir, const MountState& state);
std::optional<MountState> LoadState(const std::string& file);
std::vector<MountState> LoadAllStates(const std::string& state_dir);
void RemoveState(const std::string& state_dir, const std::string& path);

}  // namespace cairn::mounts
