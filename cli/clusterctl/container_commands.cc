// clusterctl container ...: LXC containers on union images, run by clusterctl on the host it runs
// on, or (create --host H) placed on host H and run by H's clusterd (ContainerAgent): then create,
// start, stop and rm write the desired state and wait for H's agent to report; exec and logs run
// on H itself (clusterctl there, --this-host H).
//
//   clusterctl container create NAME --image IMG [--host H] [--bind HOSTDIR:/path[:ro]]...
//                                    [--volume VOL:/path[:ro]]... [--network empty|veth:BR[,ip=CIDR]] [--init "PROG ARGS"] [--start]
//   clusterctl container create NAME --rootfs-from OTHER [--read-only]   (Part D experiment 2)
//   clusterctl container start|stop|logs|show|rm NAME
//   clusterctl container exec NAME -- CMD [ARG...]     (prints the output, exits with CMD's code)
//   clusterctl container attach NAME [-- CMD...]       (default /bin/sh, on the caller's terminal)
//   clusterctl container list
//   clusterctl container check    (the supervisor's pass: stop containers whose union died)
//
// Options: --layer-root, --container-root (default $CAIRN_CONTAINER_ROOT or /var/lib/cairn/containers),
// --this-host (default $CAIRN_HOST or the host name). The work is in services/containers
// (ContainerService, LxcRuntime over liblxc); docs/containers.md.
#include <fstream>
#include <iomanip>
#include <sstream>
#include <memory>
#include <ostream>

#include "commands.h"
#include "image_cli.h"

namespace cairn::clusterctl {
namespace {

using containers::ContainerRecord;
using containers::ContainerStatus;

struct ContainerArgs {
  ContainerPaths paths;
  containers::CreateOptions create;
  bool start = false;
  bool force = false;
  int wait_seconds = 30;   // start: until RUNNING; create: until the union is mounted
  int grace_seconds = 10;  // stop: halt, then kill
  std::vector<std::string> command;
};

std::chrono::seconds Seconds(int value) { return std::chrono::seconds(value < 0 ? 0 : value); }

template <typename Body>
int WithService(Context& context, const std::string& verb, const ContainerArgs& args, Body body) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, verb, world.status());
  Status status = body(*(*world)->service, *world.value());
  return status.ok() ? kExitOk : Fail(context, verb, status);
}

// The record of name when a host's agent runs it (desired set), else nullopt.
Result<std::optional<ContainerRecord>> PlacedRecord(ContainerWorld& world, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record, containers::GetContainer(*world.registry, name));
  if (!record) return NotFoundError("container " + name + " does not exist (clusterctl container list)");
  if (record->desired().empty()) return std::optional<ContainerRecord>();
  return record;
}

Status CheckMember(ContainerWorld& world, const std::string& host) {
  CAIRN_ASSIGN_OR_RETURN(etcd::MemberListResponse members, world.client->MemberList());
  for (const etcd::Member& member : members.members()) {
    if (member.name() == host) return Status::Ok();
  }
  return NotFoundError("host " + host + " is not a member of the cluster (clusterctl member list)");
}

// create --host H: the record for H's agent, then wait for it to make (and start) the container.
Status Place(Context& context, const ContainerArgs& args, ContainerWorld& world) {
  const containers::CreateOptions& options = args.create;
  CAIRN_RETURN_IF_ERROR(CheckMember(world, options.host));
  CAIRN_RETURN_IF_ERROR(
      containers::PlaceContainer(*world.registry, *world.images, options, args.start, world.clock).status());
  const std::string key = std::string(containers::kContainerPrefix) + options.name;
  auto awaited = containers::AwaitObserved(*world.registry, options.name, 1, Seconds(args.wait_seconds));
  if (!awaited.ok() || !awaited->has_value()) {
    (void)world.registry->Delete(key);  // never made: nothing stays half-created
    Status why = awaited.ok() ? UnavailableError("the record vanished") : awaited.status();
    return UnavailableError(why.message() + "; nothing was created");
  }
  const ContainerRecord& record = **awaited;
  if (record.state() == "failed" && record.container_dir().empty()) {
    (void)world.registry->Delete(key);
    return UnavailableError("host " + options.host + " could not create " + options.name + ": " + record.error() +
                            "; nothing was created");
  }
  if (record.state() == "failed") {
    return UnavailableError("container " + options.name + " was created on " + options.host +
                            " but did not start: " + record.error());
  }
  *context.out << "container " << record.name() << " created on " << record.host() << " from image "
               << record.image() << "\n";
  if (args.start) *context.out << "container " << record.name() << " started\n";
  return Status::Ok();
}

