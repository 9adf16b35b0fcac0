// clusterctl apply|diff|get|describe: the declarative cluster.yaml (docs/config.md, "cluster.yaml").
//
//   clusterctl apply -f FILE [--dry-run] [--prune] [--yes]
//   clusterctl diff -f FILE
//   clusterctl get [KIND [NAME]] [-o table|yaml|json]
//   clusterctl describe KIND NAME
//
// The file is parsed and validated offline (libs/clusterspec: FILE:LINE:COL errors), the current
// state is read from the store into the same model, and the plan between them is printed. apply
// then refuses the whole plan if any change is unsupported or a delete lacks --prune (nothing is
// written), asks before deleting things that hold data, and executes the changes in plan order
// through the functions the other verbs use: volume records (volume_records.h, libs/volume),
// mount and host records (clusterspec/records.h), images through ImageStore on this machine, and
// container records that the container's host agent converges (desired + generation).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "cairn/clusterspec/plan.h"
#include "cairn/clusterspec/records.h"
#include "cairn/clusterspec/spec.h"
#include "cairn/containers/busybox.h"
#include "cairn/etcdclient/etcdctl.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"
#include "commands.h"
#include "image_cli.h"
#include "store_client.h"
#include "volume_records.h"

namespace cairn::clusterctl {
namespace {

using clusterspec::Action;
using clusterspec::Change;
using clusterspec::ClusterSpec;
using clusterspec::Kind;
using clusterspec::Plan;
using etcdclient::EtcdClient;

// ---- reading the current state ----------------------------------------------------------------------

Result<std::vector<etcd::KeyValue>> RangePrefix(EtcdClient& client, std::string_view prefix) {
  etcd::RangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(etcdclient::PrefixRangeEnd(prefix));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client.Range(request));
  return std::vector<etcd::KeyValue>(response.kvs().begin(), response.kvs().end());
}

// A container record's `desired` field, read and written by name: the field is new in
// records.proto, and apply must build whether or not it is there yet (then `state` is used).
const google::protobuf::FieldDescriptor* Field(const google::protobuf::Message& record, const char* name) {
  return record.GetDescriptor()->FindFieldByName(name);
}

std::string DesiredOf(const containers::ContainerRecord& record) {
  const auto* field = Field(record, "desired");
  return field != nullptr ? record.GetReflection()->GetString(record, field) : "";
}

clusterspec::ContainerDecl ContainerFromRecord(const containers::ContainerRecord& record) {
  clusterspec::ContainerDecl container;
  container.name = record.name();
  container.image = record.image();
  container.host = record.host();
  container.binds.assign(record.binds().begin(), record.binds().end());
  if (const auto* field = Field(record, "volumes"); field != nullptr && field->is_repeated()) {
    const auto* reflection = record.GetReflection();
    for (int i = 0; i < reflection->FieldSize(record, field); ++i) {
      container.volumes.push_back(reflection->GetRepeatedString(record, field, i));
    }
  }
  std::string desired = DesiredOf(record);
  container.state = clusterspec::ContainerStateFromRecord(desired.empty() ? record.state() : desired);
  return container;
}

struct Current {
  ClusterSpec spec;                      // every kind present
  std::vector<std::string> problems;     // records that did not parse
};

Status ReadHosts(EtcdClient& client, Current* current) {
  CAIRN_ASSIGN_OR_RETURN(auto kvs, RangePrefix(client, clusterspec::kHostsPrefix));
  for (const etcd::KeyValue& kv : kvs) {
    clusterspec::HostRecord record;
    Status parsed = clusterspec::ParseRecord(kv.key(), kv.value(), &record);
    if (!parsed.ok()) {
      current->problems.push_back(parsed.message());
      continue;
    }
    current->spec.hosts.push_back(clusterspec::FromRecord(record));
  }
  return Status::Ok();
}

Status ReadMounts(EtcdClient& client, Current* current) {
  CAIRN_ASSIGN_OR_RETURN(auto kvs, RangePrefix(client, clusterspec::kMountsPrefix));
  for (const etcd::KeyValue& kv : kvs) {
    clusterspec::MountRecord record;
    Status parsed = clusterspec::ParseRecord(kv.key(), kv.value(), &record);
    if (!parsed.ok()) {
      current->problems.push_back(parsed.message());
      continue;
    }
    current->spec.mounts.push_back(clusterspec::FromRecord(record));
  }
  return Status::Ok();
}

Status ReadContainerKinds(containers::Registry& registry, Current* current) {
  CAIRN_ASSIGN_OR_RETURN(auto images, containers::ListImages(registry));
  for (const containers::ImageRecord& image : images) {
    current->spec.images.push_back(
        {image.name(), clusterspec::ImageSourceFromRecord(image.source(), image.parent()), image.parent()});
  }
  CAIRN_ASSIGN_OR_RETURN(auto records, containers::ListContainers(registry));
  for (const containers::ContainerRecord& record : records) {
    if (DesiredOf(record) == "removed") continue;  // on its way out: its host's agent removes it
    current->spec.containers.push_back(ContainerFromRecord(record));
  }
  return Status::Ok();
}

Result<Current> ReadCurrent(EtcdClient& client, containers::Registry& registry) {
  Current current;
  current.spec.present = {std::begin(clusterspec::kAllKinds), std::end(clusterspec::kAllKinds)};
  CAIRN_RETURN_IF_ERROR(ReadHosts(client, &current));
  CAIRN_ASSIGN_OR_RETURN(auto volumes, ReadAllVolumes(client, &current.problems));
  for (const VolumeView& view : volumes) current.spec.volumes.push_back(clusterspec::FromVolumeSpec(view.spec()));
  CAIRN_RETURN_IF_ERROR(ReadMounts(client, &current));
  CAIRN_RETURN_IF_ERROR(ReadContainerKinds(registry, &current));
  current.spec.Normalize();
  return current;
}

// ---- executing a plan -----------------------------------------------------------------------------

// Executes the changes of one plan against the store, one at a time. Not thread-safe.
class Applier {
 public:
  Applier(EtcdClient& client, containers::Registry& registry, const ClusterSpec& desired, std::string layer_root)
      : client_(client), registry_(registry), desired_(desired), layer_root_(std::move(layer_root)) {}

