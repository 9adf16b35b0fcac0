#include "cairn/clusterspec/records.h"

#include <google/protobuf/util/json_util.h>

#include "cairn/volume/layout.h"

namespace cairn::clusterspec {

namespace vpb = ::cairn::proto::volume;

std::string HostKey(std::string_view host) { return std::string(kHostsPrefix) + std::string(host); }
std::string HostMountsPrefix(std::string_view host) { return std::string(kMountsPrefix) + std::string(host) + "/"; }
std::string HostMountStatusPrefix(std::string_view host) {
  return std::string(kMountStatusPrefix) + std::string(host) + "/";
}
// The path is absolute, so "/cairn/mounts/" + host + path reads /cairn/mounts/host1/mnt/gv0.
std::string MountKey(std::string_view host, std::string_view path) {
  return std::string(kMountsPrefix) + std::string(host) + std::string(path);
}
std::string MountStatusKey(std::string_view host, std::string_view path) {
  return std::string(kMountStatusPrefix) + std::string(host) + std::string(path);
}

std::string RecordJson(const google::protobuf::Message& record) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(record, &json, options);
  return json;
}

Status ParseRecord(std::string_view key, std::string_view json, google::protobuf::Message* record) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // newer writers may add fields
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json), record, options);
  if (!status.ok()) {
    return CorruptionError("record " + std::string(key) + " does not parse: " + std::string(status.message()));
  }
  return Status::Ok();
}

HostRecord ToRecord(const HostDecl& host) {
  HostRecord record;
  record.set_name(host.name);
  record.set_address(host.address);
  for (const std::string& role : host.roles) record.add_roles(role);
  return record;
}

HostDecl FromRecord(const HostRecord& record) {
  HostDecl host;
  host.name = record.name();
  host.address = record.address();
  host.roles.assign(record.roles().begin(), record.roles().end());
  std::sort(host.roles.begin(), host.roles.end());
  return host;
}

MountRecord ToRecord(const MountDecl& mount) {
  MountRecord record;
  record.set_host(mount.host);
  record.set_volume(mount.volume);
  record.set_path(mount.path);
  record.set_options(mount.options);
  return record;
}

MountDecl FromRecord(const MountRecord& record) {
  return MountDecl{record.host(), record.volume(), record.path(), record.options()};
}

VolumeDecl FromVolumeSpec(const vpb::VolumeSpec& spec) {
  VolumeDecl volume;
  volume.name = spec.name();
  volume.replica = spec.replica_count();
  for (const vpb::ReplicaSetSpec& set : spec.sets()) {
    for (const vpb::Brick& brick : set.bricks()) volume.bricks.push_back(volume::BrickId(brick));
  }
  volume.type = VolumeTypeFor(volume.replica, volume.bricks.size());
  volume.no_quorum = NoQuorumName(spec.options().no_quorum());
  volume.state = spec.state() == vpb::VOLUME_STARTED ? "started" : "stopped";
  return volume;
}

Result<vpb::NoQuorumPolicy> ParseNoQuorum(std::string_view text) {
  if (text == "eio") return vpb::NO_QUORUM_EIO;
  if (text == "readonly") return vpb::NO_QUORUM_READONLY;
  return InvalidArgumentError("no_quorum \"" + std::string(text) + "\" is not eio or readonly");
}

std::string NoQuorumName(vpb::NoQuorumPolicy policy) { return policy == vpb::NO_QUORUM_READONLY ? "readonly" : "eio"; }

std::string ImageSourceFromRecord(std::string_view record_source, std::string_view parent) {
  if (!parent.empty() && record_source.starts_with("build:")) return "dir:" + std::string(record_source.substr(6));
  // `image build-busybox` records which busybox binary it used; the file says only "busybox".
  if (record_source == "busybox" || record_source.starts_with("busybox:")) return "busybox";
  return std::string(record_source);
}

std::string ContainerStateFromRecord(std::string_view record_state) {
  return record_state == "running" ? "running" : "stopped";
}

}  // namespace cairn::clusterspec