// start/stop/rm of a placed container: the desired state, then wait for its host's agent.
Status Request(ContainerWorld& world, const ContainerRecord& placed, const std::string& desired, int grace,
               int wait_seconds) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t generation,
                         containers::RequestDesired(*world.registry, placed.name(), desired, grace));
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record,
                         containers::AwaitObserved(*world.registry, placed.name(), generation,
                                                   Seconds(wait_seconds + (grace > 0 ? grace : 0))));
  if (desired == containers::kDesiredRemoved) {
    if (record) return UnavailableError("host " + placed.host() + " could not remove " + placed.name() + ": " + record->error());
    return Status::Ok();
  }
  if (!record) return NotFoundError("container " + placed.name() + " was removed meanwhile");
  if (record->state() == "failed") {
    return UnavailableError("host " + placed.host() + ": " + placed.name() + ": " + record->error());
  }
  return Status::Ok();
}

// The LXC runtime for a placed container on this host (its agent's LXC path).
Result<std::unique_ptr<containers::LxcRuntime>> PlacedRuntime(const ContainerArgs& args, const ContainerRecord& record) {
  if (record.host() != args.paths.host) {
    return FailedPreconditionError("container " + record.name() + " runs on host " + record.host() +
                                   "; run this on that host (LXC serves a container only in the host that started it), "
                                   "or with --this-host " + record.host() + " on the same machine");
  }
  if (record.container_dir().empty()) {
    return FailedPreconditionError("container " + record.name() + " is not made yet (state " + record.state() + ")");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string unionmount, containers::FindUnionmount());
  std::string lxc_path = record.container_dir().substr(0, record.container_dir().rfind('/'));
  return std::make_unique<containers::LxcRuntime>(lxc_path, unionmount);
}

int RunCreate(Context& context, const ContainerArgs& args) {
  if (!args.create.host.empty()) {
    auto world = OpenWorld(context, args.paths, false);
    if (!world.ok()) return Fail(context, "container create", world.status());
    Status placed = Place(context, args, **world);
    return placed.ok() ? kExitOk : Fail(context, "container create", placed);
  }
  return WithService(context, "container create", args, [&](containers::ContainerService& service, ContainerWorld&) {
    auto record = service.Create(args.create, Seconds(args.wait_seconds));
    if (!record.ok()) return record.status();
    *context.out << "container " << record->name() << " created on " << record->host() << " from image "
                 << record->image() << "\n";
    if (!args.start) return Status::Ok();
    CAIRN_RETURN_IF_ERROR(service.Start(record->name(), Seconds(args.wait_seconds)));
    *context.out << "container " << record->name() << " started\n";
    return Status::Ok();
  });
}

int RunStart(Context& context, const ContainerArgs& args) {
  return WithService(context, "container start", args, [&](containers::ContainerService& service, ContainerWorld& world) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
    if (placed) {
      CAIRN_RETURN_IF_ERROR(Request(world, *placed, containers::kDesiredRunning, 0, args.wait_seconds));
    } else {
      CAIRN_RETURN_IF_ERROR(service.Start(args.create.name, Seconds(args.wait_seconds)));
    }
    *context.out << "container " << args.create.name << " started\n";
    return Status::Ok();
  });
}

