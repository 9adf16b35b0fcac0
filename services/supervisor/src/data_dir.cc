#include "cairn/supervisor/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

namespace cairn::supervisor {

DataDirLock::DataDirLock(DataDirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

DataDirLock::~DataDirLock() { Release(); }

void DataDirLock::Release() {
  if (fd_ < 0) return;
  ::close(fd_);  // closing the descriptor drops the flock
  fd_ = -1;
}

namespace {

Status CreateDirectory(const std::string& path) {
  std::error_code error;
  bool created = std::filesystem::create_directories(path, error);
  if (error) return ErrnoError("cannot create data_dir " + path, error.value());
  // The WAL and join secrets live here: a new directory is private to its owner.
  if (created) std::filesystem::permissions(path, std::filesystem::perms::owner_all, error);
  if (error) return ErrnoError("cannot set the mode of data_dir " + path, error.value());
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return ErrnoError("cannot inspect data_dir " + path, errno);
  if (!S_ISDIR(info.st_mode)) return FailedPreconditionError("data_dir " + path + " exists but is not a directory");
  if (::access(path.c_str(), W_OK | X_OK) != 0) return ErrnoError("data_dir " + path + " is not writable", errno);
  return Status::Ok();
}

}  // namespace

Result<DataDirLock> PrepareDataDir(const std::string& path) {
  CAIRN_RETURN_IF_ERROR(CreateDirectory(path));
  std::string lock_path = path + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot open " + lock_path, errno);
  DataDirLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      char pid[32] = {};
      ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
      std::string holder = n > 0 ? " (pid " + std::string(pid, static_cast<size_t>(n)) + ")" : "";
      return FailedPreconditionError("data_dir " + path + " is in use by another clusterd" + holder);
    }
    return ErrnoError("cannot lock " + lock_path, errno);
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return ErrnoError("cannot write " + lock_path, errno);
  }
  return lock;
}

}  // namespace cairn::supervisor
