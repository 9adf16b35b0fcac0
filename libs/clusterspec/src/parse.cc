// cluster.yaml -> ClusterSpec. Each section is read item by item (types, unknown fields, enums),
// then cross-checked (duplicates, references between sections) with the item's own location, so
// every error points at the line to fix.
#include <algorithm>
#include <cctype>
#include <map>

#include "cairn/clusterspec/spec.h"
#include "cairn/config/node_config.h"
#include "cairn/config/yaml_reader.h"
#include "cairn/proto/volume.pb.h"
#include "cairn/volume/layout.h"

namespace cairn::clusterspec {
namespace {

using config::YamlMap;
using config::YamlValue;

const std::vector<std::string_view> kTopFields = {"hosts", "volumes", "mounts", "images", "containers"};
const std::vector<std::string_view> kHostFields = {"name", "address", "roles"};
const std::vector<std::string_view> kVolumeFields = {"name", "type", "replica", "bricks", "options", "state"};
const std::vector<std::string_view> kVolumeOptionFields = {"no_quorum"};
const std::vector<std::string_view> kMountFields = {"host", "volume", "path", "options"};
const std::vector<std::string_view> kImageFields = {"name", "source", "parent"};
const std::vector<std::string_view> kContainerFields = {"name", "image", "host", "volumes", "binds", "state"};

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string JoinWords(const std::vector<std::string_view>& words, std::string_view separator) {
  std::string out;
  for (std::string_view word : words) out += (out.empty() ? "" : std::string(separator)) + std::string(word);
  return out;
}

// A string that must be one of `allowed`; the error suggests the closest one.
Result<std::string> ReadEnum(const YamlValue& value, const std::vector<std::string_view>& allowed) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, value.String());
  if (std::find(allowed.begin(), allowed.end(), text) != allowed.end()) return text;
  std::string closest = config::ClosestName(text, allowed);
  std::string hint = closest.empty() ? "use one of " + JoinWords(allowed, ", ") : "did you mean " + Quoted(closest) + "?";
  return value.Error(Quoted(text) + " is not one of " + JoinWords(allowed, "|") + "; " + hint);
}

Status ReadEnumField(const YamlMap& map, std::string_view key, const std::vector<std::string_view>& allowed,
                     std::string* out) {
  auto value = map.Get(key);
  if (!value) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(*out, ReadEnum(*value, allowed));
  return Status::Ok();
}

// Image and container names: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit (the rule of
// services/containers, repeated here so this library stays free of LXC).
Status ValidateObjectName(std::string_view name) {
  if (name.empty() || name.size() > 64) return InvalidArgumentError("name must be 1 to 64 characters");
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) {
    return InvalidArgumentError(Quoted(name) + " must start with a letter or digit");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return InvalidArgumentError(Quoted(name) + " may hold only letters, digits, '_', '.' and '-'");
    }
  }
  return Status::Ok();
}

Result<std::string> ReadName(const YamlMap& map, std::string_view key, Status (*validate)(std::string_view)) {
  CAIRN_ASSIGN_OR_RETURN(YamlValue value, map.Require(key));
  CAIRN_ASSIGN_OR_RETURN(std::string name, value.String());
  Status valid = validate(name);
  if (!valid.ok()) return value.Error(valid.message());
  return name;
}

// Every item of a section with the value it came from, for cross-checks.
template <typename Decl>
struct Located {
  Decl decl;
  YamlMap map;
};

// ---- items --------------------------------------------------------------------------------------------

Result<HostDecl> ReadHost(const YamlMap& map) {
  HostDecl host;
  CAIRN_ASSIGN_OR_RETURN(host.name, ReadName(map, "name", config::ValidateNodeName));
  CAIRN_RETURN_IF_ERROR(map.ReadString("address", &host.address));
  if (auto roles = map.Get("roles")) {
    CAIRN_ASSIGN_OR_RETURN(auto items, roles->List());
    for (const YamlValue& item : items) {
      CAIRN_ASSIGN_OR_RETURN(std::string role, ReadEnum(item, {"voter", "witness", "storage"}));
      if (std::find(host.roles.begin(), host.roles.end(), role) != host.roles.end()) {
        return item.Error("role " + Quoted(role) + " is listed twice");
      }
      host.roles.push_back(role);
    }
  } else {
    host.roles = {"storage", "voter"};
  }
  bool voter = std::count(host.roles.begin(), host.roles.end(), "voter") > 0;
  bool witness = std::count(host.roles.begin(), host.roles.end(), "witness") > 0;
  if (voter && witness) return map.KeyError("roles", "a host is a voter or a witness, not both");
  if (witness && std::count(host.roles.begin(), host.roles.end(), "storage") > 0) {
    return map.KeyError("roles", "a witness only votes; it cannot also hold storage");
  }
  std::sort(host.roles.begin(), host.roles.end());
  return host;
}

