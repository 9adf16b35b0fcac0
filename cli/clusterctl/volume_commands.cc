// clusterctl volume ...: replicated volumes, with GlusterFS's verbs and argument order.
//
//   clusterctl volume create NAME [replica N] HOST:PATH... [--force] [--no-quorum eio|readonly]
//   clusterctl volume start NAME [--wait 15s]     clusterctl volume stop NAME
//   clusterctl volume delete NAME --yes           clusterctl volume set NAME no-quorum eio|readonly
//   clusterctl volume info [NAME]                 clusterctl volume list
//   clusterctl volume status [NAME]               clusterctl volume heal NAME status
//   clusterctl volume add-brick NAME HOST:PATH... [--force]
//   clusterctl volume remove-brick NAME HOST:PATH...  clusterctl volume rebalance NAME status
//
// Every verb reads and writes the volume records in the store (docs/volumes.md) through
// volume_records.h; each change is one store transaction built by libs/volume, so two operators
// changing one volume at the same time never lose a change. The volume agent in each host's
// clusterd reacts to the records (serves the bricks of started volumes, picks primaries); these
// verbs never talk to bricks.
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <thread>

#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"
#include "commands.h"
#include "store_client.h"
#include "volume_format.h"
#include "volume_records.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kReadyPollInterval = std::chrono::milliseconds(200);

std::string JoinLines(const std::vector<std::string>& lines, const std::string& indent) {
  std::string text;
  for (const std::string& line : lines) text += "\n" + indent + line;
  return text;
}

