#include "cairn/containers/containers.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace cairn::containers {
namespace {

int64_t UnixNow(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.WallNow().time_since_epoch()).count();
}

}  // namespace

std::string DefaultHostName() {
  const char* env = std::getenv("CAIRN_HOST");
  if (env != nullptr && *env != '\0') return env;
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

ContainerService::ContainerService(Registry& registry, ImageStore& images, LxcRuntime& runtime, std::string host,
                                   const Clock& clock)
    : registry_(registry), images_(images), runtime_(runtime), host_(std::move(host)), clock_(clock) {}

ContainerSpec ContainerService::SpecOf(const ContainerRecord& record) const {
  ContainerSpec spec;
  spec.name = record.name();
  spec.layers.assign(record.layers().begin(), record.layers().end());
  spec.read_only = record.read_only();
  return spec;
}

Result<ContainerRecord> ContainerService::Create(const CreateOptions& options, std::chrono::seconds timeout) {
  CAIRN_RETURN_IF_ERROR(ValidateName("container", options.name));
  if (!options.host.empty() && options.host != host_) {
    return FailedPreconditionError("container " + options.name + " is placed on host " + options.host +
                                   "; create it there (this host is " + host_ +
                                   "; placement through the supervisors is not wired yet)");
  }
  ContainerSpec spec;
  spec.name = options.name;
  spec.network = options.network;
  if (spec.network != "empty" && spec.network.rfind("veth:", 0) != 0) {
    return InvalidArgumentError("--network " + spec.network + ": use empty or veth:BRIDGE");
  }
  for (const std::string& text : options.binds) {
    CAIRN_ASSIGN_OR_RETURN(BindMount bind, ParseBind(text));
    spec.binds.push_back(bind);
  }
  std::string image;
  CAIRN_RETURN_IF_ERROR(ResolveLayers(options, &spec, &image));
  ContainerRecord record;
  record.set_name(options.name);
  record.set_host(host_);
  record.set_image(image);
  record.set_rootfs_from(options.rootfs_from);
  record.set_read_only(options.read_only);
  record.set_state("created");
  record.set_created_unix(UnixNow(clock_));
  record.set_container_dir(runtime_.ContainerDir(options.name));
  for (const BindMount& bind : spec.binds) record.add_binds(BindText(bind));
  for (const std::string& layer : spec.layers) record.add_layers(layer);
  Status claimed = registry_.Create(kContainerPrefix + options.name, ToJson(record));
  if (claimed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("container " + options.name + " already exists (clusterctl container list)");
  }
  CAIRN_RETURN_IF_ERROR(claimed);
  Status prepared = runtime_.Prepare(spec);
  Status made = prepared.ok() ? runtime_.MountRootfs(spec, timeout) : prepared;
  if (!made.ok()) {
    // Leave a directory that was there before alone: it belongs to something else.
    if (prepared.ok()) (void)runtime_.Destroy(options.name);
    (void)registry_.Delete(kContainerPrefix + options.name);
    return made;
  }
  return record;
}

Status ContainerService::ResolveLayers(const CreateOptions& options, ContainerSpec* spec, std::string* image) {
  spec->read_only = options.read_only;
  if (options.rootfs_from.empty()) {
    if (options.image.empty()) return InvalidArgumentError("give --image IMAGE (or --rootfs-from CONTAINER)");
    *image = options.image;
    CAIRN_ASSIGN_OR_RETURN(spec->layers, images_.LayerDirectories(options.image));
    return Status::Ok();
  }
  if (!options.image.empty()) return InvalidArgumentError("give --image or --rootfs-from, not both");
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord base, LocalRecord(options.rootfs_from));
  *image = base.image();
  if (!base.read_only()) spec->layers.push_back(runtime_.UpperDir(base.name()));
  spec->layers.insert(spec->layers.end(), base.layers().begin(), base.layers().end());
  return Status::Ok();
}

Result<ContainerRecord> ContainerService::LocalRecord(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record, GetContainer(registry_, name));
  if (!record) return NotFoundError("container " + name + " does not exist (clusterctl container list)");
  if (record->host() != host_) {
    return FailedPreconditionError("container " + name + " runs on host " + record->host() + ", this is " + host_ +
                                   " (LXC manages a container only from the host that started it)");
  }
  return *record;
}