int RunStop(Context& context, const ContainerArgs& args) {
  return WithService(context, "container stop", args, [&](containers::ContainerService& service, ContainerWorld& world) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
    if (placed) {
      CAIRN_RETURN_IF_ERROR(Request(world, *placed, containers::kDesiredStopped, args.grace_seconds, 30));
    } else {
      CAIRN_RETURN_IF_ERROR(service.Stop(args.create.name, Seconds(args.grace_seconds)));
    }
    *context.out << "container " << args.create.name << " stopped\n";
    return Status::Ok();
  });
}

int RunRemove(Context& context, const ContainerArgs& args) {
  return WithService(context, "container rm", args, [&](containers::ContainerService& service, ContainerWorld& world) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
    if (placed) {
      if (placed->state() == "running" && !args.force) {
        return FailedPreconditionError("container " + args.create.name + " is running on " + placed->host() +
                                       "; stop it first or use --force");
      }
      CAIRN_RETURN_IF_ERROR(Request(world, *placed, containers::kDesiredRemoved, args.grace_seconds, 30));
    } else {
      CAIRN_RETURN_IF_ERROR(service.Remove(args.create.name, args.force, Seconds(args.grace_seconds)));
    }
    *context.out << "container " << args.create.name << " removed\n";
    return Status::Ok();
  });
}

Result<containers::ExecResult> Exec(const ContainerArgs& args, ContainerWorld& world) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
  if (!placed) return world.service->Exec(args.create.name, args.command);
  CAIRN_ASSIGN_OR_RETURN(auto runtime, PlacedRuntime(args, *placed));
  if (!runtime->RootfsAlive(placed->name())) {
    return FailedPreconditionError("the union under " + placed->name() + "'s root is gone; stop and start the container");
  }
  return runtime->Exec(placed->name(), args.command);
}

