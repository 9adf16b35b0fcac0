#include "volume_format.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/rebalance.h"
#include "cairn/volume/replica_set.h"
#include "cli.h"

namespace cairn::clusterctl {

// ---- JsonWriter -----------------------------------------------------------------------------------

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) text_ += ',';
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  text_ += '{';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  text_ += '}';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  text_ += '[';
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  text_ += ']';
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view name) {
  BeforeValue();
  text_ += "\"" + log::JsonEscape(name) + "\":";
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  text_ += "\"" + log::JsonEscape(value) + "\"";
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  text_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  text_ += std::to_string(value);
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Null();  // JSON has no NaN or infinity
  BeforeValue();
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  text_ += text;
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  text_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  text_ += "null";
  return *this;
}

// ---- names ----------------------------------------------------------------------------------------

std::string VolumeTypeName(const vpb::VolumeSpec& spec) {
  if (spec.replica_count() <= 1) return "Distribute";
  return spec.sets_size() > 1 ? "Distributed-Replicate" : "Replicate";
}

std::string VolumeStateName(vpb::VolumeState state) {
  switch (state) {
    case vpb::VOLUME_STARTED: return "Started";
    case vpb::VOLUME_STOPPED: return "Stopped";
    default: return "Created";
  }
}

std::string NoQuorumName(vpb::NoQuorumPolicy policy) {
  return policy == vpb::NO_QUORUM_READONLY ? "readonly" : "eio";
}

std::string SetModeName(vpb::ReplicaSetMode mode) {
  switch (mode) {
    case vpb::REPLICA_SET_NO_QUORUM_EIO: return "no-quorum (eio)";
    case vpb::REPLICA_SET_NO_QUORUM_READONLY: return "no-quorum (readonly)";
    default: return "normal";
  }
}

namespace {

std::string BrickCount(const vpb::VolumeSpec& spec) {
  size_t bricks = static_cast<size_t>(spec.sets_size()) * spec.replica_count();
  if (spec.replica_count() <= 1) return std::to_string(bricks);
  return std::to_string(spec.sets_size()) + " x " + std::to_string(spec.replica_count()) + " = " + std::to_string(bricks);
}

bool RebalancePending(const vpb::VolumeSpec& spec) { return spec.has_previous_layout(); }

// Sets the current layout no longer names: remove-brick took them out, their files still have to move.
bool SetBeingRemoved(const vpb::VolumeSpec& spec, uint32_t set_id) {
  auto live = volume::LayoutSets(spec.layout());
  return !std::binary_search(live.begin(), live.end(), set_id);
}

std::string PercentShare(const vpb::VolumeSpec& spec, uint32_t set_id) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * volume::LayoutShare(spec.layout(), set_id));
  return text;
}

std::string LayoutLine(const vpb::VolumeSpec& spec) {
  std::string line = "epoch " + std::to_string(spec.layout().epoch());
  if (RebalancePending(spec)) {
    line += ", rebalance pending: files placed by layout epoch " + std::to_string(spec.previous_layout().epoch()) +
            " have not been moved";
  }
  return line;
}

std::string SetNote(const vpb::VolumeSpec& spec, uint32_t set_id) {
  std::string note = "set " + std::to_string(set_id) + ", " + PercentShare(spec, set_id) + " of names";
  if (SetBeingRemoved(spec, set_id)) note += ", being removed";
  return note;
}

}  // namespace

// ---- rebalance ------------------------------------------------------------------------------------

volume::RebalanceStatus RebalanceStatusOf(const VolumeView& view) {
  return volume::RebalanceStatusOf(view.spec(), view.rebalance ? &*view.rebalance : nullptr, view.rebalance_owner);
}

namespace {

// "running on n1: 120 files moved, 80 left" for info and status.
std::string RebalanceLine(const VolumeView& view) {
  volume::RebalanceStatus status = RebalanceStatusOf(view);
  std::string line = status.state + " " + status.detail;
  if (status.has_progress) {
    line += ": " + std::to_string(status.files_moved) + " files moved, " + std::to_string(status.files_left) + " left";
  }
  return line + " (clusterctl volume rebalance " + view.spec().name() + " status)";
}

}  // namespace

void PrintRebalance(std::ostream& out, const VolumeView& view) {
  out << volume::FormatRebalanceStatus(view.spec().name(), RebalanceStatusOf(view));
}

void RebalanceJson(JsonWriter& json, const VolumeView& view) {
  volume::RebalanceStatus status = RebalanceStatusOf(view);
  json.BeginObject().Key("name").String(view.spec().name());
  json.Key("state").String(status.state).Key("detail").String(status.detail);
  json.Key("owner").String(view.rebalance_owner);
  json.Key("from_epoch").Uint(status.from_epoch).Key("to_epoch").Uint(status.to_epoch);
  json.Key("files_moved").Uint(status.files_moved).Key("files_left").Uint(status.files_left);
  json.Key("bytes_moved").Uint(status.bytes_moved).Key("bytes_left").Uint(status.bytes_left);
  json.Key("files_per_second").Double(status.files_per_second).Key("bytes_per_second").Double(status.bytes_per_second);
  if (status.eta_ms >= 0 && status.files_left > 0) {
    json.Key("eta_seconds").Double(static_cast<double>(status.eta_ms) / 1000);
  } else {
    json.Key("eta_seconds").Null();
  }
  json.EndObject();
}

