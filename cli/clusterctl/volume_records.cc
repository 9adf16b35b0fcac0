#include "volume_records.h"

#include <algorithm>
#include <set>

#include "cairn/common/strings.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;

constexpr int kUpdateAttempts = 5;

// "sets/000003" -> 3. False for anything else.
bool ParseSetId(std::string_view text, uint32_t* id) {
  if (text.empty() || text.size() > 9) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  *id = value;
  return true;
}

// Files one key-value below the volume's prefix (`rest` is the key without it) into the view.
void AddRecord(std::string_view rest, const etcd::KeyValue& kv, VolumeView* view) {
  constexpr std::string_view kSets = "sets/", kPrimary = "/primary", kBricks = "bricks/", kHeal = "heal/";
  uint32_t id = 0;
  if (StartsWith(rest, kSets) && EndsWith(rest, kPrimary)) {
    std::string_view digits = rest.substr(kSets.size(), rest.size() - kSets.size() - kPrimary.size());
    if (ParseSetId(digits, &id)) view->primary_keys[id] = kv.value();
  } else if (StartsWith(rest, kSets)) {
    if (!ParseSetId(rest.substr(kSets.size()), &id)) return;
    auto set = volume::ParseReplicaSetRecord(kv);
    if (set.ok()) {
      view->sets[id] = std::move(*set);
    } else {
      view->problems.push_back("set " + std::to_string(id) + ": " + set.status().message());
    }
  } else if (StartsWith(rest, kBricks)) {
    view->addresses[std::string(rest.substr(kBricks.size()))] = kv.value();
  } else if (rest == "rebalance") {
    vpb::HealCheckpoint progress;
    if (progress.ParseFromString(kv.value())) {
      view->rebalance = std::move(progress);
    } else {
      view->problems.push_back("rebalance progress does not parse");
    }
  } else if (rest == "rebalance-owner") {
    view->rebalance_owner = kv.value();
  } else if (StartsWith(rest, kHeal)) {
    vpb::HealCheckpoint checkpoint;
    std::string brick(rest.substr(kHeal.size()));
    if (checkpoint.ParseFromString(kv.value())) {
      view->checkpoints[brick] = std::move(checkpoint);
    } else {
      view->problems.push_back("heal checkpoint of " + brick + " does not parse");
    }
  }
}

std::string NoSuchVolume(std::string_view name) {
  return "volume " + std::string(name) + " does not exist (clusterctl volume list shows the volumes)";
}

Result<std::vector<etcd::KeyValue>> RangePrefix(EtcdClient& client, const std::string& prefix) {
  etcd::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(volume::PrefixRangeEnd(prefix));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client.Range(request));
  return std::vector<etcd::KeyValue>(response.kvs().begin(), response.kvs().end());
}

bool PathWithin(const std::string& inner, const std::string& outer) {
  return inner.size() > outer.size() && StartsWith(inner, outer) && inner[outer.size()] == '/';
}

bool Overlap(const vpb::Brick& a, const vpb::Brick& b) {
  return a.host() == b.host() && (a.path() == b.path() || PathWithin(a.path(), b.path()) || PathWithin(b.path(), a.path()));
}

bool HasLivePrimary(const VolumeView& view, uint32_t set_id, const vpb::ReplicaSetState& state) {
  if (state.mode() != vpb::REPLICA_SET_NORMAL || state.primary().empty()) return false;
  auto key = view.primary_keys.find(set_id);
  return key != view.primary_keys.end() && key->second == state.primary();
}

}  // namespace

std::vector<std::string> BrickIds(const vpb::VolumeSpec& spec) {
  std::vector<std::string> ids;
  for (const auto& set : spec.sets()) {
    for (const auto& brick : set.bricks()) ids.push_back(volume::BrickId(brick));
  }
  return ids;
}

Result<VolumeView> ParseVolumeView(std::string_view name, const std::vector<etcd::KeyValue>& kvs) {
  const std::string prefix = volume::VolumePrefix(name);
  VolumeView view;
  bool have_spec = false;
  for (const etcd::KeyValue& kv : kvs) {
    if (!StartsWith(kv.key(), prefix)) continue;
    std::string_view rest = std::string_view(kv.key()).substr(prefix.size());
    if (rest == "spec") {
      CAIRN_ASSIGN_OR_RETURN(view.record, volume::ParseVolumeRecord(kv));
      have_spec = true;
    } else {
      AddRecord(rest, kv, &view);
    }
  }
  if (!have_spec) return NotFoundError(NoSuchVolume(name));
  return view;
}

Result<VolumeView> ReadVolume(EtcdClient& client, std::string_view name) {
  CAIRN_RETURN_IF_ERROR(volume::ValidateVolumeName(name));
  CAIRN_ASSIGN_OR_RETURN(auto kvs, RangePrefix(client, volume::VolumePrefix(name)));
  return ParseVolumeView(name, kvs);
}

