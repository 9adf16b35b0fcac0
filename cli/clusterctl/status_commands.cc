// clusterctl status: the whole cluster on one screen.
//
//   ENDPOINT ... LEADER ... HEALTH ERRORS   every --endpoints entry asked for itself (no failover),
//                                           a dead one named with its error (scripts read row 2)
//   store:      leader, term, members, health
//   hosts:      every member and declared host (/cairn/hosts): up/down (its client address
//               answers), roles, learner
//   volumes:    state, replica sets with their in-sync bricks, heal backlog
//   mounts:     desired mounts with their agent's report (/cairn/mounts-status)
//   containers: host, desired and actual state, last error
//
// Every call has the --timeout deadline (one endpoint's connect: 1 s). -o json prints one object
// {"endpoints":[...],"store":{...},"hosts":[...],"volumes":[...],"mounts":[...],"containers":[...]}.
// Exit 1 when an endpoint or host is down or the store has no leader.
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "cairn/clusterspec/records.h"
#include "cairn/containers/registry.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/etcdclient/etcdctl.h"
#include "commands.h"
#include "store_client.h"
#include "volume_records.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;
using etcdclient::EtcdctlJson;
using etcdclient::HexId;

// ---- endpoints (each asked for itself) ----

struct EndpointReport {
  HostPort endpoint;
  Result<etcd::StatusResponse> status = InternalError("not asked");
  Result<etcdclient::HealthReply> health = InternalError("not asked");
  bool ok() const { return status.ok() && health.ok() && health->healthy; }
};

std::string ReportJson(const EndpointReport& report) {
  std::string json = "{\"Endpoint\":" + JsonString(report.endpoint.ToString());
  if (report.status.ok()) json += ",\"Status\":" + EtcdctlJson(*report.status);
  json += std::string(",\"Healthy\":") + (report.health.ok() && report.health->healthy ? "true" : "false");
  if (!report.status.ok()) json += ",\"Error\":" + JsonString(report.status.status().message());
  return json + "}";
}

std::vector<std::string> ReportRow(const EndpointReport& report) {
  if (!report.status.ok()) {
    return {report.endpoint.ToString(), "-", "-", "-", "-", "-", "-", "unhealthy", report.status.status().message()};
  }
  const etcd::StatusResponse& status = *report.status;
  std::string health = report.health.ok() ? (report.health->healthy ? "healthy" : "unhealthy") : "unknown";
  std::string errors;
  for (const std::string& error : status.errors()) errors += (errors.empty() ? "" : "; ") + error;
  if (report.health.ok() && !report.health->healthy) errors += (errors.empty() ? "" : "; ") + report.health->body;
  return {report.endpoint.ToString(),
          HexId(status.header().member_id()),
          status.leader() == status.header().member_id() ? "true" : "false",
          std::to_string(status.raftterm()),
          std::to_string(status.raftindex()),
          std::to_string(status.raftappliedindex()),
          HumanBytes(static_cast<uint64_t>(status.dbsize())),
          health,
          errors};
}

EndpointReport AskEndpoint(EtcdClient& client, const HostPort& endpoint) {
  EndpointReport report{endpoint};
  report.status = client.StatusOf(endpoint);
  if (report.status.ok()) report.health = client.HealthOf(endpoint);
  return report;
}

// ---- the cluster ----

struct HostRow {
  std::string name;
  std::string state;  // up | down | not joined | unknown (no client address published)
  std::string roles;
  std::string member_id;
  std::string client;
  std::string error;
};

struct ClusterView {
  std::vector<EndpointReport> endpoints;
  std::string leader = "none";
  uint64_t term = 0;
  size_t members = 0;
  std::vector<HostRow> hosts;
  std::vector<VolumeView> volumes;
  std::vector<clusterspec::MountRecord> mounts;
  std::map<std::string, clusterspec::MountStatus> mount_status;  // by HOST:PATH
  std::vector<containers::ContainerRecord> containers;
  std::vector<std::string> problems;  // what could not be read, named
};

Result<std::vector<etcd::KeyValue>> RangePrefix(EtcdClient& client, std::string_view prefix) {
  etcd::RangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(etcdclient::PrefixRangeEnd(prefix));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client.Range(request));
  return std::vector<etcd::KeyValue>(response.kvs().begin(), response.kvs().end());
}