std::string JoinWords(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

Result<vpb::NoQuorumPolicy> ParseNoQuorum(const std::string& text) {
  if (text == "eio") return vpb::NO_QUORUM_EIO;
  if (text == "readonly") return vpb::NO_QUORUM_READONLY;
  return InvalidArgumentError("no-quorum must be eio (all I/O fails while no in-sync brick is reachable) or "
                              "readonly (stale reads, writes fail), got \"" + text + "\"");
}

// Splits GlusterFS's "[replica N] BRICK..." words. Returns the replica count (nullopt when not given).
Result<std::optional<uint32_t>> TakeReplicaCount(std::vector<std::string>* words) {
  static const std::vector<std::string> kUnsupported = {"stripe", "disperse", "disperse-data", "redundancy", "arbiter"};
  if (!words->empty() && std::find(kUnsupported.begin(), kUnsupported.end(), words->front()) != kUnsupported.end()) {
    return InvalidArgumentError("\"" + words->front() + "\" volumes are not supported; Cairn volumes are "
                                "\"replica N\" (distributed over several sets when given k x N bricks)");
  }
  if (words->empty() || words->front() != "replica") return std::optional<uint32_t>();
  if (words->size() < 2) return InvalidArgumentError("\"replica\" needs a count, e.g. replica 3");
  const std::string& count = (*words)[1];
  if (count.empty() || count.size() > 3 || !std::all_of(count.begin(), count.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgumentError("replica count must be a number, got \"" + count + "\"");
  }
  auto replica = static_cast<uint32_t>(std::stoul(count));
  words->erase(words->begin(), words->begin() + 2);
  return std::optional<uint32_t>(replica);
}

// Prints a view with the table printer, or as JSON: one object for one volume, {"volumes":[...]}
// for all of them.
template <typename Table, typename Json>
void PrintViews(Context& context, const std::vector<VolumeView>& views, bool one, Table table, Json json) {
  if (JsonOutput(context)) {
    JsonWriter writer;
    if (!one) writer.BeginObject().Key("volumes").BeginArray();
    for (const VolumeView& view : views) json(writer, view);
    if (!one) writer.EndArray().EndObject();
    *context.out << writer.text() << "\n";
    return;
  }
  for (size_t i = 0; i < views.size(); ++i) {
    if (i > 0) *context.out << "\n";
    table(*context.out, views[i]);
  }
}

// The named volume, or every volume (a note on stderr when there is none, and for corrupt ones).
Result<std::vector<VolumeView>> ReadViews(Context& context, EtcdClient& client, const std::string& name) {
  if (!name.empty()) {
    CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(client, name));
    return std::vector<VolumeView>{std::move(view)};
  }
  std::vector<std::string> problems;
  CAIRN_ASSIGN_OR_RETURN(auto views, ReadAllVolumes(client, &problems));
  for (const std::string& problem : problems) *context.err << "warning: " << problem << "\n";
  if (views.empty() && !JsonOutput(context)) *context.err << "No volumes present in cluster\n";
  return views;
}

// Best effort: an unknown member list only makes messages less precise.
std::vector<std::string> MembersOrNone(EtcdClient& client) {
  auto members = MemberNames(client);
  return members.ok() ? *members : std::vector<std::string>{};
}

void WarnUnknownHosts(Context& context, EtcdClient& client, const vpb::VolumeSpec& spec) {
  auto members = MemberNames(client);
  if (!members.ok()) return;
  for (const std::string& host : UnknownHosts(spec, *members)) {
    *context.err << "warning: no cluster member is named " << host << " (clusterctl member list); its bricks stay "
                 << "down until a clusterd with name: " << host << " joins\n";
  }
}

// ---- create -------------------------------------------------------------------------------------------

struct CreateArgs {
  std::string name;
  std::vector<std::string> words;  // [replica N] BRICK...
  bool force = false;
  std::string no_quorum = "eio";
};

Result<vpb::VolumeSpec> CreateSpec(const CreateArgs& args) {
  volume::CreateVolumeRequest request;
  request.name = args.name;
  request.bricks = args.words;
  CAIRN_ASSIGN_OR_RETURN(std::optional<uint32_t> replica, TakeReplicaCount(&request.bricks));
  request.replica_count = replica.value_or(1);  // GlusterFS: no "replica" means distribute
  request.force = args.force;
  CAIRN_ASSIGN_OR_RETURN(request.no_quorum, ParseNoQuorum(args.no_quorum));
  return volume::CreateVolumeSpec(request);
}

Status AlreadyExists(const std::string& name) {
  return AlreadyExistsError("volume " + name + " already exists (clusterctl volume info " + name +
                            "); pick another name, or delete that volume first");
}

int RunCreate(Context& context, const CreateArgs& args) {
  return WithClient(context, "volume create", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, CreateSpec(args));
    std::vector<std::string> problems;
    CAIRN_ASSIGN_OR_RETURN(auto volumes, ReadAllVolumes(client, &problems));
    for (const VolumeView& view : volumes) {
      if (view.spec().name() == spec.name()) return AlreadyExists(spec.name());
    }
    CAIRN_RETURN_IF_ERROR(CheckBricksNotInOtherVolumes(spec, volumes));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client.Txn(volume::CreateVolumeTxn(spec)));
    if (!response.succeeded()) return AlreadyExists(spec.name());
    WarnUnknownHosts(context, client, spec);
    VolumeView view;
    view.record.spec = spec;
    if (JsonOutput(context)) {
      JsonWriter json;
      InfoJson(json, view);
      *context.out << json.text() << "\n";
    } else {
      *context.out << "volume create: " << spec.name() << ": success: " << VolumeTypeName(spec) << " with "
                   << BrickIds(spec).size() << " bricks; start it with: clusterctl volume start " << spec.name()
                   << "\n";
    }
    return Status::Ok();
  });
}

// ---- start / stop -----------------------------------------------------------------------------------

void PrintChanged(Context& context, const std::string& verb, const vpb::VolumeSpec& spec, const std::string& text) {
  if (JsonOutput(context)) {
    VolumeView view;
    view.record.spec = spec;
    JsonWriter json;
    InfoJson(json, view);
    *context.out << json.text() << "\n";
  } else {
    *context.out << "volume " << verb << ": " << spec.name() << ": success" << (text.empty() ? "" : ": " + text) << "\n";
  }
}

// Waits until every brick is served and every set has a primary, or `wait` passes. With wait 0
// it looks once and only reports.
Status WaitUntilServing(Context& context, EtcdClient& client, const std::string& name, std::chrono::nanoseconds wait,
                        const std::string& wait_text) {
  const auto deadline = SteadyClock::now() + wait;
  const std::vector<std::string> members = MembersOrNone(client);
  std::vector<std::string> missing;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(client, name));
    if (view.spec().state() != vpb::VOLUME_STARTED) {
      return FailedPreconditionError("volume " + name + " was stopped by someone else while waiting");
    }
    missing = MissingForService(view, members);
    if (missing.empty()) return Status::Ok();
    if (SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kReadyPollInterval);  // polling the store, bounded by the deadline
  }
  if (wait.count() == 0) {
    *context.err << "not waiting (--wait 0); volume " << name << " is started, still missing:"
                 << JoinLines(missing, "  ") << "\n";
    return Status::Ok();
  }
  return DeadlineExceededError("volume " + name + " is started, but not serving after --wait " +
                               wait_text + "; still missing:" + JoinLines(missing, "  ") +
                               "\n(clusterctl volume status " + name + " shows the current state)");
}

