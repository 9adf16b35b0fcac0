// ClusterSpec: the desired state of a whole cluster as cluster.yaml states it (docs/config.md,
// "cluster.yaml"): hosts, volumes, mounts, images and containers.
//
//   CAIRN_ASSIGN_OR_RETURN(ClusterSpec spec, LoadClusterSpec("cluster.yaml"));
//   std::string yaml = ToYaml(spec);   // ParseClusterSpec(yaml) gives back an equal spec
//
// A section that is absent from the file (no `volumes:` key at all) is not managed by that file:
// `present` records which sections were given, and the plan (plan.h) creates, changes and deletes
// only within them. An empty list (`volumes: []`) manages the kind and wants none of it.
//
// Errors: InvalidArgument "FILE:LINE:COLUMN: FIELD.PATH: what" (config/yaml_reader.h), with
// "did you mean" for unknown fields and enum values. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::clusterspec {

// The kinds cluster.yaml holds, in the order they are created (deleted in reverse).
enum class Kind { kHost, kVolume, kImage, kMount, kContainer };
constexpr Kind kAllKinds[] = {Kind::kHost, Kind::kVolume, Kind::kImage, Kind::kMount, Kind::kContainer};
std::string_view KindName(Kind kind);         // "host", "volume", ...
std::string_view SectionName(Kind kind);      // "hosts", "volumes", ...
// "host", "hosts", "volume", "vol", ... -> Kind. Errors: InvalidArgument listing the kinds.
Result<Kind> ParseKind(std::string_view text);

struct HostDecl {
  std::string name;
  std::string address;             // "" when not given
  std::vector<std::string> roles;  // voter | witness | storage; sorted, unique
  friend bool operator==(const HostDecl&, const HostDecl&) = default;
};

struct VolumeDecl {
  std::string name;
  std::string type = "replicate";   // replicate (one replica set) | distributed-replicate (several)
  uint32_t replica = 1;
  std::vector<std::string> bricks;  // "HOST:/path", consecutive groups of `replica` form the sets
  std::string no_quorum = "eio";    // options.no_quorum: eio | readonly
  std::string state = "started";    // started | stopped
  friend bool operator==(const VolumeDecl&, const VolumeDecl&) = default;
};

struct MountDecl {
  std::string host;
  std::string volume;
  std::string path;      // absolute
  std::string options;   // cairn-mount -o, "" for none
  std::string Name() const { return host + ":" + path; }  // identity of a mount
  friend bool operator==(const MountDecl&, const MountDecl&) = default;
};

struct ImageDecl {
  std::string name;
  std::string source;  // "busybox", "dir:/path", "tar:/file.tar"; with a parent: "dir:/changes"
  std::string parent;  // "" for a base image
  friend bool operator==(const ImageDecl&, const ImageDecl&) = default;
};

struct ContainerDecl {
  std::string name;
  std::string image;
  std::string host;
  std::vector<std::string> volumes;  // "VOLUME:/path[:ro]": the host's mount of a replicated volume
  std::vector<std::string> binds;    // "HOSTDIR:/path[:ro]": a directory of the host
  std::string state = "running";     // running | stopped
  friend bool operator==(const ContainerDecl&, const ContainerDecl&) = default;
};

struct ClusterSpec {
  std::vector<HostDecl> hosts;
  std::vector<VolumeDecl> volumes;
  std::vector<MountDecl> mounts;
  std::vector<ImageDecl> images;
  std::vector<ContainerDecl> containers;
  std::set<Kind> present;  // sections given in the file (all of them for state read from the store)

  bool Has(Kind kind) const { return present.count(kind) > 0; }
  // Sorts every list by name (mounts by host, path) so two specs compare and print the same.
  void Normalize();
  friend bool operator==(const ClusterSpec&, const ClusterSpec&) = default;
};

// Where the declarations of a file are, for errors found after parsing (against the store, at
// apply time), so they point at the line to fix like the parser's own errors do.
// Threading: filled by one parse, then read-only.
class SourceMap {
 public:
  // where: "FILE:LINE:COLUMN: containers[1].host". field names a key of the item ("host"), or a
  // list entry as "volumes:ENTRY" ("volumes:gv0:/data").
  void Add(Kind kind, std::string_view name, std::string_view field, std::string where);
  // InvalidArgument "FILE:LINE:COLUMN: containers[1].host: what", or "container NAME: field:
  // what" when the place is not known (the item came from the store, or no map was filled).
  Status Error(Kind kind, std::string_view name, std::string_view field, std::string_view what) const;

 private:
  static std::string Key(Kind kind, std::string_view name, std::string_view field);
  std::map<std::string, std::string> where_;
};

// Parses and validates cluster.yaml text; filename is used in messages only. Besides types and
// unknown fields it checks: names (DNS labels for hosts, volume and image/container name rules),
// duplicates, bricks HOST:/PATH whose host is declared with the storage role (when hosts are given),
// a brick count that is a multiple of replica, type matching the number of replica sets, mounts and
// containers on declared hosts, of declared volumes and images (when those sections are given).
// With `where`, also records where each image's and container's fields are.
Result<ClusterSpec> ParseClusterSpec(std::string_view text, std::string_view filename, SourceMap* where = nullptr);
// Reads the file and parses it. Errors: NotFound/IoError for the file, then as above.
Result<ClusterSpec> LoadClusterSpec(const std::string& path, SourceMap* where = nullptr);

// The spec as cluster.yaml text (the sections in `present`, in kAllKinds order), which
// ParseClusterSpec reads back to an equal spec. Defaults are written out.
std::string ToYaml(const ClusterSpec& spec);
// The same content as one JSON object ({"hosts":[...],"volumes":[...],...}).
std::string ToJson(const ClusterSpec& spec);

// The type a volume of `replica` with `brick_count` bricks has.
std::string VolumeTypeFor(uint32_t replica, size_t brick_count);

}  // namespace cairn::clusterspec