std::string StripScheme(std::string url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.starts_with(scheme)) url = url.substr(scheme.size());
  }
  return url;
}

// Members (up when their client address answers) merged with the declared hosts.
void ReadHosts(EtcdClient& client, ClusterView* view) {
  std::map<std::string, clusterspec::HostRecord> declared;
  if (auto kvs = RangePrefix(client, clusterspec::kHostsPrefix); kvs.ok()) {
    for (const etcd::KeyValue& kv : *kvs) {
      clusterspec::HostRecord record;
      if (clusterspec::ParseRecord(kv.key(), kv.value(), &record).ok()) declared[record.name()] = record;
    }
  }
  auto members = client.MemberList();
  if (!members.ok()) {
    view->problems.push_back("member list: " + members.status().message());
    return;
  }
  view->members = static_cast<size_t>(members->members_size());
  std::set<std::string> seen;
  for (const etcd::Member& member : members->members()) {
    HostRow row{member.name().empty() ? "(unstarted)" : member.name(), "unknown", "", HexId(member.id()), "", ""};
    if (member.id() == std::strtoull(view->leader.c_str(), nullptr, 16)) view->leader = row.name + " (" + view->leader + ")";
    auto it = declared.find(member.name());
    std::string roles = member.islearner() ? "learner" : "";
    if (it != declared.end()) {
      for (const std::string& role : it->second.roles()) roles += (roles.empty() ? "" : ",") + role;
    }
    row.roles = roles.empty() ? "voter" : roles;
    if (member.clienturls_size() > 0) {
      row.client = StripScheme(member.clienturls(0));
      auto address = ParseHostPort(row.client);
      auto status = address.ok() ? client.StatusOf(*address) : Result<etcd::StatusResponse>(address.status());
      row.state = status.ok() ? "up" : "down";
      if (!status.ok()) row.error = row.client + ": " + status.status().message();
    }
    seen.insert(member.name());
    view->hosts.push_back(std::move(row));
  }
  for (const auto& [name, record] : declared) {
    if (seen.count(name) > 0) continue;
    std::string roles;
    for (const std::string& role : record.roles()) roles += (roles.empty() ? "" : ",") + role;
    view->hosts.push_back({name, "not joined", roles, "-", record.address(), "declared in cluster.yaml, not a store member"});
  }
}

void ReadMounts(EtcdClient& client, ClusterView* view) {
  auto mounts = RangePrefix(client, clusterspec::kMountsPrefix);
  auto statuses = RangePrefix(client, clusterspec::kMountStatusPrefix);
  if (!mounts.ok() || !statuses.ok()) {
    view->problems.push_back("mounts: " + (mounts.ok() ? statuses.status() : mounts.status()).message());
    return;
  }
  for (const etcd::KeyValue& kv : *mounts) {
    clusterspec::MountRecord record;
    if (clusterspec::ParseRecord(kv.key(), kv.value(), &record).ok()) view->mounts.push_back(record);
  }
  for (const etcd::KeyValue& kv : *statuses) {
    clusterspec::MountStatus status;
    if (clusterspec::ParseRecord(kv.key(), kv.value(), &status).ok()) {
      view->mount_status[status.host() + ":" + status.path()] = status;
    }
  }
}

ClusterView ReadCluster(EtcdClient& client) {
  ClusterView view;
  for (const HostPort& endpoint : client.endpoints()) view.endpoints.push_back(AskEndpoint(client, endpoint));
  for (const EndpointReport& report : view.endpoints) {
    if (report.status.ok() && report.status->leader() != 0) {
      view.leader = HexId(report.status->leader());
      view.term = report.status->raftterm();
      break;
    }
  }
  ReadHosts(client, &view);
  auto volumes = ReadAllVolumes(client, &view.problems);
  if (volumes.ok()) {
    view.volumes = std::move(*volumes);
  } else {
    view.problems.push_back("volumes: " + volumes.status().message());
  }
  ReadMounts(client, &view);
  containers::EtcdRegistry registry(client);
  auto records = containers::ListContainers(registry);
  if (records.ok()) {
    view.containers = std::move(*records);
  } else {
    view.problems.push_back("containers: " + records.status().message());
  }
  return view;
}

