#include "cairn/volume/rebalance.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

#include "cairn/common/strings.h"
#include "cairn/volume/keys.h"

namespace cairn::volume {
namespace {

constexpr std::string_view kTempPrefix = ".cairn-rebalance-";

bool HardLinked(const ListedEntry& entry) { return !entry.directory && entry.nlink > 1 && !entry.id.empty(); }

bool ByName(const ListedEntry& a, const ListedEntry& b) {
  return std::tie(a.parent_id, a.name) < std::tie(b.parent_id, b.name);
}

// Hard-linked names, grouped by (set listed on, id), in name order.
std::map<std::pair<uint32_t, std::string>, std::vector<ListedEntry>> LinkGroups(const std::vector<ListedEntry>& listing) {
  std::map<std::pair<uint32_t, std::string>, std::vector<ListedEntry>> groups;
  for (const auto& entry : listing) {
    if (HardLinked(entry)) groups[{entry.set_id, entry.id}].push_back(entry);
  }
  for (auto& [key, names] : groups) std::sort(names.begin(), names.end(), ByName);
  return groups;
}

void PlanLinkGroups(const pb::VolumeSpec& spec, const std::vector<uint32_t>& new_sets,
                    const std::vector<ListedEntry>& listing, RebalancePlan* plan) {
  for (auto& [key, names] : LinkGroups(listing)) {
    if (std::binary_search(new_sets.begin(), new_sets.end(), key.first)) {
      plan->hard_links_kept += names.size();
      continue;
    }
    FileMove move{names.front(), key.first, SetForName(spec.layout(), names.front().parent_id, names.front().name), {}};
    move.other_names.assign(names.begin() + 1, names.end());
    plan->bytes_to_move += move.entry.bytes;
    plan->moves.push_back(std::move(move));
  }
}

}  // namespace

Result<RebalancePlan> PlanRebalance(const pb::VolumeSpec& spec, const std::vector<ListedEntry>& listing) {
  if (!spec.has_previous_layout()) {
    return FailedPreconditionError("volume " + spec.name() + " has no rebalance pending");
  }
  const auto old_sets = LayoutSets(spec.previous_layout());
  const auto new_sets = LayoutSets(spec.layout());
  std::vector<uint32_t> added;
  std::set_difference(new_sets.begin(), new_sets.end(), old_sets.begin(), old_sets.end(),
                      std::back_inserter(added));
  RebalancePlan plan;
  for (const auto& entry : listing) {
    ++plan.files_listed;
    if (entry.directory) {
      for (uint32_t set_id : added) plan.directories.push_back({entry, set_id});
      continue;
    }
    if (!std::binary_search(old_sets.begin(), old_sets.end(), entry.set_id)) {
      return InvalidArgumentError("entry " + entry.name + " was listed on set " + std::to_string(entry.set_id) +
                                  ", which the volume's previous layout does not name");
    }
    if (HardLinked(entry)) continue;  // planned per file below
    uint32_t target = SetForName(spec.layout(), entry.parent_id, entry.name);
    if (target == entry.set_id) continue;
    plan.moves.push_back({entry, entry.set_id, target, {}});
    plan.bytes_to_move += entry.bytes;
  }
  PlanLinkGroups(spec, new_sets, listing, &plan);
  return plan;
}

std::string RebalanceTempName(std::string_view file_id) {
  static const char kDigits[] = "0123456789abcdef";
  std::string name(kTempPrefix);
  for (unsigned char c : file_id) {
    name.push_back(kDigits[c >> 4]);
    name.push_back(kDigits[c & 15]);
  }
  return name;
}

bool IsRebalanceTempName(std::string_view name) { return name.substr(0, kTempPrefix.size()) == kTempPrefix; }

std::string RebalanceKey(std::string_view volume) { return VolumePrefix(volume) + "rebalance"; }
std::string RebalanceOwnerKey(std::string_view volume) { return VolumePrefix(volume) + "rebalance-owner"; }

Result<etcd::TxnRequest> FinishRebalanceTxn(const VolumeRecord& current, const pb::HealCheckpoint& final_progress) {
  if (!current.spec.has_previous_layout()) {
    return FailedPreconditionError("volume " + current.spec.name() + " has no rebalance pending");
  }
  CAIRN_ASSIGN_OR_RETURN(etcd::TxnRequest txn, UpdateVolumeTxn(current, FinishRebalance(current.spec)));
  *txn.add_success() = PutOp(RebalanceKey(current.spec.name()), final_progress.SerializeAsString());
  etcd::RequestOp release;
  release.mutable_request_delete_range()->set_key(RebalanceOwnerKey(current.spec.name()));
  *txn.add_success() = std::move(release);
  return txn;
}

namespace {

void FillProgress(const pb::HealCheckpoint& progress, RebalanceStatus* status) {
  status->has_progress = true;
  status->files_left = progress.files_left();
  status->bytes_left = progress.bytes_left();
  status->files_moved = progress.files_total() - std::min(progress.files_total(), progress.files_left());
  status->bytes_moved = progress.bytes_total() - std::min(progress.bytes_total(), progress.bytes_left());
  status->files_per_second = progress.files_per_second();
  status->bytes_per_second = progress.bytes_per_second();
  status->eta_ms = progress.eta_ms();
}

}  // namespace

RebalanceStatus RebalanceStatusOf(const pb::VolumeSpec& spec, const pb::HealCheckpoint* progress, std::string_view owner) {
  RebalanceStatus status;
  status.to_epoch = spec.layout().epoch();
  const bool ours = progress != nullptr && progress->epoch() == spec.layout().epoch();
  if (!spec.has_previous_layout()) {
    status.from_epoch = status.to_epoch;
    if (!ours) {
      status.state = "not needed";
      status.detail = "no add-brick or remove-brick since the volume was created";
      return status;
    }
    status.state = "completed";
    status.detail = "every file is on the set its name hash names (finished by " + progress->brick() + ")";
    FillProgress(*progress, &status);
    return status;
  }
  status.from_epoch = spec.previous_layout().epoch();
  if (ours) FillProgress(*progress, &status);
  if (owner.empty()) {
    status.state = "pending";
    status.detail = spec.state() == pb::VOLUME_STARTED
                        ? "waiting for a volume agent to take it on (is clusterd running on a host with a brick?)"
                        : "the volume is not started; the data move once it is";
    return status;
  }
  status.state = ours && progress->failed() ? "retrying" : "running";
  status.detail = "on " + std::string(owner);
  return status;
}

std::string FormatRebalanceStatus(const std::string& volume, const RebalanceStatus& status) {
  std::string out = "Volume " + volume + ": rebalance " + status.state;
  if (status.from_epoch != status.to_epoch) {
    out += " (layout epoch " + std::to_string(status.from_epoch) + " -> " + std::to_string(status.to_epoch) + ")";
  }
  out += ": " + status.detail + "\n";
  if (!status.has_progress) return out;
  out += "Files moved: " + std::to_string(status.files_moved) + ", left: " + std::to_string(status.files_left) + "\n";
  out += "Bytes moved: " + HumanBytes(status.bytes_moved) + ", left: " + HumanBytes(status.bytes_left) + "\n";
  char line[128];
  std::snprintf(line, sizeof(line), "Rate: %.0f files/s, %s/s\n", status.files_per_second,
                HumanBytes(static_cast<uint64_t>(status.bytes_per_second)).c_str());
  out += line;
  if (status.eta_ms >= 0 && status.files_left > 0) {
    const long long seconds = status.eta_ms / 1000;
    std::snprintf(line, sizeof(line), "ETA: %lld:%02lld:%02lld\n", seconds / 3600, seconds / 60 % 60, seconds % 60);
    out += line;
  }
  return out;
}

}  // namespace cairn::volume
