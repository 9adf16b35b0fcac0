// clusterctl member ...: the store's members, over etcd's v3 JSON API
// (libs/etcdclient). Member ids are hexadecimal, as etcdctl shows them.
//
// `member replace` does a replacement in the safe order: the new member joins as a learner (no
// vote, so a slow or broken newcomer cannot cost the cluster its quorum), is promoted once it has
// caught up, and only then is the old member removed.
#include <iomanip>
#include <memory>
#include <sstream>
#include <functional>
#include <thread>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/etcdclient/etcdctl.h"
#include "commands.h"
#include "store_client.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;
using etcdclient::EtcdctlJson;
using etcdclient::HexId;
using SteadyClock = std::chrono::steady_clock;

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ",") + item;
  return joined;
}

void PrintMembers(std::ostream& out, const google::protobuf::RepeatedPtrField<etcd::Member>& members) {
  std::vector<std::vector<std::string>> rows{{"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"}};
  for (const etcd::Member& member : members) {
    // A member that was added but never started has no name yet (etcd's "unstarted").
    rows.push_back({HexId(member.id()), member.name().empty() ? "unstarted" : "started", member.name(),
                    Join(member.peerurls()), Join(member.clienturls()), member.islearner() ? "true" : "false"});
  }
  PrintTable(out, rows);
}

Result<uint64_t> ParseMemberId(const std::string& text) { return etcdclient::ParseHexId(text, "member id"); }

int RunList(Context& context) {
  return WithClient(context, "member list", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(auto response, client.MemberList());
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
    } else {
      PrintMembers(*context.out, response.members());
    }
    return Status::Ok();
  });
}

struct AddArgs {
  std::string name, peer_urls;
  bool learner = false;
};

etcd::MemberAddRequest MakeAddRequest(const std::string& peer_urls, bool learner) {
  etcd::MemberAddRequest request;
  for (const std::string& url : Split(peer_urls, ',')) {
    if (!Trim(url).empty()) request.add_peerurls(std::string(Trim(url)));
  }
  request.set_islearner(learner);
  return request;
}

// What the new member needs to start with (etcd's ETCD_INITIAL_CLUSTER convention).
std::string InitialCluster(const etcd::MemberAddResponse& response, const std::string& new_name) {
  std::string cluster;
  for (const etcd::Member& member : response.members()) {
    std::string name = member.id() == response.member().id() ? new_name : member.name();
    for (const std::string& url : member.peerurls()) cluster += (cluster.empty() ? "" : ",") + name + "=" + url;
  }
  return cluster;
}

int RunAdd(Context& context, const AddArgs& args) {
  return WithClient(context, "member add", [&](EtcdClient& client) -> Status {
    auto request = MakeAddRequest(args.peer_urls, args.learner);
    if (request.peerurls_size() == 0) return InvalidArgumentError("--peer-urls needs at least one URL");
    CAIRN_ASSIGN_OR_RETURN(auto response, client.MemberAdd(request));
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
      return Status::Ok();
    }
    *context.out << "Member " << HexId(response.member().id()) << " added" << (args.learner ? " as a learner" : "")
                 << "\n\nname: " << args.name << "\ninitial cluster: " << InitialCluster(response, args.name)
                 << "\ninitial cluster state: existing\n";
    return Status::Ok();
  });
}

int RunPromote(Context& context, const std::string& id_text) {
  return WithClient(context, "member promote", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(id_text));
    etcd::MemberPromoteRequest request;
    request.set_id(id);
    CAIRN_ASSIGN_OR_RETURN(auto response, client.MemberPromote(request));
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
    } else {
      *context.out << "Member " << HexId(id) << " promoted\n";
    }
    return Status::Ok();
  });
}

int RunRemove(Context& context, const std::string& id_text) {
  return WithClient(context, "member remove", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, ParseMemberId(id_text));
    etcd::MemberRemoveRequest request;
    request.set_id(id);
    CAIRN_ASSIGN_OR_RETURN(auto response, client.MemberRemove(request));
    if (JsonOutput(context)) {
      *context.out << EtcdctlJson(response) << "\n";
    } else {
      *context.out << "Member " << HexId(id) << " removed\n";
    }
    return Status::Ok();
  });
}

struct ReplaceArgs {
  std::string old_id, name, peer_urls, wait = "2m";
};

// Answers worth another try during a replacement: a learner that has not caught up (etcd: "can
// only promote a learner member which is in sync with leader"), a removal refused until the new
// member has been connected for a while (etcd: "unhealthy cluster"), a busy or electing cluster.
bool TryAgainLater(const Status& status) {
  const std::string& message = status.message();
  return message.find("in sync") != std::string::npos || message.find("not ready") != std::string::npos ||
         message.find("unhealthy cluster") != std::string::npos || status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kDeadlineExceeded;
}

