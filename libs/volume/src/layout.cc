#include "cairn/volume/layout.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace cairn::volume {
namespace {

constexpr uint64_t kHashSpace = uint64_t{1} << 32;

// A range as [start, end) in 64-bit arithmetic, so the top of the space needs no special case.
struct Segment {
  uint64_t start;
  uint64_t end;
  uint32_t set_id;
};

std::vector<Segment> ToSegments(const pb::VolumeLayout& layout) {
  std::vector<Segment> segments;
  for (const auto& range : layout.ranges()) {
    segments.push_back({range.start(), uint64_t{range.end()} + 1, range.set_id()});
  }
  return segments;
}

pb::VolumeLayout FromSegments(std::vector<Segment> segments, uint64_t epoch) {
  std::sort(segments.begin(), segments.end(),
            [](const Segment& a, const Segment& b) { return a.start < b.start; });
  pb::VolumeLayout layout;
  layout.set_epoch(epoch);
  for (const auto& segment : segments) {
    if (segment.end <= segment.start) continue;
    int count = layout.ranges_size();
    if (count > 0 && layout.ranges(count - 1).set_id() == segment.set_id) {
      layout.mutable_ranges(count - 1)->set_end(static_cast<uint32_t>(segment.end - 1));
      continue;
    }
    auto* range = layout.add_ranges();
    range->set_start(static_cast<uint32_t>(segment.start));
    range->set_end(static_cast<uint32_t>(segment.end - 1));
    range->set_set_id(segment.set_id);
  }
  return layout;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

Result<std::string> NormalizeBrickPath(std::string_view text, std::string_view whole) {
  if (text.empty() || text[0] != '/') {
    return InvalidArgumentError("brick \"" + std::string(whole) + "\": the path must be absolute (HOST:/PATH)");
  }
  std::string path;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t next = text.find('/', pos);
    if (next == std::string_view::npos) next = text.size();
    std::string_view part = text.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      return InvalidArgumentError("brick \"" + std::string(whole) + "\": \".\" and \"..\" are not allowed in the path");
    }
    path += "/";
    path += part;
  }
  if (path.empty()) {
    return InvalidArgumentError("brick \"" + std::string(whole) + "\": the path cannot be / itself; use a directory");
  }
  return path;
}

// True when `inner` is `outer` or lies beneath it.
bool PathWithin(const std::string& inner, const std::string& outer) {
  return inner == outer || (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                            inner[outer.size()] == '/');
}

Result<std::vector<pb::Brick>> ParseBricks(const std::vector<std::string>& texts) {
  std::vector<pb::Brick> bricks;
  for (const auto& text : texts) {
    CAIRN_ASSIGN_OR_RETURN(auto brick, ParseBrick(text));
    bricks.push_back(std::move(brick));
  }
  return bricks;
}

// No brick twice, and no brick inside another on the same host (their files would mix).
Status CheckBrickConflicts(const std::vector<pb::Brick>& bricks) {
  for (size_t i = 0; i < bricks.size(); ++i) {
    for (size_t j = i + 1; j < bricks.size(); ++j) {
      const auto& a = bricks[i];
      const auto& b = bricks[j];
      if (a.host() != b.host()) continue;
      if (a.path() == b.path()) {
        return InvalidArgumentError("brick " + BrickId(a) + " is given twice");
      }
      if (PathWithin(a.path(), b.path()) || PathWithin(b.path(), a.path())) {
        return InvalidArgumentError("bricks " + BrickId(a) + " and " + BrickId(b) +
                                    " overlap: one directory is inside the other");
      }
    }
  }
  return Status::Ok();
}

// GlusterFS's rule: two copies on one host protect against disk loss only, so it needs --force.
Status CheckSetHosts(const std::vector<pb::Brick>& set_bricks, bool force) {
  if (force) return Status::Ok();
  for (size_t i = 0; i < set_bricks.size(); ++i) {
    for (size_t j = i + 1; j < set_bricks.size(); ++j) {
      if (set_bricks[i].host() == set_bricks[j].host()) {
        return FailedPreconditionError(
            "bricks " + BrickId(set_bricks[i]) + " and " + BrickId(set_bricks[j]) +
            " would be replicas of one another on the same host, so losing that host loses both; "
            "put them on different hosts or pass --force");
      }
    }
  }
  return Status::Ok();
}