int RunStart(Context& context, const std::string& name, const std::string& wait_text) {
  return WithClient(context, "volume start", [&](EtcdClient& client) -> Status {
    auto wait = ParseWait(wait_text);
    if (!wait.ok()) return wait.status();
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, UpdateVolume(client, name, [](const vpb::VolumeSpec& current) {
                             return volume::WithVolumeState(current, vpb::VOLUME_STARTED);
                           }));
    CAIRN_RETURN_IF_ERROR(WaitUntilServing(context, client, name, *wait, wait_text));
    PrintChanged(context, "start", spec, "");
    return Status::Ok();
  });
}

int RunStop(Context& context, const std::string& name) {
  return WithClient(context, "volume stop", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, UpdateVolume(client, name, [](const vpb::VolumeSpec& current) {
                             return volume::WithVolumeState(current, vpb::VOLUME_STOPPED);
                           }));
    PrintChanged(context, "stop", spec, "its bricks are no longer served; mounts of it fail until it is started again");
    return Status::Ok();
  });
}

// ---- delete -------------------------------------------------------------------------------------------

int RunDelete(Context& context, const std::string& name, bool yes) {
  return WithClient(context, "volume delete", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(client, name));
    const std::string bricks = JoinWords(BrickIds(view.spec()));
    if (view.spec().state() == vpb::VOLUME_STARTED) {
      return FailedPreconditionError("volume " + name + " is started; stop it first (clusterctl volume stop " + name + ")");
    }
    if (!yes) {
      return InvalidArgumentError("this deletes volume " + name + " from the store; the data in its bricks (" + bricks +
                                  ") stay on disk. Run again with --yes to confirm");
    }
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnRequest txn, volume::DeleteVolumeTxn(view.record));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client.Txn(txn));
    if (!response.succeeded()) {
      return AbortedError("volume " + name + " changed while it was being deleted; check clusterctl volume info " + name +
                          " and try again");
    }
    if (JsonOutput(context)) {
      JsonWriter json;
      json.BeginObject().Key("deleted").String(name).Key("bricks_kept").BeginArray();
      for (const std::string& brick : BrickIds(view.spec())) json.String(brick);
      json.EndArray().EndObject();
      *context.out << json.text() << "\n";
    } else {
      *context.out << "volume delete: " << name << ": success; the data in its bricks stay on disk (" << bricks
                   << "); remove those directories by hand when no longer needed\n";
    }
    return Status::Ok();
  });
}

// ---- info / list / status / heal ------------------------------------------------------------------------

int RunInfo(Context& context, const std::string& name) {
  return WithClient(context, "volume info", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto views, ReadViews(context, client, name));
    PrintViews(context, views, !name.empty(), PrintInfo, InfoJson);
    return Status::Ok();
  });
}

int RunList(Context& context) {
  return WithClient(context, "volume list", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto views, ReadViews(context, client, ""));
    if (JsonOutput(context)) {
      JsonWriter json;
      json.BeginObject().Key("volumes").BeginArray();
      for (const VolumeView& view : views) json.String(view.spec().name());
      json.EndArray().EndObject();
      *context.out << json.text() << "\n";
    } else {
      for (const VolumeView& view : views) *context.out << view.spec().name() << "\n";
    }
    return Status::Ok();
  });
}

int RunStatus(Context& context, const std::string& name) {
  return WithClient(context, "volume status", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto views, ReadViews(context, client, name));
    PrintViews(context, views, !name.empty(), PrintStatus, StatusJson);
    return Status::Ok();
  });
}

void PrintHeal(std::ostream& out, const VolumeView& view) {
  out << volume::FormatHealStatus(HealRows(view));
  if (view.spec().state() != vpb::VOLUME_STARTED) {
    out << "volume " << view.spec().name() << " is not started; heal runs only while it is\n";
  }
}

