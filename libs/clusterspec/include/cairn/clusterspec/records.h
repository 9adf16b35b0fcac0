// The store side of cluster.yaml: the keys and records of hosts and mounts (records.proto), and
// conversions between store records and the declarations of spec.h, so the current state reads
// into the same ClusterSpec the file gives.
//
//   /cairn/hosts/NAME               HostRecord
//   /cairn/mounts/HOST/PATH         MountRecord   (PATH absolute: /cairn/mounts/host1/mnt/gv0)
//   /cairn/mounts-status/HOST/PATH  MountStatus   (written by HOST's mount agent only)
//
// Values are protobuf JSON with proto field names. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "cairn/clusterspec/records.pb.h"
#include "cairn/clusterspec/spec.h"
#include "cairn/common/status.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::clusterspec {

inline constexpr std::string_view kHostsPrefix = "/cairn/hosts/";
inline constexpr std::string_view kMountsPrefix = "/cairn/mounts/";
inline constexpr std::string_view kMountStatusPrefix = "/cairn/mounts-status/";

std::string HostKey(std::string_view host);                              // /cairn/hosts/NAME
std::string MountKey(std::string_view host, std::string_view path);      // /cairn/mounts/HOST/PATH
std::string MountStatusKey(std::string_view host, std::string_view path);
std::string HostMountsPrefix(std::string_view host);                     // /cairn/mounts/HOST/
std::string HostMountStatusPrefix(std::string_view host);                // /cairn/mounts-status/HOST/

// Record <-> stored JSON. Errors: Corruption naming the key when a value does not parse.
std::string RecordJson(const google::protobuf::Message& record);
Status ParseRecord(std::string_view key, std::string_view json, google::protobuf::Message* record);

HostRecord ToRecord(const HostDecl& host);
HostDecl FromRecord(const HostRecord& record);
MountRecord ToRecord(const MountDecl& mount);
MountDecl FromRecord(const MountRecord& record);

// A volume spec from the store as cluster.yaml states it (type, replica, bricks, options, state).
// A volume in state CREATED reads as "stopped" (it serves nothing).
VolumeDecl FromVolumeSpec(const proto::volume::VolumeSpec& spec);
// "eio" / "readonly" <-> the policy. Errors: InvalidArgument for other text.
Result<proto::volume::NoQuorumPolicy> ParseNoQuorum(std::string_view text);
std::string NoQuorumName(proto::volume::NoQuorumPolicy policy);

// An image record's source as cluster.yaml writes it: a child image's "build:/path" is "dir:/path",
// and "busybox:/bin/busybox" (the binary build-busybox used) is "busybox".
std::string ImageSourceFromRecord(std::string_view record_source, std::string_view parent);
// A container record's state as cluster.yaml writes it: "running" stays, anything else
// (created, stopped, failed) is "stopped".
std::string ContainerStateFromRecord(std::string_view record_state);

}  // namespace cairn::clusterspec
