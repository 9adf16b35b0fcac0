// Small fd-relative file helpers for the union (internal). All return 0 or a negative errno.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

namespace cairn::unionfs {

// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// "/proc/self/fd/N": reopens or acts on an O_PATH descriptor through the kernel's magic link.
std::string ProcPath(int fd);

// Negative errno of the last failed call.
inline int NegErrno() { return -errno; }

// Copies a regular file's bytes from src to dst (both open), keeping holes, with copy_file_range and a
// read/write fallback when the file systems differ. dst ends with src's size.
int CopyData(int src, int dst, off_t size);

// Copies owner, mode, xattrs and times of src_path_fd (O_PATH) onto dst (O_PATH or open; proc path used).
// is_symlink: only owner and times are copied. Owner changes that fail with EPERM are ignored (not root).
int CopyMetadata(int src_fd, int dst_fd, const struct stat& st, bool is_symlink);

// Copies the extended attributes of src onto dst (paths through /proc). ENOTSUP on either side: skipped.
int CopyXattrs(const std::string& src, const std::string& dst);

// Removes everything inside the directory dirfd (recursively), leaving dirfd itself.
int RemoveContents(int dirfd);

}  // namespace cairn::unionfs