int RunHeal(Context& context, const std::string& name) {
  return WithClient(context, "volume heal", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto views, ReadViews(context, client, name));
    PrintViews(context, views, true, PrintHeal, HealJson);
    return Status::Ok();
  });
}

int RunRebalance(Context& context, const std::string& name) {
  return WithClient(context, "volume rebalance", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto views, ReadViews(context, client, name));
    PrintViews(context, views, true, PrintRebalance, RebalanceJson);
    return Status::Ok();
  });
}

// ---- set ------------------------------------------------------------------------------------------------

int RunSet(Context& context, const std::string& name, const std::string& key, const std::string& value) {
  return WithClient(context, "volume set", [&](EtcdClient& client) -> Status {
    if (key != "no-quorum") return InvalidArgumentError("unknown option \"" + key + "\"; options: no-quorum eio|readonly");
    CAIRN_ASSIGN_OR_RETURN(vpb::NoQuorumPolicy policy, ParseNoQuorum(value));
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, UpdateVolume(client, name, [policy](const vpb::VolumeSpec& current) {
                             vpb::VolumeSpec next = current;
                             next.mutable_options()->set_no_quorum(policy);
                             return Result<vpb::VolumeSpec>(std::move(next));
                           }));
    PrintChanged(context, "set", spec, key + " is " + NoQuorumName(policy));
    return Status::Ok();
  });
}

// ---- add-brick / remove-brick --------------------------------------------------------------------------

struct BrickChangeArgs {
  std::string name;
  std::vector<std::string> words;
  bool force = false;
};

std::vector<std::string> SetNames(const vpb::VolumeSpec& spec, const std::vector<uint32_t>& ids) {
  std::vector<std::string> names;
  for (const auto& set : spec.sets()) {
    if (std::find(ids.begin(), ids.end(), set.id()) == ids.end()) continue;
    std::vector<std::string> bricks;
    for (const auto& brick : set.bricks()) bricks.push_back(volume::BrickId(brick));
    names.push_back(std::to_string(set.id()) + " (" + JoinWords(bricks) + ")");
  }
  return names;
}

constexpr const char* kMoverNote =
    "data movement is PENDING until the rebalance finishes: the volume agent of a host with a brick moves "
    "every file whose set changed (lookups find files not moved yet through the previous layout; new files "
    "follow the new layout); another add-brick or remove-brick is refused until then. Progress: ";

int RunAddBrick(Context& context, const BrickChangeArgs& args) {
  return WithClient(context, "volume add-brick", [&](EtcdClient& client) -> Status {
    std::vector<std::string> bricks = args.words;
    CAIRN_ASSIGN_OR_RETURN(std::optional<uint32_t> replica, TakeReplicaCount(&bricks));
    std::vector<std::string> problems;
    CAIRN_ASSIGN_OR_RETURN(auto volumes, ReadAllVolumes(client, &problems));
    std::vector<uint32_t> before;
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, UpdateVolume(client, args.name, [&](const vpb::VolumeSpec& current)
                                                                 -> Result<vpb::VolumeSpec> {
      if (replica && *replica != current.replica_count()) {
        return InvalidArgumentError("changing the replica count (" + std::to_string(current.replica_count()) + " -> " +
                                    std::to_string(*replica) + ") is not supported; add bricks in groups of " +
                                    std::to_string(current.replica_count()));
      }
      CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec next, volume::AddBricks(current, bricks, args.force));
      CAIRN_RETURN_IF_ERROR(CheckBricksNotInOtherVolumes(next, volumes));
      before.clear();
      for (const auto& set : current.sets()) before.push_back(set.id());
      return next;
    }));
    WarnUnknownHosts(context, client, spec);
    std::vector<uint32_t> added;
    for (const auto& set : spec.sets()) {
      if (std::find(before.begin(), before.end(), set.id()) == before.end()) added.push_back(set.id());
    }
    PrintChanged(context, "add-brick", spec,
                 "added set " + JoinWords(SetNames(spec, added)) + "; layout epoch " +
                     std::to_string(spec.layout().epoch()) + " gives new files to it");
    if (!JsonOutput(context)) *context.err << "note: " << kMoverNote << "clusterctl volume rebalance " << args.name << " status\n";
    return Status::Ok();
  });
}