Result<std::vector<VolumeView>> ReadAllVolumes(EtcdClient& client, std::vector<std::string>* problems) {
  CAIRN_ASSIGN_OR_RETURN(auto kvs, RangePrefix(client, std::string(volume::kVolumesPrefix)));
  // Keys come sorted, so each volume's keys are contiguous.
  std::map<std::string, std::vector<etcd::KeyValue>> by_volume;
  for (etcd::KeyValue& kv : kvs) {
    std::string_view rest = std::string_view(kv.key()).substr(volume::kVolumesPrefix.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) continue;
    by_volume[std::string(rest.substr(0, slash))].push_back(std::move(kv));
  }
  std::vector<VolumeView> views;
  for (const auto& [name, records] : by_volume) {
    auto view = ParseVolumeView(name, records);
    if (view.ok()) {
      views.push_back(std::move(*view));
    } else if (view.status().code() != StatusCode::kNotFound) {
      problems->push_back(view.status().message());
    }
    // NotFound: leftovers without a spec (e.g. an address key outliving a deleted volume).
  }
  return views;
}

Result<vpb::VolumeSpec> UpdateVolume(EtcdClient& client, std::string_view name, const SpecChange& change) {
  for (int attempt = 0; attempt < kUpdateAttempts; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(VolumeView view, ReadVolume(client, name));
    CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec next, change(view.spec()));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnRequest txn, volume::UpdateVolumeTxn(view.record, next));
    CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client.Txn(txn));
    if (response.succeeded()) return next;
    // Someone else changed the spec since we read it: decide again from the new one.
  }
  return AbortedError("volume " + std::string(name) + " kept changing while this command ran; try again");
}

Status CheckBricksNotInOtherVolumes(const vpb::VolumeSpec& spec, const std::vector<VolumeView>& volumes) {
  for (const VolumeView& other : volumes) {
    if (other.spec().name() == spec.name()) continue;
    for (const auto& other_set : other.spec().sets()) {
      for (const auto& theirs : other_set.bricks()) {
        for (const auto& set : spec.sets()) {
          for (const auto& ours : set.bricks()) {
            if (!Overlap(ours, theirs)) continue;
            std::string how = ours.path() == theirs.path() ? " is already a brick of volume "
                                                            : " overlaps brick " + volume::BrickId(theirs) + " of volume ";
            return FailedPreconditionError("brick " + volume::BrickId(ours) + how + other.spec().name() +
                                           "; use another directory");
          }
        }
      }
    }
  }
  return Status::Ok();
}

std::vector<std::string> UnknownHosts(const vpb::VolumeSpec& spec, const std::vector<std::string>& members) {
  std::vector<std::string> unknown;
  for (const auto& set : spec.sets()) {
    for (const auto& brick : set.bricks()) {
      bool member = std::find(members.begin(), members.end(), brick.host()) != members.end();
      bool listed = std::find(unknown.begin(), unknown.end(), brick.host()) != unknown.end();
      if (!member && !listed) unknown.push_back(brick.host());
    }
  }
  return unknown;
}

std::vector<std::string> MissingForService(const VolumeView& view, const std::vector<std::string>& members) {
  std::vector<std::string> missing;
  for (const auto& set : view.spec().sets()) {
    for (const auto& brick : set.bricks()) {
      const std::string id = volume::BrickId(brick);
      if (view.addresses.count(id)) continue;
      std::string why = "is not served yet";
      if (!members.empty() && std::find(members.begin(), members.end(), brick.host()) == members.end()) {
        why += " (no cluster member is named " + brick.host() + "; see clusterctl member list)";
      } else {
        why += " (is clusterd on " + brick.host() + " running?)";
      }
      missing.push_back("brick " + id + " " + why);
    }
    auto record = view.sets.find(set.id());
    const std::string name = "set " + std::to_string(set.id());
    if (record == view.sets.end()) {
      missing.push_back(name + " has no replica-set record in the store");
    } else if (record->second.state.mode() != vpb::REPLICA_SET_NORMAL) {
      missing.push_back(name + " has no quorum: none of its in-sync bricks is reachable");
    } else if (!HasLivePrimary(view, set.id(), record->second.state)) {
      missing.push_back(name + " has no primary yet");
    }
  }
  return missing;
}

Result<std::chrono::nanoseconds> ParseWait(std::string_view text) {
  if (text == "0") return std::chrono::nanoseconds(0);
  auto wait = ParseDuration(text);
  if (!wait.ok()) return InvalidArgumentError("--wait: " + wait.status().message() + ", or 0 not to wait");
  return *wait;
}

Result<std::vector<std::string>> MemberNames(EtcdClient& client) {
  CAIRN_ASSIGN_OR_RETURN(etcd::MemberListResponse response, client.MemberList());
  std::vector<std::string> names;
  for (const etcd::Member& member : response.members()) {
    if (!member.name().empty()) names.push_back(member.name());
  }
  return names;
}

}  // namespace cairn::clusterctl