  Status Execute(const Change& change) {
    switch (change.kind) {
      case Kind::kHost: return Host(change);
      case Kind::kVolume: return Volume(change);
      case Kind::kMount: return Mount(change);
      case Kind::kImage: return Image(change);
      case Kind::kContainer: return Container(change);
    }
    return InternalError("unknown kind");
  }

 private:
  template <typename Decl>
  static const Decl& Find(const std::vector<Decl>& decls, const std::string& name) {
    for (const Decl& decl : decls) {
      if constexpr (std::is_same_v<Decl, clusterspec::MountDecl>) {
        if (decl.Name() == name) return decl;
      } else {
        if (decl.name == name) return decl;
      }
    }
    std::abort();  // the plan names only things of the desired spec for create/change
  }

  Status Put(const std::string& key, const std::string& value) {
    etcd::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    return client_.Put(request).status();
  }

  Status Delete(const std::string& key) {
    etcd::DeleteRangeRequest request;
    request.set_key(key);
    return client_.DeleteRange(request).status();
  }

  Status Host(const Change& change) {
    if (change.action == Action::kDelete) return Delete(clusterspec::HostKey(change.name));
    const auto& host = Find(desired_.hosts, change.name);
    return Put(clusterspec::HostKey(host.name), clusterspec::RecordJson(clusterspec::ToRecord(host)));
  }

  Status Mount(const Change& change) {
    if (change.action == Action::kDelete) {
      size_t colon = change.name.find(':');
      return Delete(clusterspec::MountKey(change.name.substr(0, colon), change.name.substr(colon + 1)));
    }
    const auto& mount = Find(desired_.mounts, change.name);
    return Put(clusterspec::MountKey(mount.host, mount.path), clusterspec::RecordJson(clusterspec::ToRecord(mount)));
  }