Result<std::string> Logs(const ContainerArgs& args, ContainerWorld& world) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
  if (!placed) return world.service->Logs(args.create.name);
  CAIRN_ASSIGN_OR_RETURN(auto runtime, PlacedRuntime(args, *placed));
  std::ifstream in(runtime->ConsoleLog(placed->name()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// attach: the command (default /bin/sh) with the caller's terminal.
Result<int> Attach(const ContainerArgs& args, ContainerWorld& world) {
  std::vector<std::string> command = args.command.empty() ? std::vector<std::string>{"/bin/sh"} : args.command;
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> placed, PlacedRecord(world, args.create.name));
  if (placed) {
    CAIRN_ASSIGN_OR_RETURN(auto runtime, PlacedRuntime(args, *placed));
    return runtime->Attach(placed->name(), command);
  }
  CAIRN_ASSIGN_OR_RETURN(std::optional<ContainerRecord> record, containers::GetContainer(*world.registry, args.create.name));
  if (record->host() != args.paths.host) {
    return FailedPreconditionError("container " + record->name() + " runs on host " + record->host() +
                                   "; attach to it there");
  }
  return world.runtime->Attach(args.create.name, command);
}

int RunAttach(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container attach", world.status());
  context.out->flush();
  auto code = Attach(args, **world);
  if (!code.ok()) return Fail(context, "container attach", code.status());
  return *code;
}

int RunExec(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container exec", world.status());
  auto result = Exec(args, **world);
  if (!result.ok()) return Fail(context, "container exec", result.status());
  *context.out << result->output;
  *context.err << result->errors;
  return result->exit_code;
}

int RunLogs(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container logs", world.status());
  auto logs = Logs(args, **world);
  if (!logs.ok()) return Fail(context, "container logs", logs.status());
  *context.out << *logs;
  return kExitOk;
}

std::string StateOf(const ContainerStatus& status) {
  if (!status.local) return status.record.state();
  if (!status.record.desired().empty() && status.record.state() == containers::kStatePending) return "pending";
  if (status.live_state == "RUNNING" && !status.rootfs_alive) return "RUNNING(union gone)";
  return status.live_state;
}

std::string StatusJson(const ContainerStatus& status) {
  std::string json = "{\"record\":" + containers::ToJson(status.record) + ",\"local\":" +
                     (status.local ? "true" : "false") + ",\"ip\":" + JsonString(status.ip);
  if (status.local) {
    json += ",\"live_state\":" + JsonString(status.live_state) + ",\"rootfs_alive\":" +
            (status.rootfs_alive ? "true" : "false") + ",\"writable_size_bytes\":" +
            std::to_string(status.writable.size_bytes) + ",\"writable_disk_bytes\":" +
            std::to_string(status.writable.disk_bytes) + ",\"writable_entries\":" +
            std::to_string(status.writable.entries);
  }
  return json + "}";
}

int RunList(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container list", world.status());
  auto list = (*world)->service->List();
  if (!list.ok()) return Fail(context, "container list", list.status());
  std::ostream& out = *context.out;
  if (JsonOutput(context)) {
    out << "[";
    for (size_t i = 0; i < list->size(); ++i) out << (i ? "," : "") << StatusJson((*list)[i]);
    out << "]\n";
    return kExitOk;
  }
  out << std::left << std::setw(20) << "NAME" << std::setw(16) << "HOST" << std::setw(21) << "STATE" << std::setw(10)
      << "RESTARTS" << std::setw(16) << "IMAGE" << "IP\n";
  for (const ContainerStatus& status : *list) {
    out << std::setw(20) << status.record.name() << std::setw(16) << status.record.host() << std::setw(21)
        << StateOf(status) << std::setw(10) << status.record.restarts() << std::setw(16) << status.record.image()
        << (status.ip.empty() ? "-" : status.ip) << "\n";
  }
  return kExitOk;
}

int RunShow(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container show", world.status());
  auto status = (*world)->service->Show(args.create.name);
  if (!status.ok()) return Fail(context, "container show", status.status());
  std::ostream& out = *context.out;
  if (JsonOutput(context)) {
    out << StatusJson(*status) << "\n";
    return kExitOk;
  }
  const containers::ContainerRecord& record = status->record;
  out << "name:     " << record.name() << "\nhost:     " << record.host() << "\nimage:    " << record.image()
      << "\nstate:    " << StateOf(*status) << " (recorded: " << record.state() << ")"
      << "\ncreated:  " << FormatUnixTime(record.created_unix()) << "\ndir:      " << record.container_dir() << "\n";
  if (!record.error().empty()) out << "error:    " << record.error() << "\n";
  if (record.restarts() > 0) {
    out << "restarts: " << record.restarts() << " (last: " << record.last_failure() << ")\n";
  }
  if (!record.desired().empty()) {
    out << "desired:  " << record.desired() << " (run by " << record.host() << "'s clusterd; generation "
        << record.generation() << ", observed " << record.observed_generation() << ")\n";
  }
  if (!status->ip.empty()) out << "ip:       " << status->ip << "\n";
  if (record.network() != "" && record.network() != "empty") out << "network:  " << record.network() << "\n";
  for (const std::string& volume : record.volumes()) out << "volume:   " << volume << "\n";
  for (const std::string& joined : record.unions()) out << "union:    " << joined << "\n";
  for (const std::string& bind : record.binds()) out << "bind:     " << bind << "\n";
  for (const std::string& layer : record.layers()) out << "layer:    " << layer << " (ro)\n";
  if (status->local) {
    out << "writable: " << status->writable.size_bytes << " bytes (" << HumanBytes(status->writable.size_bytes)
        << ", " << status->writable.entries << " entries, " << HumanBytes(status->writable.disk_bytes) << " on disk)\n";
  }
  return kExitOk;
}

int RunCheck(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container check", world.status());
  auto changes = containers::ReconcileHost(*(*world)->service, *(*world)->runtime, *(*world)->registry);
  if (!changes.ok()) return Fail(context, "container check", changes.status());
  for (const std::string& change : *changes) *context.out << change << "\n";
  if (changes->empty()) *context.out << "every container recorded as running on this host is healthy\n";
  return kExitOk;
}

using Runner = int (*)(Context&, const ContainerArgs&);

// A verb taking NAME (unless named is false) and the path options.
CLI::App* AddVerb(CLI::App& group, Context& context, const std::string& name, const std::string& help, Runner run,
                  bool named = true) {
  auto args = std::make_shared<ContainerArgs>();
  CLI::App* verb = group.add_subcommand(name, help);
  AddContainerRootOption(*verb, args->paths);
  if (named) verb->add_option("NAME", args->create.name, "container name")->required();
  verb->callback([&context, args, run] { context.action = [&context, args, run] { return run(context, *args); }; });
  if (name == "create") {
    verb->add_option("--image", args->create.image, "image to run");
    verb->add_option("--rootfs-from", args->create.rootfs_from,
                     "instead of an image: this container's root, read-only, under a writable layer of its own");
    verb->add_flag("--read-only", args->create.read_only, "no writable layer: writes fail with EROFS");
    verb->add_option("--host", args->create.host,
                     "place it on this host: its clusterd makes and runs it (default: clusterctl runs it here)");
    verb->add_option("--bind", args->create.binds, "HOSTDIR:/path[:ro] bind-mounted in; repeatable");
    verb->add_option("--volume", args->create.volumes,
                     "VOL:/path[:ro]: the host's mount of replicated volume VOL bind-mounted in; repeatable");
    verb->add_option("--union", args->create.unions,
                     "C1:/dir,C2:/dir:/path: the union of those containers' directories at /path (Part D experiment 1)");
    verb->add_option("--network", args->create.network, "empty (default: no network) or veth:BRIDGE[,ip=CIDR]");
    verb->add_option("--init", args->create.init,
                     "PID 1 when the image has no /sbin/init: \"PROGRAM [ARGS]\" (e.g. \"/bin/sleep infinity\")");
    verb->add_flag("--start", args->start, "start it right away");
    verb->add_option("--wait", args->wait_seconds, "seconds to wait for the union / RUNNING (default 30)");
  } else if (name == "start") {
    verb->add_option("--wait", args->wait_seconds, "seconds to wait until RUNNING (default 30)");
  } else if (name == "stop" || name == "rm") {
    verb->add_option("--grace", args->grace_seconds, "seconds init gets to halt before it is killed (default 10)");
    if (name == "rm") verb->add_flag("--force,-f", args->force, "stop a running container first");
  } else if (name == "exec") {
    verb->add_option("COMMAND", args->command, "command and arguments (after --)")->required();
  } else if (name == "attach") {
    verb->add_option("COMMAND", args->command, "command and arguments (after --; default /bin/sh)");
  }
  return verb;
}

}  // namespace

void AddContainerCommands(CLI::App& root, Context& context) {
  CLI::App* group = root.add_subcommand("container", "LXC containers on union images: create, start, stop, exec, list, show, logs, rm");
  group->require_subcommand(1);
  AddVerb(*group, context, "create", "create a container: its writable layer over IMAGE's layers", RunCreate);
  AddVerb(*group, context, "start", "start a container (LXC, daemonized)", RunStart);
  AddVerb(*group, context, "stop", "halt a container, killing it after --grace seconds", RunStop);
  AddVerb(*group, context, "exec", "run a command inside a running container: exec NAME -- CMD ARGS", RunExec);
  AddVerb(*group, context, "attach", "a shell (or -- CMD) inside a running container on your terminal", RunAttach);
  AddVerb(*group, context, "list", "every container: name, host, state, image", RunList, false);
  AddVerb(*group, context, "show", "one container, with the size of its writable layer", RunShow);
  AddVerb(*group, context, "logs", "a container's console output", RunLogs);
  AddVerb(*group, context, "rm", "remove a stopped container (its writable layer too)", RunRemove);
  AddVerb(*group, context, "check", "stop containers whose union died and record why (the supervisor's pass)",
          RunCheck, false);
}

}  // namespace cairn::clusterctl
