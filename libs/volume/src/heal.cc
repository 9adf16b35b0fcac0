#include "cairn/volume/heal.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cairn/common/strings.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"

namespace cairn::volume {

ChangeJournal::ChangeJournal(std::string brick, size_t max_entries)
    : brick_(std::move(brick)), max_entries_(max_entries) {}

Result<ChangeJournal> ChangeJournal::FromProto(const pb::ChangeJournalRecord& record, size_t max_entries) {
  ChangeJournal journal(record.brick(), max_entries);
  journal.next_sequence_ = std::max<uint64_t>(record.next_sequence(), 1);
  journal.full_scan_needed_ = record.full_scan_needed();
  for (const auto& entry : record.entries()) {
    if (entry.file_id().empty()) return InvalidArgumentError("change journal entry with an empty file id");
    if (entry.sequence() == 0 || entry.sequence() >= journal.next_sequence_) {
      return InvalidArgumentError("change journal entry sequence " + std::to_string(entry.sequence()) +
                                  " is not below the journal's next sequence " +
                                  std::to_string(journal.next_sequence_));
    }
    if (!journal.entries_.emplace(entry.file_id(), entry.sequence()).second) {
      return InvalidArgumentError("change journal lists a file id twice");
    }
  }
  if (journal.entries_.size() > max_entries) journal.MarkFullScanNeeded();
  return journal;
}

pb::ChangeJournalRecord ChangeJournal::ToProto() const {
  pb::ChangeJournalRecord record;
  record.set_brick(brick_);
  record.set_next_sequence(next_sequence_);
  record.set_full_scan_needed(full_scan_needed_);
  for (const auto& [id, sequence] : entries_) {
    auto* entry = record.add_entries();
    entry->set_file_id(id);
    entry->set_sequence(sequence);
  }
  return record;
}

void ChangeJournal::Record(std::string_view file_id) {
  const uint64_t sequence = next_sequence_++;
  if (full_scan_needed_) return;  // the scan will find it; listing ids would only use memory
  auto it = entries_.find(file_id);
  if (it != entries_.end()) {
    it->second = sequence;
    return;
  }
  if (entries_.size() >= max_entries_) {
    MarkFullScanNeeded();
    return;
  }
  entries_.emplace(std::string(file_id), sequence);
}

bool ChangeJournal::Acknowledge(std::string_view file_id, uint64_t sequence) {
  auto it = entries_.find(file_id);
  if (it == entries_.end() || it->second > sequence) return false;
  entries_.erase(it);
  return true;
}

Status ChangeJournal::Merge(const ChangeJournal& other) {
  if (other.brick_ != brick_) {
    return InvalidArgumentError("cannot merge the journal for " + other.brick_ + " into the one for " + brick_);
  }
  // Sequences of the two journals are not comparable, so merged entries take fresh ones: a copy
  // started before the merge must not acknowledge a change that only the other journal saw.
  for (const auto& [id, unused] : other.entries_) Record(id);
  if (other.full_scan_needed_) MarkFullScanNeeded();
  return Status::Ok();
}

void ChangeJournal::MarkFullScanNeeded() {
  full_scan_needed_ = true;
  entries_.clear();
}

std::optional<uint64_t> ChangeJournal::SequenceOf(std::string_view file_id) const {
  auto it = entries_.find(file_id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> ChangeJournal::FileIds() const {
  std::vector<std::string> ids;
  ids.reserve(entries_.size());
  for (const auto& [id, unused] : entries_) ids.push_back(id);
  return ids;
}

namespace {

Status SortAndCheck(std::vector<HealJob::Item>* items) {
  std::sort(items->begin(), items->end(),
            [](const HealJob::Item& a, const HealJob::Item& b) { return a.key < b.key; });
  for (size_t i = 0; i < items->size(); ++i) {
    if ((*items)[i].key.empty()) return InvalidArgumentError("heal item with an empty key");
    if (i > 0 && (*items)[i].key == (*items)[i - 1].key) {
      return InvalidArgumentError("heal item listed twice: " + (*items)[i].key);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<HealJob> HealJob::Start(const Clock& clock, std::string brick, uint32_t set_id, uint64_t epoch,
                               bool full_scan, std::vector<Item> items) {
  if (brick.empty()) return InvalidArgumentError("heal job needs a brick");
  CAIRN_RETURN_IF_ERROR(SortAndCheck(&items));
  HealJob job(clock);
  job.brick_ = std::move(brick);
  job.set_id_ = set_id;
  job.epoch_ = epoch;
  job.full_scan_ = full_scan;
  job.items_ = std::move(items);
  for (const auto& item : job.items_) job.bytes_left_ += item.bytes;
  job.files_left_ = job.items_.size();
  job.files_total_ = job.files_left_;
  job.bytes_total_ = job.bytes_left_;
  job.started_ = clock.Now();
  return job;
}

Result<HealJob> HealJob::Resume(const Clock& clock, const pb::HealCheckpoint& checkpoint,
                                std::vector<Item> items) {
  const std::string& cursor = checkpoint.cursor();
  std::erase_if(items, [&cursor](const Item& item) { return !cursor.empty() && item.key <= cursor; });
  CAIRN_ASSIGN_OR_RETURN(HealJob job, Start(clock, checkpoint.brick(), checkpoint.set_id(), checkpoint.epoch(),
                                            checkpoint.full_scan(), std::move(items)));
  job.base_cursor_ = cursor;
  job.files_total_ = std::max(checkpoint.files_total(), job.files_left_);
  job.bytes_total_ = std::max(checkpoint.bytes_total(), job.bytes_left_);
  return job;
}

std::vector<HealJob::Item> HealJob::NextBatch(size_t limit) {
  std::vector<Item> batch;
  for (size_t i = prefix_done_; i < items_.size() && batch.size() < limit; ++i) {
    if (done_beyond_.count(i) || handed_out_.count(i) || given_up_.count(i)) continue;
    handed_out_.insert(i);
    batch.push_back(items_[i]);
  }
  return batch;
}

namespace {

Result<size_t> IndexOf(const std::vector<HealJob::Item>& items, std::string_view key) {
  auto it = std::lower_bound(items.begin(), items.end(), key,
                             [](const HealJob::Item& item, std::string_view k) { return item.key < k; });
  if (it == items.end() || it->key != key) {
    return NotFoundError("\"" + std::string(key) + "\" is not part of this heal job");
  }
  return static_cast<size_t>(it - items.begin());
}

}  // namespace

Status HealJob::Completed(std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(size_t index, IndexOf(items_, key));
  if (index < prefix_done_ || done_beyond_.count(index)) return Status::Ok();
  handed_out_.erase(index);
  given_up_.erase(index);
  done_beyond_.insert(index);
  files_left_ -= 1;
  bytes_left_ -= items_[index].bytes;
  files_done_since_start_ += 1;
  bytes_done_since_start_ += items_[index].bytes;
  AdvanceCursor();
  return Status::Ok();
}

Status HealJob::Failed(std::string_view key, int max_attempts) {
  CAIRN_ASSIGN_OR_RETURN(size_t index, IndexOf(items_, key));
  if (index < prefix_done_ || done_beyond_.count(index)) return Status::Ok();
  handed_out_.erase(index);
  if (++failures_[index] >= max_attempts) given_up_.insert(index);
  return Status::Ok();
}

void HealJob::AdvanceCursor() {
  while (!done_beyond_.empty() && *done_beyond_.begin() == prefix_done_) {
    done_beyond_.erase(done_beyond_.begin());
    ++prefix_done_;
  }
}

bool HealJob::finished() const { return files_left_ == given_up_.size(); }

HealProgress HealJob::Progress() const {
  HealProgress progress;
  progress.state = !finished() ? HealState::kRunning : given_up_.empty() ? HealState::kDone : HealState::kFailed;
  progress.files_total = files_total_;
  progress.bytes_total = bytes_total_;
  progress.files_left = files_left_;
  progress.bytes_left = bytes_left_;
  progress.files_failed = given_up_.size();
  const double seconds = std::chrono::duration<double>(clock_->Now() - started_).count();
  if (seconds > 0) {
    progress.files_per_second = static_cast<double>(files_done_since_start_) / seconds;
    progress.bytes_per_second = static_cast<double>(bytes_done_since_start_) / seconds;
  }
  // Bytes dominate for large files and file count for small ones; the slower estimate wins.
  double eta_seconds = -1;
  if (progress.files_per_second > 0) eta_seconds = static_cast<double>(files_left_) / progress.files_per_second;
  if (progress.bytes_per_second > 0) {
    eta_seconds = std::max(eta_seconds, static_cast<double>(bytes_left_) / progress.bytes_per_second);
  }
  if (eta_seconds >= 0) {
    progress.eta = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(eta_seconds));
  }
  return progress;
}

pb::HealCheckpoint HealJob::Checkpoint(int64_t now_unix_ms) const {
  pb::HealCheckpoint checkpoint;
  checkpoint.set_brick(brick_);
  checkpoint.set_set_id(set_id_);
  checkpoint.set_epoch(epoch_);
  checkpoint.set_full_scan(full_scan_);
  checkpoint.set_files_total(files_total_);
  checkpoint.set_bytes_total(bytes_total_);
  checkpoint.set_files_left(files_left_);
  checkpoint.set_bytes_left(bytes_left_);
  checkpoint.set_cursor(prefix_done_ > 0 ? items_[prefix_done_ - 1].key : base_cursor_);
  checkpoint.set_updated_unix_ms(now_unix_ms);
  const HealProgress progress = Progress();
  checkpoint.set_files_per_second(progress.files_per_second);
  checkpoint.set_bytes_per_second(progress.bytes_per_second);
  checkpoint.set_eta_ms(progress.eta ? std::chrono::duration_cast<std::chrono::milliseconds>(*progress.eta).count() : -1);
  checkpoint.set_failed(progress.state == HealState::kFailed);
  return checkpoint;
}

std::vector<BrickHealStatus> HealStatus(const pb::ReplicaSetSpec& set, const pb::ReplicaSetState& state,
                                        const std::map<std::string, pb::HealCheckpoint>& checkpoints) {
  std::vector<BrickHealStatus> rows;
  for (const auto& brick : set.bricks()) {
    BrickHealStatus row;
    row.brick = BrickId(brick);
    row.in_sync = IsInSync(state, row.brick);
    row.primary = state.mode() == pb::REPLICA_SET_NORMAL && state.primary() == row.brick;
    auto it = checkpoints.find(row.brick);
    if (!row.in_sync && it != checkpoints.end()) {
      const pb::HealCheckpoint& checkpoint = it->second;
      row.healing = true;
      row.full_scan = checkpoint.full_scan();
      row.failed = checkpoint.failed();
      row.files_left = checkpoint.files_left();
      row.bytes_left = checkpoint.bytes_left();
      row.files_per_second = checkpoint.files_per_second();
      row.bytes_per_second = checkpoint.bytes_per_second();
      if (checkpoint.eta_ms() >= 0) row.eta = std::chrono::milliseconds(checkpoint.eta_ms());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

namespace {

std::string RowState(const BrickHealStatus& row) {
  if (row.in_sync) return row.primary ? "in-sync (primary)" : "in-sync";
  if (!row.healing) return "out-of-sync, heal pending";
  if (row.failed) return "heal failed";
  return row.full_scan ? "healing (full scan)" : "healing";
}

std::string FormatEta(const std::optional<Duration>& eta) {
  if (!eta) return "-";
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*eta).count();
  char text[32];
  std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(seconds / 3600),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
  return text;
}

}  // namespace

std::string FormatHealStatus(const std::vector<BrickHealStatus>& rows) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%-32s %-26s %10s %12s %14s %9s\n", "BRICK", "STATE", "FILES-LEFT",
                "BYTES-LEFT", "RATE", "ETA");
  out += line;
  for (const auto& row : rows) {
    const bool show = row.healing;
    char rate[32] = "-";
    if (show && row.files_per_second > 0) std::snprintf(rate, sizeof(rate), "%.0f files/s", row.files_per_second);
    std::snprintf(line, sizeof(line), "%-32s %-26s %10s %12s %14s %9s\n", row.brick.c_str(), RowState(row).c_str(),
                  show ? std::to_string(row.files_left).c_str() : "-",
                  show ? HumanBytes(row.bytes_left).c_str() : "-", rate, show ? FormatEta(row.eta).c_str() : "-");
    out += line;
  }
  return out;
}

}  // namespace cairn::volume
