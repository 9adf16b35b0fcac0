#include "fuse_ops.h"

#include "cairn/common/logging.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace cairn::unionmount {
namespace {

using unionfs::Caller;
using unionfs::Entry;

Context* Ctx(fuse_req_t req) { return static_cast<Context*>(fuse_req_userdata(req)); }
unionfs::UnionFs& Fs(fuse_req_t req) { return *Ctx(req)->fs; }

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

// Names and attributes of files from read-only branches may stay cached longer (rotimeout=).
double TimeoutFor(fuse_req_t req, bool lower_only) {
  return lower_only ? Ctx(req)->lower_timeout : Ctx(req)->timeout;
}

fuse_entry_param EntryParam(fuse_req_t req, const Entry& entry) {
  fuse_entry_param param{};
  param.ino = entry.node;
  param.attr = entry.attr;
  param.attr_timeout = TimeoutFor(req, entry.lower_only);
  param.entry_timeout = param.attr_timeout;
  return param;
}

void ReplyEntry(fuse_req_t req, int rc, const Entry& entry) {
  if (rc != 0) {
    fuse_reply_err(req, -rc);
    return;
  }
  fuse_entry_param param = EntryParam(req, entry);
  if (fuse_reply_entry(req, &param) != 0) Fs(req).Forget(entry.node, 1);  // the kernel never got it
}

void ReplyStatus(fuse_req_t req, int rc) { fuse_reply_err(req, -rc); }

// An open directory: the merged listing, taken at the first readdir (not at opendir: when the
// kernel serves the listing from its readdir cache no readdir arrives at all), served by offset.
struct DirHandle {
  bool loaded = false;
  std::vector<unionfs::DirEntry> entries;
};

void Init(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // Reads are spliced from the branch file; many small ops may run in parallel in one directory.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Locks are local to this host: let the kernel handle them.
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
  // A symlink's target never changes (replacing it makes a new file), so the kernel may keep it:
  // without this every readlink is a round trip and also invalidates the link's cached atime.
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // O_TRUNC arrives with open so copy-up can skip the data.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // The kernel's umask handling must not be undone: modes arrive already masked.
  conn->want &= ~FUSE_CAP_DONT_MASK;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_write = 1u << 20;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Entry entry;
  // Absent names are not cached by the kernel (a plain ENOENT): a live branch change could make
  // them appear, and the union cannot name the negative dentries to invalidate.
  ReplyEntry(req, Fs(req).Lookup(parent, name, &entry), entry);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Fs(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)fi;
  struct stat st;
  bool lower_only = false;
  int rc = Fs(req).GetAttr(ino, &st, &lower_only);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_attr(req, &st, TimeoutFor(req, lower_only));
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  int which = 0;
  if (to_set & FUSE_SET_ATTR_MODE) which |= unionfs::kSetMode;
  if (to_set & FUSE_SET_ATTR_UID) which |= unionfs::kSetUid;
  if (to_set & FUSE_SET_ATTR_GID) which |= unionfs::kSetGid;
  if (to_set & FUSE_SET_ATTR_SIZE) which |= unionfs::kSetSize;
  if (to_set & FUSE_SET_ATTR_ATIME) which |= unionfs::kSetAtime;
  if (to_set & FUSE_SET_ATTR_MTIME) which |= unionfs::kSetMtime;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) which |= unionfs::kSetAtimeNow;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) which |= unionfs::kSetMtimeNow;
  struct stat out;
  int rc = Fs(req).SetAttr(ino, *attr, which, fi != nullptr ? static_cast<int>(fi->fh) : -1, &out);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_attr(req, &out, Ctx(req)->timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  int rc = Fs(req).ReadLink(ino, &target);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_readlink(req, target.c_str());
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Entry entry;
  ReplyEntry(req, Fs(req).Mknod(parent, name, mode, rdev, CallerOf(req), &entry), entry);
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Entry entry;
  ReplyEntry(req, Fs(req).Mkdir(parent, name, mode, CallerOf(req), &entry), entry);
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Entry entry;
  ReplyEntry(req, Fs(req).Symlink(parent, name, link, CallerOf(req), &entry), entry);
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  Entry entry;
  ReplyEntry(req, Fs(req).Link(ino, parent, name, &entry), entry);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyStatus(req, Fs(req).Unlink(parent, name)); }
void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyStatus(req, Fs(req).Rmdir(parent, name)); }

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
            unsigned int flags) {
  ReplyStatus(req, Fs(req).Rename(parent, name, new_parent, new_name, flags));
}