Status CheckVolumeShape(const YamlMap& map, const VolumeDecl& volume) {
  volume::CreateVolumeRequest request;
  request.name = volume.name;
  request.replica_count = volume.replica;
  request.bricks = volume.bricks;
  Status shape = volume::CreateVolumeSpec(request).status();
  if (!shape.ok()) return map.KeyError("bricks", shape.message());
  std::string type = VolumeTypeFor(volume.replica, volume.bricks.size());
  if (map.Has("type") && type != volume.type) {
    return map.KeyError("type", Quoted(volume.type) + " does not match " + std::to_string(volume.bricks.size()) +
                                    " bricks with replica " + std::to_string(volume.replica) + " (that is " +
                                    Quoted(type) + ": replicate is one replica set, distributed-replicate several)");
  }
  return Status::Ok();
}

Result<VolumeDecl> ReadVolume(const YamlMap& map) {
  VolumeDecl volume;
  CAIRN_ASSIGN_OR_RETURN(volume.name, ReadName(map, "name", volume::ValidateVolumeName));
  CAIRN_RETURN_IF_ERROR(ReadEnumField(map, "type", {"replicate", "distributed-replicate"}, &volume.type));
  int64_t replica = 1;
  CAIRN_RETURN_IF_ERROR(map.ReadInt("replica", 1, 16, &replica));
  volume.replica = static_cast<uint32_t>(replica);
  CAIRN_ASSIGN_OR_RETURN(YamlValue bricks, map.Require("bricks"));
  CAIRN_ASSIGN_OR_RETURN(auto brick_items, bricks.List());
  for (const YamlValue& item : brick_items) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, item.String());
    Status parsed = volume::ParseBrick(text).status();
    if (!parsed.ok()) return item.Error(parsed.message() + " (write HOST:/PATH)");
    volume.bricks.push_back(std::move(text));
  }
  if (auto options = map.Get("options")) {
    CAIRN_ASSIGN_OR_RETURN(YamlMap option_map, options->Map(kVolumeOptionFields));
    CAIRN_RETURN_IF_ERROR(ReadEnumField(option_map, "no_quorum", {"eio", "readonly"}, &volume.no_quorum));
  }
  CAIRN_RETURN_IF_ERROR(ReadEnumField(map, "state", {"started", "stopped"}, &volume.state));
  CAIRN_RETURN_IF_ERROR(CheckVolumeShape(map, volume));
  volume.type = VolumeTypeFor(volume.replica, volume.bricks.size());
  return volume;
}

Result<MountDecl> ReadMount(const YamlMap& map) {
  MountDecl mount;
  CAIRN_ASSIGN_OR_RETURN(mount.host, ReadName(map, "host", config::ValidateNodeName));
  CAIRN_ASSIGN_OR_RETURN(mount.volume, ReadName(map, "volume", volume::ValidateVolumeName));
  CAIRN_ASSIGN_OR_RETURN(YamlValue path, map.Require("path"));
  CAIRN_ASSIGN_OR_RETURN(mount.path, path.AbsolutePath());
  while (mount.path.size() > 1 && mount.path.back() == '/') mount.path.pop_back();
  if (mount.path == "/") return path.Error("cannot mount over /");
  if (mount.path.find("//") != std::string::npos || mount.path.find("/../") != std::string::npos ||
      mount.path.find("/./") != std::string::npos || mount.path.ends_with("/..") || mount.path.ends_with("/.")) {
    return path.Error(Quoted(mount.path) + " is not a plain absolute path (no //, . or ..)");
  }
  CAIRN_RETURN_IF_ERROR(map.ReadString("options", &mount.options));
  return mount;
}

Status ValidateImageSource(const YamlValue& value, const std::string& source, bool has_parent) {
  if (source == "busybox") {
    if (has_parent) return value.Error("a child image (with parent) takes its changes from dir:/PATH, not busybox");
    return Status::Ok();
  }
  for (std::string_view prefix : {"dir:", "tar:"}) {
    if (source.starts_with(prefix)) {
      std::string path = source.substr(prefix.size());
      if (path.empty() || path[0] != '/') return value.Error(Quoted(source) + ": the path after " + std::string(prefix) + " must be absolute");
      if (has_parent && prefix == "tar:") return value.Error("a child image (with parent) takes its changes from dir:/PATH");
      return Status::Ok();
    }
  }
  return value.Error(Quoted(source) + " is not an image source; use busybox, dir:/PATH or tar:/FILE");
}

