// LxcRuntime: one host's containers through the liblxc C API (never the lxc-* tools), with a
// root file system that is a unionmount of the container's writable layer over image layers.
//
// Per container, under the LXC path (default $CAIRN_CONTAINER_ROOT or /var/lib/cairn/containers):
//   NAME/config        LXC configuration written by WriteConfig (LxcConfigText)
//   NAME/upper/        the writable layer (the only branch the container writes)
//   NAME/rootfs/       mount point of `unionmount -o dirs=upper=rw:LAYER=ro:...` (its own process)
//   NAME/console.log   the container's console (init's and rcS's output): `container logs`
//   NAME/lxc.log       liblxc's own log for this container
//
// LXC facts this relies on (issue #7): start() moves the calling process into the container's
// monitor cgroup, so Start calls it from a short-lived forked child with want_daemonize(true);
// LXC's command socket is per network namespace, so a container is managed only from the host
// (namespace) that started it; the union is unmounted before destroy, or destroy walks into the
// image layers; LXC keeps reporting RUNNING when the union's process dies, so RootfsAlive checks
// the mount itself.
//
// Threading: calls on different containers may run concurrently; calls on one container must not.
// Start forks, so call it from a process that can fork safely (clusterctl, or a worker that holds
// no locks another thread could hold at fork time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::containers {

// $CAIRN_CONTAINER_ROOT, else /var/lib/cairn/containers.
std::string DefaultContainerRoot();
// $CAIRN_UNIONMOUNT, else `unionmount` next to the running program (or ../bin/unionmount).
Result<std::string> FindUnionmount();

// HOSTDIR:/path[:ro|:rw]. Errors: InvalidArgument (relative paths, '..', unknown mode),
// NotFound (HOSTDIR missing).
struct BindMount {
  std::string host_dir;   // absolute, canonical
  std::string path;       // absolute path inside the container
  bool read_only = false;
};
Result<BindMount> ParseBind(const std::string& text);
std::string BindText(const BindMount& bind);

// "empty", or "veth:BRIDGE" with an optional ",ip=ADDRESS/PREFIX" (IPv4). Errors: InvalidArgument.
Status ValidateNetwork(const std::string& network);

// Part D experiment 1: directories of other containers joined by one union and bind-mounted into
// this one. `sources` are host directories (the containers' union roots plus the path), mounted
// read-only under a writable layer of this container's own: NAME/unions/N (the mount point) over
// NAME/unions/N.upper, so writes in this container never reach the source containers.
struct UnionMount {
  std::vector<std::string> sources;  // host directories, highest priority first
  std::string path;                  // absolute path inside the container
};

struct ContainerSpec {
  std::string name;
  std::vector<std::string> layers;  // image layer directories, top first (mounted read-only)
  std::vector<BindMount> binds;
  std::string network = "empty";    // lxc.net.0.type: "empty" (default) or "veth:BRIDGE[,ip=CIDR]"
  bool read_only = false;           // mount the layers without the writable one (EROFS on writes)
  std::vector<UnionMount> unions;   // bound at NAME/unions/N (LxcConfigText writes their entries)
  std::string init = "/sbin/init";  // lxc.init.cmd: the program (and arguments) run as the container's PID 1
};

// Checks an --init command: an absolute program path, then arguments. InvalidArgument otherwise.
Status ValidateInit(const std::string& init);

// The LXC configuration for spec with the container directory dir (pure; unit tested).
std::string LxcConfigText(const ContainerSpec& spec, const std::string& dir);

struct ExecResult {
  int exit_code = -1;  // the command's exit status, or 128+N when signal N killed it
  std::string output;  // its stdout
  std::string errors;  // its stderr
};

class LxcRuntime {
 public:
  LxcRuntime(std::string lxc_path, std::string unionmount);

  const std::string& lxc_path() const { return lxc_path_; }
  std::string ContainerDir(const std::string& name) const { return lxc_path_ + "/" + name; }
  std::string RootfsDir(const std::string& name) const { return ContainerDir(name) + "/rootfs"; }
  std::string UpperDir(const std::string& name) const { return ContainerDir(name) + "/upper"; }
  std::string ConsoleLog(const std::string& name) const { return ContainerDir(name) + "/console.log"; }

  // Creates NAME/, upper/, rootfs/ and writes config. Errors: AlreadyExists when NAME/ exists
  // (a container of that name on this host), IoError.
  Status Prepare(const ContainerSpec& spec);
  // Mounts the union at rootfs/ unless it is mounted and alive; a dead union (its process gone)
  // is detached first. Errors: Unavailable when unionmount fails (its message is on stderr).
  Status MountRootfs(const ContainerSpec& spec, std::chrono::seconds timeout);
  std::string UnionDir(const std::string& name, size_t index) const {
    return ContainerDir(name) + "/unions/" + std::to_string(index);
  }
  // Mounts spec.unions at NAME/unions/N unless alive (a dead one is detached first).
  // Errors: Unavailable when unionmount fails.
  Status MountUnions(const ContainerSpec& spec, std::chrono::seconds timeout);
  // Unmounts rootfs/ (a dead union is detached). Errors: FailedPrecondition when busy.
  Status UnmountRootfs(const std::string& name);
  // True when rootfs/ is a union that answers (its control attribute can be read).
  bool RootfsAlive(const std::string& name) const;

  // Starts the container and waits until RUNNING. Errors: NotFound (not defined here),
  // Unavailable with the tail of lxc.log when LXC fails.
  Status Start(const std::string& name, std::chrono::seconds timeout);
  // Asks init to halt (lxc.signal.halt) and waits up to timeout, then kills (at once for a zero
  // timeout). OK when stopped; Unavailable when it still runs 10 s after the kill.
  Status Stop(const std::string& name, std::chrono::seconds timeout);
  // "STOPPED", "RUNNING", ... as LXC says; NotFound when not defined here.
  Result<std::string> State(const std::string& name) const;
  bool Defined(const std::string& name) const;
  // The host pid of the container's init (PID 1 inside), or -1 when it does not run.
  pid_t InitPid(const std::string& name) const;
  // Runs argv inside the running container (attach_run_wait, a clean environment with PATH),
  // stdin from /dev/null. Errors: FailedPrecondition when not running, Unavailable when attach fails.
  Result<ExecResult> Exec(const std::string& name, const std::vector<std::string>& argv);
  // Like Exec, but the command gets the caller's stdin, stdout and stderr (its terminal, for an
  // interactive shell) and $TERM. Returns the exit code.
  Result<int> Attach(const std::string& name, const std::vector<std::string>& argv);
  // The container's IPv4 addresses (LXC get_ips, loopback left out), comma-separated; "" when
  // not running or it has none.
  std::string Addresses(const std::string& name) const;
  // Stops nothing: FailedPrecondition when running. Unmounts the union, then destroys the LXC
  // container and removes NAME/ (writable layer included). OK when there is nothing to remove.
  Status Destroy(const std::string& name);

 private:
  std::string lxc_path_;
  std::string unionmount_;
};

}  // namespace cairn::containers
