#include "cairn/containers/placement.h"

#include <thread>

#include "cairn/containers/volumes.h"

namespace cairn::containers {
namespace {

// Only the shape: the host directory is checked by the agent on its host.
Status CheckBindSyntax(const std::string& text) {
  size_t colon = text.find(':');
  bool valid = colon != std::string::npos && colon > 0 && text[0] == '/' && colon + 1 < text.size() &&
               text[colon + 1] == '/';
  if (!valid) return InvalidArgumentError("--bind " + text + ": expected /HOSTDIR:/path[:ro|:rw]");
  return Status::Ok();
}

}  // namespace

Result<bool> AgentAlive(Registry& registry, const std::string& host) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, registry.Get(kAgentPrefix + host));
  return value.has_value();
}

Result<ContainerRecord> PlaceContainer(Registry& registry, ImageStore& images, const CreateOptions& options,
                                       bool start, const Clock& clock) {
  CAIRN_RETURN_IF_ERROR(ValidateName("container", options.name));
  if (options.host.empty()) return InvalidArgumentError("placement needs --host");
  CAIRN_RETURN_IF_ERROR(ValidateNetwork(options.network.empty() ? "empty" : options.network));
  if (!options.init.empty()) CAIRN_RETURN_IF_ERROR(ValidateInit(options.init));
  ContainerRecord record;
  if (options.rootfs_from.empty()) {
    if (options.image.empty()) return InvalidArgumentError("give --image IMAGE (or --rootfs-from CONTAINER)");
    CAIRN_RETURN_IF_ERROR(images.Get(options.image).status());
    record.set_image(options.image);
  } else {
    if (!options.image.empty()) return InvalidArgumentError("give --image or --rootfs-from, not both");
    CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> base, GetContainer(registry, options.rootfs_from));
    if (!base) return NotFoundError("container " + options.rootfs_from + " does not exist (clusterctl container list)");
    if (base->host() != options.host) {
      return FailedPreconditionError("container " + options.rootfs_from + " is on host " + base->host() +
                                     "; a container layered over it must be placed there too (--host " + base->host() + ")");
    }
    record.set_image(base->image());
  }
  for (const std::string& text : options.binds) CAIRN_RETURN_IF_ERROR(CheckBindSyntax(text));
  for (const std::string& text : options.volumes) {
    CAIRN_ASSIGN_OR_RETURN(VolumeUse use, ParseVolumeUse(text));
    CAIRN_RETURN_IF_ERROR(CheckVolumeStarted(registry, use.volume));
    record.add_volumes(VolumeUseText(use));
  }
  CAIRN_ASSIGN_OR_RETURN(bool alive, AgentAlive(registry, options.host));
  if (!alive) {
    return FailedPreconditionError("host " + options.host + " is down or runs no container agent (no " + kAgentPrefix +
                                   options.host + " heartbeat); start clusterd there, or pick another --host");
  }
  record.set_name(options.name);
  record.set_host(options.host);
  record.set_rootfs_from(options.rootfs_from);
  record.set_read_only(options.read_only);
  record.set_init(options.init);
  record.set_network(options.network.empty() ? "empty" : options.network);
  for (const std::string& text : options.binds) record.add_binds(text);
  for (const std::string& text : options.unions) record.add_unions(text);  // resolved by the agent
  record.set_created_unix(
      std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch()).count());
  record.set_state(kStatePending);
  record.set_desired(start ? kDesiredRunning : kDesiredCreated);
  record.set_generation(1);
  Status claimed = registry.Create(kContainerPrefix + options.name, ToJson(record));
  if (claimed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("container " + options.name + " already exists (clusterctl container list)");
  }
  CAIRN_RETURN_IF_ERROR(claimed);
  return record;
}

Result<uint64_t> RequestDesired(Registry& registry, const std::string& name, const std::string& desired,
                                int grace_seconds) {
  uint64_t generation = 0;
  CAIRN_RETURN_IF_ERROR(UpdateContainer(registry, name, [&](ContainerRecord& record) {
    if (record.desired().empty()) {
      return FailedPreconditionError("container " + name + " is run by clusterctl on host " + record.host() +
                                     ", not by its clusterd; run this there");
    }
    record.set_desired(desired);
    record.set_grace_seconds(grace_seconds);
    record.set_generation(record.generation() + 1);
    generation = record.generation();
    return Status::Ok();
  }));
  return generation;
}

Result<std::optional<ContainerRecord>> AwaitObserved(Registry& registry, const std::string& name, uint64_t generation,
                                                     std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string host;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record, GetContainer(registry, name));
    if (!record) return std::optional<ContainerRecord>();
    host = record->host();
    if (record->observed_generation() >= generation) return record;
    if (std::chrono::steady_clock::now() >= deadline) break;
    // Polling the store with a deadline: the agent reports through the record.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return DeadlineExceededError("host " + host + " did not act on container " + name + " within " +
                               std::to_string(timeout.count() / 1000) + " s (is clusterd running there?)");
}

}  // namespace cairn::containers