// ---- info -----------------------------------------------------------------------------------------

void PrintInfo(std::ostream& out, const VolumeView& view) {
  const vpb::VolumeSpec& spec = view.spec();
  out << "Volume Name: " << spec.name() << "\n"
      << "Type: " << VolumeTypeName(spec) << "\n"
      << "Status: " << VolumeStateName(spec.state()) << "\n"
      << "Number of Bricks: " << BrickCount(spec) << "\n"
      << "Bricks:\n";
  int number = 0;
  for (const auto& set : spec.sets()) {
    for (const auto& brick : set.bricks()) {
      out << "Brick" << ++number << ": " << volume::BrickId(brick) << " (" << SetNote(spec, set.id()) << ")\n";
    }
  }
  out << "Layout: " << LayoutLine(spec) << "\n";
  if (RebalancePending(spec)) out << "Rebalance: " << RebalanceLine(view) << "\n";
  out << "Options:\n"
      << "no-quorum: " << NoQuorumName(spec.options().no_quorum()) << "\n";
}

void InfoJson(JsonWriter& json, const VolumeView& view) {
  const vpb::VolumeSpec& spec = view.spec();
  json.BeginObject();
  json.Key("name").String(spec.name());
  json.Key("type").String(VolumeTypeName(spec));
  json.Key("state").String(VolumeStateName(spec.state()));
  json.Key("replica_count").Uint(spec.replica_count());
  json.Key("brick_count").Uint(static_cast<uint64_t>(spec.sets_size()) * spec.replica_count());
  json.Key("sets").BeginArray();
  for (const auto& set : spec.sets()) {
    json.BeginObject().Key("id").Uint(set.id());
    json.Key("share").Double(volume::LayoutShare(spec.layout(), set.id()));
    json.Key("being_removed").Bool(SetBeingRemoved(spec, set.id()));
    json.Key("bricks").BeginArray();
    for (const auto& brick : set.bricks()) json.String(volume::BrickId(brick));
    json.EndArray().EndObject();
  }
  json.EndArray();
  json.Key("layout_epoch").Uint(spec.layout().epoch());
  json.Key("rebalance_pending").Bool(RebalancePending(spec));
  json.Key("options").BeginObject().Key("no-quorum").String(NoQuorumName(spec.options().no_quorum())).EndObject();
  json.EndObject();
}

// ---- status ---------------------------------------------------------------------------------------

namespace {

std::string Role(const VolumeView& view, uint32_t set_id, const vpb::ReplicaSetState& state, const std::string& brick) {
  if (state.primary() == brick && state.mode() == vpb::REPLICA_SET_NORMAL) {
    auto key = view.primary_keys.find(set_id);
    bool live = key != view.primary_keys.end() && key->second == brick;
    return live ? "primary" : "primary (lease gone)";
  }
  return volume::IsInSync(state, brick) ? "in-sync" : "out-of-sync";
}

// Why a set does not serve normally, or "" when it does.
std::string SetProblem(const VolumeView& view, const vpb::ReplicaSetSpec& set) {
  auto record = view.sets.find(set.id());
  if (record == view.sets.end()) return "no replica-set record in the store";
  const vpb::ReplicaSetState& state = record->second.state;
  if (state.mode() == vpb::REPLICA_SET_NO_QUORUM_EIO) {
    return "no quorum: no in-sync brick is reachable; all I/O fails with EIO until one returns";
  }
  if (state.mode() == vpb::REPLICA_SET_NO_QUORUM_READONLY) {
    return "no quorum: no in-sync brick is reachable; stale reads from " + state.read_source() +
           ", writes fail with EROFS until an in-sync brick returns";
  }
  if (state.primary().empty()) return "no primary yet";
  auto key = view.primary_keys.find(set.id());
  if (key == view.primary_keys.end() || key->second != state.primary()) {
    return "primary " + state.primary() + " lost its lease; a new primary is being chosen";
  }
  return "";
}

}  // namespace