Status CheckBrickCount(size_t count, uint32_t replica_count) {
  if (replica_count == 0 || replica_count > kMaxReplicaCount) {
    return InvalidArgumentError("replica count must be between 1 and " + std::to_string(kMaxReplicaCount) +
                                ", got " + std::to_string(replica_count));
  }
  if (count == 0 || count % replica_count != 0) {
    return InvalidArgumentError("the number of bricks (" + std::to_string(count) +
                                ") must be a positive multiple of the replica count (" +
                                std::to_string(replica_count) + ")");
  }
  return Status::Ok();
}

std::vector<pb::Brick> AllBricks(const pb::VolumeSpec& spec) {
  std::vector<pb::Brick> bricks;
  for (const auto& set : spec.sets()) bricks.insert(bricks.end(), set.bricks().begin(), set.bricks().end());
  return bricks;
}

// Appends the new bricks to `spec` as sets of replica_count, checking hosts per set.
Status AppendSets(pb::VolumeSpec* spec, const std::vector<pb::Brick>& bricks, bool force) {
  const uint32_t n = spec->replica_count();
  for (size_t first = 0; first < bricks.size(); first += n) {
    std::vector<pb::Brick> set_bricks(bricks.begin() + static_cast<long>(first),
                                      bricks.begin() + static_cast<long>(first + n));
    CAIRN_RETURN_IF_ERROR(CheckSetHosts(set_bricks, force));
    auto* set = spec->add_sets();
    set->set_id(spec->next_set_id());
    spec->set_next_set_id(spec->next_set_id() + 1);
    for (auto& brick : set_bricks) *set->add_bricks() = std::move(brick);
  }
  return Status::Ok();
}

}  // namespace

Result<pb::Brick> ParseBrick(std::string_view text) {
  for (char c : text) {
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == ' ') {
      return InvalidArgumentError("brick \"" + std::string(text) + "\": spaces and control characters are not allowed");
    }
  }
  std::string_view host;
  std::string_view path;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgumentError("brick \"" + std::string(text) + "\": expected [ADDRESS]:/PATH");
    }
    host = text.substr(1, close - 1);
    path = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos) {
      return InvalidArgumentError("brick \"" + std::string(text) + "\": expected HOST:/PATH");
    }
    host = text.substr(0, colon);
    path = text.substr(colon + 1);
  }
  if (host.empty() || host.find('/') != std::string_view::npos) {
    return InvalidArgumentError("brick \"" + std::string(text) + "\": the host is empty or malformed (HOST:/PATH)");
  }
  CAIRN_ASSIGN_OR_RETURN(auto normalized, NormalizeBrickPath(path, text));
  pb::Brick brick;
  brick.set_host(std::string(host));
  brick.set_path(std::move(normalized));
  return brick;
}

std::string BrickId(const pb::Brick& brick) {
  bool v6 = brick.host().find(':') != std::string::npos;
  return (v6 ? "[" + brick.host() + "]" : brick.host()) + ":" + brick.path();
}

Status ValidateVolumeName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return InvalidArgumentError("volume name must be 1 to 64 characters, got " + std::to_string(name.size()));
  }
  if (name[0] == '.' || name[0] == '-') {
    return InvalidArgumentError("volume name \"" + std::string(name) + "\" must not start with '.' or '-'");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return InvalidArgumentError("volume name \"" + std::string(name) +
                                  "\" may contain only letters, digits, '_', '.' and '-'");
    }
  }
  return Status::Ok();
}