Status ContainerService::SaveState(ContainerRecord record, const std::string& state, const std::string& error) {
  record.set_state(state);
  record.set_error(error);
  return registry_.Put(kContainerPrefix + record.name(), ToJson(record));
}

Status ContainerService::Start(const std::string& name, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(name));
  CAIRN_RETURN_IF_ERROR(runtime_.MountRootfs(SpecOf(record), timeout));
  Status started = runtime_.Start(name, timeout);
  if (!started.ok()) {
    (void)SaveState(record, "failed", started.message());
    return started;
  }
  return SaveState(record, "running", "");
}

Status ContainerService::Stop(const std::string& name, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(name));
  CAIRN_RETURN_IF_ERROR(runtime_.Stop(name, timeout));
  return SaveState(record, "stopped", "");
}

Result<ExecResult> ContainerService::Exec(const std::string& name, const std::vector<std::string>& argv) {
  CAIRN_RETURN_IF_ERROR(LocalRecord(name).status());
  if (!runtime_.RootfsAlive(name)) {
    return FailedPreconditionError("the union under " + name + "'s root is gone; stop and start the container");
  }
  return runtime_.Exec(name, argv);
}

ContainerStatus ContainerService::Measure(const ContainerRecord& record) {
  ContainerStatus status;
  status.record = record;
  status.local = record.host() == host_;
  if (!status.local) return status;
  status.live_state = runtime_.State(record.name()).value_or("MISSING");
  status.rootfs_alive = runtime_.RootfsAlive(record.name());
  status.writable = MeasureTree(runtime_.UpperDir(record.name())).value_or(TreeStats{});
  return status;
}

Result<ContainerStatus> ContainerService::Show(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record, GetContainer(registry_, name));
  if (!record) return NotFoundError("container " + name + " does not exist (clusterctl container list)");
  return Measure(*record);
}

Result<std::vector<ContainerStatus>> ContainerService::List() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ContainerRecord> records, ListContainers(registry_));
  std::vector<ContainerStatus> list;
  for (const ContainerRecord& record : records) list.push_back(Measure(record));
  return list;
}

Result<std::string> ContainerService::Logs(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(LocalRecord(name).status());
  std::ifstream in(runtime_.ConsoleLog(name));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status ContainerService::Remove(const std::string& name, bool force, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(name));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ContainerRecord> all, ListContainers(registry_));
  for (const ContainerRecord& other : all) {
    if (other.rootfs_from() == name) {
      return FailedPreconditionError("container " + other.name() + " layers over " + name + "'s root; remove it first");
    }
  }
  Result<std::string> state = runtime_.State(name);
  if (state.ok() && *state != "STOPPED") {
    if (!force) return FailedPreconditionError("container " + name + " is " + *state + "; stop it first or use --force");
    CAIRN_RETURN_IF_ERROR(runtime_.Stop(name, timeout));
  }
  CAIRN_RETURN_IF_ERROR(runtime_.Destroy(name));
  return registry_.Delete(kContainerPrefix + name);
}

Result<std::vector<std::string>> ReconcileHost(ContainerService& service, LxcRuntime& runtime, Registry& registry) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ContainerRecord> records, ListContainers(registry));
  std::vector<std::string> changes;
  for (ContainerRecord& record : records) {
    if (record.host() != service.host() || record.state() != "running") continue;
    std::string live = runtime.State(record.name()).value_or("MISSING");
    std::string state, error;
    if (live == "RUNNING" && !runtime.RootfsAlive(record.name())) {
      (void)runtime.Stop(record.name(), std::chrono::seconds(0));
      state = "failed";
      error = "union process died; container stopped";
    } else if (live != "RUNNING") {
      state = "stopped";
      error = "stopped by itself (LXC state " + live + ")";
    } else {
      continue;
    }
    record.set_state(state);
    record.set_error(error);
    CAIRN_RETURN_IF_ERROR(registry.Put(kContainerPrefix + record.name(), ToJson(record)));
    changes.push_back(record.name() + ": " + error);
  }
  return changes;
}

}  // namespace cairn::containers
