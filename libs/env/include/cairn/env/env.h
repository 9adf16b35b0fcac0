// The operating system's file system behind a small interface, after LevelDB's include/leveldb/env.h.
//
// Three implementations:
//   NewPosixEnv()        real syscalls (fdatasync/fsync, O_CLOEXEC, EINTR retried).
//   NewMemEnv()          everything in memory; for fast, hermetic tests.
//   FaultInjectionEnv    wraps another Env, forgets what was never synced on a simulated crash and
//                        injects fsync failures, ENOSPC and failed writes (fault_injection_env.h).
//
// Errors: every call returns Status/Result; messages name the operation and the path, and codes follow
// cairn::ErrnoError (ENOENT -> NotFound, EEXIST -> AlreadyExists, ENOSPC -> ResourceExhausted, ...),
// so callers can branch on the code the same way whatever the Env.
//
// Threading: an Env is thread-safe. A WritableFile is used by one thread at a time.
// Paths are plain strings ("/a/b/c"); no normalisation beyond dropping a trailing '/'.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::env {

// A file open for appending. No user-space buffering: Append hands the bytes to the OS at once, so
// a crash that the OS survives loses nothing, but only Sync makes them survive a power loss.
class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the file if Close was not called (errors ignored)

  // Appends `data` at the end of the file. On error part of `data` may have been written; the
  // caller can cut it off with Truncate(Size()) using the size it saw before.
  virtual Status Append(std::string_view data) = 0;
  // Makes every appended byte and the file size durable (fdatasync).
  virtual Status Sync() = 0;
  // Shrinks (or zero-extends) the file to `size`; later appends go to the new end.
  virtual Status Truncate(uint64_t size) = 0;
  // Closes the handle. Further calls fail with FailedPrecondition.
  virtual Status Close() = 0;
  // Bytes in the file, as this handle knows it (size at open + appended - truncated).
  virtual uint64_t Size() const = 0;
};

// Held while a lock file is locked; destroying it releases the lock. Must not outlive its Env.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class Env {
 public:
  virtual ~Env() = default;

  // Creates `path`, or truncates it to zero if it exists. The parent directory must exist.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens `path` for appending at its end, creating it (empty) if it does not exist.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;

  // The whole file. NotFound when it does not exist.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Up to `length` bytes from `offset`; shorter (possibly empty) at the end of the file.
  virtual Result<std::string> ReadRange(const std::string& path, uint64_t offset, size_t length) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // True when `path` names a file or a directory.
  virtual bool FileExists(const std::string& path) = 0;

  // Names (not paths) of the entries of `dir`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Atomically replaces `to` (if it exists) with `from`. Durable only after SyncDir of both parents.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // Shrinks or zero-extends `path` to `size`.
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // Creates one directory; AlreadyExists if it exists, NotFound if the parent does not.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Removes an empty directory.
  virtual Status RemoveDir(const std::string& dir) = 0;
  // Makes the creations, removals and renames of entries in `dir` durable (fsync on the directory).
  virtual Status SyncDir(const std::string& dir) = 0;

  // Takes an exclusive lock on `path` (created if missing). Fails with Unavailable when another
  // holder (this process or another one) has it. Released when the returned object is destroyed.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;
};

// The real file system. Stateless; the returned object may be shared by every thread.
std::unique_ptr<Env> NewPosixEnv();
// A process-wide PosixEnv, never destroyed.
Env* DefaultEnv();
// An empty in-memory file system holding only the root directory "/".
std::unique_ptr<Env> NewMemEnv();

// Path helpers. JoinPath("a", "b") == "a/b"; DirName("/a/b") == "/a"; BaseName("/a/b") == "b".
std::string JoinPath(std::string_view dir, std::string_view name);
std::string DirName(std::string_view path);
std::string BaseName(std::string_view path);

// Creates `dir` and any missing parents; OK when it already exists.
Status CreateDirs(Env* env, const std::string& dir);
// Removes `dir` and everything below it; OK when it does not exist.
Status RemoveDirRecursively(Env* env, const std::string& dir);
// Writes `data` to `path` with the durable-replace recipe: write `path`.tmp, sync it, rename over
// `path`, sync the parent directory. After a crash `path` holds either the old or the new content.
Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data);

}  // namespace cairn::env