Result<pb::VolumeSpec> CreateVolumeSpec(const CreateVolumeRequest& request) {
  CAIRN_RETURN_IF_ERROR(ValidateVolumeName(request.name));
  CAIRN_RETURN_IF_ERROR(CheckBrickCount(request.bricks.size(), request.replica_count));
  CAIRN_ASSIGN_OR_RETURN(auto bricks, ParseBricks(request.bricks));
  CAIRN_RETURN_IF_ERROR(CheckBrickConflicts(bricks));
  pb::VolumeSpec spec;
  spec.set_name(request.name);
  spec.set_replica_count(request.replica_count);
  spec.mutable_options()->set_no_quorum(request.no_quorum);
  spec.set_state(pb::VOLUME_CREATED);
  CAIRN_RETURN_IF_ERROR(AppendSets(&spec, bricks, request.force));
  std::vector<uint32_t> ids;
  for (const auto& set : spec.sets()) ids.push_back(set.id());
  *spec.mutable_layout() = EvenLayout(ids, 1);
  return spec;
}

Result<pb::VolumeSpec> AddBricks(const pb::VolumeSpec& spec, const std::vector<std::string>& bricks,
                                 bool force) {
  if (spec.has_previous_layout()) {
    return FailedPreconditionError("volume " + spec.name() +
                                   " is still rebalancing after the last add-brick/remove-brick; wait for it to finish");
  }
  CAIRN_RETURN_IF_ERROR(CheckBrickCount(bricks.size(), spec.replica_count()));
  CAIRN_ASSIGN_OR_RETURN(auto added, ParseBricks(bricks));
  auto all = AllBricks(spec);
  all.insert(all.end(), added.begin(), added.end());
  CAIRN_RETURN_IF_ERROR(CheckBrickConflicts(all));
  pb::VolumeSpec next = spec;
  int first_new = next.sets_size();
  CAIRN_RETURN_IF_ERROR(AppendSets(&next, added, force));
  *next.mutable_previous_layout() = spec.layout();
  pb::VolumeLayout layout = spec.layout();
  for (int i = first_new; i < next.sets_size(); ++i) layout = LayoutWithSetAdded(layout, next.sets(i).id());
  layout.set_epoch(spec.layout().epoch() + 1);
  *next.mutable_layout() = std::move(layout);
  return next;
}

Result<pb::VolumeSpec> RemoveBricks(const pb::VolumeSpec& spec, const std::vector<std::string>& bricks) {
  if (spec.has_previous_layout()) {
    return FailedPreconditionError("volume " + spec.name() +
                                   " is still rebalancing after the last add-brick/remove-brick; wait for it to finish");
  }
  CAIRN_ASSIGN_OR_RETURN(auto removed, ParseBricks(bricks));
  CAIRN_RETURN_IF_ERROR(CheckBrickConflicts(removed));
  std::set<std::string> wanted;
  for (const auto& brick : removed) wanted.insert(BrickId(brick));
  std::vector<uint32_t> removed_sets;
  size_t matched = 0;
  for (const auto& set : spec.sets()) {
    size_t in_set = 0;
    for (const auto& brick : set.bricks()) in_set += wanted.count(BrickId(brick));
    if (in_set == 0) continue;
    if (in_set != static_cast<size_t>(set.bricks_size())) {
      return InvalidArgumentError("remove-brick must name every brick of a replica set; set " +
                                  std::to_string(set.id()) + " would keep " +
                                  std::to_string(set.bricks_size() - in_set) + " of its bricks");
    }
    matched += in_set;
    removed_sets.push_back(set.id());
  }
  if (matched != wanted.size()) {
    return InvalidArgumentError("some bricks to remove are not part of volume " + spec.name());
  }
  if (removed_sets.size() == static_cast<size_t>(spec.sets_size())) {
    return FailedPreconditionError("remove-brick would leave volume " + spec.name() +
                                   " with no bricks; delete the volume instead");
  }
  pb::VolumeSpec next = spec;
  *next.mutable_previous_layout() = spec.layout();
  pb::VolumeLayout layout = spec.layout();
  for (uint32_t id : removed_sets) layout = LayoutWithSetRemoved(layout, id);
  layout.set_epoch(spec.layout().epoch() + 1);
  *next.mutable_layout() = std::move(layout);
  return next;
}