// Every brick must be part of the volume; the message names the first that is not.
Status CheckBricksInVolume(const vpb::VolumeSpec& spec, const std::vector<std::string>& bricks) {
  const std::vector<std::string> ids = BrickIds(spec);
  for (const std::string& text : bricks) {
    CAIRN_ASSIGN_OR_RETURN(vpb::Brick brick, volume::ParseBrick(text));
    if (std::find(ids.begin(), ids.end(), volume::BrickId(brick)) == ids.end()) {
      return InvalidArgumentError("brick " + volume::BrickId(brick) + " is not part of volume " + spec.name() +
                                  " (clusterctl volume info " + spec.name() + " lists its bricks)");
    }
  }
  return Status::Ok();
}

int RunRemoveBrick(Context& context, const BrickChangeArgs& args) {
  return WithClient(context, "volume remove-brick", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, UpdateVolume(client, args.name, [&](const vpb::VolumeSpec& current)
                                                                 -> Result<vpb::VolumeSpec> {
      CAIRN_RETURN_IF_ERROR(CheckBricksInVolume(current, args.words));
      return volume::RemoveBricks(current, args.words);
    }));
    std::vector<uint32_t> leaving;
    auto live = volume::LayoutSets(spec.layout());
    for (const auto& set : spec.sets()) {
      if (!std::binary_search(live.begin(), live.end(), set.id())) leaving.push_back(set.id());
    }
    PrintChanged(context, "remove-brick", spec,
                 "set " + JoinWords(SetNames(spec, leaving)) + " gets no new files (layout epoch " +
                     std::to_string(spec.layout().epoch()) + ")");
    if (!JsonOutput(context)) {
      *context.err << "note: " << kMoverNote << "clusterctl volume rebalance " << args.name
                   << " status. The removed set stays part of the volume until its files have moved; then the "
                   << "rebalance takes it out (volume info no longer lists it) and its brick directories may be deleted.\n";
    }
    return Status::Ok();
  });
}

// ---- registration -------------------------------------------------------------------------------------

template <typename Run>
void SetAction(CLI::App* command, Context& context, Run run) {
  command->callback([&context, run] { context.action = [&context, run] { return run(context); }; });
}

void AddCreate(CLI::App& group, Context& context) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* create = group.add_subcommand("create", "create a volume: NAME [replica N] HOST:PATH... (groups of N form replica sets)");
  create->add_option("NAME", args->name, "volume name")->required();
  create->add_option("BRICKS", args->words, "[replica N] HOST:/PATH ...; each consecutive N bricks are one replica set")
      ->required();
  create->add_flag("--force", args->force, "allow two bricks of one replica set on the same host");
  create->add_option("--no-quorum", args->no_quorum,
                     "when no in-sync brick of a set is reachable: eio (default) or readonly (stale reads)")
      ->check(CLI::IsMember({"eio", "readonly"}));
  SetAction(create, context, [args](Context& c) { return RunCreate(c, *args); });
}

void AddStartStop(CLI::App& group, Context& context) {
  auto start_name = std::make_shared<std::string>();
  auto wait = std::make_shared<std::string>("15s");
  CLI::App* start = group.add_subcommand("start", "start serving a volume; waits until every brick is served");
  start->add_option("NAME", *start_name, "volume name")->required();
  start->add_option("--wait", *wait, "how long to wait for the bricks and primaries (0: do not wait)")
      ->capture_default_str();
  SetAction(start, context, [start_name, wait](Context& c) { return RunStart(c, *start_name, *wait); });

  auto stop_name = std::make_shared<std::string>();
  CLI::App* stop = group.add_subcommand("stop", "stop serving a volume (its data stay)");
  stop->add_option("NAME", *stop_name, "volume name")->required();
  SetAction(stop, context, [stop_name](Context& c) { return RunStop(c, *stop_name); });
}

void AddDelete(CLI::App& group, Context& context) {
  auto name = std::make_shared<std::string>();
  auto yes = std::make_shared<bool>(false);
  CLI::App* remove = group.add_subcommand("delete", "delete a stopped volume's records (the bricks' data stay on disk)");
  remove->add_option("NAME", *name, "volume name")->required();
  remove->add_flag("--yes,-y", *yes, "confirm");
  SetAction(remove, context, [name, yes](Context& c) { return RunDelete(c, *name, *yes); });
}