Result<ImageDecl> ReadImage(const YamlMap& map) {
  ImageDecl image;
  CAIRN_ASSIGN_OR_RETURN(image.name, ReadName(map, "name", ValidateObjectName));
  if (map.Get("parent")) {
    CAIRN_ASSIGN_OR_RETURN(image.parent, ReadName(map, "parent", ValidateObjectName));
  }
  CAIRN_ASSIGN_OR_RETURN(YamlValue source, map.Require("source"));
  CAIRN_ASSIGN_OR_RETURN(image.source, source.String());
  CAIRN_RETURN_IF_ERROR(ValidateImageSource(source, image.source, !image.parent.empty()));
  if (image.parent == image.name) return map.KeyError("parent", "an image cannot be its own parent");
  return image;
}

// "SOURCE:/path[:ro]" entries: SOURCE is a volume name (volumes) or an absolute host directory (binds).
Status ReadMountList(const YamlMap& map, std::string_view key, bool volume_source, std::vector<std::string>* out) {
  auto list = map.Get(key);
  if (!list) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto items, list->List());
  const std::string form = volume_source ? "VOLUME:/path or VOLUME:/path:ro" : "HOSTDIR:/path or HOSTDIR:/path:ro (both absolute)";
  for (const YamlValue& item : items) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, item.String());
    size_t colon = text.find(':');
    std::string source = text.substr(0, colon);
    std::string rest = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (rest.ends_with(":ro")) rest.resize(rest.size() - 3);
    bool source_ok = volume_source ? volume::ValidateVolumeName(source).ok() : (!source.empty() && source[0] == '/');
    if (!source_ok || rest.empty() || rest[0] != '/' || rest.find(':') != std::string::npos) {
      return item.Error(Quoted(text) + " is not " + form);
    }
    out->push_back(std::move(text));
  }
  return Status::Ok();
}

Result<ContainerDecl> ReadContainer(const YamlMap& map) {
  ContainerDecl container;
  CAIRN_ASSIGN_OR_RETURN(container.name, ReadName(map, "name", ValidateObjectName));
  CAIRN_ASSIGN_OR_RETURN(container.image, ReadName(map, "image", ValidateObjectName));
  CAIRN_ASSIGN_OR_RETURN(container.host, ReadName(map, "host", config::ValidateNodeName));
  CAIRN_RETURN_IF_ERROR(ReadMountList(map, "volumes", /*volume_source=*/true, &container.volumes));
  CAIRN_RETURN_IF_ERROR(ReadMountList(map, "binds", /*volume_source=*/false, &container.binds));
  CAIRN_RETURN_IF_ERROR(ReadEnumField(map, "state", {"running", "stopped"}, &container.state));
  return container;
}

// Reads one section: a list of mappings with known fields, each through read.
template <typename Decl, typename Read>
Result<std::vector<Located<Decl>>> ReadSection(const YamlValue& value, const std::vector<std::string_view>& fields,
                                                Read read) {
  std::vector<Located<Decl>> out;
  if (value.IsNull()) return out;
  CAIRN_ASSIGN_OR_RETURN(auto items, value.List());
  for (const YamlValue& item : items) {
    CAIRN_ASSIGN_OR_RETURN(YamlMap map, item.Map(fields));
    CAIRN_ASSIGN_OR_RETURN(Decl decl, read(map));
    out.push_back({std::move(decl), std::move(map)});
  }
  return out;
}

// ---- cross-checks -------------------------------------------------------------------------------------

template <typename Decl, typename NameOf>
Status CheckUnique(const std::vector<Located<Decl>>& items, std::string_view what, std::string_view key, NameOf name_of) {
  std::map<std::string, const Located<Decl>*> seen;
  for (const auto& item : items) {
    auto [it, fresh] = seen.emplace(name_of(item.decl), &item);
    if (!fresh) {
      return item.map.KeyError(key, std::string(what) + " " + Quoted(it->first) + " is declared twice (first at " +
                                        it->second->map.self().location().ToString() + ")");
    }
  }
  return Status::Ok();
}