  Status Volume(const Change& change) {
    if (change.action == Action::kDelete) return DeleteVolume(change.name);
    const auto& decl = Find(desired_.volumes, change.name);
    if (change.action == Action::kCreate) return CreateVolume(decl);
    return UpdateVolume(client_, decl.name, [&](const vpb::VolumeSpec& spec) -> Result<vpb::VolumeSpec> {
             vpb::VolumeSpec next = spec;
             CAIRN_ASSIGN_OR_RETURN(auto policy, clusterspec::ParseNoQuorum(decl.no_quorum));
             next.mutable_options()->set_no_quorum(policy);
             bool started = next.state() == vpb::VOLUME_STARTED;
             if (started != (decl.state == "started")) {
               return volume::WithVolumeState(next, started ? vpb::VOLUME_STOPPED : vpb::VOLUME_STARTED);
             }
             return next;
           })
        .status();
  }

  Status CreateVolume(const clusterspec::VolumeDecl& decl) {
    volume::CreateVolumeRequest request;
    request.name = decl.name;
    request.replica_count = decl.replica;
    request.bricks = decl.bricks;
    CAIRN_ASSIGN_OR_RETURN(request.no_quorum, clusterspec::ParseNoQuorum(decl.no_quorum));
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, volume::CreateVolumeSpec(request));
    std::vector<std::string> problems;
    CAIRN_ASSIGN_OR_RETURN(auto volumes, ReadAllVolumes(client_, &problems));
    CAIRN_RETURN_IF_ERROR(CheckBricksNotInOtherVolumes(spec, volumes));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client_.Txn(volume::CreateVolumeTxn(spec)));
    if (!response.succeeded()) return AlreadyExistsError("volume " + decl.name + " was created by someone else meanwhile");
    if (decl.state != "started") return Status::Ok();
    return UpdateVolume(client_, decl.name, [](const vpb::VolumeSpec& current) {
             return volume::WithVolumeState(current, vpb::VOLUME_STARTED);
           })
        .status();
  }

  Status DeleteVolume(const std::string& name) {
    CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(client_, name));
    if (view.spec().state() == vpb::VOLUME_STARTED) {
      CAIRN_RETURN_IF_ERROR(UpdateVolume(client_, name, [](const vpb::VolumeSpec& current) {
                              return volume::WithVolumeState(current, vpb::VOLUME_STOPPED);
                            }).status());
      CAIRN_ASSIGN_OR_RETURN(view, ReadVolume(client_, name));
    }
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnRequest txn, volume::DeleteVolumeTxn(view.record));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client_.Txn(txn));
    if (!response.succeeded()) return AbortedError("volume " + name + " changed while it was being deleted; apply again");
    return Status::Ok();
  }

  containers::ImageStore& Images() {
    if (!images_) images_ = std::make_unique<containers::ImageStore>(registry_, layer_root_, clock_);
    return *images_;
  }

  Status Image(const Change& change) {
    if (change.action == Action::kDelete) return Images().Remove(change.name);
    const auto& image = Find(desired_.images, change.name);
    if (!image.parent.empty()) return Images().Build(image.name, image.parent, image.source.substr(4)).status();
    if (image.source == "busybox") return Images().BuildBusybox(image.name, containers::kDefaultBusybox).status();
    if (image.source.starts_with("dir:")) return Images().ImportDirectory(image.name, image.source.substr(4)).status();
    return Images().ImportTar(image.name, image.source.substr(4)).status();
  }

  // Sets `desired` and bumps `generation` when the record has them (the host's agent converges),
  // else writes the state itself.
  static void SetDesired(containers::ContainerRecord* record, const std::string& desired) {
    const auto* field = Field(*record, "desired");
    const auto* generation = Field(*record, "generation");
    if (field == nullptr || generation == nullptr) {
      record->set_state(desired);
      return;
    }
    const auto* reflection = record->GetReflection();
    reflection->SetString(record, field, desired);
    reflection->SetUInt64(record, generation, reflection->GetUInt64(*record, generation) + 1);
  }

  Status Container(const Change& change) {
    const std::string key = std::string(containers::kContainerPrefix) + change.name;
    if (change.action == Action::kCreate) return CreateContainer(Find(desired_.containers, change.name));
    CAIRN_ASSIGN_OR_RETURN(auto record, containers::GetContainer(registry_, change.name));
    if (!record) return change.action == Action::kDelete ? Status::Ok() : NotFoundError("container " + change.name + " is gone");
    if (change.action == Action::kDelete && Field(*record, "desired") == nullptr) return registry_.Delete(key);
    std::string desired = change.action == Action::kDelete ? "removed" : Find(desired_.containers, change.name).state;
    SetDesired(&*record, desired);
    return registry_.Put(key, containers::ToJson(*record));
  }

  Status CreateContainer(const clusterspec::ContainerDecl& decl) {
    containers::ContainerRecord record;
    record.set_name(decl.name);
    record.set_host(decl.host);
    record.set_image(decl.image);
    record.set_state("pending");
    record.set_created_unix(static_cast<int64_t>(std::time(nullptr)));
    for (const std::string& bind : decl.binds) record.add_binds(bind);
    if (const auto* field = Field(record, "volumes"); field != nullptr && field->is_repeated()) {
      for (const std::string& entry : decl.volumes) record.GetReflection()->AddString(&record, field, entry);
    } else if (!decl.volumes.empty()) {
      return FailedPreconditionError("this clusterctl cannot place containers with volumes (records.proto has no volumes field)");
    }
    SetDesired(&record, decl.state == "running" ? "running" : "created");
    return registry_.Create(std::string(containers::kContainerPrefix) + decl.name, containers::ToJson(record));
  }

  EtcdClient& client_;
  containers::Registry& registry_;
  const ClusterSpec& desired_;
  std::string layer_root_;
  RealClock clock_;
  std::unique_ptr<containers::ImageStore> images_;
};

