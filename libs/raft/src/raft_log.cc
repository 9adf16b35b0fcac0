#include "raft_log.h"

#include <algorithm>
#include <string>

namespace cairn::raft {

namespace {
[[noreturn]] void LogPanic(const std::string& what) { Panic("raft log: " + what, __FILE__, __LINE__); }
std::string N(uint64_t v) { return std::to_string(v); }
}  // namespace

void LimitSize(std::vector<Entry>& entries, uint64_t max_size) {
  if (entries.empty()) return;
  uint64_t size = entries[0].ByteSizeLong();
  size_t keep = 1;
  while (keep < entries.size()) {
    size += entries[keep].ByteSizeLong();
    if (size > max_size) break;
    ++keep;
  }
  entries.resize(keep);
}

// ---- Unstable ----

std::optional<uint64_t> Unstable::MaybeFirstIndex() const {
  if (snapshot) return snapshot->metadata().index() + 1;
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeLastIndex() const {
  if (!entries.empty()) return offset + entries.size() - 1;
  if (snapshot) return snapshot->metadata().index();
  return std::nullopt;
}

std::optional<uint64_t> Unstable::MaybeTerm(uint64_t index) const {
  if (index < offset) {
    if (snapshot && snapshot->metadata().index() == index) return snapshot->metadata().term();
    return std::nullopt;
  }
  auto last = MaybeLastIndex();
  if (!last || index > *last) return std::nullopt;
  return entries[index - offset].term();
}

void Unstable::StableTo(uint64_t index, uint64_t term) {
  auto t = MaybeTerm(index);
  if (!t) return;
  // Only if the persisted entry is still ours (it may have been replaced by a newer leader's).
  if (*t == term && index >= offset) {
    entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(index + 1 - offset));
    offset = index + 1;
  }
}

void Unstable::StableSnapTo(uint64_t index) {
  if (snapshot && snapshot->metadata().index() == index) snapshot.reset();
}

void Unstable::Restore(const Snapshot& snap) {
  offset = snap.metadata().index() + 1;
  entries.clear();
  snapshot = snap;
}

void Unstable::TruncateAndAppend(const std::vector<Entry>& ents) {
  uint64_t after = ents.front().index();
  if (after == offset + entries.size()) {
    entries.insert(entries.end(), ents.begin(), ents.end());
  } else if (after <= offset) {
    // Replaces everything unstable; the driver's storage.Append truncates the stable suffix.
    offset = after;
    entries = ents;
  } else {
    entries.resize(after - offset);
    entries.insert(entries.end(), ents.begin(), ents.end());
  }
}

std::vector<Entry> Unstable::Slice(uint64_t lo, uint64_t hi) const {
  if (lo > hi || lo < offset || hi > offset + entries.size()) {
    LogPanic("unstable slice [" + N(lo) + "," + N(hi) + ") out of bounds [" + N(offset) + "," +
             N(offset + entries.size()) + "]");
  }
  return std::vector<Entry>(entries.begin() + static_cast<ptrdiff_t>(lo - offset),
                            entries.begin() + static_cast<ptrdiff_t>(hi - offset));
}

// ---- RaftLog ----

RaftLog::RaftLog(Storage* storage, uint64_t max_committed_size_per_ready)
    : storage_(storage), max_committed_size_per_ready_(max_committed_size_per_ready) {
  auto first = storage_->FirstIndex();
  auto last = storage_->LastIndex();
  if (!first.ok() || !last.ok()) LogPanic("storage cannot report its first/last index");
  unstable_.offset = *last + 1;
  committed_ = *first - 1;
  applied_ = *first - 1;
}

uint64_t RaftLog::FirstIndex() const {
  if (auto i = unstable_.MaybeFirstIndex()) return *i;
  auto first = storage_->FirstIndex();
  if (!first.ok()) LogPanic("storage FirstIndex failed: " + first.status().ToString());
  return *first;
}

uint64_t RaftLog::LastIndex() const {
  if (auto i = unstable_.MaybeLastIndex()) return *i;
  auto last = storage_->LastIndex();
  if (!last.ok()) LogPanic("storage LastIndex failed: " + last.status().ToString());
  return *last;
}

uint64_t RaftLog::LastTerm() const {
  auto t = Term(LastIndex());
  if (!t.ok()) LogPanic("term of the last entry is unavailable: " + t.status().ToString());
  return *t;
}

Result<uint64_t> RaftLog::Term(uint64_t index) const {
  uint64_t dummy = FirstIndex() - 1;
  if (index < dummy) return ErrCompacted();
  if (index > LastIndex()) return ErrUnavailable();
  if (auto t = unstable_.MaybeTerm(index)) return *t;
  auto t = storage_->Term(index);
  if (t.ok() || IsCompacted(t.status()) || IsUnavailable(t.status())) return t;
  LogPanic("storage Term(" + N(index) + ") failed: " + t.status().ToString());
}

uint64_t RaftLog::TermOrZero(uint64_t index) const {
  auto t = Term(index);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(uint64_t index, uint64_t term) const {
  auto t = Term(index);
  return t.ok() && *t == term;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t last_term) const {
  uint64_t our_term = LastTerm();
  return last_term > our_term || (last_term == our_term && last_index >= LastIndex());
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t committed,
                                             const std::vector<Entry>& entries) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  uint64_t last_new = index + entries.size();
  uint64_t conflict = FindConflict(entries);
  if (conflict != 0) {
    if (conflict <= committed_) {
      LogPanic("entry " + N(conflict) + " conflicts with committed entry (committed " + N(committed_) + ")");
    }
    std::vector<Entry> rest(entries.begin() + static_cast<ptrdiff_t>(conflict - (index + 1)), entries.end());
    Append(rest);
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  uint64_t after = entries.front().index() - 1;
  if (after < committed_) {
    LogPanic("append after " + N(after) + " would overwrite committed entries up to " + N(committed_));
  }
  unstable_.TruncateAndAppend(entries);
  return LastIndex();
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

uint64_t RaftLog::FindConflictByTerm(uint64_t index, uint64_t term, uint64_t* found_term) const {
  for (; index > 0; --index) {
    auto t = Term(index);
    if (!t.ok()) {  // compacted or unavailable: maybe a match, term unknown
      *found_term = 0;
      return index;
    }
    if (*t <= term) {
      *found_term = *t;
      return index;
    }
  }
  *found_term = 0;
  return 0;
}

Result<std::vector<Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi, uint64_t max_size) const {
  if (lo > hi) LogPanic("invalid slice " + N(lo) + " > " + N(hi));
  uint64_t first = FirstIndex();
  if (lo < first) return ErrCompacted();
  if (hi > LastIndex() + 1) LogPanic("slice [" + N(lo) + "," + N(hi) + ") beyond last index " + N(LastIndex()));
  std::vector<Entry> out;
  if (lo == hi) return out;
  if (lo < unstable_.offset) {
    uint64_t stored_hi = std::min(hi, unstable_.offset);
    auto stored = storage_->Entries(lo, stored_hi, max_size);
    if (!stored.ok()) {
      if (IsCompacted(stored.status())) return stored.status();
      LogPanic("storage Entries[" + N(lo) + "," + N(stored_hi) + ") failed: " + stored.status().ToString());
    }
    out = std::move(*stored);
    if (out.size() < stored_hi - lo) return out;  // size limit reached
  }
  if (hi > unstable_.offset) {
    auto tail = unstable_.Slice(std::max(lo, unstable_.offset), hi);
    out.insert(out.end(), tail.begin(), tail.end());
  }
  LimitSize(out, max_size);
  return out;
}

Result<std::vector<Entry>> RaftLog::EntriesFrom(uint64_t index, uint64_t max_size) const {
  if (index > LastIndex()) return std::vector<Entry>{};
  return Slice(index, LastIndex() + 1, max_size);
}

bool RaftLog::HasNextCommittedEntries() const {
  uint64_t from = std::max(applied_ + 1, FirstIndex());
  return committed_ + 1 > from;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  uint64_t from = std::max(applied_ + 1, FirstIndex());
  if (committed_ + 1 <= from) return {};
  auto entries = Slice(from, committed_ + 1, max_committed_size_per_ready_);
  if (!entries.ok()) LogPanic("committed entries are unavailable: " + entries.status().ToString());
  return std::move(*entries);
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_.snapshot) return *unstable_.snapshot;
  return storage_->GetSnapshot();
}

void RaftLog::CommitTo(uint64_t index) {
  if (committed_ >= index) return;  // never decrease commit
  if (index > LastIndex()) {
    LogPanic("commit index " + N(index) + " is out of range [last index " + N(LastIndex()) +
             "]: was the raft log corrupted, truncated, or lost?");
  }
  committed_ = index;
}

bool RaftLog::MaybeCommit(uint64_t max_index, uint64_t term) {
  if (max_index > committed_ && TermOrZero(max_index) == term) {
    CommitTo(max_index);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  if (committed_ < index || index < applied_) {
    LogPanic("applied " + N(index) + " is out of range [prev applied " + N(applied_) + ", committed " +
             N(committed_) + "]");
  }
  applied_ = index;
}

void RaftLog::Restore(const Snapshot& snapshot) {
  committed_ = snapshot.metadata().index();
  unstable_.Restore(snapshot);
}

}  // namespace cairn::raft