template <typename Decl>
std::vector<std::string> Names(const std::vector<Located<Decl>>& items) {
  std::vector<std::string> names;
  for (const auto& item : items) names.push_back(item.decl.name);
  return names;
}

// `name` must be among `known` (a declared section); the error suggests the closest.
Status CheckReference(const YamlMap& map, std::string_view key, const std::string& name, std::string_view what,
                      const std::vector<std::string>& known) {
  if (std::find(known.begin(), known.end(), name) != known.end()) return Status::Ok();
  std::vector<std::string_view> candidates(known.begin(), known.end());
  std::string closest = config::ClosestName(name, candidates);
  return map.KeyError(key, "no " + std::string(what) + " " + Quoted(name) + " is declared in this file" +
                               (closest.empty() ? "" : "; did you mean " + Quoted(closest) + "?"));
}

struct Sections {
  std::optional<std::vector<Located<HostDecl>>> hosts;
  std::optional<std::vector<Located<VolumeDecl>>> volumes;
  std::optional<std::vector<Located<MountDecl>>> mounts;
  std::optional<std::vector<Located<ImageDecl>>> images;
  std::optional<std::vector<Located<ContainerDecl>>> containers;
};

Status CheckHostsAndBricks(const Sections& s) {
  if (!s.hosts || !s.volumes) return Status::Ok();
  std::vector<std::string> storage;
  for (const auto& host : *s.hosts) {
    if (std::count(host.decl.roles.begin(), host.decl.roles.end(), "storage") > 0) storage.push_back(host.decl.name);
  }
  for (const auto& volume : *s.volumes) {
    for (const std::string& brick : volume.decl.bricks) {
      auto parsed = volume::ParseBrick(brick);
      if (!parsed.ok()) continue;  // reported while reading
      if (std::find(storage.begin(), storage.end(), parsed->host()) != storage.end()) continue;
      bool declared = std::any_of(s.hosts->begin(), s.hosts->end(), [&](const auto& h) { return h.decl.name == parsed->host(); });
      if (declared) return volume.map.KeyError("bricks", "brick " + Quoted(brick) + ": host " + parsed->host() + " does not have the storage role");
      CAIRN_RETURN_IF_ERROR(CheckReference(volume.map, "bricks", parsed->host(), "host", Names(*s.hosts)));
    }
  }
  return Status::Ok();
}

Status CheckReferences(const Sections& s) {
  CAIRN_RETURN_IF_ERROR(CheckHostsAndBricks(s));
  if (s.mounts) {
    for (const auto& mount : *s.mounts) {
      if (s.hosts) CAIRN_RETURN_IF_ERROR(CheckReference(mount.map, "host", mount.decl.host, "host", Names(*s.hosts)));
      if (s.volumes) CAIRN_RETURN_IF_ERROR(CheckReference(mount.map, "volume", mount.decl.volume, "volume", Names(*s.volumes)));
    }
  }
  if (s.images) {
    for (const auto& image : *s.images) {
      if (!image.decl.parent.empty()) CAIRN_RETURN_IF_ERROR(CheckReference(image.map, "parent", image.decl.parent, "image", Names(*s.images)));
    }
  }
  if (s.containers) {
    for (const auto& container : *s.containers) {
      if (s.hosts) CAIRN_RETURN_IF_ERROR(CheckReference(container.map, "host", container.decl.host, "host", Names(*s.hosts)));
      if (s.images) CAIRN_RETURN_IF_ERROR(CheckReference(container.map, "image", container.decl.image, "image", Names(*s.images)));
      if (!s.volumes) continue;
      for (const std::string& entry : container.decl.volumes) {
        CAIRN_RETURN_IF_ERROR(CheckReference(container.map, "volumes", entry.substr(0, entry.find(':')), "volume", Names(*s.volumes)));
      }
    }
  }
  return Status::Ok();
}

Status CheckDuplicates(const Sections& s) {
  auto by_name = [](const auto& decl) { return decl.name; };
  if (s.hosts) CAIRN_RETURN_IF_ERROR(CheckUnique(*s.hosts, "host", "name", by_name));
  if (s.volumes) CAIRN_RETURN_IF_ERROR(CheckUnique(*s.volumes, "volume", "name", by_name));
  if (s.mounts) CAIRN_RETURN_IF_ERROR(CheckUnique(*s.mounts, "mount", "path", [](const MountDecl& m) { return m.Name(); }));
  if (s.images) CAIRN_RETURN_IF_ERROR(CheckUnique(*s.images, "image", "name", by_name));
  if (s.containers) CAIRN_RETURN_IF_ERROR(CheckUnique(*s.containers, "container", "name", by_name));
  return Status::Ok();
}