// ---- apply / diff -----------------------------------------------------------------------------------

struct ApplyArgs {
  std::string file;
  bool dry_run = false;
  bool prune = false;
  bool yes = false;
  ContainerPaths paths;
};

// Hosts of the file that are not store members yet: a hint, not an error (they may join later).
void NoteMissingMembers(Context& context, EtcdClient& client, const ClusterSpec& desired) {
  if (!desired.Has(Kind::kHost)) return;
  auto members = MemberNames(client);
  if (!members.ok()) return;
  for (const auto& host : desired.hosts) {
    if (std::find(members->begin(), members->end(), host.name) == members->end()) {
      *context.err << "note: host " << host.name << " is not a member of the store yet; start its clusterd "
                   << "(node.yaml name: " << host.name << ") so it serves its bricks, mounts and containers\n";
    }
  }
}

// Why the plan cannot run as asked, or OK. Nothing has been written when this fails.
Status CheckRunnable(const Plan& plan, const ApplyArgs& args) {
  std::string problems;
  for (const Change* change : plan.Unsupported()) {
    problems += "\n  " + clusterspec::RenderChange(*change);
  }
  if (!problems.empty()) return FailedPreconditionError("the plan has changes apply cannot make; nothing was changed:" + problems);
  auto deletes = plan.Deletes();
  if (!deletes.empty() && !args.prune) {
    std::string names;
    for (const Change* change : deletes) names += "\n  " + clusterspec::RenderChange(*change);
    return FailedPreconditionError("the plan deletes what " + args.file +
                                   " does not list; nothing was changed. Run again with --prune to delete:" + names);
  }
  return Status::Ok();
}

// Deleting what holds data needs --yes, or "yes" typed at a terminal.
Status Confirm(Context& context, const Plan& plan, const ApplyArgs& args) {
  size_t data = 0;
  for (const Change* change : plan.Deletes()) data += change->holds_data ? 1 : 0;
  if (data == 0 || args.yes) return Status::Ok();
  if (!isatty(STDIN_FILENO)) {
    return FailedPreconditionError("the plan deletes " + std::to_string(data) +
                                   " thing(s) holding data; confirm with --yes (no terminal to ask); nothing was changed");
  }
  *context.out << "Delete " << data << " thing(s) holding data? Only 'yes' is accepted: ";
  context.out->flush();
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "yes") return AbortedError("not confirmed; nothing was changed");
  return Status::Ok();
}