// ---- printing ----

struct VolumeSummary {
  std::string sets;      // "set 1: 3/3 in sync (primary host1:/b)"; one per set, "; "-joined
  uint64_t heal_files = 0;
  uint64_t heal_bytes = 0;
};

VolumeSummary Summarize(const VolumeView& view) {
  VolumeSummary summary;
  for (const vpb::ReplicaSetSpec& set : view.spec().sets()) {
    std::string text = "set " + std::to_string(set.id()) + ": ";
    auto it = view.sets.find(set.id());
    if (it == view.sets.end()) {
      text += "no record yet";
    } else {
      const auto& state = it->second.state;
      text += std::to_string(state.in_sync_size()) + "/" + std::to_string(set.bricks_size()) + " in sync" +
              (state.primary().empty() ? ", no primary" : ", primary " + state.primary());
      if (state.mode() != vpb::REPLICA_SET_NORMAL) text += ", NO QUORUM";
    }
    summary.sets += (summary.sets.empty() ? "" : "; ") + text;
  }
  for (const auto& [brick, checkpoint] : view.checkpoints) {
    summary.heal_files += checkpoint.files_left();
    summary.heal_bytes += checkpoint.bytes_left();
  }
  return summary;
}

std::string VolumeState(const VolumeView& view) {
  switch (view.spec().state()) {
    case vpb::VOLUME_STARTED: return "started";
    case vpb::VOLUME_STOPPED: return "stopped";
    default: return "created";
  }
}

std::string DesiredOf(const containers::ContainerRecord& record) {
  const auto* field = record.GetDescriptor()->FindFieldByName("desired");
  return field != nullptr ? record.GetReflection()->GetString(record, field) : "";
}

void Section(std::ostream& out, const std::string& title, const std::vector<std::vector<std::string>>& rows) {
  out << "\n" << title << ":\n";
  if (rows.size() <= 1) {
    out << "  (none)\n";
    return;
  }
  PrintTable(out, rows);
}

void PrintText(std::ostream& out, const ClusterView& view) {
  std::vector<std::vector<std::string>> rows{
      {"ENDPOINT", "ID", "LEADER", "TERM", "RAFT INDEX", "APPLIED", "DB SIZE", "HEALTH", "ERRORS"}};
  for (const EndpointReport& report : view.endpoints) rows.push_back(ReportRow(report));
  PrintTable(out, rows);
  size_t healthy = 0;
  for (const EndpointReport& report : view.endpoints) healthy += report.ok() ? 1 : 0;
  out << "\nstore: leader " << view.leader << ", term " << view.term << ", " << view.members << " members, "
      << healthy << "/" << view.endpoints.size() << " endpoints healthy\n";
  rows = {{"HOST", "STATE", "ROLES", "MEMBER ID", "CLIENT", "ERROR"}};
  for (const HostRow& h : view.hosts) rows.push_back({h.name, h.state, h.roles, h.member_id, h.client, h.error});
  Section(out, "hosts", rows);
  rows = {{"VOLUME", "STATE", "REPLICA SETS", "HEAL BACKLOG"}};
  for (const VolumeView& v : view.volumes) {
    VolumeSummary summary = Summarize(v);
    rows.push_back({v.spec().name(), VolumeState(v), summary.sets,
                    std::to_string(summary.heal_files) + " files, " + HumanBytes(summary.heal_bytes)});
  }
  Section(out, "volumes", rows);
  rows = {{"HOST", "PATH", "VOLUME", "STATE", "PID", "RESTARTS", "ERROR"}};
  for (const auto& m : view.mounts) {
    auto it = view.mount_status.find(m.host() + ":" + m.path());
    if (it == view.mount_status.end()) {
      rows.push_back({m.host(), m.path(), m.volume(), "not reported", "-", "-", ""});
      continue;
    }
    const auto& s = it->second;
    rows.push_back({m.host(), m.path(), m.volume(), s.state(), std::to_string(s.pid()), std::to_string(s.restarts()),
                    s.last_error()});
  }
  Section(out, "mounts", rows);
  rows = {{"CONTAINER", "HOST", "IMAGE", "STATE", "DESIRED", "ERROR"}};
  for (const auto& c : view.containers) rows.push_back({c.name(), c.host(), c.image(), c.state(), DesiredOf(c), c.error()});
  Section(out, "containers", rows);
  for (const std::string& problem : view.problems) out << "\nwarning: " << problem << "\n";
}

