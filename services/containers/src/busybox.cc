#include "cairn/containers/busybox.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cairn/containers/tree.h"

extern char** environ;

namespace cairn::containers {
namespace {

namespace fs = std::filesystem;

// Runs `busybox --list-full` and returns its lines ("bin/ls", "usr/bin/[", ...).
Result<std::vector<std::string>> AppletPaths(const std::string& busybox) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return IoError(std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::string list = "--list-full";
  char* argv[] = {const_cast<char*>(busybox.c_str()), list.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, busybox.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    return IoError("running " + busybox + ": " + std::strerror(rc));
  }
  std::string output;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return IoError(busybox + " --list-full failed");
  std::vector<std::string> paths;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.find("..") == std::string::npos && line[0] != '/') paths.push_back(line);
  }
  if (paths.empty()) return IoError(busybox + " --list-full listed no applets");
  return paths;
}

// A static binary has no PT_INTERP program header; checking for the interpreter path string is
// enough to tell Debian's busybox-static from the dynamic busybox.
Status CheckStatic(const std::string& busybox) {
  std::ifstream in(busybox, std::ios::binary);
  if (!in) return NotFoundError(busybox + " not found: install Debian's busybox-static");
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.compare(0, 4, "\x7f" "ELF") != 0) return FailedPreconditionError(busybox + " is not an ELF binary");
  if (head.find("ld-linux") != std::string::npos) {
    return FailedPreconditionError(busybox + " is dynamically linked; install busybox-static");
  }
  return Status::Ok();
}

Status WriteFile(const fs::path& path, const std::string& content, fs::perms mode) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
  out.close();
  if (!out) return IoError("writing " + path.string());
  std::error_code error;
  fs::permissions(path, mode, error);
  if (error) return IoError("chmod " + path.string() + ": " + error.message());
  return Status::Ok();
}

Status MakeDirectories(const fs::path& root) {
  for (const char* dir : {"bin", "sbin", "usr/bin", "usr/sbin", "etc/init.d", "dev", "proc", "sys", "run", "tmp",
                          "root", "home", "mnt", "var/log", "var/run", "lib"}) {
    std::error_code error;
    fs::create_directories(root / dir, error);
    if (error) return IoError("mkdir " + (root / dir).string() + ": " + error.message());
  }
  std::error_code error;
  fs::permissions(root / "tmp", fs::perms::all | fs::perms::sticky_bit, error);
  fs::permissions(root / "root", fs::perms::owner_all, error);
  return Status::Ok();
}

Status WriteEtc(const fs::path& root) {
  const fs::perms file = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
  const fs::perms script = file | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  CAIRN_RETURN_IF_ERROR(WriteFile(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", file));
  CAIRN_RETURN_IF_ERROR(WriteFile(root / "etc/group", "root:x:0:\n", file));
  CAIRN_RETURN_IF_ERROR(WriteFile(root / "etc/hostname", "busybox\n", file));
  CAIRN_RETURN_IF_ERROR(WriteFile(root / "etc/profile", "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n", file));
  // No respawn entry: init runs rcS and then waits, so the container stays up with nothing to
  // attach to; exec reaches it through attach. SIGUSR1 (lxc.signal.halt) halts it.
  CAIRN_RETURN_IF_ERROR(WriteFile(root / "etc/inittab",
                                  "::sysinit:/etc/init.d/rcS\n::shutdown:/bin/umount -a -r\n", file));
  return WriteFile(root / "etc/init.d/rcS",
                   "#!/bin/sh\n"
                   "# Cairn busybox image: no DHCP (udhcpc would drop a static address), no getty.\n"
                   "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n"
                   "[ -f /etc/hostname ] && hostname -F /etc/hostname\n"
                   "mkdir -p /tmp /run /var/log\n"
                   "echo cairn-busybox: up\n",
                   script);
}

}  // namespace

Status BuildBusyboxRootfs(const std::string& root_text, const std::string& busybox) {
  CAIRN_RETURN_IF_ERROR(CheckStatic(busybox));
  fs::path root(root_text);
  std::error_code error;
  if (fs::exists(root, error) && !fs::is_empty(root, error)) {
    return FailedPreconditionError(root_text + " is not empty");
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> applets, AppletPaths(busybox));
  CAIRN_RETURN_IF_ERROR(MakeDirectories(root));
  fs::copy_file(busybox, root / "bin/busybox", error);
  if (error) return IoError("copying " + busybox + ": " + error.message());
  fs::permissions(root / "bin/busybox", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                            fs::perms::others_read | fs::perms::others_exec, error);
  for (const std::string& applet : applets) {
    fs::path link = root / applet;
    if (fs::exists(fs::symlink_status(link))) continue;
    fs::create_directories(link.parent_path(), error);
    fs::create_symlink("/bin/busybox", link, error);
    if (error) return IoError("symlink " + link.string() + ": " + error.message());
  }
  return WriteEtc(root);
}

}  // namespace cairn::containers