Status Execute(Context& context, EtcdClient& client, containers::Registry& registry, const ClusterSpec& desired,
               const Plan& plan, const ApplyArgs& args) {
  Applier applier(client, registry, desired, args.paths.layer_root);
  size_t done = 0;
  for (const Change& change : plan.changes) {
    Status status = applier.Execute(change);
    if (!status.ok()) {
      return Status(status.code(), clusterspec::RenderChange(change) + ": " + status.message() + " (" +
                                       std::to_string(done) + " of " + std::to_string(plan.changes.size()) +
                                       " changes made; fix and apply again)");
    }
    ++done;
    if (!JsonOutput(context)) *context.out << "done: " << clusterspec::RenderChange(change) << "\n";
  }
  if (!JsonOutput(context)) {
    *context.out << "Apply complete: " << plan.Count(Action::kCreate) << " created, " << plan.Count(Action::kChange)
                 << " changed, " << plan.Count(Action::kDelete) << " deleted.\n";
  }
  return Status::Ok();
}

Status RunApply(Context& context, const ApplyArgs& args, bool plan_only) {
  CAIRN_ASSIGN_OR_RETURN(ClusterSpec desired, clusterspec::LoadClusterSpec(args.file));
  CAIRN_ASSIGN_OR_RETURN(auto client, MakeClient(context));
  containers::EtcdRegistry registry(*client);
  CAIRN_ASSIGN_OR_RETURN(Current current, ReadCurrent(*client, registry));
  for (const std::string& problem : current.problems) *context.err << "warning: " << problem << "\n";
  Plan plan = clusterspec::ComputePlan(desired, current.spec);
  if (JsonOutput(context)) {
    *context.out << plan.ToJson() << "\n";
  } else {
    *context.out << plan.Render();
  }
  NoteMissingMembers(context, *client, desired);
  if (plan_only || plan.empty()) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(CheckRunnable(plan, args));
  if (args.dry_run) {
    *context.out << "Dry run: nothing was changed.\n";
    return Status::Ok();
  }
  CAIRN_RETURN_IF_ERROR(Confirm(context, plan, args));
  return Execute(context, *client, registry, desired, plan, args);
}

// ---- get / describe -----------------------------------------------------------------------------------

struct GetArgs {
  std::string kind = "all";
  std::string name;
};

// Keeps only `kind` (all kinds for "all") and, with a name, only that object.
Result<ClusterSpec> Select(const ClusterSpec& all, const GetArgs& args) {
  if (args.kind == "all") {
    if (!args.name.empty()) return InvalidArgumentError("a NAME needs a KIND (e.g. clusterctl get volume " + args.name + ")");
    return all;
  }
  CAIRN_ASSIGN_OR_RETURN(Kind kind, clusterspec::ParseKind(args.kind));
  ClusterSpec out;
  out.present = {kind};
  auto keep = [&](const auto& items, auto& into, auto name_of) {
    for (const auto& item : items) {
      if (args.name.empty() || name_of(item) == args.name) into.push_back(item);
    }
  };
  auto by_name = [](const auto& item) { return item.name; };
  keep(all.hosts, out.hosts, by_name);
  keep(all.volumes, out.volumes, by_name);
  keep(all.images, out.images, by_name);
  keep(all.containers, out.containers, by_name);
  // A mount is named HOST:PATH, or picked by its path or volume alone.
  keep(all.mounts, out.mounts, [&](const clusterspec::MountDecl& m) {
    return args.name == m.path || args.name == m.volume ? args.name : m.Name();
  });
  size_t found = out.hosts.size() + out.volumes.size() + out.images.size() + out.containers.size() + out.mounts.size();
  if (!args.name.empty() && found == 0) {
    return NotFoundError("no " + std::string(clusterspec::KindName(kind)) + " " + args.name +
                         " (clusterctl get " + std::string(clusterspec::SectionName(kind)) + " lists them)");
  }
  if (kind != Kind::kHost) out.hosts.clear();
  if (kind != Kind::kVolume) out.volumes.clear();
  if (kind != Kind::kImage) out.images.clear();
  if (kind != Kind::kContainer) out.containers.clear();
  if (kind != Kind::kMount) out.mounts.clear();
  return out;
}