std::string PrintJson(const ClusterView& view) {
  std::string json = "{\"endpoints\":[";
  for (size_t i = 0; i < view.endpoints.size(); ++i) json += (i ? "," : "") + ReportJson(view.endpoints[i]);
  json += "],\"store\":{\"leader\":" + JsonString(view.leader) + ",\"term\":" + std::to_string(view.term) +
          ",\"members\":" + std::to_string(view.members) + "},\"hosts\":[";
  for (size_t i = 0; i < view.hosts.size(); ++i) {
    const HostRow& h = view.hosts[i];
    json += std::string(i ? "," : "") + "{\"name\":" + JsonString(h.name) + ",\"state\":" + JsonString(h.state) +
            ",\"roles\":" + JsonString(h.roles) + ",\"member_id\":" + JsonString(h.member_id) +
            ",\"client\":" + JsonString(h.client) + ",\"error\":" + JsonString(h.error) + "}";
  }
  json += "],\"volumes\":[";
  for (size_t i = 0; i < view.volumes.size(); ++i) {
    VolumeSummary summary = Summarize(view.volumes[i]);
    json += std::string(i ? "," : "") + "{\"name\":" + JsonString(view.volumes[i].spec().name()) +
            ",\"state\":" + JsonString(VolumeState(view.volumes[i])) + ",\"sets\":" + JsonString(summary.sets) +
            ",\"heal_files\":" + std::to_string(summary.heal_files) + ",\"heal_bytes\":" +
            std::to_string(summary.heal_bytes) + "}";
  }
  json += "],\"mounts\":[";
  for (size_t i = 0; i < view.mounts.size(); ++i) {
    const auto& m = view.mounts[i];
    auto it = view.mount_status.find(m.host() + ":" + m.path());
    clusterspec::MountStatus s = it != view.mount_status.end() ? it->second : clusterspec::MountStatus();
    json += std::string(i ? "," : "") + "{\"host\":" + JsonString(m.host()) + ",\"path\":" + JsonString(m.path()) +
            ",\"volume\":" + JsonString(m.volume()) + ",\"state\":" +
            JsonString(s.state().empty() ? "not reported" : s.state()) + ",\"pid\":" + std::to_string(s.pid()) +
            ",\"restarts\":" + std::to_string(s.restarts()) + ",\"error\":" + JsonString(s.last_error()) + "}";
  }
  json += "],\"containers\":[";
  for (size_t i = 0; i < view.containers.size(); ++i) {
    const auto& c = view.containers[i];
    json += std::string(i ? "," : "") + "{\"name\":" + JsonString(c.name()) + ",\"host\":" + JsonString(c.host()) +
            ",\"image\":" + JsonString(c.image()) + ",\"state\":" + JsonString(c.state()) +
            ",\"desired\":" + JsonString(DesiredOf(c)) + ",\"error\":" + JsonString(c.error()) + "}";
  }
  json += "],\"problems\":[";
  for (size_t i = 0; i < view.problems.size(); ++i) json += (i ? "," : "") + JsonString(view.problems[i]);
  return json + "]}";
}

int RunStatus(Context& context) {
  auto client = MakeClient(context);
  if (!client.ok()) return Fail(context, "status", client.status());
  ClusterView view = ReadCluster(**client);
  if (JsonOutput(context)) {
    *context.out << PrintJson(view) << "\n";
  } else {
    PrintText(*context.out, view);
  }
  bool ok = view.leader != "none";
  for (const EndpointReport& report : view.endpoints) ok = ok && report.ok();
  for (const HostRow& host : view.hosts) ok = ok && host.state != "down";
  return ok ? kExitOk : kExitFailed;
}

}  // namespace

void AddStatusCommands(CLI::App& root, Context& context) {
  CLI::App* status = root.add_subcommand(
      "status", "the cluster on one screen: endpoints, store leader, hosts, volumes, mounts, containers");
  status->callback([&context] { context.action = [&context] { return RunStatus(context); }; });
}

}  // namespace cairn::clusterctl
