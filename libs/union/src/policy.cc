#include "cairn/union/policy.h"

#include <string>

namespace cairn::unionfs {
namespace {

class TopDownParent : public CreatePolicy {
 public:
  std::string_view name() const override { return "tdp"; }
  size_t Choose(const std::vector<CreateCandidate>& candidates) override {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].parent_exists) return i;
    }
    return 0;
  }
};

class RoundRobin : public CreatePolicy {
 public:
  std::string_view name() const override { return "rr"; }
  size_t Choose(const std::vector<CreateCandidate>& candidates) override {
    return next_++ % candidates.size();
  }

 private:
  uint64_t next_ = 0;
};

class MostFreeSpace : public CreatePolicy {
 public:
  std::string_view name() const override { return "mfs"; }
  bool needs_free_space() const override { return true; }
  size_t Choose(const std::vector<CreateCandidate>& candidates) override {
    size_t best = 0;
    for (size_t i = 1; i < candidates.size(); ++i) {
      if (candidates[i].free_bytes > candidates[best].free_bytes) best = i;
    }
    return best;
  }
};

}  // namespace

Result<std::unique_ptr<CreatePolicy>> MakeCreatePolicy(std::string_view name) {
  if (name == "tdp" || name == "top-down-parent") return std::unique_ptr<CreatePolicy>(new TopDownParent);
  if (name == "rr" || name == "round-robin") return std::unique_ptr<CreatePolicy>(new RoundRobin);
  if (name == "mfs" || name == "most-free-space") return std::unique_ptr<CreatePolicy>(new MostFreeSpace);
  return InvalidArgumentError("unknown create policy \"" + std::string(name) +
                              "\" (use tdp, rr or mfs)");
}

}  // namespace cairn::unionfs
