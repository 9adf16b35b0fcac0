// UnionFs: the AUFS-style union logic behind the unionmount FUSE program, usable without FUSE.
//
// The union is addressed like a FUSE low-level file system: nodes with ids (kRootNode = 1) and names
// inside directory nodes. Every node keeps O_PATH descriptors of the branch files that make it up
// ("layers", top first), so all work is relative to directory fds (openat, fstatat, ...) and paths of
// any depth work. A node's identity is the (device, inode) of its top layer; looking the same file up
// twice gives the same node id. Lookup counts are exact: each successful Lookup/Create/Mknod/Mkdir/
// Symlink/Link adds one, Forget removes them; a node is freed when its count and its children reach 0.
//
// Errors: every file operation returns 0 or a negative errno, exactly what a FUSE reply carries (the
// point of the union is POSIX parity, so the errno is the result). Construction returns Status.
//
// Semantics (docs/union.md): first hit wins; whiteouts (".wh.NAME" or a 0/0 char device) and opaque
// directories (".wh..wh..opq" or trusted.overlay.opaque=y) stop the search in rw and ro branches; names
// beginning with ".wh." are reserved and never shown. Any change to a file that is not in a writable
// branch first copies it up (data via copy_file_range, holes kept, mode, owner, times, xattrs) to the top
// writable branch above it, together with its parent directories; a copy-up is written under a
// temporary reserved name and renamed into place, so a crash never exposes a half-copied file.
// Removing a lower name writes a whiteout; mkdir over a whiteout makes an opaque directory. Rename
// never fails with EXDEV: a directory with lower layers is copied up whole, then renamed.
//
// Threading: all methods are thread-safe. Metadata operations take one internal mutex; the
// descriptors returned by Open/Create are the caller's, and reads and writes on them need no lock.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/union/options.h"
#include "cairn/union/policy.h"

namespace cairn::unionfs {

using NodeId = uint64_t;
constexpr NodeId kRootNode = 1;

struct Entry {
  NodeId node = 0;
  struct stat attr {};
  bool lower_only = false;  // the file lives in a read-only branch: page cache can be kept across opens
};

struct DirEntry {
  std::string name;
  ino_t ino = 0;
  unsigned char type = 0;  // DT_*
};

// Bits for SetAttr's "which" argument.
enum SetAttrBits : int {
  kSetMode = 1,
  kSetUid = 2,
  kSetGid = 4,
  kSetSize = 8,
  kSetAtime = 16,
  kSetMtime = 32,
  kSetAtimeNow = 64,
  kSetMtimeNow = 128,
};

// Owner for new files; -1 keeps the daemon's own.
struct Caller {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

class UnionFs {
 public:
  // Opens every branch (options must have passed ValidateMountOptions). Errors: the branch that failed.
  static Result<std::unique_ptr<UnionFs>> Open(const MountOptions& options);
  ~UnionFs();
  UnionFs(const UnionFs&) = delete;
  UnionFs& operator=(const UnionFs&) = delete;

  int Lookup(NodeId parent, std::string_view name, Entry* out);
  void Forget(NodeId node, uint64_t count);
  // lower_only (optional): set when the file is served from a ro/rr branch.
  int GetAttr(NodeId node, struct stat* out, bool* lower_only = nullptr);
  // which: SetAttrBits. Copies the file up first; a size of 0 copies no data. fd >= 0: an open
  // descriptor of the file (ftruncate on it).
  int SetAttr(NodeId node, const struct stat& values, int which, int fd, struct stat* out);
  int ReadLink(NodeId node, std::string* target);

  int Mknod(NodeId parent, std::string_view name, mode_t mode, dev_t rdev, Caller caller, Entry* out);
  int Mkdir(NodeId parent, std::string_view name, mode_t mode, Caller caller, Entry* out);
  int Symlink(NodeId parent, std::string_view name, std::string_view target, Caller caller, Entry* out);
  int Link(NodeId node, NodeId new_parent, std::string_view new_name, Entry* out);
  int Unlink(NodeId parent, std::string_view name);
  int Rmdir(NodeId parent, std::string_view name);
  // flags: 0 or RENAME_NOREPLACE (RENAME_EXCHANGE gives -EINVAL).
  int Rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
             unsigned flags);

  // Opens a file; write access or O_TRUNC copies it up first. *fd is the caller's to close.
  int Open(NodeId node, int flags, int* fd);
  int Create(NodeId parent, std::string_view name, mode_t mode, int flags, Caller caller, Entry* out, int* fd);

  // Appends the merged listing without "." and "..": top branch first, duplicates and whited-out
  // names removed.
  int ReadDir(NodeId node, std::vector<DirEntry>* out);
  int StatFs(struct statvfs* out);

  int GetXattr(NodeId node, const std::string& name, std::string* value);
  int ListXattr(NodeId node, std::string* names);  // NUL-separated, as listxattr(2)
  int SetXattr(NodeId node, const std::string& name, std::string_view value, int flags);
  int RemoveXattr(NodeId node, const std::string& name);

  // Live branch change: replaces the branch list (validated like a mount's) and re-resolves every
  // known node, so the next operation sees the new union. A node whose name no longer resolves
  // answers ENOENT until forgotten. The caller invalidates kernel caches (see KnownNames).
  Status SetBranches(const std::vector<BranchSpec>& branches);
  std::vector<BranchSpec> Branches();
  // Every node the union knows, with its parent and name, for kernel cache invalidation.
  struct KnownNode {
    NodeId node = 0;
    NodeId parent = 0;
    std::string name;
  };
  std::vector<KnownNode> KnownNodes();
  // True when the node's file comes from a ro/rr branch (its page cache can be kept across opens).
  bool LowerOnly(NodeId node);
  // True for a directory that lives in one branch only (nothing merges into it).
  bool SingleLayerDirectory(NodeId node);

  // Convenience for tests and tools: resolves "a/b/c" from the root; like Lookup, each node on the
  // way gains one lookup count.
  int ResolvePath(std::string_view path, NodeId* out);
  // The branch index providing a node's top layer (for tests and `union show`).
  int TopBranch(NodeId node);
  size_t NodeCount();

 private:
  struct Impl;
  explicit UnionFs(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::unionfs