// Repeats step every 500 ms while it fails with TryAgainLater, until give_up.
Status RetryUntil(Context& context, SteadyClock::time_point give_up, const std::string& waiting_for,
                  const std::function<Status()>& step) {
  while (true) {
    Status status = step();
    if (status.ok() || !TryAgainLater(status)) return status;
    if (SteadyClock::now() >= give_up) {
      return DeadlineExceededError("gave up waiting for " + waiting_for + " (--wait); last answer: " + status.message());
    }
    *context.out << "  waiting for " << waiting_for << ": " << status.message() << "\n";
    context.out->flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunReplace(Context& context, const ReplaceArgs& args) {
  return WithClient(context, "member replace", [&](EtcdClient& client) -> Status {
    CAIRN_ASSIGN_OR_RETURN(uint64_t old_id, ParseMemberId(args.old_id));
    CAIRN_ASSIGN_OR_RETURN(auto wait, ParseDuration(args.wait));
    auto give_up = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(wait);
    auto add = MakeAddRequest(args.peer_urls, true);
    if (add.peerurls_size() == 0) return InvalidArgumentError("--peer-urls needs at least one URL");
    CAIRN_ASSIGN_OR_RETURN(auto members, client.MemberList());
    bool found = false;
    for (const etcd::Member& member : members.members()) found = found || member.id() == old_id;
    if (!found) return NotFoundError("no member " + HexId(old_id) + " (see clusterctl member list)");

    CAIRN_ASSIGN_OR_RETURN(auto added, client.MemberAdd(add));
    uint64_t new_id = added.member().id();
    *context.out << "1/3 added " << args.name << " as learner " << HexId(new_id)
                 << "; start it with initial cluster " << InitialCluster(added, args.name) << " (state: existing)\n";
    context.out->flush();
    etcd::MemberPromoteRequest promote;
    promote.set_id(new_id);
    Status promoted = RetryUntil(context, give_up, HexId(new_id) + " to catch up",
                                 [&] { return client.MemberPromote(promote).status(); });
    if (!promoted.ok()) {
      return Status(promoted.code(), promoted.message() + "; " + HexId(new_id) + " stays a learner: start it, then " +
                                         "run `clusterctl member promote " + HexId(new_id) +
                                         "` and `clusterctl member remove " + HexId(old_id) + "`");
    }
    *context.out << "2/3 promoted " << HexId(new_id) << " to voting member\n";
    context.out->flush();
    etcd::MemberRemoveRequest remove;
    remove.set_id(old_id);
    Status removed = RetryUntil(context, give_up, "the cluster to accept removing " + HexId(old_id),
                                [&] { return client.MemberRemove(remove).status(); });
    if (!removed.ok()) {
      return Status(removed.code(), "the new member is in, but removing " + HexId(old_id) + " failed: " +
                                        removed.message() + "; retry with `clusterctl member remove " +
                                        HexId(old_id) + "`");
    }
    *context.out << "3/3 removed old member " << HexId(old_id) << "\n";
    return Status::Ok();
  });
}

// ---- recover (quorum loss) ----

// Prints the status of every reachable endpoint, which one is most up to date, and the offline
// procedure (docs/coord.md "Recovering from quorum loss"). Changes nothing: the recovery itself
// runs on the hosts, with their clusterd stopped. Exit 1 when a member still sees a leader (the
// quorum is not lost: use member remove/replace instead).
int RunRecover(Context& context) {
  auto client = MakeClient(context);
  if (!client.ok()) return Fail(context, "member recover", client.status());
  std::vector<std::vector<std::string>> rows{{"ENDPOINT", "ID", "TERM", "RAFT INDEX", "APPLIED", "LEADER"}};
  const etcd::StatusResponse* best = nullptr;
  HostPort best_endpoint;
  std::vector<etcd::StatusResponse> answers;
  answers.reserve((*client)->endpoints().size());
  bool has_leader = false;
  for (const HostPort& endpoint : (*client)->endpoints()) {
    auto status = (*client)->StatusOf(endpoint);
    if (!status.ok()) {
      rows.push_back({endpoint.ToString(), "-", "-", "-", "-", "unreachable"});
      continue;
    }
    answers.push_back(*status);
    const etcd::StatusResponse& answer = answers.back();
    has_leader = has_leader || answer.leader() != 0;
    rows.push_back({endpoint.ToString(), HexId(answer.header().member_id()), std::to_string(answer.raftterm()),
                    std::to_string(answer.raftindex()), std::to_string(answer.raftappliedindex()),
                    answer.leader() == 0 ? "none" : HexId(answer.leader())});
    if (best == nullptr || answer.raftindex() > best->raftindex() ||
        (answer.raftindex() == best->raftindex() && answer.raftappliedindex() > best->raftappliedindex())) {
      best = &answer;
      best_endpoint = endpoint;
    }
  }
  std::ostream& out = *context.out;
  PrintTable(out, rows);
  if (has_leader) {
    out << "\nA member still sees a leader: the quorum is not lost. Do not force a new cluster; replace dead "
           "members with `clusterctl member replace`.\n";
    return kExitFailed;
  }
  out << "\n";
  if (best != nullptr) {
    out << "Most up to date of the reachable members: " << HexId(best->header().member_id()) << " at "
        << best_endpoint.ToString() << " (raft index " << best->raftindex() << ").\n";
  } else {
    out << "No member answered; compare the survivors offline with `clusterd recover --dry-run` (step 2).\n";
  }
  out << "Recovery from quorum loss (etcd's --force-new-cluster), on the hosts:\n"
         "  1. stop clusterd on every surviving host (SIGTERM; wait for it to exit)\n"
         "  2. on each survivor: clusterd recover --config node.yaml --dry-run   (prints its last log index;\n"
         "     keep the survivor with the highest one, it holds every acknowledged write)\n"
         "  3. on that host: clusterd recover --config node.yaml   (one-member cluster, new cluster id;\n"
         "     the old state is kept in DATA_DIR/coord.before-recover-*)\n"
         "  4. start clusterd there; check with clusterctl status and clusterctl kv get\n"
         "  5. for each other host: move its data dir away, then\n"
         "       clusterctl member add NAME --peer-urls HOST:PORT --learner\n"
         "     start clusterd with a node.yaml that has `join` and an empty data dir, wait for it to catch up,\n"
         "       clusterctl member promote ID\n";
  return kExitOk;
}

void AddMemberVerbs(CLI::App& member, Context& context) {
  CLI::App* list = member.add_subcommand("list", "list the members");
  list->callback([&context] { context.action = [&context] { return RunList(context); }; });

  auto add_args = std::make_shared<AddArgs>();
  CLI::App* add = member.add_subcommand("add", "add a member (start it afterwards with the printed settings)");
  add->add_option("NAME", add_args->name, "the new member's name")->required();
  add->add_option("--peer-urls", add_args->peer_urls, "its peer URLs, comma-separated")->required();
  add->add_flag("--learner", add_args->learner, "add as a non-voting learner (promote it later)");
  add->callback([&context, add_args] { context.action = [&context, add_args] { return RunAdd(context, *add_args); }; });

  auto promote_id = std::make_shared<std::string>();
  CLI::App* promote = member.add_subcommand("promote", "make a caught-up learner a voting member");
  promote->add_option("ID", *promote_id, "member id (hex)")->required();
  promote->callback([&context, promote_id] {
    context.action = [&context, promote_id] { return RunPromote(context, *promote_id); };
  });

  auto remove_id = std::make_shared<std::string>();
  CLI::App* remove = member.add_subcommand("remove", "remove a member");
  remove->add_option("ID", *remove_id, "member id (hex)")->required();
  remove->callback([&context, remove_id] {
    context.action = [&context, remove_id] { return RunRemove(context, *remove_id); };
  });

  auto replace_args = std::make_shared<ReplaceArgs>();
  CLI::App* replace = member.add_subcommand(
      "replace", "replace member OLD_ID by a new one: add it as learner, promote when caught up, remove the old");
  replace->add_option("OLD_ID", replace_args->old_id, "the member to replace (hex id)")->required();
  replace->add_option("NAME", replace_args->name, "the new member's name")->required();
  replace->add_option("--peer-urls", replace_args->peer_urls, "the new member's peer URLs, comma-separated")->required();
  replace->add_option("--wait", replace_args->wait, "how long to wait for the new member to catch up")
      ->capture_default_str();
  replace->callback([&context, replace_args] {
    context.action = [&context, replace_args] { return RunReplace(context, *replace_args); };
  });

  CLI::App* recover = member.add_subcommand(
      "recover", "after losing quorum for good: show which reachable member is most up to date and the steps");
  recover->callback([&context] { context.action = [&context] { return RunRecover(context); }; });
}

}  // namespace

void AddMemberCommands(CLI::App& root, Context& context) {
  CLI::App* member = root.add_subcommand("member", "list, add, promote, remove, replace and recover store members");
  member->require_subcommand(1);
  AddMemberVerbs(*member, context);
}

}  // namespace cairn::clusterctl
