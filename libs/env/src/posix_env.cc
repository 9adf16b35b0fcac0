// PosixEnv: the Env on real syscalls. Every call that can be interrupted is retried on EINTR;
// every descriptor is opened with O_CLOEXEC so forked helpers (lxc, fusermount) do not inherit it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cairn/env/env.h"
#include "path_error.h"

namespace cairn::env {
namespace {

// Closes a descriptor; close() is not retried on EINTR (Linux always releases the descriptor).
int CloseFd(int fd) { return ::close(fd); }

int OpenRetry(const std::string& path, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) CloseFd(fd_);
  }

  Status Append(std::string_view data) override {
    if (fd_ < 0) return Closed();
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PathError("write", path_, errno);
      }
      size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (fd_ < 0) return Closed();
    int rc;
    do {
      rc = ::fdatasync(fd_);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return PathError("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (fd_ < 0) return Closed();
    int rc;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(size));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return PathError("ftruncate", path_, errno);
    size_ = size;
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Closed();
    int rc = CloseFd(fd_);
    fd_ = -1;
    if (rc < 0) return PathError("close", path_, errno);
    return Status::Ok();
  }

  uint64_t Size() const override { return size_; }

 private:
  Status Closed() const { return FailedPreconditionError("file already closed: " + path_); }

  std::string path_;
  int fd_;
  uint64_t size_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    CloseFd(fd_);
  }

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return OpenWritable(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    return OpenWritable(path, O_WRONLY | O_CREAT | O_APPEND);
  }

  Result<std::string> ReadFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
    // Read until EOF rather than trusting the size: the file may grow meanwhile.
    return ReadFrom(path, 0, SIZE_MAX, static_cast<size_t>(size));
  }

  Result<std::string> ReadRange(const std::string& path, uint64_t offset, size_t length) override {
    return ReadFrom(path, offset, length, std::min<size_t>(length, 1 << 20));
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return PathError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  bool FileExists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr) return PathError("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* entry = ::readdir(handle)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int err = errno;
    ::closedir(handle);
    if (err != 0) return PathError("readdir", dir, err);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) < 0) return PathError("rename", from + " -> " + to, errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) < 0) return PathError("unlink", path, errno);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    int rc;
    do {
      rc = ::truncate(path.c_str(), static_cast<off_t>(size));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return PathError("truncate", path, errno);
    return Status::Ok();
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) < 0) return PathError("mkdir", dir, errno);
    return Status::Ok();
  }

  Status RemoveDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) < 0) return PathError("rmdir", dir, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = OpenRetry(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return PathError("open directory", dir, errno);
    int rc;
    do {
      rc = ::fsync(fd);
    } while (rc < 0 && errno == EINTR);
    int err = errno;
    CloseFd(fd);
    if (rc < 0) return PathError("fsync directory", dir, err);
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = OpenRetry(path, O_RDWR | O_CREAT);
    if (fd < 0) return PathError("open lock file", path, errno);
    // flock locks belong to the open file description, so a second LockFile in this same process
    // conflicts too (fcntl locks would not).
    int rc;
    do {
      rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      int err = errno;
      CloseFd(fd);
      if (err == EWOULDBLOCK) return UnavailableError("lock " + path + ": held by another user");
      return PathError("flock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

 private:
  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path, int flags) {
    int fd = OpenRetry(path, flags);
    if (fd < 0) return PathError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) < 0) {
      int err = errno;
      CloseFd(fd);
      return PathError("fstat", path, err);
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  // Reads up to `length` bytes from `offset`, stopping at EOF.
  Result<std::string> ReadFrom(const std::string& path, uint64_t offset, size_t length, size_t reserve) {
    int fd = OpenRetry(path, O_RDONLY);
    if (fd < 0) return PathError("open", path, errno);
    std::string out;
    out.reserve(reserve);
    char buffer[64 * 1024];
    while (out.size() < length) {
      size_t want = std::min(sizeof(buffer), length - out.size());
      ssize_t n = ::pread(fd, buffer, want, static_cast<off_t>(offset + out.size()));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        CloseFd(fd);
        return PathError("read", path, err);
      }
      if (n == 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    CloseFd(fd);
    return out;
  }
};

}  // namespace

std::unique_ptr<Env> NewPosixEnv() { return std::make_unique<PosixEnv>(); }

Env* DefaultEnv() {
  static Env* env = new PosixEnv();  // never destroyed: used from static destructors too
  return env;
}

}  // namespace cairn::env
