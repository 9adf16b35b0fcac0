#include "cairn/wal/wal.h"

#include <algorithm>

#include "cairn/common/logging.h"
#include "record.h"

namespace cairn::wal {

using internal::ReadOutcome;
using internal::Record;
using internal::RecordType;

namespace {

constexpr std::string_view kLockName = "LOCK";

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string Where(const std::string& path, uint64_t offset) {
  return "wal segment " + path + " at byte offset " + std::to_string(offset);
}

// Rebuilds the log from entry records in file order, applying suffix overwrites.
class LogReplay {
 public:
  // `floor`: index of the snapshot recovery starts from; entries at or below it are compacted.
  explicit LogReplay(uint64_t floor) : floor_(floor) {}

  Status Add(Entry entry, const std::string& where) {
    if (!entries_.empty()) {
      uint64_t first = entries_.front().index;
      uint64_t last = entries_.back().index;
      if (entry.index > last + 1) {
        // A jump is fine only past entries the snapshot covers (the log restarted after it).
        if (entry.index > floor_ + 1) {
          return CorruptionError(where + ": entry index " + std::to_string(entry.index) +
                                 " leaves a gap after index " + std::to_string(last));
        }
        entries_.clear();
      } else if (entry.index < first) {
        entries_.clear();  // overwrites below what the kept segments hold; checked in Finish
      } else {
        entries_.resize(entry.index - first);
      }
    }
    entries_.push_back(std::move(entry));
    return Status::Ok();
  }

  // The entries after the snapshot; Corruption if they do not start right after it.
  Result<std::vector<Entry>> Finish(const std::string& dir) {
    auto after = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.index > floor_; });
    std::vector<Entry> out(std::make_move_iterator(after), std::make_move_iterator(entries_.end()));
    if (!out.empty() && out.front().index != floor_ + 1) {
      return CorruptionError("wal " + dir + ": log starts at index " + std::to_string(out.front().index) +
                             " but the snapshot covers only up to " + std::to_string(floor_) +
                             " (missing segment or snapshot)");
    }
    return out;
  }

 private:
  uint64_t floor_;
  std::vector<Entry> entries_;
};

}  // namespace

