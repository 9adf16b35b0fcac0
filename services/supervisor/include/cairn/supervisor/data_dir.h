// The node's data directory: created when missing, checked writable, and locked so that two
// clusterd processes never share one (the second would corrupt the first's WAL and bricks).
#pragma once

#include <string>

#include "cairn/common/status.h"

namespace cairn::supervisor {

// Holds the exclusive lock on DATA_DIR/LOCK (flock) for as long as it lives. Move-only.
class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(DataDirLock&& other) noexcept;
  DataDirLock& operator=(DataDirLock&& other) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

  bool held() const { return fd_ >= 0; }
  // Releases the lock now (the destructor does it too).
  void Release();

 private:
  friend Result<DataDirLock> PrepareDataDir(const std::string& path);
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Creates path (and its parents, mode 0700) when missing, checks that it is a writable directory,
// takes the lock and writes this process's pid into DATA_DIR/LOCK.
// Errors (message names the path and the reason): IoError / PermissionDenied when the directory
// cannot be created or written, FailedPrecondition when another process holds the lock.
Result<DataDirLock> PrepareDataDir(const std::string& path);

}  // namespace cairn::supervisor
