#include "cairn/containers/runtime.h"

#include <fcntl.h>
#include <limits.h>
#include <lxc/lxccontainer.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "cairn/common/process.h"
#include "cairn/containers/tree.h"

extern char** environ;

namespace cairn::containers {
namespace {

std::string ErrnoText(int error) { return std::strerror(error); }

struct ContainerDeleter {
  void operator()(lxc_container* container) const { lxc_container_put(container); }
};
using ContainerHandle = std::unique_ptr<lxc_container, ContainerDeleter>;

ContainerHandle OpenContainer(const std::string& name, const std::string& lxc_path) {
  return ContainerHandle(lxc_container_new(name.c_str(), lxc_path.c_str()));
}

// The last lines of a log file, for error messages.
std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string tail;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) tail += "\n  " + all[i];
  return tail;
}

// Runs argv and waits up to timeout. Returns its exit code (128+N for signal N). Output goes to
// ours; the child keeps none of our other descriptors (RunProgram), since a daemonizing unionmount
// outlives clusterd and must not hold its listening sockets.
Result<int> RunAndWait(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(RunResult result, RunProgram(args, RunOptions{.timeout = timeout, .capture_output = false}));
  return result.exit_code;
}

Result<std::string> ReadAll(int fd) {
  std::string text;
  if (lseek(fd, 0, SEEK_SET) < 0) return IoError("lseek: " + ErrnoText(errno));
  char buffer[8192];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("read: " + ErrnoText(errno));
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
  }
}

bool ValidInsidePath(const std::string& path) {
  if (path.empty() || path[0] != '/' || path == "/") return false;
  std::istringstream parts(path);
  for (std::string part; std::getline(parts, part, '/');) {
    if (part == "..") return false;
  }
  return path.find_first_of(" \t\n") == std::string::npos;
}

}  // namespace

std::string DefaultContainerRoot() {
  const char* env = std::getenv("CAIRN_CONTAINER_ROOT");
  return env != nullptr && *env != '\0' ? env : "/var/lib/cairn/containers";
}

Result<std::string> FindUnionmount() { return FindProgram("unionmount", "CAIRN_UNIONMOUNT"); }

Status ValidateInit(const std::string& init) {
  if (init.empty() || init[0] != '/' || init.find('\n') != std::string::npos) {
    return InvalidArgumentError("--init " + init + ": expected an absolute program path and its arguments, e.g. \"/bin/sleep infinity\"");
  }
  return Status::Ok();
}

Result<BindMount> ParseBind(const std::string& text) {
  BindMount bind;
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ':');) parts.push_back(part);
  if (parts.size() < 2 || parts.size() > 3) {
    return InvalidArgumentError("--bind " + text + ": expected HOSTDIR:/path[:ro|:rw]");
  }
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") return InvalidArgumentError("--bind " + text + ": mode must be ro or rw");
    bind.read_only = parts[2] == "ro";
  }
  char real[PATH_MAX];
  if (realpath(parts[0].c_str(), real) == nullptr) {
    return NotFoundError("--bind " + text + ": host directory " + parts[0] + ": " + ErrnoText(errno));
  }
  struct stat st;
  if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) return InvalidArgumentError("--bind " + text + ": " + parts[0] + " is not a directory");
  bind.host_dir = real;
  if (bind.host_dir.find_first_of(" \t\n") != std::string::npos) {
    return InvalidArgumentError("--bind " + text + ": host path must not contain white space");
  }
  if (!ValidInsidePath(parts[1])) {
    return InvalidArgumentError("--bind " + text + ": container path must be absolute, not /, without '..' or spaces");
  }
  bind.path = parts[1];
  return bind;
}

std::string BindText(const BindMount& bind) {
  return bind.host_dir + ":" + bind.path + (bind.read_only ? ":ro" : "");
}

