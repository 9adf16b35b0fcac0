#include "cairn/containers/containers.h"

#include <sys/stat.h>
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

CreateOptions OptionsOf(const ContainerRecord& record) {
  CreateOptions options;
  options.name = record.name();
  options.image = record.rootfs_from().empty() ? record.image() : "";
  options.host = record.host();
  options.binds.assign(record.binds().begin(), record.binds().end());
  options.network = record.network().empty() ? "empty" : record.network();
  options.rootfs_from = record.rootfs_from();
  options.read_only = record.read_only();
  options.init = record.init();
  options.volumes.assign(record.volumes().begin(), record.volumes().end());
  options.unions.assign(record.unions().begin(), record.unions().end());
  return options;
}

Result<std::vector<UnionMount>> ContainerService::ResolveUnions(const std::vector<std::string>& texts) {
  std::vector<UnionMount> unions;
  for (const std::string& text : texts) {
    size_t last = text.rfind(':');
    UnionMount mount;
    mount.path = last == std::string::npos ? "" : text.substr(last + 1);
    if (mount.path.empty() || mount.path[0] != '/' || mount.path == "/" || mount.path.find("..") != std::string::npos ||
        mount.path.find_first_of(" \t\n") != std::string::npos) {
      return InvalidArgumentError("--union " + text + ": expected C1:/dir,C2:/dir:/path (absolute path in the container)");
    }
    std::istringstream sources(text.substr(0, last));
    for (std::string source; std::getline(sources, source, ',');) {
      size_t colon = source.find(':');
      std::string container = colon == std::string::npos ? "" : source.substr(0, colon);
      std::string dir = colon == std::string::npos ? "" : source.substr(colon + 1);
      if (container.empty() || dir.empty() || dir[0] != '/' || dir.find("..") != std::string::npos) {
        return InvalidArgumentError("--union " + text + ": each source is CONTAINER:/dir");
      }
      CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(container));
      std::string root = record.container_dir() + "/rootfs";
      if (!runtime_.RootfsAlive(container)) {
        return FailedPreconditionError("container " + container + "'s root is not mounted; start it first");
      }
      struct stat st;
      std::string host_dir = root + dir;
      if (stat(host_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NotFoundError("--union " + text + ": container " + container + " has no directory " + dir);
      }
      mount.sources.push_back(host_dir);
    }
    if (mount.sources.empty()) return InvalidArgumentError("--union " + text + ": no source");
    unions.push_back(mount);
  }
  return unions;
}

Result<ContainerSpec> ContainerService::Plan(const CreateOptions& options, ContainerRecord* record) {
  CAIRN_RETURN_IF_ERROR(ValidateName("container", options.name));
  if (!options.host.empty() && options.host != host_) {
    return FailedPreconditionError("container " + options.name + " is placed on host " + options.host +
                                   "; this host is " + host_ + " (clusterctl container create --host " + options.host +
                                   " hands it to that host's clusterd)");
  }
  ContainerSpec spec;
  spec.name = options.name;
  spec.network = options.network.empty() ? "empty" : options.network;
  CAIRN_RETURN_IF_ERROR(ValidateNetwork(spec.network));
  if (!options.init.empty()) {
    CAIRN_RETURN_IF_ERROR(ValidateInit(options.init));
    spec.init = options.init;
  }
  for (const std::string& text : options.binds) {
    CAIRN_ASSIGN_OR_RETURN(BindMount bind, ParseBind(text));
    spec.binds.push_back(bind);
  }
  for (const std::string& text : options.volumes) {
    CAIRN_ASSIGN_OR_RETURN(VolumeUse use, ParseVolumeUse(text));
    CAIRN_RETURN_IF_ERROR(CheckVolumeStarted(registry_, use.volume));
    record->add_volumes(VolumeUseText(use));
  }
  CAIRN_ASSIGN_OR_RETURN(spec.unions, ResolveUnions(options.unions));
  for (const std::string& text : options.unions) record->add_unions(text);
  std::string image;
  CAIRN_RETURN_IF_ERROR(ResolveLayers(options, &spec, &image));
  record->set_name(options.name);
  record->set_host(host_);
  record->set_image(image);
  record->set_rootfs_from(options.rootfs_from);
  record->set_read_only(options.read_only);
  record->set_init(options.init);
  record->set_network(spec.network);
  record->set_created_unix(UnixNow(clock_));
  record->set_container_dir(runtime_.ContainerDir(options.name));
  record->clear_binds();
  record->clear_layers();
  for (const BindMount& bind : spec.binds) record->add_binds(BindText(bind));
  for (const std::string& layer : spec.layers) record->add_layers(layer);
  return spec;
}

Status ContainerService::MountVolumes(const std::vector<std::string>& volumes, std::chrono::seconds timeout,
                                      std::vector<BindMount>* binds) {
  for (const std::string& text : volumes) {
    CAIRN_ASSIGN_OR_RETURN(VolumeUse use, ParseVolumeUse(text));
    CAIRN_ASSIGN_OR_RETURN(std::string dir, EnsureVolumeMounted(volume_mounting_, use.volume, timeout));
    if (binds != nullptr) binds->push_back(BindMount{dir, use.path, use.read_only});
  }
  return Status::Ok();
}

