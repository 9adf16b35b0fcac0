// clusterctl container ...: LXC containers on union images, on the host clusterctl runs on.
//
//   clusterctl container create NAME --image IMG [--bind HOSTDIR:/path[:ro]]... [--network empty|veth:BR] [--start]
//   clusterctl container create NAME --rootfs-from OTHER [--read-only]   (Part D experiment 2)
//   clusterctl container start|stop|logs|show|rm NAME
//   clusterctl container exec NAME -- CMD [ARG...]     (prints the output, exits with CMD's code)
//   clusterctl container list
//   clusterctl container check    (the supervisor's pass: stop containers whose union died)
//
// Options: --layer-root, --container-root (default $CAIRN_CONTAINER_ROOT or /var/lib/cairn/containers),
// --this-host (default $CAIRN_HOST or the host name). The work is in services/containers
// (ContainerService, LxcRuntime over liblxc); docs/containers.md.
#include <iomanip>
#include <memory>
#include <ostream>

#include "commands.h"
#include "image_cli.h"

namespace cairn::clusterctl {
namespace {

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

int RunCreate(Context& context, const ContainerArgs& args) {
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
  return WithService(context, "container start", args, [&](containers::ContainerService& service, ContainerWorld&) {
    CAIRN_RETURN_IF_ERROR(service.Start(args.create.name, Seconds(args.wait_seconds)));
    *context.out << "container " << args.create.name << " started\n";
    return Status::Ok();
  });
}

int RunStop(Context& context, const ContainerArgs& args) {
  return WithService(context, "container stop", args, [&](containers::ContainerService& service, ContainerWorld&) {
    CAIRN_RETURN_IF_ERROR(service.Stop(args.create.name, Seconds(args.grace_seconds)));
    *context.out << "container " << args.create.name << " stopped\n";
    return Status::Ok();
  });
}

int RunRemove(Context& context, const ContainerArgs& args) {
  return WithService(context, "container rm", args, [&](containers::ContainerService& service, ContainerWorld&) {
    CAIRN_RETURN_IF_ERROR(service.Remove(args.create.name, args.force, Seconds(args.grace_seconds)));
    *context.out << "container " << args.create.name << " removed\n";
    return Status::Ok();
  });
}

int RunExec(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container exec", world.status());
  auto result = (*world)->service->Exec(args.create.name, args.command);
  if (!result.ok()) return Fail(context, "container exec", result.status());
  *context.out << result->output;
  *context.err << result->errors;
  return result->exit_code;
}

int RunLogs(Context& context, const ContainerArgs& args) {
  auto world = OpenWorld(context, args.paths, true);
  if (!world.ok()) return Fail(context, "container logs", world.status());
  auto logs = (*world)->service->Logs(args.create.name);
  if (!logs.ok()) return Fail(context, "container logs", logs.status());
  *context.out << *logs;
  return kExitOk;
}

std::string StateOf(const ContainerStatus& status) {
  if (!status.local) return status.record.state();
  if (status.live_state == "RUNNING" && !status.rootfs_alive) return "RUNNING(union gone)";
  return status.live_state;
}

std::string StatusJson(const ContainerStatus& status) {
  std::string json = "{\"record\":" + containers::ToJson(status.record) + ",\"local\":" +
                     (status.local ? "true" : "false");
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
  out << std::left << std::setw(20) << "NAME" << std::setw(16) << "HOST" << std::setw(21) << "STATE" << std::setw(16)
      << "IMAGE" << "IP\n";
  for (const ContainerStatus& status : *list) {
    out << std::setw(20) << status.record.name() << std::setw(16) << status.record.host() << std::setw(21)
        << StateOf(status) << std::setw(16) << status.record.image() << "-\n";
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
    verb->add_option("--host", args->create.host, "host to place it on (only this host for now)");
    verb->add_option("--bind", args->create.binds, "HOSTDIR:/path[:ro] bind-mounted in; repeatable");
    verb->add_option("--network", args->create.network, "empty (default: no network) or veth:BRIDGE");
    verb->add_flag("--start", args->start, "start it right away");
    verb->add_option("--wait", args->wait_seconds, "seconds to wait for the union / RUNNING (default 30)");
  } else if (name == "start") {
    verb->add_option("--wait", args->wait_seconds, "seconds to wait until RUNNING (default 30)");
  } else if (name == "stop" || name == "rm") {
    verb->add_option("--grace", args->grace_seconds, "seconds init gets to halt before it is killed (default 10)");
    if (name == "rm") verb->add_flag("--force,-f", args->force, "stop a running container first");
  } else if (name == "exec") {
    verb->add_option("COMMAND", args->command, "command and arguments (after --)")->required();
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
  AddVerb(*group, context, "list", "every container: name, host, state, image", RunList, false);
  AddVerb(*group, context, "show", "one container, with the size of its writable layer", RunShow);
  AddVerb(*group, context, "logs", "a container's console output", RunLogs);
  AddVerb(*group, context, "rm", "remove a stopped container (its writable layer too)", RunRemove);
  AddVerb(*group, context, "check", "stop containers whose union died and record why (the supervisor's pass)",
          RunCheck, false);
}

}  // namespace cairn::clusterctl
