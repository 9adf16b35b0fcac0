// BrickStore: one brick directory on the local file system, operated on by file id.
//
// Every object below the root carries a 16-byte id in the xattr trusted.cairn.id; the root's id
// is kRootId. The brick keeps an id index under ROOT/.cairn (hidden from clients):
//   .cairn/ids/HH/HEX   a hard link to every non-directory (file, symlink, node)
//   .cairn/dirs/HH/HEX  a symlink whose *text* is "PARENTHEX/NAME" for every directory (never followed)
//   .cairn/tmp/HEX      objects being created: made, given their id, indexed, then renamed into place,
//                       so no object is ever visible under a client name without its id.
// docs/brick-protocol.md explains why this index (and not open_by_handle_at).
//
// Confinement: names are single components (no '/', not "." or ".."), child objects are opened
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) relative to their
// parent's descriptor, and every other call is a *at() call relative to a directory descriptor
// with a validated name, or relative to the index (whose names the brick makes itself). No request
// can reach outside the root through "..", an absolute name or a symlink.
//
// Errors: each operation returns its protocol response with `err` set to a positive errno.
// Threading: thread-safe. Namespace changes (create, link, remove, rename) take one mutex so the
// index stays consistent with the tree; data operations run in parallel.
// The brick process must run as root (trusted.* xattrs) or with CAP_SYS_ADMIN.
#pragma once

#include <sys/stat.h>

#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/common/status.h"
#include "cairn/proto/brick.pb.h"

namespace cairn::brick {

namespace pb = ::cairn::proto::brick;

// A file id: exactly 16 bytes.
using FileId = std::string;
extern const FileId kRootId;  // 00000000-0000-0000-0000-000000000001
inline constexpr char kIdXattr[] = "trusted.cairn.id";
inline constexpr char kReservedXattrPrefix[] = "trusted.cairn.";
inline constexpr char kMetaDirName[] = ".cairn";
inline constexpr size_t kMaxIoSize = size_t{1} << 20;  // bytes per read or write request

// "0123...ef" (32 lower-case hex digits); "" for an id that is not 16 bytes.
std::string IdToHexString(const FileId& id);

// Ids an operation touched (the object, its old and new parents), for the change journal.
using Touched = std::vector<FileId>;

// A file descriptor closed on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset(int fd);  // closes the old descriptor

 private:
  int fd_;
};
using SharedFd = std::shared_ptr<UniqueFd>;

struct BrickStoreOptions {
  size_t max_cached_files = 1024;  // open regular-file descriptors kept by id (LRU)
  size_t max_cached_dirs = 4096;   // directory descriptors kept by id (dropped all at once when full)
};

class BrickStore {
 public:
  // Opens (and on first use initialises) the brick at `root`, an existing directory: creates
  // .cairn/{ids,dirs,tmp}, gives the root its id, empties .cairn/tmp (creations cut by a crash).
  // Errors: IoError / NotFound with the path and errno text; FailedPrecondition when the root
  // already carries a different id (not a brick root).
  static Result<std::unique_ptr<BrickStore>> Open(const std::string& root, BrickStoreOptions options = {});
  ~BrickStore();

  const std::string& root() const { return root_; }

  pb::LookupResponse Lookup(const pb::LookupRequest& request);
  pb::GetattrResponse Getattr(const pb::GetattrRequest& request);
  pb::ReaddirResponse Readdir(const pb::ReaddirRequest& request);
  pb::ReadlinkResponse Readlink(const pb::ReadlinkRequest& request);
  pb::OpenResponse OpenFile(const pb::OpenRequest& request);
  pb::ReadResponse Read(const pb::ReadRequest& request);
  pb::ReleaseResponse Release(const pb::ReleaseRequest& request);
  pb::StatfsResponse Statfs(const pb::StatfsRequest& request);
  pb::GetxattrResponse Getxattr(const pb::GetxattrRequest& request);
  pb::ListxattrResponse Listxattr(const pb::ListxattrRequest& request);

