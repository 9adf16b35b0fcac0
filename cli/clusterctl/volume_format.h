// How the `clusterctl volume` verbs print volumes: `volume info` in `gluster volume info`'s shape,
// the per-brick `volume status` table, the heal table, and the -o json form of each. Pure
// functions of a VolumeView (volume_records.h); thread-safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/volume/heal.h"
#include "cairn/volume/rebalance.h"
#include "volume_records.h"

namespace cairn::clusterctl {

// Builds compact JSON text. Calls must nest properly (BeginObject/EndObject, Key before each
// member's value); the writer adds the commas.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view name);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  const std::string& text() const { return text_; }

 private:
  void BeforeValue();

  std::string text_;
  std::vector<bool> first_;  // per open object/array: nothing written in it yet
  bool after_key_ = false;
};

// "Replicate" (one set of N > 1), "Distributed-Replicate" (several sets of N > 1), "Distribute" (N = 1).
std::string VolumeTypeName(const vpb::VolumeSpec& spec);
// "Created", "Started", "Stopped".
std::string VolumeStateName(vpb::VolumeState state);
// "eio", "readonly": the words `volume create --no-quorum` and `volume set NAME no-quorum` take.
std::string NoQuorumName(vpb::NoQuorumPolicy policy);
// "normal", "no-quorum (eio)", "no-quorum (readonly)".
std::string SetModeName(vpb::ReplicaSetMode mode);

// `volume info`: name, type, state, brick count, bricks in order with their set, layout, options.
void PrintInfo(std::ostream& out, const VolumeView& view);
void InfoJson(JsonWriter& json, const VolumeView& view);

// One row of `volume status`.
struct BrickStatus {
  uint32_t set_id = 0;
  std::string brick;
  std::string address;  // empty: not served ("down")
  std::string role;     // primary, primary (lease gone), in-sync, out-of-sync, unknown (no set record)
  uint64_t epoch = 0;
  std::string mode;     // SetModeName of the set, "unknown" without a set record
};
std::vector<BrickStatus> BrickStatuses(const VolumeView& view);
// The per-brick table, then one line per set that does not serve normally and why.
void PrintStatus(std::ostream& out, const VolumeView& view);
void StatusJson(JsonWriter& json, const VolumeView& view);

// `volume heal NAME status`: volume::HealStatus rows for every set, in set order. A set without
// a record is skipped (PrintStatus names it).
std::vector<volume::BrickHealStatus> HealRows(const VolumeView& view);
void HealJson(JsonWriter& json, const VolumeView& view);

// `volume rebalance NAME status`: volume::RebalanceStatusOf from the spec, the mover's progress
// record and the owner key; FormatRebalanceStatus's text, or one JSON object.
volume::RebalanceStatus RebalanceStatusOf(const VolumeView& view);
void PrintRebalance(std::ostream& out, const VolumeView& view);
void RebalanceJson(JsonWriter& json, const VolumeView& view);

}  // namespace cairn::clusterctl
