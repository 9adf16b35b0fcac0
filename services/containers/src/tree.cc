#include "cairn/containers/tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

namespace cairn::containers {
namespace {

Status PathError(const std::string& what, const std::string& path, int error) {
  if (error == ENOENT) return NotFoundError(what + " " + path + ": " + std::strerror(error));
  return IoError(what + " " + path + ": " + std::strerror(error));
}

// Names in a directory, sorted bytewise (the canonical order), without "." and "..".
Result<std::vector<std::string>> SortedNames(const std::string& dir) {
  DIR* handle = opendir(dir.c_str());
  if (handle == nullptr) return PathError("opendir", dir, errno);
  std::vector<std::string> names;
  while (struct dirent* entry = readdir(handle)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  closedir(handle);
  std::sort(names.begin(), names.end());
  return names;
}

// Calls visit(relative path, full path, lstat) for every entry below root, parents before
// children, siblings in byte order.
using Visitor = std::function<Status(const std::string&, const std::string&, const struct stat&)>;

Status Walk(const std::string& root, const std::string& relative, const Visitor& visit) {
  std::string dir = relative.empty() ? root : root + "/" + relative;
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> names, SortedNames(dir));
  for (const std::string& name : names) {
    std::string child_relative = relative.empty() ? name : relative + "/" + name;
    std::string full = root + "/" + child_relative;
    struct stat st;
    if (lstat(full.c_str(), &st) != 0) return PathError("lstat", full, errno);
    CAIRN_RETURN_IF_ERROR(visit(child_relative, full, st));
    if (S_ISDIR(st.st_mode)) CAIRN_RETURN_IF_ERROR(Walk(root, child_relative, visit));
  }
  return Status::Ok();
}

Status CheckRoot(const std::string& root) {
  struct stat st;
  if (lstat(root.c_str(), &st) != 0) return PathError("tree", root, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(root + " is not a directory");
  return Status::Ok();
}

struct DigestDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using Digest = std::unique_ptr<EVP_MD_CTX, DigestDeleter>;

Digest NewSha256() {
  Digest context(EVP_MD_CTX_new());
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  return context;
}

std::string FinishHex(EVP_MD_CTX* context) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context, hash, &length);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[hash[i] >> 4];
    hex += kHex[hash[i] & 15];
  }
  return hex;
}

Result<std::string> FileSha256(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return PathError("open", path, errno);
  Digest context = NewSha256();
  std::vector<char> buffer(1 << 16);
  for (;;) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      close(fd);
      return PathError("read", path, error);
    }
    if (n == 0) break;
    EVP_DigestUpdate(context.get(), buffer.data(), static_cast<size_t>(n));
  }
  close(fd);
  return FinishHex(context.get());
}

Result<std::string> LinkTarget(const std::string& path) {
  std::vector<char> buffer(4096);
  ssize_t n = readlink(path.c_str(), buffer.data(), buffer.size());
  if (n < 0) return PathError("readlink", path, errno);
  return std::string(buffer.data(), static_cast<size_t>(n));
}

// One canonical record: fields separated by NUL, ended by a newline (docs/containers.md).
Result<std::string> CanonicalRecord(const std::string& relative, const std::string& full, const struct stat& st) {
  char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l'
            : S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : 's';
  std::string record(1, type);
  record += '\0' + relative + '\0' + std::to_string(st.st_mode & 07777) + '\0' + std::to_string(st.st_uid) + '\0' +
            std::to_string(st.st_gid);
  if (type == 'f') {
    CAIRN_ASSIGN_OR_RETURN(std::string hash, FileSha256(full));
    record += '\0' + std::to_string(st.st_size) + '\0' + hash;
  } else if (type == 'l') {
    CAIRN_ASSIGN_OR_RETURN(std::string target, LinkTarget(full));
    record += '\0' + target;
  } else if (type == 'c' || type == 'b') {
    record += '\0' + std::to_string(major(st.st_rdev)) + ':' + std::to_string(minor(st.st_rdev));
  }
  return record + '\n';
}

// ---- copy ------------------------------------------------------------------------------------

Status CopyData(const std::string& from, const std::string& to, const struct stat& st) {
  int in = open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return PathError("open", from, errno);
  int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    int error = errno;
    close(in);
    return PathError("create", to, error);
  }
  Status status = Status::Ok();
  off_t offset = 0;
  while (status.ok() && offset < st.st_size) {
    off_t data = lseek(in, offset, SEEK_DATA);
    if (data < 0) break;  // only a hole is left (ENXIO)
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = st.st_size;
    off_t position = data;
    while (position < hole) {
      loff_t in_offset = position, out_offset = position;
      ssize_t n = copy_file_range(in, &in_offset, out, &out_offset, static_cast<size_t>(hole - position), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        status = PathError("copy to", to, n < 0 ? errno : EIO);
        break;
      }
      position += n;
    }
    offset = hole;
  }
  if (status.ok() && ftruncate(out, st.st_size) != 0) status = PathError("truncate", to, errno);
  close(in);
  close(out);
  return status;
}

