// ContainerService: the container verbs for the containers of one host, with their records in the
// store (/cairn/containers/NAME). clusterctl uses it directly for the host it runs on; clusterd's
// supervisor can host the same object (and ContainerAgent below) for its host.
//
// Create claims the name in the store first (create-if-absent), then writes the LXC config and
// mounts the union; any failure removes what was made (directory, mount, record). Remove stops
// (with force), unmounts, destroys, then deletes the record.
//
// Threading: one thread at a time (Registry and LxcRuntime rules). Errors say what to do.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/containers/images.h"
#include "cairn/containers/registry.h"
#include "cairn/containers/runtime.h"
#include "cairn/containers/tree.h"
#include "cairn/containers/volumes.h"

namespace cairn::containers {

// $CAIRN_HOST, else the kernel's host name.
std::string DefaultHostName();

struct CreateOptions {
  std::string name;
  std::string image;
  std::string host;                 // empty: this host
  std::vector<std::string> binds;   // HOSTDIR:/path[:ro]
  std::string network = "empty";    // "empty" or "veth:BRIDGE"
  // Part D experiment 2: instead of an image, layer over container rootfs_from's root (its
  // writable layer read-only, then its layers); image is then taken from that container.
  std::string rootfs_from;
  bool read_only = false;           // no writable layer of its own (writes fail with EROFS)
  std::string init;                 // PID 1 when not /sbin/init: "PROGRAM [ARGS...]"
  std::vector<std::string> volumes; // VOL:/path[:ro]: this host's mount of replicated volume VOL
  // Part D experiment 1: "C1:/dir,C2:/dir:/path" mounts at /path the union of directory /dir of
  // containers C1 and C2 (both on this host, read-only, C1 first) under a writable layer of its own.
  std::vector<std::string> unions;
};

struct ContainerStatus {
  ContainerRecord record;
  bool local = false;           // on this host, in this LXC path: the fields below were measured now
  std::string live_state;       // LXC's state ("RUNNING", "STOPPED"), or "" when not local
  bool rootfs_alive = false;    // the union under the root answers
  TreeStats writable;           // sizes of the writable layer
  std::string ip;               // measured when local, else what the host's agent recorded
};

class ContainerService {
 public:
  // All references must outlive the service. host is this host's name.
  ContainerService(Registry& registry, ImageStore& images, LxcRuntime& runtime, std::string host,
                   const Clock& clock);

  // How --volume mounts are made on this host (default: DefaultVolumeRoot(), no endpoints, so a
  // --volume fails with InvalidArgument until they are set).
  void set_volume_mounting(VolumeMounting mounting) { volume_mounting_ = std::move(mounting); }
  // Image layers on replicated volume VOL (mounted at VOLUME_ROOT/VOL, the image store's layer
  // root): create and start mount it first when it is not mounted here. Empty: layers are local.
  void set_image_volume(std::string volume) { image_volume_ = std::move(volume); }

  // Creates a container on this host, run by the caller (no agent: desired stays empty).
  // Errors: InvalidArgument (name, bind, volume), AlreadyExists (name taken), NotFound (image,
  // layer, volume), FailedPrecondition (another host, volume not started), Unavailable
  // (unionmount, cairn-mount or the store failed).
  Result<ContainerRecord> Create(const CreateOptions& options, std::chrono::seconds timeout);
  // The agent's half of a placed container (record NAME on this host in state "pending"): makes
  // the directory, config, volume mounts and union, and records them (state "created"). On
  // failure nothing local stays and the error is returned (the caller records it).
  Status Materialize(const std::string& name, std::chrono::seconds timeout);
  // Mounts the union again if it is gone (e.g. after a reboot), then starts through LXC.
  Status Start(const std::string& name, std::chrono::seconds timeout);
  // Halt, then kill after timeout.
  Status Stop(const std::string& name, std::chrono::seconds timeout);
  Result<ExecResult> Exec(const std::string& name, const std::vector<std::string>& argv);
  Result<ContainerStatus> Show(const std::string& name);
  Result<std::vector<ContainerStatus>> List();
  // The container's console log (init and rcS output).
  Result<std::string> Logs(const std::string& name);
  // FailedPrecondition while running unless force (then it is stopped first), or while another
  // container layers over this one's root (--rootfs-from).
  Status Remove(const std::string& name, bool force, std::chrono::seconds timeout);

  const std::string& host() const { return host_; }

 private:
  // The record of a container on this host. NotFound / FailedPrecondition (other host).
  Result<ContainerRecord> LocalRecord(const std::string& name);
  Status SaveState(const std::string& name, const std::string& state, const std::string& error);
  // Validates options and fills record with everything but state; returns the spec to build.
  Result<ContainerSpec> Plan(const CreateOptions& options, ContainerRecord* record);
  // Mounts the volumes (adding their binds to spec), writes the directory and config, mounts the
  // union. On failure removes what it made here.
  Status Build(ContainerSpec spec, const std::vector<std::string>& volumes, std::chrono::seconds timeout);
  // The --union texts resolved to host directories. Errors: InvalidArgument (syntax), NotFound
  // (container or directory), FailedPrecondition (container on another host or its root unmounted).
  Result<std::vector<UnionMount>> ResolveUnions(const std::vector<std::string>& texts);
  Status MountVolumes(const std::vector<std::string>& volumes, std::chrono::seconds timeout,
                      std::vector<BindMount>* binds);
  ContainerSpec SpecOf(const ContainerRecord& record) const;
  ContainerStatus Measure(const ContainerRecord& record);
  // The read-only layers for options: the image's, or those of the container it layers over.
  Status ResolveLayers(const CreateOptions& options, ContainerSpec* spec, std::string* image);

  Registry& registry_;
  ImageStore& images_;
  LxcRuntime& runtime_;
  std::string host_;
  const Clock& clock_;
  VolumeMounting volume_mounting_;
  std::string image_volume_;
};

// The options a record was placed with (for the agent: Materialize plans from these).
CreateOptions OptionsOf(const ContainerRecord& record);

// What the supervisor runs periodically for its host: containers recorded as running here whose
// union died are stopped (LXC would keep reporting RUNNING) and recorded as failed with the reason;
// containers that stopped by themselves are recorded as stopped. The writable layer is untouched.
// Only records whose container_dir is under runtime's LXC path are looked at (another clusterctl
// root or agent on the same machine manages the others).
// Returns one line per change made ("c1: union process died; container stopped").
Result<std::vector<std::string>> ReconcileHost(ContainerService& service, LxcRuntime& runtime, Registry& registry);

}  // namespace cairn::containers