Status ValidateNetwork(const std::string& network) {
  if (network == "empty") return Status::Ok();
  if (network.rfind("veth:", 0) != 0) return InvalidArgumentError("--network " + network + ": use empty or veth:BRIDGE[,ip=CIDR]");
  std::string rest = network.substr(5);
  std::string bridge = rest.substr(0, rest.find(','));
  bool bridge_ok = !bridge.empty() && bridge.size() < 16 && bridge.find_first_of(" \t\n/=:") == std::string::npos;
  if (!bridge_ok) return InvalidArgumentError("--network " + network + ": bad bridge name '" + bridge + "'");
  if (rest.size() == bridge.size()) return Status::Ok();
  std::string option = rest.substr(bridge.size() + 1);
  unsigned a, b, c, d, prefix;
  char tail;
  if (option.rfind("ip=", 0) != 0 ||
      std::sscanf(option.c_str() + 3, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &prefix, &tail) != 5 || a > 255 || b > 255 ||
      c > 255 || d > 255 || prefix > 32) {
    return InvalidArgumentError("--network " + network + ": the option after the bridge must be ip=A.B.C.D/PREFIX");
  }
  return Status::Ok();
}

std::string LxcConfigText(const ContainerSpec& spec, const std::string& dir) {
  std::ostringstream config;
  config << "# Written by Cairn (services/containers); the rootfs is a unionmount, see docs/containers.md.\n";
  if (access("/usr/share/lxc/config/common.conf", R_OK) == 0) {
    config << "lxc.include = /usr/share/lxc/config/common.conf\n";
  }
  config << "lxc.uts.name = " << spec.name << "\n"
         << "lxc.rootfs.path = dir:" << dir << "/rootfs\n";
  if (spec.network.rfind("veth:", 0) == 0) {
    std::string rest = spec.network.substr(5);
    size_t comma = rest.find(',');
    config << "lxc.net.0.type = veth\nlxc.net.0.link = " << rest.substr(0, comma) << "\nlxc.net.0.flags = up\n";
    if (comma != std::string::npos && rest.compare(comma + 1, 3, "ip=") == 0) {
      config << "lxc.net.0.ipv4.address = " << rest.substr(comma + 4) << "\n";
    }
  } else {
    config << "lxc.net.0.type = empty\n";
  }
  // Busybox init halts on SIGUSR1 and reboots on SIGTERM (LXC's defaults are for systemd).
  config << "lxc.signal.halt = SIGUSR1\n"
         << "lxc.signal.reboot = SIGTERM\n"
         << "lxc.init.cmd = " << spec.init << "\n"
         << "lxc.autodev = 1\n"
         << "lxc.tty.max = 1\n"
         << "lxc.pty.max = 16\n"
         << "lxc.console.logfile = " << dir << "/console.log\n"
         << "lxc.log.file = " << dir << "/lxc.log\n"
         << "lxc.log.level = WARN\n";
  for (size_t i = 0; i < spec.unions.size(); ++i) {
    config << "lxc.mount.entry = " << dir << "/unions/" << i << " " << spec.unions[i].path.substr(1)
           << " none bind,create=dir 0 0\n";
  }
  for (const BindMount& bind : spec.binds) {
    config << "lxc.mount.entry = " << bind.host_dir << " " << bind.path.substr(1) << " none bind,create=dir"
           << (bind.read_only ? ",ro" : "") << " 0 0\n";
  }
  return config.str();
}

LxcRuntime::LxcRuntime(std::string lxc_path, std::string unionmount)
    : lxc_path_(std::move(lxc_path)), unionmount_(std::move(unionmount)) {}

