#include "cairn/raft/storage.h"

#include <string>

namespace cairn::raft {

namespace {
constexpr char kCompacted[] = "raft: requested index is unavailable due to compaction";
constexpr char kUnavailable[] = "raft: requested entry at index is unavailable";
constexpr char kSnapOutOfDate[] = "raft: requested index is older than the existing snapshot";
constexpr char kSnapTemp[] = "raft: snapshot is temporarily unavailable";

uint64_t EntrySize(const Entry& e) { return e.ByteSizeLong(); }
}  // namespace

Status ErrCompacted() { return OutOfRangeError(kCompacted); }
Status ErrUnavailable() { return NotFoundError(kUnavailable); }
Status ErrSnapOutOfDate() { return FailedPreconditionError(kSnapOutOfDate); }
Status ErrSnapshotTemporarilyUnavailable() { return UnavailableError(kSnapTemp); }
bool IsCompacted(const Status& s) { return s.code() == StatusCode::kOutOfRange && s.message() == kCompacted; }
bool IsUnavailable(const Status& s) { return s.code() == StatusCode::kNotFound && s.message() == kUnavailable; }
bool IsSnapOutOfDate(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition && s.message() == kSnapOutOfDate;
}
bool IsSnapshotTemporarilyUnavailable(const Status& s) {
  return s.code() == StatusCode::kUnavailable && s.message() == kSnapTemp;
}

MemoryStorage::MemoryStorage() { entries_.emplace_back(); }

uint64_t MemoryStorage::FirstIndexLocked() const { return entries_[0].index() + 1; }
uint64_t MemoryStorage::LastIndexLocked() const { return entries_[0].index() + entries_.size() - 1; }

Result<InitialState> MemoryStorage::GetInitialState() const {
  std::lock_guard lock(mu_);
  return InitialState{hard_state_, snapshot_.metadata().conf_state()};
}

Result<std::vector<Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi, uint64_t max_size) const {
  std::lock_guard lock(mu_);
  uint64_t offset = entries_[0].index();
  if (lo <= offset) return ErrCompacted();
  if (hi > LastIndexLocked() + 1 || lo > hi) return ErrUnavailable();
  std::vector<Entry> out;
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    size += EntrySize(e);
    if (!out.empty() && size > max_size) break;
    out.push_back(e);
  }
  return out;
}

Result<uint64_t> MemoryStorage::Term(uint64_t index) const {
  std::lock_guard lock(mu_);
  uint64_t offset = entries_[0].index();
  if (index < offset) return ErrCompacted();
  if (index - offset >= entries_.size()) return ErrUnavailable();
  return entries_[index - offset].term();
}

Result<uint64_t> MemoryStorage::LastIndex() const {
  std::lock_guard lock(mu_);
  return LastIndexLocked();
}

Result<uint64_t> MemoryStorage::FirstIndex() const {
  std::lock_guard lock(mu_);
  return FirstIndexLocked();
}

Result<Snapshot> MemoryStorage::GetSnapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void MemoryStorage::SetHardState(const HardState& hard_state) {
  std::lock_guard lock(mu_);
  hard_state_ = hard_state;
}

Status MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  std::lock_guard lock(mu_);
  if (snapshot.metadata().index() < snapshot_.metadata().index()) return ErrSnapOutOfDate();
  snapshot_ = snapshot;
  entries_.clear();
  Entry dummy;
  dummy.set_index(snapshot.metadata().index());
  dummy.set_term(snapshot.metadata().term());
  entries_.push_back(dummy);
  return Status::Ok();
}

Result<Snapshot> MemoryStorage::CreateSnapshot(uint64_t index, const ConfState* conf_state, std::string data) {
  std::lock_guard lock(mu_);
  if (index <= snapshot_.metadata().index()) return ErrSnapOutOfDate();
  if (index > LastIndexLocked()) {
    return OutOfRangeError("raft: snapshot index " + std::to_string(index) + " is beyond last index " +
                           std::to_string(LastIndexLocked()));
  }
  uint64_t offset = entries_[0].index();
  snapshot_.mutable_metadata()->set_index(index);
  snapshot_.mutable_metadata()->set_term(entries_[index - offset].term());
  if (conf_state != nullptr) *snapshot_.mutable_metadata()->mutable_conf_state() = *conf_state;
  snapshot_.set_data(std::move(data));
  return snapshot_;
}

Status MemoryStorage::Compact(uint64_t compact_index) {
  std::lock_guard lock(mu_);
  uint64_t offset = entries_[0].index();
  if (compact_index <= offset) return ErrCompacted();
  if (compact_index > LastIndexLocked()) {
    return OutOfRangeError("raft: compact index " + std::to_string(compact_index) + " is beyond last index " +
                           std::to_string(LastIndexLocked()));
  }
  uint64_t cut = compact_index - offset;
  std::vector<Entry> kept;
  kept.reserve(entries_.size() - cut);
  Entry dummy;
  dummy.set_index(entries_[cut].index());
  dummy.set_term(entries_[cut].term());
  kept.push_back(dummy);
  for (size_t i = cut + 1; i < entries_.size(); ++i) kept.push_back(std::move(entries_[i]));
  entries_ = std::move(kept);
  return Status::Ok();
}

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index() != entries[i - 1].index() + 1) {
      return InvalidArgumentError("raft: appended entries are not contiguous at index " +
                                  std::to_string(entries[i].index()));
    }
  }
  uint64_t first = FirstIndexLocked();
  uint64_t last = entries.back().index();
  if (last < first) return Status::Ok();  // all already compacted
  size_t skip = entries.front().index() < first ? first - entries.front().index() : 0;
  uint64_t start = entries[skip].index();
  if (start > LastIndexLocked() + 1) {
    return InvalidArgumentError("raft: missing log entries: last " + std::to_string(LastIndexLocked()) +
                                ", appended at " + std::to_string(start));
  }
  entries_.resize(start - entries_[0].index());  // truncate the conflicting suffix
  for (size_t i = skip; i < entries.size(); ++i) entries_.push_back(entries[i]);
  return Status::Ok();
}

}  // namespace cairn::raft
