#include "fuse_ops.h"

#include <dirent.h>

#include <cerrno>
#include <string>
#include <vector>

namespace cairn::volumemount {
namespace {

Context* Ctx(fuse_req_t req) { return static_cast<Context*>(fuse_req_userdata(req)); }
VolumeFs& Fs(fuse_req_t req) { return *Ctx(req)->fs; }

Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

fuse_entry_param EntryParam(fuse_req_t req, const Entry& entry) {
  fuse_entry_param param{};
  param.ino = entry.ino;
  param.attr = entry.attr;
  param.attr_timeout = Ctx(req)->timeout;
  param.entry_timeout = Ctx(req)->timeout;
  return param;
}

void ReplyStatus(fuse_req_t req, int rc) { fuse_reply_err(req, -rc); }

void ReplyEntry(fuse_req_t req, int rc, const Entry& entry) {
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_entry_param param = EntryParam(req, entry);
  if (fuse_reply_entry(req, &param) != 0) Fs(req).Forget(entry.ino, 1);  // the kernel never got it
}

// Drops the kernel's cached attributes of `ino` (not its pages): called after the reply to an
// operation of ours that changed attributes the kernel does not update by itself (ctime of xattr
// changes). Negative offset: attributes only, so no page or directory lock is involved.
void InvalidateAttr(Context* context, fuse_ino_t ino) {
  if (context->session != nullptr) fuse_lowlevel_notify_inval_inode(context->session, ino, -1, 0);
}

// An open directory: the merged listing, taken at the first readdir, served by offset.
struct DirHandle {
  bool loaded = false;
  std::vector<ListedEntry> entries;  // [0] ".", [1] ".."
};

void Init(void* userdata, fuse_conn_info* conn) {
  const Context* context = static_cast<const Context*>(userdata);
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // Every listing carries attributes (readdirplus), not only the first batch of a directory:
  // `ls -l` and find -ls then stat from the kernel's cache instead of one LOOKUP per name.
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  }
  // Locks are local to this host (the brick protocol has none): let the kernel handle them.
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
  // Replacing a symlink makes a new id, so a cached target never goes stale.
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  conn->want &= ~FUSE_CAP_DONT_MASK;        // modes arrive already masked by the caller's umask
  // Without the write-back cache every write(2) reaches every in-sync replica before it returns,
  // one at a time; with it the kernel keeps several 1 MiB WRITEs in flight.
  if (context->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;  // O_TRUNC arrives as a setattr of the size
  conn->max_write = 1u << 20;              // the brick protocol's largest write
  conn->max_readahead = 4u << 20;          // sequential reads: several 1 MiB READs in flight
  // Requests in flight for write-back and read-ahead (the worker pool has 32 threads).
  conn->max_background = 32;
  conn->congestion_threshold = 24;
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Entry entry;
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
  int rc = Fs(req).Getattr(ino, &st);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_attr(req, &st, Ctx(req)->timeout);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  (void)fi;
  struct stat out;
  int rc = Fs(req).Setattr(ino, *attr, to_set, &out);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_attr(req, &out, Ctx(req)->timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) {
  std::string target;
  int rc = Fs(req).Readlink(ino, &target);
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

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int rc = Fs(req).Open(ino, fi->flags);
  if (rc != 0) return ReplyStatus(req, rc);
  // Writes are acknowledged by every in-sync replica before they return; with the write-back
  // cache, close must wait for the cached ones (the kernel flushes them before FLUSH).
  fi->noflush = Ctx(req)->writeback ? 0 : 1;
  if (fuse_reply_open(req, fi) != 0) Fs(req).Release(ino);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Entry entry;
  int rc = Fs(req).Create(parent, name, mode, fi->flags, CallerOf(req), &entry);
  if (rc != 0) return ReplyStatus(req, rc);
  fi->noflush = Ctx(req)->writeback ? 0 : 1;
  fuse_entry_param param = EntryParam(req, entry);
  if (fuse_reply_create(req, &param, fi) != 0) {
    Fs(req).Release(entry.ino);
    Fs(req).Forget(entry.ino, 1);
  }
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  (void)fi;
  std::string data;
  int rc = Fs(req).Read(ino, static_cast<uint64_t>(offset), size, &data);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_buf(req, data.data(), data.size());
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  (void)fi;
  size_t written = 0;
  int rc = Fs(req).Write(ino, static_cast<uint64_t>(offset), buf, size, &written);
  if (rc != 0) return ReplyStatus(req, rc);
  fuse_reply_write(req, written);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);  // nothing is buffered here (the kernel wrote its cached pages first)
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)fi;
  Fs(req).Release(ino);
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)fi;
  ReplyStatus(req, Fs(req).Fsync(ino, datasync != 0));
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  (void)fi;
  if (offset < 0 || length <= 0) return ReplyStatus(req, -EINVAL);
  ReplyStatus(req, Fs(req).Fallocate(ino, mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(length)));
}

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  struct stat self;
  int rc = Fs(req).Getattr(ino, &self);
  if (rc != 0) return ReplyStatus(req, rc);
  if (!S_ISDIR(self.st_mode)) return ReplyStatus(req, -ENOTDIR);
  auto handle = std::make_unique<DirHandle>();
  fi->fh = reinterpret_cast<uint64_t>(handle.get());
  if (fuse_reply_open(req, fi) == 0) handle.release();
}