Status ContainerService::Build(ContainerSpec spec, const std::vector<std::string>& volumes,
                               std::chrono::seconds timeout) {
  // Volume mounts stay even when a later step fails: they are this host's, shared by containers.
  CAIRN_RETURN_IF_ERROR(MountVolumes(volumes, timeout, &spec.binds));
  Status prepared = runtime_.Prepare(spec);
  Status made = prepared.ok() ? runtime_.MountUnions(spec, timeout) : prepared;
  if (made.ok()) made = runtime_.MountRootfs(spec, timeout);
  // Leave a directory that was there before alone: it belongs to something else.
  if (!made.ok() && prepared.ok()) (void)runtime_.Destroy(spec.name);
  return made;
}

Result<ContainerRecord> ContainerService::Create(const CreateOptions& options, std::chrono::seconds timeout) {
  ContainerRecord record;
  CAIRN_ASSIGN_OR_RETURN(ContainerSpec spec, Plan(options, &record));
  record.set_state("created");
  Status claimed = registry_.Create(kContainerPrefix + options.name, ToJson(record));
  if (claimed.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("container " + options.name + " already exists (clusterctl container list)");
  }
  CAIRN_RETURN_IF_ERROR(claimed);
  std::vector<std::string> volumes(record.volumes().begin(), record.volumes().end());
  Status made = Build(spec, volumes, timeout);
  if (!made.ok()) {
    (void)registry_.Delete(kContainerPrefix + options.name);
    return made;
  }
  return record;
}

Status ContainerService::Materialize(const std::string& name, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord placed, LocalRecord(name));
  ContainerRecord planned;
  CAIRN_ASSIGN_OR_RETURN(ContainerSpec spec, Plan(OptionsOf(placed), &planned));
  std::vector<std::string> volumes(planned.volumes().begin(), planned.volumes().end());
  CAIRN_RETURN_IF_ERROR(Build(spec, volumes, timeout));
  Status saved = UpdateContainer(registry_, name, [&](ContainerRecord& record) {
    record.set_image(planned.image());
    record.set_container_dir(planned.container_dir());
    // binds stay as the operator wrote them (the config has them resolved), so the record reads
    // back as it was declared (clusterctl get -o yaml round-trips with apply).
    record.mutable_layers()->CopyFrom(planned.layers());
    record.set_network(planned.network());
    record.set_state("created");
    record.set_error("");
    return Status::Ok();
  });
  if (!saved.ok()) (void)runtime_.Destroy(name);
  return saved;
}

Status ContainerService::ResolveLayers(const CreateOptions& options, ContainerSpec* spec, std::string* image) {
  spec->read_only = options.read_only;
  if (options.rootfs_from.empty()) {
    if (options.image.empty()) return InvalidArgumentError("give --image IMAGE (or --rootfs-from CONTAINER)");
    *image = options.image;
    if (!image_volume_.empty()) {
      CAIRN_RETURN_IF_ERROR(EnsureVolumeMounted(volume_mounting_, image_volume_, std::chrono::seconds(30)).status());
    }
    CAIRN_RETURN_IF_ERROR(images_.VerifyBeforeUse(options.image));
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

Status ContainerService::SaveState(const std::string& name, const std::string& state, const std::string& error) {
  return UpdateContainer(registry_, name, [&](ContainerRecord& record) {
    record.set_state(state);
    record.set_error(error);
    return Status::Ok();
  });
}

Status ContainerService::Start(const std::string& name, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(name));
  // After a reboot or a crash the volume mounts and the union may be gone: mount them again.
  std::vector<std::string> volumes(record.volumes().begin(), record.volumes().end());
  if (!image_volume_.empty()) volumes.push_back(image_volume_ + ":/unused");  // the layers' volume
  CAIRN_RETURN_IF_ERROR(MountVolumes(volumes, timeout, nullptr));
  ContainerSpec spec = SpecOf(record);
  CAIRN_ASSIGN_OR_RETURN(spec.unions,
                         ResolveUnions(std::vector<std::string>(record.unions().begin(), record.unions().end())));
  CAIRN_RETURN_IF_ERROR(runtime_.MountUnions(spec, timeout));
  CAIRN_RETURN_IF_ERROR(runtime_.MountRootfs(spec, timeout));
  Status started = runtime_.Start(name, timeout);
  if (!started.ok()) {
    (void)SaveState(name, "failed", started.message());
    return started;
  }
  return SaveState(name, "running", "");
}

Status ContainerService::Stop(const std::string& name, std::chrono::seconds timeout) {
  CAIRN_ASSIGN_OR_RETURN(ContainerRecord record, LocalRecord(name));
  CAIRN_RETURN_IF_ERROR(runtime_.Stop(name, timeout));
  return SaveState(record.name(), "stopped", "");
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
  status.local = record.host() == host_ && record.container_dir() == runtime_.ContainerDir(record.name());
  status.ip = record.ip();
  if (!status.local) return status;
  status.ip = runtime_.Addresses(record.name());
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
    for (const std::string& text : other.unions()) {
      if (("," + text).find("," + name + ":") != std::string::npos) {
        return FailedPreconditionError("container " + other.name() + " has a --union over " + name + "; remove it first");
      }
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
    if (record.container_dir() != runtime.ContainerDir(record.name())) continue;  // another root's
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
    CAIRN_RETURN_IF_ERROR(UpdateContainer(registry, record.name(), [&](ContainerRecord& current) {
      current.set_state(state);
      current.set_error(error);
      return Status::Ok();
    }));
    changes.push_back(record.name() + ": " + error);
  }
  return changes;
}

}  // namespace cairn::containers