Wal::Wal(env::Env* env, std::string dir, Options options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() {
  if (file_) (void)file_->Close();
}

std::string Wal::SegmentPath(const Segment& segment) const {
  return env::JoinPath(dir_, internal::SegmentName(segment.seq, segment.first_index));
}

Result<Opened> Wal::Open(env::Env* env, std::string dir, Options options) {
  if (options.snapshots_to_keep == 0) return InvalidArgumentError("wal: snapshots_to_keep must be at least 1");
  if (options.segment_bytes == 0) return InvalidArgumentError("wal: segment_bytes must be positive");
  bool existed = env->FileExists(dir);
  CAIRN_RETURN_IF_ERROR(env::CreateDirs(env, dir));
  if (!existed) CAIRN_RETURN_IF_ERROR(env->SyncDir(env::DirName(dir)));
  std::unique_ptr<Wal> wal(new Wal(env, dir, options));
  CAIRN_ASSIGN_OR_RETURN(wal->lock_, env->LockFile(env::JoinPath(dir, kLockName)));
  Opened opened;
  CAIRN_RETURN_IF_ERROR(wal->Recover(&opened.recovered));
  opened.wal = std::move(wal);
  return opened;
}

Status Wal::Recover(Recovered* recovered) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  for (const std::string& name : names) {
    uint64_t seq, first_index;
    if (EndsWith(name, ".tmp")) {
      CAIRN_RETURN_IF_ERROR(env_->RemoveFile(env::JoinPath(dir_, name)));  // an unfinished snapshot
    } else if (internal::ParseSegmentName(name, &seq, &first_index)) {
      segments_.push_back({seq, first_index});
    }
  }
  std::sort(segments_.begin(), segments_.end(), [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < segments_.size(); ++i) {
    if (segments_[i].seq != segments_[i - 1].seq + 1) {
      return CorruptionError("wal " + dir_ + ": segment " + std::to_string(segments_[i - 1].seq + 1) + " is missing");
    }
  }
  CAIRN_RETURN_IF_ERROR(LoadNewestSnapshot(names, recovered));
  uint64_t valid_tail_bytes = 0;
  CAIRN_RETURN_IF_ERROR(ReplaySegments(recovered, &valid_tail_bytes));
  last_index_ = recovered->entries.empty() ? snapshot_index_ : recovered->entries.back().index;
  hard_state_ = recovered->hard_state;
  CAIRN_RETURN_IF_ERROR(OpenTail(valid_tail_bytes, recovered->truncated_bytes));
  log::Info("wal.recovered", "dir", dir_, "segments", segments_.size(), "snapshot_index", snapshot_index_,
            "entries", recovered->entries.size(), "last_index", last_index_, "truncated_bytes",
            recovered->truncated_bytes);
  return Status::Ok();
}

Status Wal::LoadNewestSnapshot(const std::vector<std::string>& names, Recovered* recovered) {
  std::vector<uint64_t> indices;
  for (const std::string& name : names) {
    uint64_t index;
    if (internal::ParseSnapshotName(name, &index)) indices.push_back(index);
  }
  std::sort(indices.rbegin(), indices.rend());
  for (uint64_t index : indices) {
    std::string path = env::JoinPath(dir_, internal::SnapshotName(index));
    CAIRN_ASSIGN_OR_RETURN(std::string contents, env_->ReadFile(path));
    auto snapshot = internal::DecodeSnapshotFile(contents);
    if (snapshot.ok() && snapshot->index == index) {
      snapshot_index_ = index;
      recovered->snapshot = std::move(snapshot).value();
      return Status::Ok();
    }
    // An older snapshot may still do; the log continuity check in LogReplay::Finish tells.
    log::Warn("wal.snapshot_invalid", "file", path, "error", snapshot.status());
  }
  return Status::Ok();
}

Status Wal::ReplaySegments(Recovered* recovered, uint64_t* valid_tail_bytes) {
  LogReplay replay(snapshot_index_);
  for (size_t i = 0; i < segments_.size(); ++i) {
    const bool last = i + 1 == segments_.size();
    std::string path = SegmentPath(segments_[i]);
    CAIRN_ASSIGN_OR_RETURN(std::string data, env_->ReadFile(path));
    internal::RecordReader reader(data);
    bool saw_header = false;
    Record record;
    std::string problem;
    for (;;) {
      ReadOutcome outcome = reader.Next(&record, &problem);
      if (outcome == ReadOutcome::kEnd) break;
      if (outcome == ReadOutcome::kCorrupt || (outcome == ReadOutcome::kTorn && !last)) {
        std::string sealed = outcome == ReadOutcome::kTorn ? " in a sealed segment" : "";
        return CorruptionError(Where(path, reader.offset()) + ": " + problem + sealed);
      }
      if (outcome == ReadOutcome::kTorn) {
        recovered->truncated_bytes = data.size() - reader.offset();
        log::Warn("wal.torn_tail", "file", path, "offset", reader.offset(), "bytes", recovered->truncated_bytes,
                  "problem", problem);
        break;
      }
      std::string where = Where(path, record.offset);
      if (!saw_header) {
        if (record.type != RecordType::kSegmentHeader) return CorruptionError(where + ": segment header missing");
        auto header = internal::DecodeSegmentHeader(record.payload);
        if (!header.ok()) return header.status().WithContext(where);
        if (header->seq != segments_[i].seq || header->first_index != segments_[i].first_index) {
          return CorruptionError(where + ": segment header does not match the file name");
        }
        saw_header = true;
      } else if (record.type == RecordType::kEntry) {
        auto entry = internal::DecodeEntry(record.payload);
        if (!entry.ok()) return entry.status().WithContext(where);
        CAIRN_RETURN_IF_ERROR(replay.Add(std::move(entry).value(), where));
      } else if (record.type == RecordType::kHardState) {
        auto state = internal::DecodeHardState(record.payload);
        if (!state.ok()) return state.status().WithContext(where);
        recovered->hard_state = *state;
      } else {
        return CorruptionError(where + ": unexpected second segment header");
      }
    }
    if (!saw_header && !last) return CorruptionError(Where(path, 0) + ": sealed segment has no header");
    if (last) *valid_tail_bytes = saw_header ? reader.offset() : 0;
  }
  CAIRN_ASSIGN_OR_RETURN(recovered->entries, replay.Finish(dir_));
  return Status::Ok();
}

Status Wal::OpenTail(uint64_t valid_tail_bytes, uint64_t truncated_bytes) {
  if (segments_.empty()) return StartSegment(1, last_index_ + 1);
  Segment tail = segments_.back();
  if (valid_tail_bytes == 0) {
    // Not even the header survived: rewrite the segment from scratch.
    segments_.pop_back();
    return StartSegment(tail.seq, tail.first_index);
  }
  std::string path = SegmentPath(tail);
  if (truncated_bytes > 0) CAIRN_RETURN_IF_ERROR(env_->Truncate(path, valid_tail_bytes));
  CAIRN_ASSIGN_OR_RETURN(file_, env_->NewAppendableFile(path));
  if (truncated_bytes > 0) CAIRN_RETURN_IF_ERROR(file_->Sync());
  segment_has_entries_ = true;  // conservative: never roll over an apparently empty segment twice
  return Status::Ok();
}

Status Wal::StartSegment(uint64_t seq, uint64_t first_index) {
  Segment segment{seq, first_index};
  std::string path = SegmentPath(segment);
  CAIRN_ASSIGN_OR_RETURN(auto file, env_->NewWritableFile(path));
  std::string header;
  internal::AppendRecord(RecordType::kSegmentHeader, internal::EncodeSegmentHeader({seq, first_index}), &header);
  // Every segment repeats the hard state, so removing old segments never loses it.
  if (!hard_state_.IsEmpty()) {
    internal::AppendRecord(RecordType::kHardState, internal::EncodeHardState(hard_state_), &header);
  }
  CAIRN_RETURN_IF_ERROR(file->Append(header).WithContext("wal: new segment"));
  CAIRN_RETURN_IF_ERROR(file->Sync().WithContext("wal: new segment"));
  CAIRN_RETURN_IF_ERROR(env_->SyncDir(dir_).WithContext("wal: new segment"));
  file_ = std::move(file);
  segments_.push_back(segment);
  segment_has_entries_ = false;
  return Status::Ok();
}

Status Wal::Rollover() {
  CAIRN_RETURN_IF_ERROR(Sync());
  Status closed = file_->Close();
  file_.reset();
  Status status = closed.ok() ? StartSegment(segments_.back().seq + 1, last_index_ + 1) : closed;
  if (!status.ok()) failed_ = status.WithContext("wal: starting a new segment failed; reopen to recover");
  return failed_;
}

Status Wal::CheckEntries(std::span<const Entry> entries) const {
  if (entries.empty()) return Status::Ok();
  uint64_t first = entries.front().index;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].index != first + i) {
      return InvalidArgumentError("wal: entry indices not contiguous: " + std::to_string(entries[i].index) +
                                  " follows " + std::to_string(first + i - 1));
    }
  }
  if (first == 0) return InvalidArgumentError("wal: entry index 0 is not valid");
  if (first <= snapshot_index_) {
    return InvalidArgumentError("wal: entry index " + std::to_string(first) + " is covered by the snapshot at " +
                                std::to_string(snapshot_index_));
  }
  if (first > last_index_ + 1) {
    return InvalidArgumentError("wal: entry index " + std::to_string(first) + " leaves a gap after last index " +
                                std::to_string(last_index_));
  }
  return Status::Ok();
}

