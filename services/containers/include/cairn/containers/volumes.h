// Replicated volumes inside containers (`--volume VOL:/path[:ro]`): the host's FUSE mount of
// volume VOL (cairn-mount, docs/mount.md) at VOLUME_ROOT/VOL, bind-mounted into the container with
// lxc.mount.entry like any --bind. One mount per volume and host, shared by every container of
// that host that uses the volume; it is made on first use and left mounted (it is its own
// process, like every mount), so `container rm` never pulls a volume from under another container.
//
// Threading: plain functions; EnsureVolumeMounted runs cairn-mount as a child and waits for it.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/containers/registry.h"

namespace cairn::containers {

// $CAIRN_VOLUME_ROOT, else /run/cairn/volumes.
std::string DefaultVolumeRoot();
// $CAIRN_IMAGE_VOLUME, else "" (image layers on local disk).
std::string DefaultImageVolume();
// $CAIRN_MOUNT, else `cairn-mount` next to the running program (or ../bin/cairn-mount).
Result<std::string> FindCairnMount();

struct VolumeUse {
  std::string volume;
  std::string path;        // absolute path inside the container
  bool read_only = false;
};
// "VOL:/path[:ro|:rw]". Errors: InvalidArgument (bad name, relative path, '..', unknown mode).
Result<VolumeUse> ParseVolumeUse(const std::string& text);
std::string VolumeUseText(const VolumeUse& use);

// How a host mounts volumes for its containers.
struct VolumeMounting {
  std::string volume_root = DefaultVolumeRoot();
  std::string cairn_mount;              // the program; empty: FindCairnMount() when first needed
  std::vector<std::string> endpoints;   // the store's client endpoints ("host:port") for cairn-mount
};

// NotFound when volume VOL is not in the store, FailedPrecondition when it is not started.
Status CheckVolumeStarted(Registry& registry, const std::string& volume);

// Mounts volume at mounting.volume_root/VOL unless a FUSE mount is already there; returns that
// directory. A dead mount there (its process gone) is detached and mounted again.
// Errors: InvalidArgument (no endpoints), NotFound (no cairn-mount), Unavailable with
// cairn-mount's own message when it fails.
Result<std::string> EnsureVolumeMounted(const VolumeMounting& mounting, const std::string& volume,
                                        std::chrono::seconds timeout);

}  // namespace cairn::containers
