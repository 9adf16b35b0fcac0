#include <algorithm>
#include <tuple>

#include "cairn/clusterspec/spec.h"

namespace cairn::clusterspec {

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kHost: return "host";
    case Kind::kVolume: return "volume";
    case Kind::kImage: return "image";
    case Kind::kMount: return "mount";
    case Kind::kContainer: return "container";
  }
  return "?";
}

std::string_view SectionName(Kind kind) {
  switch (kind) {
    case Kind::kHost: return "hosts";
    case Kind::kVolume: return "volumes";
    case Kind::kImage: return "images";
    case Kind::kMount: return "mounts";
    case Kind::kContainer: return "containers";
  }
  return "?";
}

Result<Kind> ParseKind(std::string_view text) {
  for (Kind kind : kAllKinds) {
    if (text == KindName(kind) || text == SectionName(kind)) return kind;
  }
  if (text == "vol") return Kind::kVolume;
  return InvalidArgumentError("unknown kind \"" + std::string(text) +
                              "\"; use host, volume, mount, image or container (or their plurals)");
}

void ClusterSpec::Normalize() {
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(hosts.begin(), hosts.end(), by_name);
  std::sort(volumes.begin(), volumes.end(), by_name);
  std::sort(images.begin(), images.end(), by_name);
  std::sort(containers.begin(), containers.end(), by_name);
  std::sort(mounts.begin(), mounts.end(),
            [](const MountDecl& a, const MountDecl& b) { return std::tie(a.host, a.path) < std::tie(b.host, b.path); });
  for (HostDecl& host : hosts) std::sort(host.roles.begin(), host.roles.end());
}

std::string SourceMap::Key(Kind kind, std::string_view name, std::string_view field) {
  return std::string(KindName(kind)) + "\n" + std::string(name) + "\n" + std::string(field);
}

void SourceMap::Add(Kind kind, std::string_view name, std::string_view field, std::string where) {
  where_[Key(kind, name, field)] = std::move(where);
}

Status SourceMap::Error(Kind kind, std::string_view name, std::string_view field, std::string_view what) const {
  auto it = where_.find(Key(kind, name, field));
  if (it != where_.end()) return InvalidArgumentError(it->second + ": " + std::string(what));
  std::string label(field.substr(0, field.find(':')));  // "volumes:gv0:/data" -> "volumes"
  return InvalidArgumentError(std::string(KindName(kind)) + " " + std::string(name) + ": " + label + ": " +
                              std::string(what));
}

std::string VolumeTypeFor(uint32_t replica, size_t brick_count) {
  return replica > 0 && brick_count > replica ? "distributed-replicate" : "replicate";
}

}  // namespace cairn::clusterspec