Status Wal::WriteBuffer() {
  uint64_t before = file_->Size();
  Status status = file_->Append(buffer_);
  if (status.ok()) {
    unsynced_ = true;
    return Status::Ok();
  }
  // Cut off whatever part of the batch reached the file, so the log stays a clean prefix.
  Status cut = file_->Truncate(before);
  if (!cut.ok()) failed_ = cut.WithContext("wal: cutting off a failed write failed; reopen to recover");
  return status.WithContext("wal append");
}

Status Wal::Save(const HardState& hard_state, std::span<const Entry> entries, bool sync) {
  if (!file_) return FailedPreconditionError("wal " + dir_ + " is closed");
  CAIRN_RETURN_IF_ERROR(failed_);
  CAIRN_RETURN_IF_ERROR(CheckEntries(entries));
  buffer_.clear();
  for (const Entry& entry : entries) {
    internal::AppendRecord(RecordType::kEntry, internal::EncodeEntry(entry), &buffer_);
  }
  bool write_state = !hard_state.IsEmpty() && hard_state != hard_state_;
  if (write_state) internal::AppendRecord(RecordType::kHardState, internal::EncodeHardState(hard_state), &buffer_);
  if (!buffer_.empty()) {
    if (segment_has_entries_ && file_->Size() + buffer_.size() > options_.segment_bytes) {
      CAIRN_RETURN_IF_ERROR(Rollover());
    }
    CAIRN_RETURN_IF_ERROR(WriteBuffer());
    if (!entries.empty()) {
      last_index_ = entries.back().index;
      segment_has_entries_ = true;
    }
    if (write_state) hard_state_ = hard_state;
  }
  return sync ? Sync() : Status::Ok();
}

