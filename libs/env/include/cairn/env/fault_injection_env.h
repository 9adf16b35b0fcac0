// FaultInjectionEnv: an Env wrapper for crash-recovery tests, after LevelDB's db/fault_injection_test.cc.
//
// It remembers what would survive a power loss and can make the underlying Env forget the rest:
//   - file data: only the bytes present at the file's last successful Sync survive;
//   - directory entries: a file or directory created, removed or renamed survives (or is undone)
//     only once SyncDir ran on its parent. Undoing a removal or a rename restores the file with its
//     synced content (kept in memory from the moment of the removal).
// DropUnsyncedData() applies this to the base Env: the "crash". Afterwards everything left is durable
// and every WritableFile opened before the crash fails with IoError.
//
// Model limits (simplifications that only make the crash harsher or equal to a real one):
//   - Truncate counts as durable at once (synced size drops to the new size);
//   - a file created with NewWritableFile over an existing one keeps its entry but no data;
//   - a directory rename is passed through and treated as durable at once; a removed (empty)
//     directory comes back empty; a created directory vanishes with everything below it.
//
// Injected faults (all off by default, reset by ClearFaults):
//   - SetSyncFailure(true): WritableFile::Sync and SyncDir fail with IoError (EIO); nothing is synced.
//   - SetNoSpaceAfter(n): after n more appended bytes the disk is full: an Append writes what still
//     fits and fails with ResourceExhausted (ENOSPC), like write(2) on a full disk.
//   - FailNthAppend(n): the n-th Append from now (1 = the next one) fails with IoError, writing nothing.
//
// Threading: thread-safe; one mutex serialises every call (also the calls into the base Env).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/env/env.h"

namespace cairn::env {

class FaultInjectionEnv final : public Env {
 public:
  // `base` must outlive this object. Files that exist in `base` now count as fully durable.
  explicit FaultInjectionEnv(Env* base);
  ~FaultInjectionEnv() override;

  // The crash: truncates every file to its synced size and undoes unsynced directory changes.
  Status DropUnsyncedData();
  // A crash with torn writes: like DropUnsyncedData, but each file keeps a random prefix (chosen
  // with `random`) of its unsynced bytes, as when the OS wrote back part of the page cache.
  Status DropUnsyncedData(Random& random);

  void SetSyncFailure(bool fail);
  void SetNoSpaceAfter(uint64_t bytes);
  void FailNthAppend(uint64_t n);
  void ClearFaults();

  // Bytes appended (and accepted) since construction; lets tests pick a crash or ENOSPC point.
  uint64_t BytesAppended() const;
  // Successful WritableFile::Sync calls since construction.
  uint64_t SyncCount() const;

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Result<std::string> ReadRange(const std::string& path, uint64_t offset, size_t length) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // What survives of one file; shared with the open handles, moved along by Rename.
  struct FileState {
    uint64_t synced_size = 0;
    bool entry_durable = false;  // the directory entry was synced
  };

 private:
  class File;
  friend class File;

  // One change to a directory that a crash before its SyncDir undoes.
  struct Undo {
    enum class Kind { kRemoveFile, kRestoreFile, kRemoveDir, kRestoreDir } kind;
    std::string path;
    std::string content;  // for kRestoreFile: the synced content at removal
  };

  // REQUIRES: mu_ held.
  std::shared_ptr<FileState> StateFor(const std::string& path);
  Status SaveForUndo(const std::string& path);
  void ForgetEntry(const std::string& path);
  Status ApplyUndo(const Undo& undo);
  Status Crash(Random* random);
  Status AppendLocked(FileState& state, WritableFile& base, std::string_view data);
  Status SyncLocked(FileState& state, WritableFile& base);

  Env* const base_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // files touched since the last crash
  std::vector<Undo> undo_;                                   // oldest first
  uint64_t generation_ = 0;                                  // bumped by each crash
  bool fail_sync_ = false;
  bool no_space_armed_ = false;
  uint64_t no_space_left_ = 0;
  uint64_t appends_until_failure_ = 0;  // 0: off
  uint64_t bytes_appended_ = 0;
  uint64_t sync_count_ = 0;
};

}  // namespace cairn::env