// Files from read-only branches never change under us: keep their page cache across opens.
bool KeepCache(fuse_req_t req, fuse_ino_t ino) { return Fs(req).LowerOnly(ino); }

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd = -1;
  int rc = Fs(req).Open(ino, fi->flags, &fd);
  if (rc != 0) return ReplyStatus(req, rc);
  fi->fh = static_cast<uint64_t>(fd);
  fi->keep_cache = KeepCache(req, ino);
  // Writes go straight to the branch file (no write-back cache here), so close has nothing left to
  // report on local branch file systems: spare the FLUSH round trip on every close.
  fi->noflush = 1;
  if (fuse_reply_open(req, fi) != 0) close(fd);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Entry entry;
  int fd = -1;
  int rc = Fs(req).Create(parent, name, mode, fi->flags, CallerOf(req), &entry, &fd);
  if (rc != 0) return ReplyStatus(req, rc);
  fi->fh = static_cast<uint64_t>(fd);
  fi->noflush = 1;  // as in Open
  fuse_entry_param param = EntryParam(req, entry);
  if (fuse_reply_create(req, &param, fi) != 0) {
    close(fd);
    Fs(req).Forget(entry.node, 1);
  }
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  (void)ino;
  fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = static_cast<int>(fi->fh);
  buf.buf[0].pos = offset;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void WriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t offset, fuse_file_info* fi) {
  (void)ino;
  fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = static_cast<int>(fi->fh);
  out.buf[0].pos = offset;
  ssize_t written = fuse_buf_copy(&out, in, fuse_buf_copy_flags(0));
  if (written < 0) return ReplyStatus(req, static_cast<int>(written));
  fuse_reply_write(req, static_cast<size_t>(written));
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  // close() of a duplicate reports deferred write errors (NFS-style) without closing our descriptor.
  int rc = close(dup(static_cast<int>(fi->fh)));
  ReplyStatus(req, rc == 0 ? 0 : -errno);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  close(static_cast<int>(fi->fh));
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)ino;
  int fd = static_cast<int>(fi->fh);
  int rc = datasync ? fdatasync(fd) : fsync(fd);
  ReplyStatus(req, rc == 0 ? 0 : -errno);
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  (void)ino;
  int rc = fallocate(static_cast<int>(fi->fh), mode, offset, length);
  ReplyStatus(req, rc == 0 ? 0 : -errno);
}

void Lseek(fuse_req_t req, fuse_ino_t ino, off_t offset, int whence, fuse_file_info* fi) {
  (void)ino;
  off_t result = lseek(static_cast<int>(fi->fh), offset, whence);
  if (result < 0) return ReplyStatus(req, -errno);
  fuse_reply_lseek(req, result);
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  struct stat self;
  int rc = Fs(req).GetAttr(ino, &self);
  if (rc != 0) return ReplyStatus(req, rc);
  if (!S_ISDIR(self.st_mode)) return ReplyStatus(req, -ENOTDIR);
  auto handle = std::make_unique<DirHandle>();
  fi->fh = reinterpret_cast<uint64_t>(handle.get());
  // A directory with a single layer may keep its listing in the kernel's readdir cache: changes
  // through the mount bump the directory's version, live branch changes invalidate every inode,
  // and a direct edit of the branch changes the mtime the kernel compares once the attribute
  // timeout has passed. A merged directory's mtime is its top layer's, which would not show edits
  // made below behind the union's back, so merged listings are read afresh at every open.
  if (Fs(req).SingleLayerDirectory(ino)) {
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  if (fuse_reply_open(req, fi) == 0) handle.release();
}

// "." and ".." come first, as from a plain directory (the kernel does not add them for FUSE).
// readdir(3) skips entries whose d_ino is 0, so both carry the directory's own inode number.
int LoadListing(fuse_req_t req, fuse_ino_t ino, DirHandle* handle) {
  struct stat self;
  int rc = Fs(req).GetAttr(ino, &self);
  if (rc != 0) return rc;
  handle->entries.push_back(unionfs::DirEntry{".", self.st_ino, DT_DIR});
  handle->entries.push_back(unionfs::DirEntry{"..", self.st_ino, DT_DIR});
  rc = Fs(req).ReadDir(ino, &handle->entries);
  if (rc != 0) {
    handle->entries.clear();
    return rc;
  }
  handle->loaded = true;
  return 0;
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
  if (!handle->loaded) {
    int rc = LoadListing(req, ino, handle);
    if (rc != 0) return ReplyStatus(req, rc);
  }
  std::vector<char> buffer(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < handle->entries.size(); ++i) {
    const unionfs::DirEntry& entry = handle->entries[i];
    struct stat st {};
    st.st_ino = entry.ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(entry.type));
    size_t need = fuse_add_direntry(req, buffer.data() + used, size - used, entry.name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buffer.data(), used);
}

// As ReadDir, with each entry looked up (one lookup count each, as a LOOKUP reply would add), so a
// walk that stats every file needs no LOOKUP round trip per name. "." and ".." carry no node.
void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
  if (!handle->loaded) {
    int rc = LoadListing(req, ino, handle);
    if (rc != 0) return ReplyStatus(req, rc);
  }
  std::vector<char> buffer(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < handle->entries.size(); ++i) {
    const unionfs::DirEntry& listed = handle->entries[i];
    fuse_entry_param param{};
    Entry entry;
    bool dots = listed.name == "." || listed.name == "..";
    if (dots || Fs(req).Lookup(ino, listed.name, &entry) != 0) {
      // A name gone since the listing was taken still shows (as from a plain directory), without a node.
      param.attr.st_ino = listed.ino;
      param.attr.st_mode = static_cast<mode_t>(DTTOIF(listed.type));
    } else {
      param = EntryParam(req, entry);
    }
    size_t need = fuse_add_direntry_plus(req, buffer.data() + used, size - used, listed.name.c_str(), &param,
                                         static_cast<off_t>(i + 1));
    if (need > size - used) {
      if (param.ino != 0) Fs(req).Forget(param.ino, 1);  // not sent: the kernel never counts it
      break;
    }
    used += need;
  }
  fuse_reply_buf(req, buffer.data(), used);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void StatFs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs st;
  int rc = Fs(req).StatFs(&st);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_statfs(req, &st);
}