Status LxcRuntime::Prepare(const ContainerSpec& spec) {
  std::string dir = ContainerDir(spec.name);
  if (mkdir(lxc_path_.c_str(), 0755) != 0 && errno != EEXIST) {
    // Parents may be missing too (a fresh host).
    if (RunAndWait({"/bin/mkdir", "-p", lxc_path_}, std::chrono::seconds(10)).value_or(1) != 0) {
      return IoError("creating " + lxc_path_ + ": " + ErrnoText(errno));
    }
  }
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return AlreadyExistsError("container directory " + dir + " already exists on this host");
    return IoError("mkdir " + dir + ": " + ErrnoText(errno));
  }
  for (const std::string& sub : {UpperDir(spec.name), RootfsDir(spec.name)}) {
    if (mkdir(sub.c_str(), 0755) != 0) return IoError("mkdir " + sub + ": " + ErrnoText(errno));
  }
  std::ofstream config(dir + "/config");
  config << LxcConfigText(spec, dir);
  config.close();
  if (!config) return IoError("writing " + dir + "/config");
  return Status::Ok();
}

namespace {

bool UnionAlive(const std::string& dir) {
  char value[16];
  ssize_t n = getxattr(dir.c_str(), "user.unionmount.branches", value, 0);
  (void)value;
  return n >= 0;
}

}  // namespace

Status LxcRuntime::MountUnions(const ContainerSpec& spec, std::chrono::seconds timeout) {
  for (size_t i = 0; i < spec.unions.size(); ++i) {
    std::string dir = UnionDir(spec.name, i);
    if (UnionAlive(dir)) continue;
    umount2(dir.c_str(), MNT_DETACH);  // a dead union or nothing
    std::string upper = dir + ".upper";
    for (const std::string& made : {ContainerDir(spec.name) + "/unions", dir, upper}) {
      if (mkdir(made.c_str(), 0755) != 0 && errno != EEXIST) return IoError("mkdir " + made + ": " + ErrnoText(errno));
    }
    std::string dirs = upper + "=rw";
    for (const std::string& source : spec.unions[i].sources) dirs += ":" + source + "=ro";
    CAIRN_ASSIGN_OR_RETURN(int code, RunAndWait({unionmount_, "-o", "dirs=" + dirs, dir}, timeout));
    if (code != 0 || !UnionAlive(dir)) {
      return UnavailableError("unionmount of " + dirs + " at " + dir + " failed (exit " + std::to_string(code) + ")");
    }
  }
  return Status::Ok();
}

bool LxcRuntime::RootfsAlive(const std::string& name) const {
  char value[16];
  ssize_t n = getxattr(RootfsDir(name).c_str(), "user.unionmount.branches", value, 0);
  (void)value;
  return n >= 0;
}

Status LxcRuntime::MountRootfs(const ContainerSpec& spec, std::chrono::seconds timeout) {
  if (RootfsAlive(spec.name)) return Status::Ok();
  std::string rootfs = RootfsDir(spec.name);
  umount2(rootfs.c_str(), MNT_DETACH);  // a dead union (ENOTCONN) or nothing: both fine
  std::string dirs = spec.read_only ? "" : UpperDir(spec.name) + "=rw";
  for (const std::string& layer : spec.layers) dirs += (dirs.empty() ? "" : ":") + layer + "=ro";
  // suid and dev: a container's root behaves like a normal root file system.
  CAIRN_ASSIGN_OR_RETURN(int code, RunAndWait({unionmount_, "-o", "dirs=" + dirs + ",suid,dev", rootfs}, timeout));
  if (code != 0) return UnavailableError("unionmount for " + rootfs + " failed (exit " + std::to_string(code) + ")");
  if (!RootfsAlive(spec.name)) return UnavailableError("unionmount returned but " + rootfs + " is not a live union");
  return Status::Ok();
}

Status LxcRuntime::UnmountRootfs(const std::string& name) {
  std::string rootfs = RootfsDir(name);
  if (RootfsAlive(name)) {
    if (umount2(rootfs.c_str(), 0) != 0) {
      if (errno == EBUSY) return FailedPreconditionError(rootfs + " is busy (is the container still running?)");
      return IoError("umount " + rootfs + ": " + ErrnoText(errno));
    }
    return Status::Ok();
  }
  struct stat st;
  if (stat(rootfs.c_str(), &st) != 0 && errno == ENOTCONN) umount2(rootfs.c_str(), MNT_DETACH);
  return Status::Ok();
}

