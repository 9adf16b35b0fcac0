#include "cairn/heal/heal_runner.h"

namespace cairn::heal {

class HealRunner::Impl {
 public:
  HealRunnerProgress progress;
};

HealRunner::HealRunner(boost::asio::io_context&, brick::BrickStore&, std::string, std::string, HealRunnerOptions)
    : impl_(std::make_unique<Impl>()) {}
HealRunner::~HealRunner() = default;
Result<RoundResult> HealRunner::RunRound() { return UnimplementedError("heal runner: not written yet"); }
Status HealRunner::HealUntilClean(int) { return UnimplementedError("heal runner: not written yet"); }
void HealRunner::Stop() {}
HealRunnerProgress HealRunner::progress() const { return impl_->progress; }
void HealRunner::set_epoch(uint64_t) {}
void HealRunner::set_full_scan(bool) {}

}  // namespace cairn::heal
