// Create policies: which writable branch receives a new name when several are rw.
//
// Error rule (as mergerfs writes down): a policy only chooses among the candidates the caller passes
// (rw branches at or above the point where the name's lookup stopped); with no candidate the caller
// returns EROFS. Policies are called with the union's lock held and must not block for long.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::unionfs {

struct CreateCandidate {
  int branch = 0;             // index in the branch list, 0 = top
  bool parent_exists = false; // the parent directory already exists in this branch
  uint64_t free_bytes = 0;    // available space, filled in only when the policy asks for it
};

class CreatePolicy {
 public:
  virtual ~CreatePolicy() = default;
  virtual std::string_view name() const = 0;
  // True when Choose reads free_bytes, so callers only statvfs when needed.
  virtual bool needs_free_space() const { return false; }
  // Returns an index into candidates (not a branch number). candidates is not empty.
  virtual size_t Choose(const std::vector<CreateCandidate>& candidates) = 0;
};

// "tdp": top-down parent. The topmost candidate where the parent exists, else the topmost candidate.
// "rr":  round-robin over the candidates.
// "mfs": the candidate with the most free space (ties: the topmost).
Result<std::unique_ptr<CreatePolicy>> MakeCreatePolicy(std::string_view name);

}  // namespace cairn::unionfs