bool LxcRuntime::Defined(const std::string& name) const {
  ContainerHandle container = OpenContainer(name, lxc_path_);
  return container && container->is_defined(container.get());
}

pid_t LxcRuntime::InitPid(const std::string& name) const {
  ContainerHandle container = OpenContainer(name, lxc_path_);
  if (!container || !container->is_running(container.get())) return -1;
  pid_t pid = container->init_pid(container.get());
  return pid > 0 ? pid : -1;
}

Result<std::string> LxcRuntime::State(const std::string& name) const {
  ContainerHandle container = OpenContainer(name, lxc_path_);
  if (!container || !container->is_defined(container.get())) {
    return NotFoundError("container " + name + " is not defined on this host (" + lxc_path_ + ")");
  }
  const char* state = container->state(container.get());
  return std::string(state != nullptr ? state : "UNKNOWN");
}

Status LxcRuntime::Start(const std::string& name, std::chrono::seconds timeout) {
  if (!Defined(name)) return NotFoundError("container " + name + " is not defined on this host (" + lxc_path_ + ")");
  // start() moves its caller into the container's monitor cgroup: let a child take that.
  pid_t child = fork();
  if (child < 0) return UnavailableError("fork: " + ErrnoText(errno));
  if (child == 0) {
    ContainerHandle container = OpenContainer(name, lxc_path_);
    if (!container) _exit(2);
    container->want_daemonize(container.get(), true);
    container->want_close_all_fds(container.get(), true);
    bool started = container->start(container.get(), 0, nullptr) &&
                   container->wait(container.get(), "RUNNING", static_cast<int>(timeout.count()));
    container.reset();
    _exit(started ? 0 : 1);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return UnavailableError("LXC could not start " + name + "; " + ContainerDir(name) + "/lxc.log says:" +
                            Tail(ContainerDir(name) + "/lxc.log", 6));
  }
  return Status::Ok();
}

Status LxcRuntime::Stop(const std::string& name, std::chrono::seconds timeout) {
  ContainerHandle container = OpenContainer(name, lxc_path_);
  if (!container || !container->is_defined(container.get())) {
    return NotFoundError("container " + name + " is not defined on this host (" + lxc_path_ + ")");
  }
  if (!container->is_running(container.get())) return Status::Ok();
  // shutdown(0) only sends the signal and reports success without waiting: kill right away then.
  if (timeout.count() > 0 && container->shutdown(container.get(), static_cast<int>(timeout.count())) &&
      !container->is_running(container.get())) {
    return Status::Ok();
  }
  container->stop(container.get());
  if (!container->wait(container.get(), "STOPPED", 10) && container->is_running(container.get())) {
    return UnavailableError("LXC could not stop " + name + ":" + Tail(ContainerDir(name) + "/lxc.log", 6));
  }
  return Status::Ok();
}

