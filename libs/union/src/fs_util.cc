#include "src/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>

#include <cerrno>
#include <vector>

namespace cairn::unionfs {

std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {

// Copies [offset, offset+length) with copy_file_range, falling back to pread/pwrite.
int CopyRange(int src, int dst, off_t offset, off_t length) {
  bool use_copy_range = true;
  std::vector<char> buffer;
  while (length > 0) {
    if (use_copy_range) {
      loff_t in = offset, out = offset;
      ssize_t n = copy_file_range(src, &in, dst, &out, static_cast<size_t>(length), 0);
      if (n > 0) {
        offset += n;
        length -= n;
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return NegErrno();
      use_copy_range = false;
      buffer.resize(1 << 20);
    }
    ssize_t n = pread(src, buffer.data(), std::min<off_t>(length, static_cast<off_t>(buffer.size())), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return NegErrno();
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(dst, buffer.data() + done, static_cast<size_t>(n - done), offset + done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return NegErrno();
      done += w;
    }
    offset += n;
    length -= n;
  }
  return 0;
}

}  // namespace

int CopyData(int src, int dst, off_t size) {
  off_t offset = 0;
  while (offset < size) {
    off_t data = lseek(src, offset, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) {                         // SEEK_DATA unsupported: copy everything
      data = offset;
    }
    off_t hole = lseek(src, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    if (hole > size) hole = size;
    int rc = CopyRange(src, dst, data, hole - data);
    if (rc != 0) return rc;
    offset = hole;
  }
  if (ftruncate(dst, size) != 0) return NegErrno();
  return 0;
}

int CopyXattrs(const std::string& src, const std::string& dst) {
  ssize_t size = listxattr(src.c_str(), nullptr, 0);
  if (size < 0) return (errno == ENOTSUP || errno == ENODATA) ? 0 : NegErrno();
  std::string names(static_cast<size_t>(size), '\0');
  size = listxattr(src.c_str(), names.data(), names.size());
  if (size < 0) return NegErrno();
  names.resize(static_cast<size_t>(size));
  for (size_t pos = 0; pos < names.size();) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    ssize_t value_size = getxattr(src.c_str(), name.c_str(), nullptr, 0);
    if (value_size < 0) continue;
    std::string value(static_cast<size_t>(value_size), '\0');
    value_size = getxattr(src.c_str(), name.c_str(), value.data(), value.size());
    if (value_size < 0) continue;
    if (setxattr(dst.c_str(), name.c_str(), value.data(), static_cast<size_t>(value_size), 0) != 0 &&
        errno != ENOTSUP && errno != EPERM) {
      return NegErrno();
    }
  }
  return 0;
}

int CopyMetadata(int src_fd, int dst_fd, const struct stat& st, bool is_symlink) {
  if (fchownat(dst_fd, "", st.st_uid, st.st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 && errno != EPERM) {
    return NegErrno();
  }
  std::string dst_path = ProcPath(dst_fd);
  if (!is_symlink) {
    if (chmod(dst_path.c_str(), st.st_mode & 07777) != 0) return NegErrno();
    int rc = CopyXattrs(ProcPath(src_fd), dst_path);
    if (rc != 0) return rc;
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (is_symlink) {
    if (utimensat(dst_fd, "", times, AT_EMPTY_PATH) != 0 && errno != EINVAL && errno != ENOENT) return NegErrno();
  } else if (utimensat(AT_FDCWD, dst_path.c_str(), times, 0) != 0) {
    return NegErrno();
  }
  return 0;
}

int RemoveContents(int dirfd) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return NegErrno();
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return NegErrno();
  }
  std::vector<std::pair<std::string, bool>> names;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name, entry->d_type == DT_DIR);
  }
  int rc = 0;
  for (const auto& [name, is_dir] : names) {
    if (is_dir) {
      int child = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child >= 0) {
        rc = RemoveContents(child);
        close(child);
      }
    }
    if (unlinkat(dirfd, name.c_str(), is_dir ? AT_REMOVEDIR : 0) != 0 && rc == 0) rc = NegErrno();
  }
  closedir(dir);
  return rc;
}

}  // namespace cairn::unionfs