pb::VolumeSpec FinishRebalance(const pb::VolumeSpec& spec) {
  pb::VolumeSpec next = spec;
  next.clear_previous_layout();
  next.clear_sets();
  auto live = LayoutSets(spec.layout());
  for (const auto& set : spec.sets()) {
    if (std::binary_search(live.begin(), live.end(), set.id())) *next.add_sets() = set;
  }
  return next;
}

uint32_t NameHash(std::string_view parent_id, std::string_view name) {
  uint64_t hash = 14695981039346656037ull;
  auto mix_in = [&hash](unsigned char byte) {
    hash ^= byte;
    hash *= 1099511628211ull;
  };
  for (char c : parent_id) mix_in(static_cast<unsigned char>(c));
  mix_in(0);
  for (char c : name) mix_in(static_cast<unsigned char>(c));
  // splitmix64's finalizer: FNV alone leaves similar names close together.
  hash ^= hash >> 30;
  hash *= 0xbf58476d1ce4e5b9ull;
  hash ^= hash >> 27;
  hash *= 0x94d049bb133111ebull;
  hash ^= hash >> 31;
  return static_cast<uint32_t>(hash >> 32);
}

uint32_t SetForHash(const pb::VolumeLayout& layout, uint32_t hash) {
  const auto& ranges = layout.ranges();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), hash,
                             [](uint32_t h, const pb::HashRange& range) { return h < range.start(); });
  CAIRN_CHECK(it != ranges.begin());
  return std::prev(it)->set_id();
}

uint32_t SetForName(const pb::VolumeLayout& layout, std::string_view parent_id, std::string_view name) {
  return SetForHash(layout, NameHash(parent_id, name));
}

std::vector<uint32_t> LayoutSets(const pb::VolumeLayout& layout) {
  std::set<uint32_t> ids;
  for (const auto& range : layout.ranges()) ids.insert(range.set_id());
  return {ids.begin(), ids.end()};
}

pb::VolumeLayout EvenLayout(const std::vector<uint32_t>& set_ids, uint64_t epoch) {
  std::vector<Segment> segments;
  const uint64_t n = set_ids.size();
  for (uint64_t i = 0; i < n; ++i) {
    segments.push_back({i * kHashSpace / n, (i + 1) * kHashSpace / n, set_ids[i]});
  }
  return FromSegments(std::move(segments), epoch);
}

pb::VolumeLayout LayoutWithSetAdded(const pb::VolumeLayout& layout, uint32_t set_id) {
  auto segments = ToSegments(layout);
  std::map<uint32_t, uint64_t> owned;
  for (const auto& segment : segments) owned[segment.set_id] += segment.end - segment.start;
  const uint64_t n = owned.size();
  std::map<uint32_t, uint64_t> to_take;
  for (const auto& [id, total] : owned) to_take[id] = total / (n + 1);
  // Carve each set's share from the top of its highest ranges, so each add adds few ranges.
  std::vector<Segment> carved;
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    uint64_t& want = to_take[it->set_id];
    uint64_t take = std::min(want, it->end - it->start);
    if (take == 0) continue;
    want -= take;
    carved.push_back({it->end - take, it->end, set_id});
    it->end -= take;
  }
  segments.insert(segments.end(), carved.begin(), carved.end());
  return FromSegments(std::move(segments), layout.epoch());
}