// "FILE:LINE:COLUMN: containers[1].host" for a key of an item's map.
std::string KeyPlace(const YamlMap& map, std::string_view key) {
  return map.KeyLocation(key).ToString() + ": " + map.self().path() + "." + std::string(key);
}

// Records where the fields of images and containers are (SourceMap), for apply's checks against
// the store.
void RecordPlaces(const Sections& s, SourceMap* where) {
  if (where == nullptr) return;
  if (s.images) {
    for (const auto& image : *s.images) {
      for (std::string_view key : kImageFields) where->Add(Kind::kImage, image.decl.name, key, KeyPlace(image.map, key));
    }
  }
  if (!s.containers) return;
  for (const auto& container : *s.containers) {
    for (std::string_view key : kContainerFields) {
      where->Add(Kind::kContainer, container.decl.name, key, KeyPlace(container.map, key));
    }
    auto volumes = container.map.Get("volumes");
    auto items = volumes ? volumes->List() : Result<std::vector<YamlValue>>(std::vector<YamlValue>{});
    if (!items.ok()) continue;
    for (const YamlValue& item : *items) {
      auto text = item.String();
      if (text.ok()) where->Add(Kind::kContainer, container.decl.name, "volumes:" + *text, item.location().ToString() + ": " + item.path());
    }
  }
}

template <typename Decl>
std::vector<Decl> Decls(const std::optional<std::vector<Located<Decl>>>& items) {
  std::vector<Decl> out;
  if (items) {
    for (const auto& item : *items) out.push_back(item.decl);
  }
  return out;
}

}  // namespace

Result<ClusterSpec> ParseClusterSpec(std::string_view text, std::string_view filename, SourceMap* where) {
  CAIRN_ASSIGN_OR_RETURN(YamlValue root, config::ParseYaml(text, filename));
  if (root.IsNull()) return root.Error("the file is empty; expected a mapping with " + JoinWords(kTopFields, ", "));
  CAIRN_ASSIGN_OR_RETURN(YamlMap top, root.Map(kTopFields));
  auto null_value = [&](std::string_view key) { return YamlValue(YAML::Node(), std::string(key), top.KeyLocation(key)); };
  auto section = [&](std::string_view key) { return top.Get(key).value_or(null_value(key)); };
  Sections s;
  if (top.Has("hosts")) {
    CAIRN_ASSIGN_OR_RETURN(s.hosts, ReadSection<HostDecl>(section("hosts"), kHostFields, ReadHost));
  }
  if (top.Has("volumes")) {
    CAIRN_ASSIGN_OR_RETURN(s.volumes, ReadSection<VolumeDecl>(section("volumes"), kVolumeFields, ReadVolume));
  }
  if (top.Has("mounts")) {
    CAIRN_ASSIGN_OR_RETURN(s.mounts, ReadSection<MountDecl>(section("mounts"), kMountFields, ReadMount));
  }
  if (top.Has("images")) {
    CAIRN_ASSIGN_OR_RETURN(s.images, ReadSection<ImageDecl>(section("images"), kImageFields, ReadImage));
  }
  if (top.Has("containers")) {
    CAIRN_ASSIGN_OR_RETURN(s.containers, ReadSection<ContainerDecl>(section("containers"), kContainerFields, ReadContainer));
  }
  CAIRN_RETURN_IF_ERROR(CheckDuplicates(s));
  CAIRN_RETURN_IF_ERROR(CheckReferences(s));
  RecordPlaces(s, where);
  ClusterSpec spec;
  spec.hosts = Decls(s.hosts);
  spec.volumes = Decls(s.volumes);
  spec.mounts = Decls(s.mounts);
  spec.images = Decls(s.images);
  spec.containers = Decls(s.containers);
  if (s.hosts) spec.present.insert(Kind::kHost);
  if (s.volumes) spec.present.insert(Kind::kVolume);
  if (s.mounts) spec.present.insert(Kind::kMount);
  if (s.images) spec.present.insert(Kind::kImage);
  if (s.containers) spec.present.insert(Kind::kContainer);
  spec.Normalize();
  return spec;
}

Result<ClusterSpec> LoadClusterSpec(const std::string& path, SourceMap* where) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, config::ReadConfigFile(path));
  return ParseClusterSpec(text, path, where);
}

}  // namespace cairn::clusterspec
