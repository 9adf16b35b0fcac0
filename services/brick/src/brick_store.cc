#include "cairn/brick/brick_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cairn/common/logging.h"

namespace cairn::brick {

const FileId kRootId(std::string(15, '\0') + '\x01');

namespace {

constexpr uint64_t kResolveFlags = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// openat2 has no glibc wrapper in 2.36.
int OpenBeneath(int dir_fd, const std::string& name, uint64_t flags) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags | O_CLOEXEC;
  how.resolve = kResolveFlags;
  for (;;) {
    long fd = syscall(SYS_openat2, dir_fd, name.c_str(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN && errno != EINTR) return -errno;
  }
}

int64_t ToNs(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }
struct timespec FromNs(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

bool IsReservedXattr(const std::string& name) {
  return name.compare(0, sizeof(kReservedXattrPrefix) - 1, kReservedXattrPrefix) == 0;
}

int ParseHexId(std::string_view hex, FileId* id) {
  if (hex.size() != 32) return EIO;
  id->assign(16, '\0');
  for (size_t i = 0; i < 16; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return EIO;
    (*id)[i] = static_cast<char>(hi << 4 | lo);
  }
  return 0;
}

}  // namespace

std::string IdToHexString(const FileId& id) {
  if (id.size() != 16) return "";
  static const char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    auto byte = static_cast<uint8_t>(id[i]);
    out[2 * i] = kDigits[byte >> 4];
    out[2 * i + 1] = kDigits[byte & 15];
  }
  return out;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

BrickStore::BrickStore(std::string root, BrickStoreOptions options)
    : root_(std::move(root)), options_(options), random_(SystemRandom().Next()) {}

BrickStore::~BrickStore() = default;

Result<std::unique_ptr<BrickStore>> BrickStore::Open(const std::string& root, BrickStoreOptions options) {
  std::unique_ptr<BrickStore> store(new BrickStore(root, options));
  CAIRN_RETURN_IF_ERROR(store->Init());
  return store;
}

Status BrickStore::Init() {
  int fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("brick root " + root_, errno);
  root_fd_.reset(fd);
  root_dir_ = std::make_shared<UniqueFd>(dup(fd));
  if (root_dir_->get() < 0) return ErrnoError("dup", errno);

  char value[64];
  ssize_t n = fgetxattr(fd, kIdXattr, value, sizeof(value));
  if (n < 0 && errno != ENODATA) return ErrnoError("reading " + std::string(kIdXattr) + " of " + root_, errno);
  if (n >= 0 && std::string(value, static_cast<size_t>(n)) != kRootId) {
    return FailedPreconditionError(root_ + " carries another file id: a directory inside a brick, not a brick root");
  }
  if (n < 0 && fsetxattr(fd, kIdXattr, kRootId.data(), kRootId.size(), 0) != 0) {
    return ErrnoError("setting " + std::string(kIdXattr) + " on " + root_, errno);
  }

  auto make_dir = [](int at, const char* name, UniqueFd* out) -> Status {
    if (mkdirat(at, name, 0700) != 0 && errno != EEXIST) return ErrnoError(std::string("mkdir ") + name, errno);
    int dfd = OpenBeneath(at, name, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return ErrnoError(std::string("open ") + name, -dfd);
    out->reset(dfd);
    return Status::Ok();
  };
  UniqueFd meta;
  CAIRN_RETURN_IF_ERROR(make_dir(fd, kMetaDirName, &meta));
  CAIRN_RETURN_IF_ERROR(make_dir(meta.get(), "ids", &ids_fd_));
  CAIRN_RETURN_IF_ERROR(make_dir(meta.get(), "dirs", &dirs_fd_));
  CAIRN_RETURN_IF_ERROR(make_dir(meta.get(), "tmp", &tmp_fd_));
  // Creations cut short by a crash: never visible to clients, so drop them. Their index entries
  // (if already made) are harmless orphans: ids that no name refers to.
  int scan = openat(tmp_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (scan >= 0) {
    DIR* dir = fdopendir(scan);
    std::vector<std::string> names;
    while (struct dirent* entry = readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) names.push_back(entry->d_name);
    }
    closedir(dir);
    for (const auto& name : names) {
      if (unlinkat(tmp_fd_.get(), name.c_str(), 0) != 0) (void)unlinkat(tmp_fd_.get(), name.c_str(), AT_REMOVEDIR);
    }
  }
  return Status::Ok();
}

FileId BrickStore::NewId() {
  std::lock_guard lock(cache_mu_);
  FileId id(16, '\0');
  uint64_t a = random_.Next(), b = random_.Next();
  std::memcpy(id.data(), &a, 8);
  std::memcpy(id.data() + 8, &b, 8);
  id[6] = static_cast<char>((id[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  id[8] = static_cast<char>((id[8] & 0x3f) | 0x80);
  return id;
}

std::string BrickStore::IndexPath(const FileId& id) const {
  std::string hex = IdToHexString(id);
  return hex.substr(0, 2) + "/" + hex;
}

std::string BrickStore::IndexFullPath(const FileId& id) const {
  return root_ + "/" + kMetaDirName + "/ids/" + IndexPath(id);
}

// Index buckets (the first two hex digits) are made on first use.
void BrickStore::MakeBucket(int index_fd, const FileId& id) {
  (void)mkdirat(index_fd, IdToHexString(id).substr(0, 2).c_str(), 0700);
}

int BrickStore::CheckName(const FileId& parent, const std::string& name) const {
  if (name.empty() || name == "." || name == "..") return EINVAL;
  if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return EINVAL;
  if (name.size() > 255) return ENAMETOOLONG;
  if (parent == kRootId && name == kMetaDirName) return EPERM;
  return 0;
}

// ---- Resolution ----

int BrickStore::ResolveDir(const FileId& id, SharedFd* out, int depth) {
  if (id.size() != 16) return EINVAL;
  if (id == kRootId) {
    *out = root_dir_;
    return 0;
  }
  {
    std::lock_guard lock(cache_mu_);
    auto it = dir_cache_.find(id);
    if (it != dir_cache_.end()) {
      *out = it->second;
      return 0;
    }
  }
  if (depth > 512) return ELOOP;
  char text[4096];
  ssize_t n = readlinkat(dirs_fd_.get(), IndexPath(id).c_str(), text, sizeof(text));
  if (n < 0) {
    if (errno != ENOENT) return errno;
    // Not a directory's id: ENOTDIR when it names something else, ESTALE when nothing.
    struct stat st;
    return fstatat(ids_fd_.get(), IndexPath(id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? ENOTDIR : ESTALE;
  }
  std::string_view entry(text, static_cast<size_t>(n));
  if (entry.size() < 34 || entry[32] != '/') return EIO;
  FileId parent;
  if (ParseHexId(entry.substr(0, 32), &parent) != 0) return EIO;
  std::string name(entry.substr(33));
  SharedFd parent_fd;
  if (int err = ResolveDir(parent, &parent_fd, depth + 1); err != 0) return err == ENOTDIR ? ESTALE : err;
  int fd = OpenBeneath(parent_fd->get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd < 0) return -fd == ENOENT || -fd == ENOTDIR || -fd == ELOOP ? ESTALE : -fd;
  auto shared = std::make_shared<UniqueFd>(fd);
  char value[16];
  if (fgetxattr(fd, kIdXattr, value, sizeof(value)) != 16 || std::memcmp(value, id.data(), 16) != 0) return ESTALE;
  std::lock_guard lock(cache_mu_);
  if (dir_cache_.size() >= options_.max_cached_dirs) dir_cache_.clear();
  dir_cache_[id] = shared;
  *out = std::move(shared);
  return 0;
}

int BrickStore::DirLocation(const FileId& id, FileId* parent, std::string* name) {
  if (id.size() != 16 || id == kRootId) return EINVAL;
  char text[4096];
  ssize_t n = readlinkat(dirs_fd_.get(), IndexPath(id).c_str(), text, sizeof(text));
  if (n < 0) {
    if (errno != ENOENT) return errno;
    struct stat st;
    return fstatat(ids_fd_.get(), IndexPath(id).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? ENOTDIR : ESTALE;
  }
  std::string_view entry(text, static_cast<size_t>(n));
  if (entry.size() < 34 || entry[32] != '/') return EIO;
  if (ParseHexId(entry.substr(0, 32), parent) != 0) return EIO;
  name->assign(entry.substr(33));
  return 0;
}

int BrickStore::Exists(const FileId& id) {
  Object object;
  return ResolveObject(id, &object);
}

int BrickStore::ResolveObject(const FileId& id, Object* out) {
  if (id.size() != 16) return EINVAL;
  int fd = OpenBeneath(ids_fd_.get(), IndexPath(id), O_PATH | O_NOFOLLOW);
  if (fd >= 0) {
    out->fd = std::make_shared<UniqueFd>(fd);
  } else if (fd != -ENOENT) {
    return -fd;
  } else if (int err = ResolveDir(id, &out->fd); err != 0) {
    return err == ENOTDIR ? ESTALE : err;
  }
  if (fstat(out->fd->get(), &out->st) != 0) return errno;
  out->id = id;
  return 0;
}

int BrickStore::ReadId(const Object& object, FileId* id) const {
  char value[16];
  // Through /proc/self/fd so it also works on O_PATH descriptors (symlinks, nodes); the magic
  // link names the object itself, symlinks are not followed further.
  ssize_t n = getxattr(ProcFdPath(object.fd->get()).c_str(), kIdXattr, value, sizeof(value));
  if (n != 16) return EIO;  // an object placed in the brick directory behind our back
  id->assign(value, 16);
  return 0;
}

int BrickStore::LookupChild(int parent_fd, const std::string& name, Object* out) {
  int fd = OpenBeneath(parent_fd, name, O_PATH | O_NOFOLLOW);
  if (fd < 0) return -fd;
  out->fd = std::make_shared<UniqueFd>(fd);
  if (fstat(fd, &out->st) != 0) return errno;
  if (int err = ReadId(*out, &out->id); err != 0) {
    log::Warn("brick.object_without_id", "root", root_, "name", name);
    return err;
  }
  return 0;
}

int BrickStore::FillAttr(const Object& object, pb::Attr* attr) const {
  const struct stat& st = object.st;
  attr->set_id(object.id);
  attr->set_mode(st.st_mode);
  attr->set_uid(st.st_uid);
  attr->set_gid(st.st_gid);
  attr->set_size(static_cast<uint64_t>(st.st_size));
  uint64_t nlink = st.st_nlink;
  // Hide the brick's own links: the index link of a non-directory, .cairn in the root.
  if (!S_ISDIR(st.st_mode) && nlink > 0) --nlink;
  if (object.id == kRootId && nlink > 0) --nlink;
  attr->set_nlink(nlink);
  attr->set_blocks(static_cast<uint64_t>(st.st_blocks));
  attr->set_rdev(st.st_rdev);
  attr->set_atime_ns(ToNs(st.st_atim));
  attr->set_mtime_ns(ToNs(st.st_mtim));
  attr->set_ctime_ns(ToNs(st.st_ctim));
  attr->set_ino(st.st_ino);
  return 0;
}

int BrickStore::RegularFd(const FileId& id, SharedFd* out) {
  {
    std::lock_guard lock(cache_mu_);
    auto it = file_cache_.find(id);
    if (it != file_cache_.end()) {
      file_lru_.splice(file_lru_.begin(), file_lru_, it->second.second);
      *out = it->second.first;
      return 0;
    }
  }
  Object object;
  if (int err = ResolveObject(id, &object); err != 0) return err;
  if (S_ISDIR(object.st.st_mode)) return EISDIR;
  if (!S_ISREG(object.st.st_mode)) return EINVAL;
  // Reopen the O_PATH descriptor for I/O: same inode, no second name resolution.
  int fd = ::open(ProcFdPath(object.fd->get()).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  auto shared = std::make_shared<UniqueFd>(fd);
  std::lock_guard lock(cache_mu_);
  auto [it, inserted] = file_cache_.try_emplace(id);
  if (inserted) {
    file_lru_.push_front(id);
    it->second = {shared, file_lru_.begin()};
    while (file_cache_.size() > options_.max_cached_files) {
      file_cache_.erase(file_lru_.back());
      file_lru_.pop_back();
    }
  }
  *out = it->second.first;
  return 0;
}

void BrickStore::ForgetDir(const FileId& id) {
  std::lock_guard lock(cache_mu_);
  dir_cache_.erase(id);
}

void BrickStore::ForgetFile(const FileId& id) {
  std::lock_guard lock(cache_mu_);
  auto it = file_cache_.find(id);
  if (it == file_cache_.end()) return;
  file_lru_.erase(it->second.second);
  file_cache_.erase(it);
}

// ---- Reads ----

pb::LookupResponse BrickStore::Lookup(const pb::LookupRequest& request) {
  pb::LookupResponse response;
  int err = CheckName(request.parent(), request.name());
  if (err == EPERM) err = ENOENT;  // .cairn does not exist for clients
  SharedFd parent;
  if (err == 0) err = ResolveDir(request.parent(), &parent);
  Object object;
  if (err == 0) err = LookupChild(parent->get(), request.name(), &object);
  if (err == 0) err = FillAttr(object, response.mutable_attr());
  response.set_err(err);
  return response;
}

pb::GetattrResponse BrickStore::Getattr(const pb::GetattrRequest& request) {
  pb::GetattrResponse response;
  Object object;
  int err = ResolveObject(request.id(), &object);
  if (err == 0) err = FillAttr(object, response.mutable_attr());
  response.set_err(err);
  return response;
}

pb::ReaddirResponse BrickStore::Readdir(const pb::ReaddirRequest& request) {
  pb::ReaddirResponse response;
  SharedFd dir;
  int err = ResolveDir(request.id(), &dir);
  if (err != 0) {
    response.set_err(err);
    return response;
  }
  // A descriptor of our own: its position is private to this call.
  UniqueFd fd(openat(dir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || lseek(fd.get(), static_cast<off_t>(request.cookie()), SEEK_SET) < 0) {
    response.set_err(errno);
    return response;
  }
  uint32_t max = request.max_entries() == 0 ? 1024 : std::min<uint32_t>(request.max_entries(), 4096);
  bool at_root = request.id() == kRootId;
  alignas(8) char buffer[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      response.set_err(errno);
      return response;
    }
    if (n == 0) {
      response.set_eof(true);
      return response;
    }
    for (long pos = 0; pos < n;) {
      auto* entry = reinterpret_cast<struct dirent64*>(buffer + pos);
      pos += entry->d_reclen;
      std::string name = entry->d_name;
      if (name == "." || name == ".." || (at_root && name == kMetaDirName)) continue;
      if (response.entries_size() >= static_cast<int>(max)) return response;  // next call restarts at the last cookie
      Object object;
      int found = LookupChild(fd.get(), name, &object);
      if (found == ENOENT || found == EIO) continue;  // vanished, or not ours (no id)
      if (found != 0) {
        // Out of descriptors or memory: a listing with entries silently missing would make a
        // heal remove them on the replica it repairs, so the whole call fails instead.
        response.clear_entries();
        response.set_err(found);
        return response;
      }
      pb::DirEntry* out = response.add_entries();
      out->set_name(name);
      out->set_cookie(static_cast<uint64_t>(entry->d_off));
      FillAttr(object, out->mutable_attr());
    }
  }
}

pb::ReadlinkResponse BrickStore::Readlink(const pb::ReadlinkRequest& request) {
  pb::ReadlinkResponse response;
  Object object;
  int err = ResolveObject(request.id(), &object);
  if (err == 0 && !S_ISLNK(object.st.st_mode)) err = EINVAL;
  if (err == 0) {
    char target[4096];
    ssize_t n = readlinkat(object.fd->get(), "", target, sizeof(target));
    if (n < 0) {
      err = errno;
    } else {
      response.set_target(std::string(target, static_cast<size_t>(n)));
    }
  }
  response.set_err(err);
  return response;
}

pb::OpenResponse BrickStore::OpenFile(const pb::OpenRequest& request) {
  pb::OpenResponse response;
  SharedFd fd;
  response.set_err(RegularFd(request.id(), &fd));
  return response;
}

pb::ReadResponse BrickStore::Read(const pb::ReadRequest& request) {
  pb::ReadResponse response;
  if (request.size() > kMaxIoSize) {
    response.set_err(EINVAL);
    return response;
  }
  SharedFd fd;
  if (int err = RegularFd(request.id(), &fd); err != 0) {
    response.set_err(err);
    return response;
  }
  std::string* data = response.mutable_data();
  data->resize(request.size());
  size_t done = 0;
  while (done < request.size()) {
    ssize_t n = pread(fd->get(), data->data() + done, request.size() - done, static_cast<off_t>(request.offset() + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      response.set_err(errno);
      data->clear();
      return response;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data->resize(done);
  return response;
}

pb::ReleaseResponse BrickStore::Release(const pb::ReleaseRequest&) {
  // Descriptors stay cached (LRU) so the next open of a hot file costs nothing.
  return pb::ReleaseResponse();
}

pb::StatfsResponse BrickStore::Statfs(const pb::StatfsRequest&) {
  pb::StatfsResponse response;
  struct statvfs st;
  if (fstatvfs(root_fd_.get(), &st) != 0) {
    response.set_err(errno);
    return response;
  }
  response.set_block_size(st.f_frsize);
  response.set_blocks(st.f_blocks);
  response.set_blocks_free(st.f_bfree);
  response.set_blocks_available(st.f_bavail);
  response.set_files(st.f_files);
  response.set_files_free(st.f_ffree);
  response.set_name_max(static_cast<uint32_t>(st.f_namemax));
  return response;
}

// Xattr calls go through /proc/self/fd/N of the object's descriptor: the magic link names the
// object itself (also a symlink or node opened O_PATH), never anything a client named.
int BrickStore::XattrTarget(const Object& object, std::string* path) const {
  *path = ProcFdPath(object.fd->get());
  return 0;
}

pb::GetxattrResponse BrickStore::Getxattr(const pb::GetxattrRequest& request) {
  pb::GetxattrResponse response;
  Object object;
  int err = IsReservedXattr(request.name()) ? ENODATA : ResolveObject(request.id(), &object);
  std::string path;
  if (err == 0) err = XattrTarget(object, &path);
  if (err == 0) {
    std::string value(65536, '\0');
    ssize_t n = getxattr(path.c_str(), request.name().c_str(), value.data(), value.size());
    if (n < 0) {
      err = errno;
    } else {
      value.resize(static_cast<size_t>(n));
      response.set_value(std::move(value));
    }
  }
  response.set_err(err);
  return response;
}

pb::ListxattrResponse BrickStore::Listxattr(const pb::ListxattrRequest& request) {
  pb::ListxattrResponse response;
  Object object;
  int err = ResolveObject(request.id(), &object);
  std::string path;
  if (err == 0) err = XattrTarget(object, &path);
  if (err == 0) {
    std::string names(65536, '\0');
    ssize_t n = listxattr(path.c_str(), names.data(), names.size());
    if (n < 0) {
      err = errno;
    } else {
      for (size_t pos = 0; pos < static_cast<size_t>(n);) {
        std::string name(names.data() + pos);
        pos += name.size() + 1;
        if (!IsReservedXattr(name)) response.add_names(name);
      }
    }
  }
  response.set_err(err);
  return response;
}

// ---- Mutations ----

int BrickStore::WriteDirIndex(const FileId& id, const FileId& parent, const std::string& name) {
  // Write the new entry beside the old one, then rename over it: the index never lacks the id.
  std::string path = IndexPath(id);
  std::string staged = path + ".new";
  std::string text = IdToHexString(parent) + "/" + name;
  (void)unlinkat(dirs_fd_.get(), staged.c_str(), 0);
  if (symlinkat(text.c_str(), dirs_fd_.get(), staged.c_str()) != 0) {
    if (errno != ENOENT) return errno;
    MakeBucket(dirs_fd_.get(), id);
    if (symlinkat(text.c_str(), dirs_fd_.get(), staged.c_str()) != 0) return errno;
  }
  if (renameat(dirs_fd_.get(), staged.c_str(), dirs_fd_.get(), path.c_str()) != 0) return errno;
  return 0;
}

void BrickStore::DropIndexIfUnlinked(const FileId& id) {
  struct stat st;
  std::string path = IndexPath(id);
  if (fstatat(ids_fd_.get(), path.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) && st.st_nlink <= 1) {
    (void)unlinkat(ids_fd_.get(), path.c_str(), 0);
    // An open descriptor keeps the data readable, as POSIX has it for unlinked open files.
  }
}

// Moves a fully made object from tmp/ to its name: index first, then the rename that makes it
// visible. On failure nothing is left behind.
int BrickStore::Publish(const std::string& tmp_name, const FileId& id, bool is_dir, const FileId& parent,
                        int parent_fd, const std::string& name) {
  std::string index = IndexPath(id);
  int err = 0;
  if (is_dir) {
    err = WriteDirIndex(id, parent, name);
  } else if (linkat(tmp_fd_.get(), tmp_name.c_str(), ids_fd_.get(), index.c_str(), 0) != 0) {
    err = errno;
    if (err == ENOENT) {
      MakeBucket(ids_fd_.get(), id);
      err = linkat(tmp_fd_.get(), tmp_name.c_str(), ids_fd_.get(), index.c_str(), 0) == 0 ? 0 : errno;
    }
  }
  if (err == 0 && renameat2(tmp_fd_.get(), tmp_name.c_str(), parent_fd, name.c_str(), RENAME_NOREPLACE) == 0) {
    return 0;
  }
  if (err == 0) {
    err = errno;
    (void)unlinkat(is_dir ? dirs_fd_.get() : ids_fd_.get(), index.c_str(), 0);
  }
  (void)unlinkat(tmp_fd_.get(), tmp_name.c_str(), is_dir ? AT_REMOVEDIR : 0);
  return err;
}

int BrickStore::CreateLocked(const pb::CreateRequest& request, const FileId& id, int parent_fd, pb::Attr* attr) {
  std::string tmp = IdToHexString(id);
  std::string tmp_path = root_ + "/" + kMetaDirName + "/tmp/" + tmp;
  bool is_dir = request.kind() == pb::CreateRequest::DIRECTORY;
  int made;
  switch (request.kind()) {
    case pb::CreateRequest::FILE: {
      int fd = openat(tmp_fd_.get(), tmp.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
      if (fd >= 0) ::close(fd);
      made = fd >= 0 ? 0 : errno;
      break;
    }
    case pb::CreateRequest::DIRECTORY:
      made = mkdirat(tmp_fd_.get(), tmp.c_str(), 0700) == 0 ? 0 : errno;
      break;
    case pb::CreateRequest::NODE:
      if (S_ISDIR(request.mode()) || S_ISLNK(request.mode())) return EINVAL;
      made = mknodat(tmp_fd_.get(), tmp.c_str(), request.mode(), request.rdev()) == 0 ? 0 : errno;
      break;
    case pb::CreateRequest::SYMLINK:
      if (request.target().empty()) return ENOENT;
      made = symlinkat(request.target().c_str(), tmp_fd_.get(), tmp.c_str()) == 0 ? 0 : errno;
      break;
    default:
      return EINVAL;
  }
  if (made != 0) return made;
  auto fail = [&](int err) {
    (void)unlinkat(tmp_fd_.get(), tmp.c_str(), is_dir ? AT_REMOVEDIR : 0);
    return err;
  };
  // Owner, mode (explicitly: the process umask must not matter) and id, before anyone can see it.
  if (fchownat(tmp_fd_.get(), tmp.c_str(), request.uid(), request.gid(), AT_SYMLINK_NOFOLLOW) != 0) return fail(errno);
  if (request.kind() != pb::CreateRequest::SYMLINK &&
      fchmodat(tmp_fd_.get(), tmp.c_str(), request.mode() & 07777, 0) != 0) {
    return fail(errno);
  }
  if (lsetxattr(tmp_path.c_str(), kIdXattr, id.data(), id.size(), XATTR_CREATE) != 0) return fail(errno);
  if (int err = Publish(tmp, id, is_dir, request.parent(), parent_fd, request.name()); err != 0) return err;
  Object object;
  if (int err = LookupChild(parent_fd, request.name(), &object); err != 0) return err;
  return FillAttr(object, attr);
}

pb::CreateResponse BrickStore::Create(const pb::CreateRequest& request, Touched* touched) {
  pb::CreateResponse response;
  FileId id = request.new_id().empty() ? NewId() : request.new_id();
  int err = id.size() == 16 && id != kRootId ? CheckName(request.parent(), request.name()) : EINVAL;
  std::lock_guard lock(namespace_mu_);
  SharedFd parent;
  if (err == 0) err = ResolveDir(request.parent(), &parent);
  if (err == 0) {
    Object existing;
    int found = LookupChild(parent->get(), request.name(), &existing);
    if (found == 0 || found == EIO) {
      // open(O_CREAT) without O_EXCL on an existing regular file opens it.
      bool reuse = found == 0 && request.kind() == pb::CreateRequest::FILE && !request.exclusive() &&
                   S_ISREG(existing.st.st_mode);
      if (reuse) {
        FillAttr(existing, response.mutable_attr());
      } else {
        err = request.kind() == pb::CreateRequest::FILE && !request.exclusive() && found == 0 &&
                      S_ISDIR(existing.st.st_mode)
                  ? EISDIR
                  : EEXIST;
      }
      response.set_err(err);
      return response;
    }
    if (found != ENOENT) err = found;
  }
  if (err == 0) err = CreateLocked(request, id, parent->get(), response.mutable_attr());
  if (err == 0 && touched != nullptr) {
    touched->push_back(request.parent());
    touched->push_back(id);
  }
  response.set_err(err);
  return response;
}

pb::LinkResponse BrickStore::Link(const pb::LinkRequest& request, Touched* touched) {
  pb::LinkResponse response;
  int err = CheckName(request.new_parent(), request.new_name());
  std::lock_guard lock(namespace_mu_);
  Object object;
  SharedFd parent;
  if (err == 0) err = ResolveObject(request.id(), &object);
  if (err == 0 && S_ISDIR(object.st.st_mode)) err = EPERM;
  if (err == 0) err = ResolveDir(request.new_parent(), &parent);
  if (err == 0 && linkat(ids_fd_.get(), IndexPath(request.id()).c_str(), parent->get(), request.new_name().c_str(), 0) != 0) {
    err = errno;
  }
  if (err == 0 && fstat(object.fd->get(), &object.st) != 0) err = errno;
  if (err == 0) FillAttr(object, response.mutable_attr());
  if (err == 0 && touched != nullptr) {
    touched->push_back(request.id());
    touched->push_back(request.new_parent());
  }
  response.set_err(err);
  return response;
}

pb::RemoveResponse BrickStore::Remove(const pb::RemoveRequest& request, Touched* touched) {
  pb::RemoveResponse response;
  int err = CheckName(request.parent(), request.name());
  if (err == EPERM) err = ENOENT;
  std::lock_guard lock(namespace_mu_);
  SharedFd parent;
  Object child;
  if (err == 0) err = ResolveDir(request.parent(), &parent);
  if (err == 0) err = LookupChild(parent->get(), request.name(), &child);
  if (err == 0) {
    bool is_dir = S_ISDIR(child.st.st_mode);
    if (request.directory() && !is_dir) err = ENOTDIR;
    if (!request.directory() && is_dir) err = EISDIR;
  }
  if (err == 0 && unlinkat(parent->get(), request.name().c_str(), request.directory() ? AT_REMOVEDIR : 0) != 0) {
    err = errno;
  }
  if (err == 0) {
    if (request.directory()) {
      (void)unlinkat(dirs_fd_.get(), IndexPath(child.id).c_str(), 0);
      ForgetDir(child.id);
    } else if (!request.keep_id()) {
      DropIndexIfUnlinked(child.id);
    }
    if (touched != nullptr) {
      touched->push_back(request.parent());
      touched->push_back(child.id);
    }
  }
  response.set_err(err);
  return response;
}

pb::RenameResponse BrickStore::Rename(const pb::RenameRequest& request, Touched* touched) {
  pb::RenameResponse response;
  int err = CheckName(request.parent(), request.name());
  if (err == 0) err = CheckName(request.new_parent(), request.new_name());
  if (request.flags() & ~uint32_t{RENAME_NOREPLACE | RENAME_EXCHANGE}) err = EINVAL;
  std::lock_guard lock(namespace_mu_);
  SharedFd from_dir, to_dir;
  Object source, target;
  if (err == 0) err = ResolveDir(request.parent(), &from_dir);
  if (err == 0) err = ResolveDir(request.new_parent(), &to_dir);
  if (err == 0) err = LookupChild(from_dir->get(), request.name(), &source);
  int target_found = err == 0 ? LookupChild(to_dir->get(), request.new_name(), &target) : ENOENT;
  if (err == 0 && target_found != 0 && target_found != ENOENT) err = target_found;
  if (err == 0 && renameat2(from_dir->get(), request.name().c_str(), to_dir->get(), request.new_name().c_str(),
                            request.flags()) != 0) {
    err = errno;
  }
  if (err == 0) {
    bool exchanged = request.flags() & RENAME_EXCHANGE;
    bool same = target_found == 0 && target.id == source.id;  // two names of one file: nothing moved
    if (S_ISDIR(source.st.st_mode)) err = WriteDirIndex(source.id, request.new_parent(), request.new_name());
    if (err == 0 && target_found == 0 && !same) {
      if (exchanged && S_ISDIR(target.st.st_mode)) {
        err = WriteDirIndex(target.id, request.parent(), request.name());
      } else if (!exchanged && S_ISDIR(target.st.st_mode)) {
        (void)unlinkat(dirs_fd_.get(), IndexPath(target.id).c_str(), 0);
        ForgetDir(target.id);
      } else if (!exchanged && !request.keep_replaced_id()) {
        DropIndexIfUnlinked(target.id);
      }
    }
    if (touched != nullptr) {
      touched->insert(touched->end(), {request.parent(), request.new_parent(), source.id});
      if (target_found == 0) touched->push_back(target.id);
    }
  }
  response.set_err(err);
  return response;
}

int BrickStore::SetattrObject(const pb::SetattrRequest& request, const Object& object) {
  const uint32_t valid = request.valid();
  const bool is_dir = S_ISDIR(object.st.st_mode), is_link = S_ISLNK(object.st.st_mode);
  // Non-directories are changed through their index name (ours, free of client names); directories
  // through their descriptor.
  const std::string index = IndexPath(object.id);
  // Owner before mode: chown clears set-id bits, and the caller asked for the mode it gave.
  if (valid & (pb::SETATTR_UID | pb::SETATTR_GID)) {
    uid_t uid = (valid & pb::SETATTR_UID) ? request.uid() : static_cast<uid_t>(-1);
    gid_t gid = (valid & pb::SETATTR_GID) ? request.gid() : static_cast<gid_t>(-1);
    if (fchownat(object.fd->get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  }
  if (valid & pb::SETATTR_MODE) {
    if (is_link) return EOPNOTSUPP;
    int rc = is_dir ? fchmod(object.fd->get(), request.mode() & 07777)
                    : fchmodat(ids_fd_.get(), index.c_str(), request.mode() & 07777, 0);
    if (rc != 0) return errno;
  }
  if (valid & pb::SETATTR_SIZE) {
    if (is_dir) return EISDIR;
    SharedFd fd;
    if (int err = RegularFd(object.id, &fd); err != 0) return err;
    if (ftruncate(fd->get(), static_cast<off_t>(request.size())) != 0) return errno;
  }
  if (valid & (pb::SETATTR_ATIME | pb::SETATTR_MTIME | pb::SETATTR_ATIME_NOW | pb::SETATTR_MTIME_NOW)) {
    struct timespec times[2];
    times[0].tv_nsec = times[1].tv_nsec = UTIME_OMIT;
    if (valid & pb::SETATTR_ATIME) times[0] = FromNs(request.atime_ns());
    if (valid & pb::SETATTR_MTIME) times[1] = FromNs(request.mtime_ns());
    if (valid & pb::SETATTR_ATIME_NOW) times[0].tv_nsec = UTIME_NOW;
    if (valid & pb::SETATTR_MTIME_NOW) times[1].tv_nsec = UTIME_NOW;
    int rc = is_dir ? futimens(object.fd->get(), times)
                    : utimensat(ids_fd_.get(), index.c_str(), times, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return errno;
  }
  return 0;
}

pb::SetattrResponse BrickStore::Setattr(const pb::SetattrRequest& request, Touched* touched) {
  pb::SetattrResponse response;
  Object object;
  int err = ResolveObject(request.id(), &object);
  if (err == 0) err = SetattrObject(request, object);
  if (err == 0 && fstat(object.fd->get(), &object.st) != 0) err = errno;
  if (err == 0) FillAttr(object, response.mutable_attr());
  if (err == 0 && touched != nullptr) touched->push_back(request.id());
  response.set_err(err);
  return response;
}

pb::WriteResponse BrickStore::Write(const pb::WriteRequest& request, Touched* touched) {
  pb::WriteResponse response;
  if (request.data().size() > kMaxIoSize) {
    response.set_err(EINVAL);
    return response;
  }
  SharedFd fd;
  int err = RegularFd(request.id(), &fd);
  size_t done = 0;
  const std::string& data = request.data();
  while (err == 0 && done < data.size()) {
    ssize_t n = pwrite(fd->get(), data.data() + done, data.size() - done, static_cast<off_t>(request.offset() + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (done > 0 || err == 0) {
    if (touched != nullptr) touched->push_back(request.id());
  }
  response.set_written(static_cast<uint32_t>(done));
  response.set_err(done > 0 ? 0 : err);
  return response;
}

pb::FsyncResponse BrickStore::Fsync(const pb::FsyncRequest& request, Touched* touched) {
  pb::FsyncResponse response;
  Object object;
  int err = ResolveObject(request.id(), &object);
  SharedFd fd;
  if (err == 0) {
    if (S_ISDIR(object.st.st_mode)) {
      fd = object.fd;
    } else {
      err = RegularFd(request.id(), &fd);
    }
  }
  if (err == 0 && (request.datasync() ? fdatasync(fd->get()) : fsync(fd->get())) != 0) err = errno;
  (void)touched;  // durability only: nothing a heal would copy changed
  response.set_err(err);
  return response;
}

pb::FallocateResponse BrickStore::Fallocate(const pb::FallocateRequest& request, Touched* touched) {
  pb::FallocateResponse response;
  SharedFd fd;
  int err = RegularFd(request.id(), &fd);
  if (err == 0 && fallocate(fd->get(), static_cast<int>(request.mode()), static_cast<off_t>(request.offset()),
                            static_cast<off_t>(request.length())) != 0) {
    err = errno;
  }
  if (err == 0 && touched != nullptr) touched->push_back(request.id());
  response.set_err(err);
  return response;
}

pb::SetxattrResponse BrickStore::Setxattr(const pb::SetxattrRequest& request, Touched* touched) {
  pb::SetxattrResponse response;
  Object object;
  int err = IsReservedXattr(request.name()) ? EPERM : ResolveObject(request.id(), &object);
  std::string path;
  if (err == 0) err = XattrTarget(object, &path);
  if (err == 0 && setxattr(path.c_str(), request.name().c_str(), request.value().data(), request.value().size(),
                           static_cast<int>(request.flags())) != 0) {
    err = errno;
  }
  if (err == 0 && touched != nullptr) touched->push_back(request.id());
  response.set_err(err);
  return response;
}

pb::ForgetResponse BrickStore::Forget(const pb::ForgetRequest& request, Touched* touched) {
  pb::ForgetResponse response;
  if (request.id().size() != 16 || request.id() == kRootId) {
    response.set_err(EINVAL);
    return response;
  }
  std::lock_guard lock(namespace_mu_);
  DropIndexIfUnlinked(request.id());
  ForgetFile(request.id());
  if (touched != nullptr) touched->push_back(request.id());
  return response;
}

pb::RemovexattrResponse BrickStore::Removexattr(const pb::RemovexattrRequest& request, Touched* touched) {
  pb::RemovexattrResponse response;
  Object object;
  int err = IsReservedXattr(request.name()) ? EPERM : ResolveObject(request.id(), &object);
  std::string path;
  if (err == 0) err = XattrTarget(object, &path);
  if (err == 0 && removexattr(path.c_str(), request.name().c_str()) != 0) err = errno;
  if (err == 0 && touched != nullptr) touched->push_back(request.id());
  response.set_err(err);
  return response;
}

}  // namespace cairn::brick