std::vector<BrickStatus> BrickStatuses(const VolumeView& view) {
  std::vector<BrickStatus> rows;
  for (const auto& set : view.spec().sets()) {
    auto record = view.sets.find(set.id());
    for (const auto& brick : set.bricks()) {
      BrickStatus row;
      row.set_id = set.id();
      row.brick = volume::BrickId(brick);
      auto address = view.addresses.find(row.brick);
      if (address != view.addresses.end()) row.address = address->second;
      if (record == view.sets.end()) {
        row.role = row.mode = "unknown";
      } else {
        row.role = Role(view, set.id(), record->second.state, row.brick);
        row.epoch = record->second.state.epoch();
        row.mode = SetModeName(record->second.state.mode());
      }
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

void PrintStatus(std::ostream& out, const VolumeView& view) {
  const vpb::VolumeSpec& spec = view.spec();
  out << "Volume " << spec.name() << ": " << VolumeStateName(spec.state()) << ", " << VolumeTypeName(spec) << " "
      << BrickCount(spec) << ", layout " << LayoutLine(spec) << "\n";
  if (RebalancePending(spec)) out << "rebalance " << RebalanceLine(view) << "\n";
  std::vector<std::vector<std::string>> rows{{"SET", "BRICK", "ADDRESS", "ROLE", "EPOCH", "MODE"}};
  for (const BrickStatus& row : BrickStatuses(view)) {
    rows.push_back({std::to_string(row.set_id), row.brick, row.address.empty() ? "down" : row.address, row.role,
                    row.epoch == 0 ? "-" : std::to_string(row.epoch), row.mode});
  }
  PrintTable(out, rows);
  if (spec.state() != vpb::VOLUME_STARTED) {
    out << "volume " << spec.name() << " is not started, so no brick is served (clusterctl volume start "
        << spec.name() << ")\n";
    return;
  }
  for (const auto& set : spec.sets()) {
    std::string problem = SetProblem(view, set);
    if (!problem.empty()) out << "set " << set.id() << ": " << problem << "\n";
  }
  for (const std::string& problem : view.problems) out << "warning: " << problem << "\n";
}

void StatusJson(JsonWriter& json, const VolumeView& view) {
  const vpb::VolumeSpec& spec = view.spec();
  json.BeginObject();
  json.Key("name").String(spec.name());
  json.Key("state").String(VolumeStateName(spec.state()));
  json.Key("type").String(VolumeTypeName(spec));
  json.Key("layout_epoch").Uint(spec.layout().epoch());
  json.Key("rebalance_pending").Bool(RebalancePending(spec));
  json.Key("bricks").BeginArray();
  for (const BrickStatus& row : BrickStatuses(view)) {
    json.BeginObject().Key("set").Uint(row.set_id).Key("brick").String(row.brick);
    json.Key("online").Bool(!row.address.empty());
    if (row.address.empty()) {
      json.Key("address").Null();
    } else {
      json.Key("address").String(row.address);
    }
    json.Key("role").String(row.role).Key("epoch").Uint(row.epoch).Key("mode").String(row.mode).EndObject();
  }
  json.EndArray();
  json.Key("sets").BeginArray();
  for (const auto& set : spec.sets()) {
    json.BeginObject().Key("id").Uint(set.id());
    auto record = view.sets.find(set.id());
    if (record != view.sets.end()) {
      const vpb::ReplicaSetState& state = record->second.state;
      json.Key("epoch").Uint(state.epoch()).Key("primary").String(state.primary());
      json.Key("in_sync").BeginArray();
      for (const std::string& brick : state.in_sync()) json.String(brick);
      json.EndArray();
      json.Key("mode").String(SetModeName(state.mode())).Key("read_source").String(state.read_source());
    }
    std::string problem = SetProblem(view, set);
    json.Key("serving").Bool(problem.empty() && spec.state() == vpb::VOLUME_STARTED);
    json.Key("problem").String(problem);
    json.EndObject();
  }
  json.EndArray();
  json.Key("warnings").BeginArray();
  for (const std::string& problem : view.problems) json.String(problem);
  json.EndArray();
  json.EndObject();
}

// ---- heal -----------------------------------------------------------------------------------------

std::vector<volume::BrickHealStatus> HealRows(const VolumeView& view) {
  std::vector<volume::BrickHealStatus> rows;
  for (const auto& set : view.spec().sets()) {
    auto record = view.sets.find(set.id());
    if (record == view.sets.end()) continue;
    auto set_rows = volume::HealStatus(set, record->second.state, view.checkpoints);
    rows.insert(rows.end(), set_rows.begin(), set_rows.end());
  }
  return rows;
}

void HealJson(JsonWriter& json, const VolumeView& view) {
  json.BeginObject().Key("name").String(view.spec().name()).Key("bricks").BeginArray();
  for (const volume::BrickHealStatus& row : HealRows(view)) {
    json.BeginObject().Key("brick").String(row.brick);
    json.Key("in_sync").Bool(row.in_sync).Key("primary").Bool(row.primary).Key("healing").Bool(row.healing);
    json.Key("full_scan").Bool(row.full_scan).Key("failed").Bool(row.failed);
    json.Key("files_left").Uint(row.files_left).Key("bytes_left").Uint(row.bytes_left);
    json.Key("files_per_second").Double(row.files_per_second).Key("bytes_per_second").Double(row.bytes_per_second);
    if (row.eta) {
      json.Key("eta_seconds").Double(std::chrono::duration<double>(*row.eta).count());
    } else {
      json.Key("eta_seconds").Null();
    }
    json.EndObject();
  }
  json.EndArray().EndObject();
}

}  // namespace cairn::clusterctl