Status Wal::Sync() {
  if (!file_) return FailedPreconditionError("wal " + dir_ + " is closed");
  CAIRN_RETURN_IF_ERROR(failed_);
  if (!unsynced_) return Status::Ok();
  Status status = file_->Sync();
  if (!status.ok()) {
    // After a failed fsync the kernel may have dropped the dirty pages; a retry could "succeed"
    // without the data on disk. Only a reopen (recovery from what is really there) is safe.
    failed_ = status.WithContext("wal fsync failed; reopen to recover");
    log::Error("wal.fsync_failed", "dir", dir_, "error", status);
    return failed_;
  }
  unsynced_ = false;
  return Status::Ok();
}

Status Wal::SaveSnapshot(const Snapshot& snapshot) {
  if (!file_) return FailedPreconditionError("wal " + dir_ + " is closed");
  CAIRN_RETURN_IF_ERROR(failed_);
  if (snapshot.index <= snapshot_index_) {
    return FailedPreconditionError("wal: snapshot index " + std::to_string(snapshot.index) +
                                   " is not newer than " + std::to_string(snapshot_index_));
  }
  std::string path = env::JoinPath(dir_, internal::SnapshotName(snapshot.index));
  CAIRN_RETURN_IF_ERROR(env::WriteFileAtomically(env_, path, internal::EncodeSnapshotFile(snapshot)));
  snapshot_index_ = snapshot.index;
  last_index_ = std::max(last_index_, snapshot.index);
  CAIRN_RETURN_IF_ERROR(RemoveObsoleteSegments());
  return RemoveOldSnapshots();
}

Status Wal::RemoveObsoleteSegments() {
  // Segment k starts where the log ended at index first_index - 1; if the snapshot covers that,
  // every segment before k holds only compacted entries.
  size_t keep_from = 0;
  for (size_t k = 1; k < segments_.size(); ++k) {
    if (segments_[k].first_index <= snapshot_index_ + 1) keep_from = k;
  }
  for (size_t i = 0; i < keep_from; ++i) {
    CAIRN_RETURN_IF_ERROR(env_->RemoveFile(SegmentPath(segments_.front())));
    // One directory sync per removal keeps the surviving segments a suffix after any crash.
    CAIRN_RETURN_IF_ERROR(env_->SyncDir(dir_));
    segments_.erase(segments_.begin());
  }
  return Status::Ok();
}

Status Wal::RemoveOldSnapshots() {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  std::vector<uint64_t> indices;
  for (const std::string& name : names) {
    uint64_t index;
    if (internal::ParseSnapshotName(name, &index)) indices.push_back(index);
  }
  std::sort(indices.rbegin(), indices.rend());
  for (size_t i = options_.snapshots_to_keep; i < indices.size(); ++i) {
    CAIRN_RETURN_IF_ERROR(env_->RemoveFile(env::JoinPath(dir_, internal::SnapshotName(indices[i]))));
  }
  return Status::Ok();
}

Status Wal::Close() {
  if (!file_) return FailedPreconditionError("wal " + dir_ + " is closed");
  Status status = failed_.ok() ? Sync() : failed_;
  Status closed = file_->Close();
  file_.reset();
  lock_.reset();
  return status.ok() ? closed : status;
}

}  // namespace cairn::wal