// Owner, mode and times of destination from st (no symlink followed).
Status CopyMetadata(const std::string& destination, const struct stat& st) {
  if (lchown(destination.c_str(), st.st_uid, st.st_gid) != 0 && errno != EPERM) {
    return PathError("chown", destination, errno);
  }
  if (!S_ISLNK(st.st_mode) && chmod(destination.c_str(), st.st_mode & 07777) != 0) {
    return PathError("chmod", destination, errno);
  }
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (utimensat(AT_FDCWD, destination.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return PathError("utimes", destination, errno);
  }
  return Status::Ok();
}

void CopyOpaqueMark(const std::string& from, const std::string& to) {
  char value[8];
  ssize_t n = lgetxattr(from.c_str(), "trusted.overlay.opaque", value, sizeof value);
  if (n > 0) lsetxattr(to.c_str(), "trusted.overlay.opaque", value, static_cast<size_t>(n), 0);
}

class TreeCopier {
 public:
  TreeCopier(std::string source, std::string destination)
      : source_(std::move(source)), destination_(std::move(destination)) {}

  Status Run() {
    struct stat root;
    if (lstat(source_.c_str(), &root) != 0) return PathError("source", source_, errno);
    if (!S_ISDIR(root.st_mode)) return InvalidArgumentError(source_ + " is not a directory");
    if (lstat(destination_.c_str(), &root) == 0) return AlreadyExistsError(destination_ + " already exists");
    if (mkdir(destination_.c_str(), 0700) != 0) return PathError("mkdir", destination_, errno);
    CAIRN_RETURN_IF_ERROR(Walk(source_, "", [this](const std::string& relative, const std::string& full,
                                                   const struct stat& st) { return CopyOne(relative, full, st); }));
    // Directory times last: creating their children changed them.
    for (auto it = directories_.rbegin(); it != directories_.rend(); ++it) {
      CAIRN_RETURN_IF_ERROR(CopyMetadata(it->first, it->second));
    }
    lstat(source_.c_str(), &root);
    CopyOpaqueMark(source_, destination_);
    return CopyMetadata(destination_, root);
  }

 private:
  Status CopyOne(const std::string& relative, const std::string& full, const struct stat& st) {
    std::string target = destination_ + "/" + relative;
    if (S_ISDIR(st.st_mode)) {
      if (mkdir(target.c_str(), 0700) != 0) return PathError("mkdir", target, errno);
      CopyOpaqueMark(full, target);
      directories_.emplace_back(target, st);
      return Status::Ok();
    }
    if (!S_ISLNK(st.st_mode) && st.st_nlink > 1) {
      auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, target);
      if (!inserted) {
        if (link(it->second.c_str(), target.c_str()) != 0) return PathError("link", target, errno);
        return Status::Ok();
      }
    }
    if (S_ISREG(st.st_mode)) {
      CAIRN_RETURN_IF_ERROR(CopyData(full, target, st));
    } else if (S_ISLNK(st.st_mode)) {
      CAIRN_ASSIGN_OR_RETURN(std::string link_target, LinkTarget(full));
      if (symlink(link_target.c_str(), target.c_str()) != 0) return PathError("symlink", target, errno);
    } else if (S_ISSOCK(st.st_mode)) {
      return Status::Ok();  // a socket is not content
    } else if (mknod(target.c_str(), st.st_mode, st.st_rdev) != 0) {
      return PathError("mknod", target, errno);
    }
    return CopyMetadata(target, st);
  }

  std::string source_;
  std::string destination_;
  std::vector<std::pair<std::string, struct stat>> directories_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

Result<std::string> DigestTree(const std::string& root) {
  CAIRN_RETURN_IF_ERROR(CheckRoot(root));
  Digest context = NewSha256();
  CAIRN_RETURN_IF_ERROR(Walk(root, "", [&](const std::string& relative, const std::string& full,
                                           const struct stat& st) -> Status {
    CAIRN_ASSIGN_OR_RETURN(std::string record, CanonicalRecord(relative, full, st));
    EVP_DigestUpdate(context.get(), record.data(), record.size());
    return Status::Ok();
  }));
  return "sha256:" + FinishHex(context.get());
}

Result<TreeStats> MeasureTree(const std::string& root) {
  CAIRN_RETURN_IF_ERROR(CheckRoot(root));
  TreeStats stats;
  std::set<std::pair<dev_t, ino_t>> seen;
  CAIRN_RETURN_IF_ERROR(Walk(root, "", [&](const std::string&, const std::string&, const struct stat& st) {
    ++stats.entries;
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) stats.size_bytes += static_cast<uint64_t>(st.st_size);
    if (seen.insert({st.st_dev, st.st_ino}).second) stats.disk_bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    return Status::Ok();
  }));
  return stats;
}

Status CopyTree(const std::string& source, const std::string& destination) {
  return TreeCopier(source, destination).Run();
}

Status RemoveTree(const std::string& path) {
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error) return IoError("removing " + path + ": " + error.message());
  return Status::Ok();
}

}  // namespace cairn::containers