void ReplyXattrValue(fuse_req_t req, int rc, const std::string& value, size_t size) {
  if (rc != 0) return ReplyStatus(req, rc);
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (value.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

bool IsControl(fuse_ino_t ino, const char* name) {
  return ino == FUSE_ROOT_ID && std::strncmp(name, kControlPrefix, std::strlen(kControlPrefix)) == 0;
}

// After a branch change: drops cached attributes and pages of every known inode. Done before the
// reply, so the caller's next read sees the new union (no directory lock is needed for this).
void InvalidateInodes(Context* context) {
  if (context->session == nullptr) return;
  for (const auto& known : context->fs->KnownNodes()) {
    fuse_lowlevel_notify_inval_inode(context->session, known.node, 0, 0);
  }
}

// Then drops cached names. Only after the reply: it needs the directory locks the request holds.
void InvalidateEntries(Context* context) {
  if (context->session == nullptr) return;
  for (const auto& known : context->fs->KnownNodes()) {
    if (known.name.empty()) continue;
    fuse_lowlevel_notify_inval_entry(context->session, known.parent, known.name.c_str(), known.name.size());
  }
  fuse_lowlevel_notify_inval_inode(context->session, FUSE_ROOT_ID, 0, 0);
}

void SetControl(fuse_req_t req, const char* name, std::string_view value) {
  std::string command = name + std::strlen(kControlPrefix);
  auto next = unionfs::ApplyBranchCommand(Fs(req).Branches(), command, value);
  // The mount-point check comes first: it refuses branches inside the mount before anything stats them.
  Status status = next.ok() ? unionfs::CheckOutsideMount(*next, Ctx(req)->real_mountpoint) : next.status();
  if (status.ok()) status = Fs(req).SetBranches(*next);
  if (!status.ok()) {
    log::Warn("union.branch_change_refused", "command", command, "value", value, "error", status.message());
    return ReplyStatus(req, -EINVAL);
  }
  log::Info("union.branches_changed", "branches", unionfs::FormatBranchList(*next));
  Context* context = Ctx(req);  // req is gone once replied to
  InvalidateInodes(context);
  fuse_reply_err(req, 0);
  InvalidateEntries(context);
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string value;
  if (IsControl(ino, name)) {
    if (std::string(name) != std::string(kControlPrefix) + "branches") return ReplyStatus(req, -ENODATA);
    return ReplyXattrValue(req, 0, unionfs::FormatBranchList(Fs(req).Branches()), size);
  }
  int rc = Fs(req).GetXattr(ino, name, &value);
  ReplyXattrValue(req, rc, value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string names;
  int rc = Fs(req).ListXattr(ino, &names);
  ReplyXattrValue(req, rc, names, size);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  if (IsControl(ino, name)) return SetControl(req, name, std::string_view(value, size));
  ReplyStatus(req, Fs(req).SetXattr(ino, name, std::string_view(value, size), flags));
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ReplyStatus(req, Fs(req).RemoveXattr(ino, name));
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mknod = Mknod;
  ops.mkdir = Mkdir;
  ops.symlink = Symlink;
  ops.link = Link;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.rename = Rename;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write_buf = WriteBuf;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.lseek = Lseek;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.statfs = StatFs;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.setxattr = SetXattr;
  ops.removexattr = RemoveXattr;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace cairn::unionmount