pb::VolumeLayout LayoutWithSetRemoved(const pb::VolumeLayout& layout, uint32_t set_id) {
  auto segments = ToSegments(layout);
  std::vector<uint32_t> heirs;
  uint64_t freed = 0;
  for (uint32_t id : LayoutSets(layout)) {
    if (id != set_id) heirs.push_back(id);
  }
  for (const auto& segment : segments) {
    if (segment.set_id == set_id) freed += segment.end - segment.start;
  }
  if (heirs.empty() || freed == 0) return layout;
  // Hand the freed space out in order, an equal quota per remaining set.
  const uint64_t quota = freed / heirs.size();
  size_t heir = 0;
  uint64_t given = 0;
  std::vector<Segment> result;
  for (const auto& segment : segments) {
    if (segment.set_id != set_id) {
      result.push_back(segment);
      continue;
    }
    uint64_t start = segment.start;
    while (start < segment.end) {
      bool last = heir + 1 == heirs.size();
      uint64_t room = last ? segment.end - start : std::min(quota - given, segment.end - start);
      result.push_back({start, start + room, heirs[heir]});
      start += room;
      given += room;
      if (!last && given == quota) {
        ++heir;
        given = 0;
      }
    }
  }
  return FromSegments(std::move(result), layout.epoch());
}

Status ValidateLayout(const pb::VolumeLayout& layout) {
  if (layout.ranges_size() == 0) return InvalidArgumentError("layout has no ranges");
  uint64_t expected = 0;
  for (const auto& range : layout.ranges()) {
    if (range.start() != expected || range.end() < range.start()) {
      return InvalidArgumentError("layout range [" + std::to_string(range.start()) + ", " +
                                  std::to_string(range.end()) + "] does not start at " +
                                  std::to_string(expected));
    }
    expected = uint64_t{range.end()} + 1;
  }
  if (expected != kHashSpace) return InvalidArgumentError("layout does not cover the whole hash space");
  return Status::Ok();
}

namespace {

Status CheckSpecLayout(const pb::VolumeSpec& spec, const pb::VolumeLayout& layout, std::string_view which) {
  Status valid = ValidateLayout(layout);
  if (!valid.ok()) return CorruptionError("volume " + spec.name() + " " + std::string(which) + ": " + valid.message());
  std::set<uint32_t> ids;
  for (const auto& set : spec.sets()) ids.insert(set.id());
  for (uint32_t id : LayoutSets(layout)) {
    if (!ids.count(id)) {
      return CorruptionError("volume " + spec.name() + " " + std::string(which) + " names set " +
                             std::to_string(id) + ", which the volume does not have");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateVolumeSpec(const pb::VolumeSpec& spec) {
  auto corrupt = [&spec](const std::string& what) { return CorruptionError("volume " + spec.name() + ": " + what); };
  if (!ValidateVolumeName(spec.name()).ok()) return corrupt("invalid name");
  if (spec.replica_count() == 0 || spec.replica_count() > kMaxReplicaCount) return corrupt("invalid replica count");
  if (spec.sets_size() == 0) return corrupt("no replica sets");
  std::set<uint32_t> ids;
  for (const auto& set : spec.sets()) {
    if (set.bricks_size() != static_cast<int>(spec.replica_count())) {
      return corrupt("set " + std::to_string(set.id()) + " does not have replica_count bricks");
    }
    if (set.id() >= spec.next_set_id() || !ids.insert(set.id()).second) {
      return corrupt("set id " + std::to_string(set.id()) + " is duplicated or not below next_set_id");
    }
    for (const auto& brick : set.bricks()) {
      if (!ParseBrick(BrickId(brick)).ok()) return corrupt("invalid brick " + BrickId(brick));
    }
  }
  CAIRN_RETURN_IF_ERROR(CheckSpecLayout(spec, spec.layout(), "layout"));
  if (spec.has_previous_layout()) CAIRN_RETURN_IF_ERROR(CheckSpecLayout(spec, spec.previous_layout(), "previous layout"));
  return Status::Ok();
}

double LayoutShare(const pb::VolumeLayout& layout, uint32_t set_id) {
  uint64_t owned = 0;
  for (const auto& range : layout.ranges()) {
    if (range.set_id() == set_id) owned += uint64_t{range.end()} - range.start() + 1;
  }
  return static_cast<double>(owned) / static_cast<double>(kHashSpace);
}

}  // namespace cairn::volume
