#include "cairn/coord/node/read_index_batcher.h"

namespace cairn::coord {
namespace {

std::string EncodeContext(uint64_t number) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(number >> (8 * i));
  return out;
}

std::optional<uint64_t> DecodeContext(const std::string& context) {
  if (context.size() != 8) return std::nullopt;
  uint64_t number = 0;
  for (int i = 0; i < 8; ++i) number |= uint64_t{static_cast<unsigned char>(context[static_cast<size_t>(i)])} << (8 * i);
  return number;
}

}  // namespace

void ReadIndexBatcher::Add(Callback done, TimePoint deadline) { queued_.push_back(Read{std::move(done), deadline}); }

std::optional<std::string> ReadIndexBatcher::TakeRequest(TimePoint now) {
  if (in_flight_ && now - in_flight_since_ >= retry_after_) {
    // Lost: its reads join the next request (requested later than they arrived, so still safe).
    for (Read& read : in_flight_reads_) queued_.push_back(std::move(read));
    in_flight_reads_.clear();
    in_flight_.reset();
  }
  if (in_flight_ || queued_.empty()) return std::nullopt;
  in_flight_ = ++next_context_;
  in_flight_since_ = now;
  in_flight_reads_ = std::move(queued_);
  queued_.clear();
  return EncodeContext(*in_flight_);
}

void ReadIndexBatcher::OnReadState(const std::string& context, uint64_t index, uint64_t applied) {
  auto number = DecodeContext(context);
  if (!number || !in_flight_ || *number != *in_flight_) return;  // stale or another node's
  for (Read& read : in_flight_reads_) confirmed_.emplace(index, std::move(read));
  in_flight_reads_.clear();
  in_flight_.reset();
  RunConfirmed(applied);
}

void ReadIndexBatcher::OnApplied(uint64_t applied) { RunConfirmed(applied); }

void ReadIndexBatcher::RunConfirmed(uint64_t applied) {
  while (!confirmed_.empty() && confirmed_.begin()->first <= applied) {
    Callback done = std::move(confirmed_.begin()->second.done);
    confirmed_.erase(confirmed_.begin());
    done(Status::Ok());
  }
}

void ReadIndexBatcher::Expire(TimePoint now) {
  auto expire = [&](std::vector<Read>& reads) {
    std::vector<Read> keep;
    for (Read& read : reads) {
      if (read.deadline <= now) {
        read.done(DeadlineExceededError("linearizable read not confirmed within its deadline"));
      } else {
        keep.push_back(std::move(read));
      }
    }
    reads = std::move(keep);
  };
  expire(queued_);
  expire(in_flight_reads_);
  for (auto it = confirmed_.begin(); it != confirmed_.end();) {
    if (it->second.deadline <= now) {
      Callback done = std::move(it->second.done);
      it = confirmed_.erase(it);
      done(DeadlineExceededError("linearizable read not applied within its deadline"));
    } else {
      ++it;
    }
  }
}

void ReadIndexBatcher::FailAll(const Status& status) {
  std::vector<Read> all = std::move(queued_);
  queued_.clear();
  for (Read& read : in_flight_reads_) all.push_back(std::move(read));
  in_flight_reads_.clear();
  in_flight_.reset();
  for (auto& [index, read] : confirmed_) all.push_back(std::move(read));
  confirmed_.clear();
  for (Read& read : all) read.done(status);
}

size_t ReadIndexBatcher::waiting() const { return queued_.size() + in_flight_reads_.size() + confirmed_.size(); }

}  // namespace cairn::coord