  // Mutations. `touched` (may be null) receives the ids the operation changed. A Create with an
  // empty new_id gets a random one.
  pb::SetattrResponse Setattr(const pb::SetattrRequest& request, Touched* touched);
  pb::CreateResponse Create(const pb::CreateRequest& request, Touched* touched);
  pb::LinkResponse Link(const pb::LinkRequest& request, Touched* touched);
  pb::RemoveResponse Remove(const pb::RemoveRequest& request, Touched* touched);
  pb::RenameResponse Rename(const pb::RenameRequest& request, Touched* touched);
  pb::WriteResponse Write(const pb::WriteRequest& request, Touched* touched);
  pb::FsyncResponse Fsync(const pb::FsyncRequest& request, Touched* touched);
  pb::FallocateResponse Fallocate(const pb::FallocateRequest& request, Touched* touched);
  pb::SetxattrResponse Setxattr(const pb::SetxattrRequest& request, Touched* touched);
  pb::RemovexattrResponse Removexattr(const pb::RemovexattrRequest& request, Touched* touched);
  pb::ForgetResponse Forget(const pb::ForgetRequest& request, Touched* touched);

  // A fresh random id (thread-safe).
  FileId NewId();

  // For the heal runner (services/heal), which repairs this brick by id:
  // Where the directory `id` currently is: its parent's id and its name, from the index.
  // Errors (errno): EINVAL for a malformed id or the root (it has no parent), ENOTDIR for the
  // id of a non-directory, ESTALE for an id this brick does not have, EIO for a corrupt index.
  int DirLocation(const FileId& id, FileId* parent, std::string* name);
  // Whether `id` names an object here (0), else the errno resolving it gave (ESTALE: not here).
  int Exists(const FileId& id);

 private:
  // What a resolved id or (parent, name) refers to. fd: O_RDONLY for directories, O_PATH for
  // everything else.
  struct Object {
    FileId id;
    SharedFd fd;
    struct stat st;
  };

  BrickStore(std::string root, BrickStoreOptions options);
  Status Init();

  int ResolveDir(const FileId& id, SharedFd* out, int depth = 0);
  int ResolveObject(const FileId& id, Object* out);
  int LookupChild(int parent_fd, const std::string& name, Object* out);
  int RegularFd(const FileId& id, SharedFd* out);
  int CheckName(const FileId& parent, const std::string& name) const;
  int FillAttr(const Object& object, pb::Attr* attr) const;
  int ReadId(const Object& object, FileId* id) const;
  int WriteDirIndex(const FileId& id, const FileId& parent, const std::string& name);
  void DropIndexIfUnlinked(const FileId& id);
  int Publish(const std::string& tmp_name, const FileId& id, bool is_dir, const FileId& parent,
              int parent_fd, const std::string& name);
  int CreateLocked(const pb::CreateRequest& request, const FileId& id, int parent_fd, pb::Attr* attr);
  int SetattrObject(const pb::SetattrRequest& request, const Object& object);
  std::string IndexPath(const FileId& id) const;      // "HH/HEX" relative to ids/ or dirs/
  std::string IndexFullPath(const FileId& id) const;  // ROOT/.cairn/ids/HH/HEX
  int XattrTarget(const Object& object, std::string* path) const;
  void MakeBucket(int index_fd, const FileId& id);
  void ForgetDir(const FileId& id);
  void ForgetFile(const FileId& id);

  const std::string root_;
  const BrickStoreOptions options_;
  UniqueFd root_fd_, ids_fd_, dirs_fd_, tmp_fd_;
  SharedFd root_dir_;  // the root as every ResolveDir(kRootId) returns it

  std::mutex namespace_mu_;  // held by every namespace change

  std::mutex cache_mu_;  // guards the two caches and random_
  std::unordered_map<FileId, SharedFd> dir_cache_;
  std::list<FileId> file_lru_;  // most recent first
  std::unordered_map<FileId, std::pair<SharedFd, std::list<FileId>::iterator>> file_cache_;
  Random random_;
};

}  // namespace cairn::brick