void AddShowVerbs(CLI::App& group, Context& context) {
  auto info_name = std::make_shared<std::string>();
  CLI::App* info = group.add_subcommand("info", "type, bricks, options and state of one volume or all");
  info->add_option("NAME", *info_name, "volume name (default: all)");
  SetAction(info, context, [info_name](Context& c) { return RunInfo(c, *info_name); });

  CLI::App* list = group.add_subcommand("list", "the volumes' names");
  SetAction(list, context, [](Context& c) { return RunList(c); });

  auto status_name = std::make_shared<std::string>();
  CLI::App* status = group.add_subcommand("status", "per brick: address or down, role, epoch; per set: mode");
  status->add_option("NAME", *status_name, "volume name (default: all)");
  SetAction(status, context, [status_name](Context& c) { return RunStatus(c, *status_name); });

  auto heal_name = std::make_shared<std::string>();
  auto heal_action = std::make_shared<std::string>();
  CLI::App* heal = group.add_subcommand("heal", "heal progress: clusterctl volume heal NAME status");
  heal->add_option("NAME", *heal_name, "volume name")->required();
  heal->add_option("ACTION", *heal_action, "status (or info)")->required()->check(CLI::IsMember({"status", "info"}));
  SetAction(heal, context, [heal_name](Context& c) { return RunHeal(c, *heal_name); });

  auto rebalance_name = std::make_shared<std::string>();
  auto rebalance_action = std::make_shared<std::string>();
  CLI::App* rebalance = group.add_subcommand(
      "rebalance", "data movement after add-brick/remove-brick: clusterctl volume rebalance NAME status");
  rebalance->add_option("NAME", *rebalance_name, "volume name")->required();
  rebalance->add_option("ACTION", *rebalance_action, "status")->required()->check(CLI::IsMember({"status"}));
  SetAction(rebalance, context, [rebalance_name](Context& c) { return RunRebalance(c, *rebalance_name); });
}

void AddSet(CLI::App& group, Context& context) {
  auto name = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();
  CLI::App* set = group.add_subcommand("set", "change an option: clusterctl volume set NAME no-quorum eio|readonly");
  set->add_option("NAME", *name, "volume name")->required();
  set->add_option("OPTION", *key, "no-quorum")->required();
  set->add_option("VALUE", *value, "eio or readonly")->required();
  SetAction(set, context, [name, key, value](Context& c) { return RunSet(c, *name, *key, *value); });
}

void AddBrickVerbs(CLI::App& group, Context& context) {
  auto add = std::make_shared<BrickChangeArgs>();
  CLI::App* add_brick = group.add_subcommand("add-brick", "add replica sets: NAME HOST:PATH... (a multiple of the replica count)");
  add_brick->add_option("NAME", add->name, "volume name")->required();
  add_brick->add_option("BRICKS", add->words, "HOST:/PATH ...")->required();
  add_brick->add_flag("--force", add->force, "allow two bricks of one replica set on the same host");
  SetAction(add_brick, context, [add](Context& c) { return RunAddBrick(c, *add); });

  auto remove = std::make_shared<BrickChangeArgs>();
  CLI::App* remove_brick = group.add_subcommand("remove-brick", "remove whole replica sets: NAME HOST:PATH...");
  remove_brick->add_option("NAME", remove->name, "volume name")->required();
  remove_brick->add_option("BRICKS", remove->words, "HOST:/PATH ... (every brick of each set to remove)")->required();
  SetAction(remove_brick, context, [remove](Context& c) { return RunRemoveBrick(c, *remove); });
}

}  // namespace

void AddVolumeCommands(CLI::App& root, Context& context) {
  CLI::App* group = root.add_subcommand(
      "volume", "replicated volumes: create, start, stop, delete, info, list, status, set, heal, rebalance, add-brick, "
      "remove-brick");
  group->require_subcommand(1);
  AddCreate(*group, context);
  AddStartStop(*group, context);
  AddDelete(*group, context);
  AddShowVerbs(*group, context);
  AddSet(*group, context);
  AddBrickVerbs(*group, context);
}

}  // namespace cairn::clusterctl