namespace {

// attach_run_wait with a clean environment (PATH, HOME and the given extra), cwd /, and the
// given descriptors. Returns the waitpid status. Errors: NotFound, FailedPrecondition (not
// running), Unavailable (attach failed).
Result<int> AttachRun(const std::string& name, const std::string& lxc_path, const std::vector<std::string>& argv,
                      int in, int out, int err, const std::vector<std::string>& env) {
  if (argv.empty()) return InvalidArgumentError("exec needs a command");
  ContainerHandle container = OpenContainer(name, lxc_path);
  if (!container || !container->is_defined(container.get())) {
    return NotFoundError("container " + name + " is not defined on this host (" + lxc_path + ")");
  }
  if (!container->is_running(container.get())) return FailedPreconditionError("container " + name + " is not running");
  lxc_attach_options_t options{};
  options.attach_flags = LXC_ATTACH_DEFAULT;
  options.namespaces = -1;
  options.personality = LXC_ATTACH_DETECT_PERSONALITY;
  options.uid = static_cast<uid_t>(-1);
  options.gid = static_cast<gid_t>(-1);
  options.env_policy = LXC_ATTACH_CLEAR_ENV;
  char root[] = "/";
  options.initial_cwd = root;  // not the caller's directory, which the container does not have
  std::vector<std::string> variables = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"};
  variables.insert(variables.end(), env.begin(), env.end());
  std::vector<char*> extra_env;
  for (std::string& variable : variables) extra_env.push_back(variable.data());
  extra_env.push_back(nullptr);
  options.extra_env_vars = extra_env.data();
  options.stdin_fd = in;
  options.stdout_fd = out;
  options.stderr_fd = err;
  options.log_fd = -EBADF;
  std::vector<const char*> args;
  for (const std::string& arg : argv) args.push_back(arg.c_str());
  args.push_back(nullptr);
  int status = container->attach_run_wait(container.get(), &options, args[0], args.data());
  if (status < 0) return UnavailableError("attaching to " + name + " failed");
  return status;
}

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

Result<ExecResult> LxcRuntime::Exec(const std::string& name, const std::vector<std::string>& argv) {
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = memfd_create("cairn-exec-out", MFD_CLOEXEC);
  int err = memfd_create("cairn-exec-err", MFD_CLOEXEC);
  Result<int> status = AttachRun(name, lxc_path_, argv, in, out, err, {});
  Result<std::string> output = ReadAll(out), errors = ReadAll(err);
  close(in);
  close(out);
  close(err);
  if (!status.ok()) return status.status();
  ExecResult result;
  result.exit_code = ExitCode(*status);
  result.output = output.value_or("");
  result.errors = errors.value_or("");
  return result;
}

Result<int> LxcRuntime::Attach(const std::string& name, const std::vector<std::string>& argv) {
  std::vector<std::string> env;
  if (const char* term = std::getenv("TERM"); term != nullptr) env.push_back("TERM=" + std::string(term));
  CAIRN_ASSIGN_OR_RETURN(int status, AttachRun(name, lxc_path_, argv, 0, 1, 2, env));
  return ExitCode(status);
}

std::string LxcRuntime::Addresses(const std::string& name) const {
  ContainerHandle container = OpenContainer(name, lxc_path_);
  if (!container || !container->is_running(container.get())) return "";
  char** ips = container->get_ips(container.get(), nullptr, "inet", 0);
  std::string list;
  for (size_t i = 0; ips != nullptr && ips[i] != nullptr; ++i) {
    if (std::strncmp(ips[i], "127.", 4) != 0) list += (list.empty() ? "" : ",") + std::string(ips[i]);
    free(ips[i]);
  }
  free(ips);
  return list;
}

Status LxcRuntime::Destroy(const std::string& name) {
  std::string dir = ContainerDir(name);
  ContainerHandle container = OpenContainer(name, lxc_path_);
  if (container && container->is_running(container.get())) {
    return FailedPreconditionError("container " + name + " is running; stop it first");
  }
  CAIRN_RETURN_IF_ERROR(UnmountRootfs(name));
  // The --union mounts too: a removal through them would only write whiteouts, but never walk them.
  for (size_t i = 0;; ++i) {
    struct stat st;
    std::string union_dir = UnionDir(name, i);
    if (lstat(union_dir.c_str(), &st) != 0 && errno != ENOTCONN) break;
    umount2(union_dir.c_str(), MNT_DETACH);
  }
  // Never remove through a mount: a union still there would take the removal into its layers.
  struct stat dir_stat, rootfs_stat;
  if (stat(dir.c_str(), &dir_stat) == 0 && stat(RootfsDir(name).c_str(), &rootfs_stat) == 0 &&
      dir_stat.st_dev != rootfs_stat.st_dev) {
    return FailedPreconditionError(RootfsDir(name) + " is still a mount point; unmount it first");
  }
  if (container && container->is_defined(container.get())) container->destroy(container.get());
  container.reset();
  return RemoveTree(dir);
}

}  // namespace cairn::containers