// "." and ".." come first, as from a plain directory; the listing is read at the first readdir.
int LoadListing(fuse_req_t req, fuse_ino_t ino, DirHandle* handle) {
  struct stat self;
  int rc = Fs(req).Getattr(ino, &self);
  if (rc != 0) return rc;
  std::vector<ListedEntry> listed;
  rc = Fs(req).Readdir(ino, &listed);
  if (rc != 0) return rc;
  ListedEntry dot;
  dot.attr.set_mode(S_IFDIR);
  dot.name = ".";
  handle->entries.push_back(dot);
  dot.name = "..";
  handle->entries.push_back(dot);
  handle->entries.insert(handle->entries.end(), listed.begin(), listed.end());
  handle->loaded = true;
  return 0;
}

bool IsDots(const std::string& name) { return name == "." || name == ".."; }

template <bool kPlus>
void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
  if (!handle->loaded) {
    int rc = LoadListing(req, ino, handle);
    if (rc != 0) return ReplyStatus(req, rc);
  }
  std::vector<char> buffer(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < handle->entries.size(); ++i) {
    const ListedEntry& listed = handle->entries[i];
    size_t need;
    if constexpr (kPlus) {
      fuse_entry_param param{};
      if (IsDots(listed.name)) {
        param.attr.st_mode = S_IFDIR;
        param.attr.st_ino = ino;
      } else {
        param = EntryParam(req, Fs(req).Remember(listed));
      }
      need = fuse_add_direntry_plus(req, buffer.data() + used, size - used, listed.name.c_str(), &param,
                                    static_cast<off_t>(i + 1));
      if (need > size - used) {
        if (param.ino != 0) Fs(req).Forget(param.ino, 1);  // not sent: the kernel never counts it
        break;
      }
    } else {
      struct stat st {};
      VolumeFs::AttrToStat(listed.attr, &st);
      if (IsDots(listed.name)) st.st_ino = ino;
      need = fuse_add_direntry(req, buffer.data() + used, size - used, listed.name.c_str(), &st,
                               static_cast<off_t>(i + 1));
      if (need > size - used) break;
    }
    used += need;
  }
  fuse_reply_buf(req, buffer.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  ReadDirCommon<false>(req, ino, size, offset, fi);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  ReadDirCommon<true>(req, ino, size, offset, fi);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)fi;
  ReplyStatus(req, Fs(req).Fsync(ino, datasync != 0));
}

void StatFs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs st;
  int rc = Fs(req).Statfs(&st);
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

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  std::string value;
  int rc = Fs(req).Getxattr(ino, name, &value);
  ReplyXattrValue(req, rc, value, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  std::string names;
  int rc = Fs(req).Listxattr(ino, &names);
  ReplyXattrValue(req, rc, names, size);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  int rc = Fs(req).Setxattr(ino, name, std::string(value, size), flags);
  Context* context = Ctx(req);  // req is gone once replied to
  ReplyStatus(req, rc);
  if (rc == 0) InvalidateAttr(context, ino);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  int rc = Fs(req).Removexattr(ino, name);
  Context* context = Ctx(req);
  ReplyStatus(req, rc);
  if (rc == 0) InvalidateAttr(context, ino);
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
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.fallocate = Fallocate;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
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

}  // namespace cairn::volumemount
