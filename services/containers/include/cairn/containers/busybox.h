// A small root file system from Debian's busybox-static, so tests and demos need no download.
#pragma once

#include <string>

#include "cairn/common/status.h"

namespace cairn::containers {

// Where Debian's busybox-static installs the binary.
inline constexpr const char* kDefaultBusybox = "/bin/busybox";

// Fills the empty or missing directory `root` with: /bin/busybox (a copy of `busybox`, which must
// be statically linked: the rootfs has no libraries) and a symlink for each of its applets at the
// path `busybox --list-full` names; /etc/passwd, /etc/group, /etc/hostname, /etc/inittab (rcS at
// sysinit, nothing respawned, so init just waits), /etc/init.d/rcS (prints "cairn-busybox: up",
// no DHCP), and the empty directories LXC mounts over (dev, proc, sys, run, tmp, ...).
// Runs `busybox --list-full` as a child process.
// Errors: NotFound (no busybox), FailedPrecondition (not static, or root not empty), IoError.
Status BuildBusyboxRootfs(const std::string& root, const std::string& busybox = kDefaultBusybox);

}  // namespace cairn::containers
