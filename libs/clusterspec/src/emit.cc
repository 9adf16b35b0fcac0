// ClusterSpec -> cluster.yaml text (yaml-cpp's emitter quotes what needs quoting) and JSON.
#include <yaml-cpp/yaml.h>

#include "cairn/clusterspec/spec.h"

namespace cairn::clusterspec {
namespace {

void EmitList(YAML::Emitter& out, const std::vector<std::string>& items) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const std::string& item : items) out << item;
  out << YAML::EndSeq;
}

void EmitHosts(YAML::Emitter& out, const ClusterSpec& spec) {
  out << YAML::BeginSeq;
  for (const HostDecl& host : spec.hosts) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << host.name;
    if (!host.address.empty()) out << YAML::Key << "address" << YAML::Value << host.address;
    out << YAML::Key << "roles" << YAML::Value;
    EmitList(out, host.roles);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitVolumes(YAML::Emitter& out, const ClusterSpec& spec) {
  out << YAML::BeginSeq;
  for (const VolumeDecl& volume : spec.volumes) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << volume.name;
    out << YAML::Key << "type" << YAML::Value << volume.type;
    out << YAML::Key << "replica" << YAML::Value << volume.replica;
    out << YAML::Key << "bricks" << YAML::Value << YAML::BeginSeq;
    for (const std::string& brick : volume.bricks) out << brick;
    out << YAML::EndSeq;
    out << YAML::Key << "options" << YAML::Value << YAML::BeginMap << YAML::Key << "no_quorum" << YAML::Value
        << volume.no_quorum << YAML::EndMap;
    out << YAML::Key << "state" << YAML::Value << volume.state << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitMounts(YAML::Emitter& out, const ClusterSpec& spec) {
  out << YAML::BeginSeq;
  for (const MountDecl& mount : spec.mounts) {
    out << YAML::BeginMap << YAML::Key << "host" << YAML::Value << mount.host;
    out << YAML::Key << "volume" << YAML::Value << mount.volume;
    out << YAML::Key << "path" << YAML::Value << mount.path;
    if (!mount.options.empty()) out << YAML::Key << "options" << YAML::Value << mount.options;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitImages(YAML::Emitter& out, const ClusterSpec& spec) {
  out << YAML::BeginSeq;
  for (const ImageDecl& image : spec.images) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << image.name;
    out << YAML::Key << "source" << YAML::Value << image.source;
    if (!image.parent.empty()) out << YAML::Key << "parent" << YAML::Value << image.parent;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitContainers(YAML::Emitter& out, const ClusterSpec& spec) {
  out << YAML::BeginSeq;
  for (const ContainerDecl& container : spec.containers) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << container.name;
    out << YAML::Key << "image" << YAML::Value << container.image;
    out << YAML::Key << "host" << YAML::Value << container.host;
    if (!container.volumes.empty()) {
      out << YAML::Key << "volumes" << YAML::Value;
      EmitList(out, container.volumes);
    }
    if (!container.binds.empty()) {
      out << YAML::Key << "binds" << YAML::Value;
      EmitList(out, container.binds);
    }
    out << YAML::Key << "state" << YAML::Value << container.state << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void EmitSection(YAML::Emitter& out, const ClusterSpec& spec, Kind kind) {
  bool empty = false;
  switch (kind) {
    case Kind::kHost: empty = spec.hosts.empty(); break;
    case Kind::kVolume: empty = spec.volumes.empty(); break;
    case Kind::kMount: empty = spec.mounts.empty(); break;
    case Kind::kImage: empty = spec.images.empty(); break;
    case Kind::kContainer: empty = spec.containers.empty(); break;
  }
  out << YAML::Key << std::string(SectionName(kind)) << YAML::Value;
  if (empty) {
    out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    return;
  }
  switch (kind) {
    case Kind::kHost: EmitHosts(out, spec); break;
    case Kind::kVolume: EmitVolumes(out, spec); break;
    case Kind::kMount: EmitMounts(out, spec); break;
    case Kind::kImage: EmitImages(out, spec); break;
    case Kind::kContainer: EmitContainers(out, spec); break;
  }
}

std::string Json(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string JsonList(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + Json(items[i]);
  return out + "]";
}

std::string Field(std::string_view key, const std::string& json_value, bool first = false) {
  return (first ? "" : ",") + Json(key) + ":" + json_value;
}

std::string SectionJson(const ClusterSpec& spec, Kind kind) {
  std::vector<std::string> items;
  switch (kind) {
    case Kind::kHost:
      for (const HostDecl& h : spec.hosts) {
        items.push_back("{" + Field("name", Json(h.name), true) + Field("address", Json(h.address)) +
                        Field("roles", JsonList(h.roles)) + "}");
      }
      break;
    case Kind::kVolume:
      for (const VolumeDecl& v : spec.volumes) {
        items.push_back("{" + Field("name", Json(v.name), true) + Field("type", Json(v.type)) +
                        Field("replica", std::to_string(v.replica)) + Field("bricks", JsonList(v.bricks)) +
                        Field("options", "{" + Field("no_quorum", Json(v.no_quorum), true) + "}") +
                        Field("state", Json(v.state)) + "}");
      }
      break;
    case Kind::kMount:
      for (const MountDecl& m : spec.mounts) {
        items.push_back("{" + Field("host", Json(m.host), true) + Field("volume", Json(m.volume)) +
                        Field("path", Json(m.path)) + Field("options", Json(m.options)) + "}");
      }
      break;
    case Kind::kImage:
      for (const ImageDecl& i : spec.images) {
        items.push_back("{" + Field("name", Json(i.name), true) + Field("source", Json(i.source)) +
                        Field("parent", Json(i.parent)) + "}");
      }
      break;
    case Kind::kContainer:
      for (const ContainerDecl& c : spec.containers) {
        items.push_back("{" + Field("name", Json(c.name), true) + Field("image", Json(c.image)) +
                        Field("host", Json(c.host)) + Field("volumes", JsonList(c.volumes)) + Field("binds", JsonList(c.binds)) +
                        Field("state", Json(c.state)) + "}");
      }
      break;
  }
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
  return out + "]";
}

}  // namespace

std::string ToYaml(const ClusterSpec& spec) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (Kind kind : kAllKinds) {
    if (spec.Has(kind)) EmitSection(out, spec, kind);
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string ToJson(const ClusterSpec& spec) {
  std::string out = "{";
  bool first = true;
  for (Kind kind : kAllKinds) {
    if (!spec.Has(kind)) continue;
    out += Field(SectionName(kind), SectionJson(spec, kind), first);
    first = false;
  }
  return out + "}";
}

}  // namespace cairn::clusterspec