std::string Words(const std::vector<std::string>& items, const char* separator = ",") {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

void PrintTables(std::ostream& out, const ClusterSpec& spec) {
  bool first = true;
  auto table = [&](Kind kind, std::vector<std::vector<std::string>> rows) {
    if (!spec.Has(kind)) return;
    if (!first) out << "\n";
    first = false;
    out << clusterspec::SectionName(kind) << ":\n";
    if (rows.size() == 1) {
      out << "  (none)\n";
      return;
    }
    PrintTable(out, rows);
  };
  std::vector<std::vector<std::string>> rows{{"NAME", "ADDRESS", "ROLES"}};
  for (const auto& h : spec.hosts) rows.push_back({h.name, h.address, Words(h.roles)});
  table(Kind::kHost, rows);
  rows = {{"NAME", "TYPE", "REPLICA", "STATE", "NO_QUORUM", "BRICKS"}};
  for (const auto& v : spec.volumes) {
    rows.push_back({v.name, v.type, std::to_string(v.replica), v.state, v.no_quorum, Words(v.bricks, " ")});
  }
  table(Kind::kVolume, rows);
  rows = {{"HOST", "PATH", "VOLUME", "OPTIONS"}};
  for (const auto& m : spec.mounts) rows.push_back({m.host, m.path, m.volume, m.options});
  table(Kind::kMount, rows);
  rows = {{"NAME", "SOURCE", "PARENT"}};
  for (const auto& i : spec.images) rows.push_back({i.name, i.source, i.parent});
  table(Kind::kImage, rows);
  rows = {{"NAME", "IMAGE", "HOST", "STATE", "VOLUMES", "BINDS"}};
  for (const auto& c : spec.containers) rows.push_back({c.name, c.image, c.host, c.state, Words(c.volumes), Words(c.binds)});
  table(Kind::kContainer, rows);
}

Status RunGet(Context& context, const GetArgs& args) {
  CAIRN_ASSIGN_OR_RETURN(auto client, MakeClient(context));
  containers::EtcdRegistry registry(*client);
  CAIRN_ASSIGN_OR_RETURN(Current current, ReadCurrent(*client, registry));
  for (const std::string& problem : current.problems) *context.err << "warning: " << problem << "\n";
  CAIRN_ASSIGN_OR_RETURN(ClusterSpec selected, Select(current.spec, args));
  switch (context.globals.output_format()) {
    case OutputFormat::kYaml: *context.out << clusterspec::ToYaml(selected); break;
    case OutputFormat::kJson: *context.out << clusterspec::ToJson(selected) << "\n"; break;
    case OutputFormat::kTable: PrintTables(*context.out, selected); break;
  }
  return Status::Ok();
}

// What the store says about an object beyond its declaration (runtime state), as "key: value" lines.
void DescribeLive(Context& context, EtcdClient& client, const ClusterSpec& selected) {
  std::ostream& out = *context.out;
  for (const auto& volume : selected.volumes) {
    auto view = ReadVolume(client, volume.name);
    if (!view.ok()) continue;
    out << "status:\n";
    for (const auto& [id, set] : view->sets) {
      out << "  set " << id << ": primary " << (set.state.primary().empty() ? "(none)" : set.state.primary())
          << ", in sync [";
      for (int i = 0; i < set.state.in_sync_size(); ++i) out << (i ? " " : "") << set.state.in_sync(i);
      out << "], epoch " << set.state.epoch() << "\n";
    }
    for (const auto& [brick, address] : view->addresses) out << "  brick " << brick << " served at " << address << "\n";
    for (const auto& [brick, checkpoint] : view->checkpoints) {
      out << "  heal " << brick << ": " << checkpoint.files_left() << " files, " << checkpoint.bytes_left() << " bytes left\n";
    }
  }
  for (const auto& mount : selected.mounts) {
    etcd::RangeRequest request;
    request.set_key(clusterspec::MountStatusKey(mount.host, mount.path));
    auto response = client.Range(request);
    clusterspec::MountStatus status;
    if (!response.ok() || response->kvs_size() == 0 ||
        !clusterspec::ParseRecord(request.key(), response->kvs(0).value(), &status).ok()) {
      out << "status: not reported yet by " << mount.host << "'s mount agent\n";
      continue;
    }
    out << "status:\n  state: " << status.state() << "\n  pid: " << status.pid() << "\n  restarts: "
        << status.restarts() << "\n  last_error: " << status.last_error() << "\n";
  }
  containers::EtcdRegistry registry(client);
  for (const auto& container : selected.containers) {
    auto record = containers::GetContainer(registry, container.name);
    if (!record.ok() || !*record) continue;
    out << "status:\n  state: " << (*record)->state() << "\n  error: " << (*record)->error() << "\n";
  }
}

Status RunDescribe(Context& context, const GetArgs& args) {
  CAIRN_ASSIGN_OR_RETURN(auto client, MakeClient(context));
  containers::EtcdRegistry registry(*client);
  CAIRN_ASSIGN_OR_RETURN(Current current, ReadCurrent(*client, registry));
  CAIRN_ASSIGN_OR_RETURN(ClusterSpec selected, Select(current.spec, args));
  *context.out << clusterspec::ToYaml(selected);
  DescribeLive(context, *client, selected);
  return Status::Ok();
}

int Report(Context& context, const std::string& verb, const Status& status) {
  if (status.ok()) return kExitOk;
  *context.err << "clusterctl " << verb << ": " << status.message() << "\n";
  return kExitFailed;  // an invalid file is a failed operation, not bad arguments
}

void AddApplyVerb(CLI::App& root, Context& context) {
  auto args = std::make_shared<ApplyArgs>();
  CLI::App* apply = root.add_subcommand("apply", "bring the cluster to the state of a cluster.yaml: show the plan, then apply it");
  apply->add_option("-f,--file", args->file, "the cluster.yaml")->required();
  apply->add_flag("--dry-run", args->dry_run, "show the plan only");
  apply->add_flag("--prune", args->prune, "delete what the file's sections do not list");
  apply->add_flag("--yes,-y", args->yes, "confirm deleting volumes, images and containers (holding data)");
  AddLayerRootOption(*apply, args->paths);
  apply->callback([&context, args] {
    context.action = [&context, args] { return Report(context, "apply", RunApply(context, *args, false)); };
  });
  auto diff_args = std::make_shared<ApplyArgs>();
  CLI::App* diff = root.add_subcommand("diff", "the plan apply -f FILE would carry out (changes nothing)");
  diff->add_option("-f,--file", diff_args->file, "the cluster.yaml")->required();
  diff->callback([&context, diff_args] {
    context.action = [&context, diff_args] { return Report(context, "diff", RunApply(context, *diff_args, true)); };
  });
}

void AddGetVerbs(CLI::App& root, Context& context) {
  auto args = std::make_shared<GetArgs>();
  CLI::App* get = root.add_subcommand("get", "current state in cluster.yaml's schema (-o yaml round-trips with apply)");
  get->add_option("KIND", args->kind, "all, hosts, volumes, mounts, images or containers")->capture_default_str();
  get->add_option("NAME", args->name, "one object (a mount: HOST:PATH)");
  get->callback([&context, args] {
    context.action = [&context, args] { return Report(context, "get", RunGet(context, *args)); };
  });
  auto describe_args = std::make_shared<GetArgs>();
  CLI::App* describe = root.add_subcommand("describe", "one object's declaration and its live state");
  describe->add_option("KIND", describe_args->kind, "host, volume, mount, image or container")->required();
  describe->add_option("NAME", describe_args->name, "its name (a mount: HOST:PATH)")->required();
  describe->callback([&context, describe_args] {
    context.action = [&context, describe_args] { return Report(context, "describe", RunDescribe(context, *describe_args)); };
  });
}

}  // namespace

void AddApplyCommands(CLI::App& root, Context& context) {
  AddApplyVerb(root, context);
  AddGetVerbs(root, context);
}

}  // namespace cairn::clusterctl
