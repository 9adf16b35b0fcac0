// Volume layout and placement: validation of `volume create` / `add-brick` / `remove-brick`,
// grouping bricks into replica sets, and distribution of names over sets by hash ranges.
//
// Placement (elastic-hash style): a regular file or symlink named NAME in the directory whose
// file id is PARENT lives on exactly one replica set: the set whose HashRange contains
// NameHash(PARENT, NAME). Directories exist on every set. Adding a set takes an equal share from
// every existing set's ranges, so only about 1/(n+1) of the files move; removing a set hands its
// ranges out to the others, so only its files move.
//
// All functions are pure and thread-safe. Errors are InvalidArgument (bad input) or
// FailedPrecondition (input fine, but not allowed in the current spec), with a message that names
// the brick or field and says what to do.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volume {

namespace pb = ::cairn::proto::volume;

inline constexpr uint32_t kMaxReplicaCount = 16;

// "host:/abs/path" (or "[v6addr]:/abs/path"). The path must be absolute, not "/", with no "." or
// ".." components; repeated and trailing slashes are removed.
Result<pb::Brick> ParseBrick(std::string_view text);
// "host:/path", the brick's id in replica-set records and heal keys.
std::string BrickId(const pb::Brick& brick);
// 1-64 characters of [A-Za-z0-9_.-], not starting with '.' or '-'.
Status ValidateVolumeName(std::string_view name);

struct CreateVolumeRequest {
  std::string name;
  uint32_t replica_count = 0;
  std::vector<std::string> bricks;  // as typed, in order: consecutive groups form the sets
  bool force = false;               // allow two bricks of one set on the same host
  pb::NoQuorumPolicy no_quorum = pb::NO_QUORUM_EIO;
};

// The spec of a new volume (state CREATED, layout epoch 1 with even ranges). Errors: bad name or
// brick text, replica count 0 or > 16, brick count not a positive multiple of the replica count,
// the same brick twice or one brick inside another on the same host, two bricks of one set on
// one host without force.
Result<pb::VolumeSpec> CreateVolumeSpec(const CreateVolumeRequest& request);

// add-brick: the bricks (a multiple of replica_count) form new sets with fresh ids; the layout
// epoch grows by one and previous_layout keeps the old layout for the rebalance. Same checks as
// create, also against the volume's existing bricks. Refused while a rebalance is pending.
Result<pb::VolumeSpec> AddBricks(const pb::VolumeSpec& spec, const std::vector<std::string>& bricks,
                                 bool force);
// remove-brick: the bricks must make up whole replica sets, and at least one set must remain.
// The removed sets' ranges go to the remaining sets (layout epoch + 1, previous_layout kept); the
// sets stay in the spec until FinishRebalance, because their files still have to move out.
Result<pb::VolumeSpec> RemoveBricks(const pb::VolumeSpec& spec,
                                    const std::vector<std::string>& bricks);
// After the rebalance moved every file: drops previous_layout and the sets no range names.
pb::VolumeSpec FinishRebalance(const pb::VolumeSpec& spec);

// The stable 32-bit placement hash of a directory entry. Never change it: it decides where
// existing files are. FNV-1a 64 over parent id, a 0 byte and the name, then a 64-bit finalizer;
// the upper 32 bits.
uint32_t NameHash(std::string_view parent_id, std::string_view name);
// The set owning `hash`. The layout must be valid (see ValidateLayout).
uint32_t SetForHash(const pb::VolumeLayout& layout, uint32_t hash);
uint32_t SetForName(const pb::VolumeLayout& layout, std::string_view parent_id, std::string_view name);
// The distinct set ids of a layout, ascending; a directory is created on each.
std::vector<uint32_t> LayoutSets(const pb::VolumeLayout& layout);

// Layout arithmetic. Ranges of one set that touch are merged.
pb::VolumeLayout EvenLayout(const std::vector<uint32_t>& set_ids, uint64_t epoch);
pb::VolumeLayout LayoutWithSetAdded(const pb::VolumeLayout& layout, uint32_t set_id);
pb::VolumeLayout LayoutWithSetRemoved(const pb::VolumeLayout& layout, uint32_t set_id);
// Sorted, disjoint, covering [0, 2^32 - 1], at least one range.
Status ValidateLayout(const pb::VolumeLayout& layout);
// A spec read from the store is usable: valid name, replica count, sets of replica_count valid
// bricks with unique ids below next_set_id, valid layouts naming only the spec's sets. Placement
// functions may only be called on layouts that passed this. Errors: Corruption naming the problem.
Status ValidateVolumeSpec(const pb::VolumeSpec& spec);
// The share of the hash space each set owns, for status displays and tests.
double LayoutShare(const pb::VolumeLayout& layout, uint32_t set_id);

}  // namespace cairn::volume
