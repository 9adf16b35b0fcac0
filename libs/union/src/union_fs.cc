#include "cairn/union/union_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <signal.h>
#include <unistd.h>

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <list>
#include <unordered_set>

#include "cairn/common/strings.h"
#include "src/fs_util.h"

namespace cairn::unionfs {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr const char* kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kOverlayOpaqueXattr = "trusted.overlay.opaque";
// Copies of lower files with several hard links, named "<dev>-<ino>" of the lower file, so every
// name of that file copies up to the same upper inode (also after a remount).
constexpr const char* kIndexDir = ".wh..wh.index";
// Set on an upper file whose metadata was copied up without its data (chmod, chown, utimes, xattr):
// the data still comes from the same name in the branches below until a write copies it.
constexpr const char* kMetacopyXattr = "trusted.cairn.metacopy";

// How much of a file a copy-up brings up.
enum class CopyMode {
  kData,      // everything
  kNoData,    // an empty file: the caller truncates to 0
  kMetaOnly,  // metadata only, data stays below (falls back to kData where xattrs cannot mark it)
};

struct Layer {
  int branch = 0;
  UniqueFd fd;           // O_PATH
  bool indexed = false;  // fd is the hard-link index entry in `branch`; the name itself is not there yet
};

struct Branch {
  std::string path;
  BranchMode mode = BranchMode::kReadOnly;
  UniqueFd fd;  // O_PATH | O_DIRECTORY of the branch root
  UniqueFd index;  // O_PATH of kIndexDir inside it, once it exists (writable branches only)
};

using Key = std::pair<dev_t, ino_t>;

struct Node {
  NodeId id = 0;
  NodeId parent = 0;
  std::string name;
  bool is_dir = false;
  std::vector<Layer> layers;  // top first; for a directory every branch that merges into it
  uint64_t lookups = 0;       // kernel references
  uint64_t children = 0;      // nodes whose parent is this one
  Key key{};
  bool keyed = false;         // key is registered in by_key
  // Descriptor budget (see Impl::TopFd): a plain file's only layer descriptor may be closed and
  // reopened later by its name in its parent. Files with several names keep theirs.
  bool pinned = false;
  bool in_lru = false;
  std::list<NodeId>::iterator lru_pos;
};

// Outcome of looking a name up through a directory's layers.
struct Resolution {
  bool found = false;
  struct stat top {};
  std::vector<Layer> layers;
  int whiteout_branch = -1;  // the branch whose whiteout stopped the search, or -1
};

bool IsReserved(std::string_view name) { return StartsWith(name, kWhiteoutPrefix); }
bool IsOverlayWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0); }
std::string AufsWhiteoutName(std::string_view name) { return std::string(kWhiteoutPrefix) + std::string(name); }
bool FitsAufsWhiteout(std::string_view name) { return name.size() + kWhiteoutPrefix.size() <= NAME_MAX; }

}  // namespace

struct UnionFs::Impl {
  std::vector<Branch> branches;
  WhiteoutFormat format = WhiteoutFormat::kAufs;
  std::unique_ptr<CreatePolicy> policy;

  std::mutex mu;
  std::unordered_map<NodeId, std::unique_ptr<Node>> nodes;  // GUARDED_BY(mu)
  std::map<Key, NodeId> by_key;                             // GUARDED_BY(mu)
  std::unordered_map<dev_t, uint64_t> device_index;         // GUARDED_BY(mu)
  NodeId next_id = kRootNode + 1;
  uint64_t temp_counter = 0;
  // Plain-file nodes holding their descriptor, least recently used first (GUARDED_BY(mu)). The
  // kernel may keep far more nodes than the process may hold descriptors (a walk of a 60k-file
  // tree), so beyond fd_budget the oldest are closed and reopened on use.
  std::list<NodeId> lru;
  size_t fd_budget = 4096;

  // ---- branches -------------------------------------------------------------------------------
  bool Writable(int branch) const { return branches[branch].mode == BranchMode::kReadWrite; }
  bool Interprets(int branch) const { return branches[branch].mode != BranchMode::kRealReadOnly; }
  int TopmostWritable(int above) const {
    for (int b = 0; b < above && b < static_cast<int>(branches.size()); ++b) {
      if (Writable(b)) return b;
    }
    return -EROFS;
  }
  // The branch a node in `branch` is changed in: itself when writable, else the topmost rw above it.
  int WriteBranchFor(int branch) const { return Writable(branch) ? branch : TopmostWritable(branch); }

  std::string TempName() {
    return ".wh..wh.tmp." + std::to_string(getpid()) + "." + std::to_string(++temp_counter);
  }

  // Inode numbers as shown to users: unique across branches on different devices.
  ino_t ReportedIno(dev_t dev, ino_t ino) {
    auto [it, inserted] = device_index.emplace(dev, device_index.size());
    (void)inserted;
    return it->second == 0 ? ino : (ino ^ (static_cast<ino_t>(it->second) << 56));
  }
  void Report(struct stat* st) { st->st_ino = ReportedIno(st->st_dev, st->st_ino); }

  // ---- nodes ----------------------------------------------------------------------------------
  Node* Get(NodeId id) {
    auto it = nodes.find(id);
    return it == nodes.end() ? nullptr : it->second.get();
  }
  // A node that still stands for a file: after a branch change a node whose file went away keeps no
  // layers, and every operation on it fails with ENOENT until the kernel forgets it.
  Node* Live(NodeId id) {
    Node* node = Get(id);
    return node != nullptr && !node->layers.empty() ? node : nullptr;
  }

  void Unkey(Node* node) {
    if (!node->keyed) return;
    auto it = by_key.find(node->key);
    if (it != by_key.end() && it->second == node->id) by_key.erase(it);
    node->keyed = false;
  }

  void Rekey(Node* node) {
    struct stat st;
    if (!node->layers[0].fd.valid()) return;  // only called right after the layers were (re)set
    if (fstatat(node->layers[0].fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return;
    Unkey(node);
    node->key = {st.st_dev, st.st_ino};
    by_key[node->key] = node->id;
    node->keyed = true;
  }

  void SetParent(Node* node, NodeId parent, std::string_view name) {
    if (node->parent != parent) {
      if (Node* old_parent = Get(node->parent)) {
        --old_parent->children;
        MaybeFree(old_parent);
      }
      if (Node* new_parent = Get(parent)) ++new_parent->children;
      node->parent = parent;
    }
    node->name = std::string(name);
  }

  void MaybeFree(Node* node) {
    while (node != nullptr && node->id != kRootNode && node->lookups == 0 && node->children == 0) {
      Unkey(node);
      LruRemove(node);
      Node* parent = Get(node->parent);
      nodes.erase(node->id);
      if (parent != nullptr) --parent->children;
      node = parent;
    }
  }

  // Registers the resolved file as a node (or refreshes the existing node of the same file).
  Node* AddNode(NodeId parent, std::string_view name, Resolution&& r, uint64_t count) {
    Key key{r.top.st_dev, r.top.st_ino};
    auto it = by_key.find(key);
    Node* node = nullptr;
    if (it != by_key.end()) {
      node = Get(it->second);
      SetParent(node, parent, name);
    } else {
      auto fresh = std::make_unique<Node>();
      node = fresh.get();
      node->id = next_id++;
      node->parent = parent;
      node->name = std::string(name);
      node->key = key;
      node->keyed = true;
      by_key[key] = node->id;
      nodes[node->id] = std::move(fresh);
      if (Node* p = Get(parent)) ++p->children;
    }
    node->is_dir = S_ISDIR(r.top.st_mode);
    node->layers = std::move(r.layers);
    node->pinned = node->pinned || r.top.st_nlink > 1;
    node->lookups += count;
    Touch(node);
    return node;
  }

  int TopStat(Node& node, struct stat* st) {
    int fd = TopFd(&node);
    if (fd < 0) return fd;
    if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return NegErrno();
    return 0;
  }

  // ---- descriptor budget ----------------------------------------------------------------------
  static bool Evictable(const Node& node) {
    return !node.is_dir && !node.pinned && node.layers.size() == 1 && !node.layers[0].indexed;
  }

  void LruRemove(Node* node) {
    if (!node->in_lru) return;
    lru.erase(node->lru_pos);
    node->in_lru = false;
  }

  // Marks the node's descriptor as just used, then closes the oldest ones over the budget.
  void Touch(Node* node) {
    LruRemove(node);
    if (!Evictable(*node) || !node->layers[0].fd.valid()) return;
    node->lru_pos = lru.insert(lru.end(), node->id);
    node->in_lru = true;
    while (lru.size() > fd_budget) {
      Node* old = Get(lru.front());
      lru.pop_front();
      if (old == nullptr) continue;
      old->in_lru = false;
      if (Evictable(*old) && old->keyed) old->layers[0].fd.Reset();
    }
  }

  // The top layer's O_PATH descriptor (owned by the node), reopened by name in the parent's layer of
  // the same branch if the budget closed it. The reopened file must be the same inode (-ESTALE if
  // it was replaced behind the union's back). Returns the fd or a negative errno.
  int TopFd(Node* node) {
    Layer& top = node->layers[0];
    if (!top.fd.valid()) {
      Node* parent = Get(node->parent);
      int parent_fd = -1;
      if (parent != nullptr) {
        for (const Layer& layer : parent->layers) {
          if (layer.branch == top.branch) parent_fd = layer.fd.get();
        }
      }
      if (parent_fd < 0 || node->name.empty()) return -ESTALE;
      UniqueFd fd(openat(parent_fd, node->name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return errno == ENOENT ? -ESTALE : NegErrno();
      struct stat st;
      if (fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return NegErrno();
      if (Key{st.st_dev, st.st_ino} != node->key) return -ESTALE;
      top.fd = std::move(fd);
    }
    Touch(node);
    return top.fd.get();
  }

  // ---- lookup ---------------------------------------------------------------------------------
  bool IsOpaque(int dirfd) {
    struct stat st;
    if (fstatat(dirfd, kOpaqueMarker, &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
    char value = 0;
    ssize_t n = getxattr(ProcPath(dirfd).c_str(), kOverlayOpaqueXattr, &value, 1);
    return n == 1 && value == 'y';
  }

  bool HasAufsWhiteout(int dirfd, std::string_view name) {
    if (!FitsAufsWhiteout(name)) return false;
    struct stat st;
    return fstatat(dirfd, AufsWhiteoutName(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  }

  int Resolve(const std::vector<Layer>& dir_layers, std::string_view name, Resolution* r) {
    if (name.size() > NAME_MAX) return -ENAMETOOLONG;
    std::string cname(name);
    bool metacopy_pending = false;
    for (const Layer& layer : dir_layers) {
      struct stat st;
      if (fstatat(layer.fd.get(), cname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT && errno != ENOTDIR) return NegErrno();
        if (Interprets(layer.branch) && HasAufsWhiteout(layer.fd.get(), name)) {
          r->whiteout_branch = layer.branch;
          break;
        }
        continue;
      }
      if (Interprets(layer.branch) && IsOverlayWhiteout(st)) {
        r->whiteout_branch = layer.branch;
        break;
      }
      if (metacopy_pending) {  // the data source of a metadata-only copy-up
        if (S_ISREG(st.st_mode)) {
          int fd = openat(layer.fd.get(), cname.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0) return NegErrno();
          r->layers.push_back(Layer{layer.branch, UniqueFd(fd)});
        }
        break;
      }
      if (r->found && !S_ISDIR(st.st_mode)) break;  // a file below a directory is hidden by it
      int fd = openat(layer.fd.get(), cname.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return NegErrno();
      if (!r->found) r->top = st;
      r->found = true;
      r->layers.push_back(Layer{layer.branch, UniqueFd(fd)});
      if (r->layers.size() == 1 && S_ISREG(st.st_mode) && st.st_nlink > 1) UseIndexedCopy(r);
      if (r->layers.size() == 1 && LooksMetacopy(layer.branch, st, fd)) {
        metacopy_pending = true;
        continue;
      }
      if (!S_ISDIR(st.st_mode)) break;
      if (Interprets(layer.branch) && IsOpaque(fd)) break;
    }
    return 0;
  }

  // Metadata-only copies are sparse (no data blocks yet): only those pay for the xattr check.
  bool LooksMetacopy(int branch, const struct stat& st, int fd) {
    if (!S_ISREG(st.st_mode) || !Writable(branch) || st.st_blocks * 512 >= st.st_size) return false;
    return getxattr(ProcPath(fd).c_str(), kMetacopyXattr, nullptr, 0) >= 0;
  }
  static bool IsMetacopy(const Node& node) { return !node.is_dir && node.layers.size() > 1; }

  // Brings the data of a metadata-only copy up in place (mode kData) or drops the data source
  // (kNoData: the caller truncates). The xattr goes last, so a crash leaves a readable file.
  int FillMetacopy(Node* node, CopyMode mode) {
    std::string upper = ProcPath(node->layers[0].fd.get());
    if (mode == CopyMode::kData) {
      struct stat st;
      int rc = TopStat(*node, &st);
      if (rc != 0) return rc;
      UniqueFd out(open(upper.c_str(), O_WRONLY | O_CLOEXEC));
      UniqueFd in(open(ProcPath(node->layers[1].fd.get()).c_str(), O_RDONLY | O_CLOEXEC));
      if (!out.valid() || !in.valid()) return NegErrno();
      rc = CopyData(in.get(), out.get(), st.st_size);
      if (rc != 0) return rc;
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      futimens(out.get(), times);
    }
    if (removexattr(upper.c_str(), kMetacopyXattr) != 0 && errno != ENODATA) return NegErrno();
    node->layers.resize(1);
    return 0;
  }

  // ---- hard-link index ------------------------------------------------------------------------
  static std::string IndexName(const struct stat& st) {
    return std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino);
  }

  // A lower file with several links whose copy-up already happened (through another name) must
  // show the upper copy: swap the layer for the index entry.
  void UseIndexedCopy(Resolution* r) {
    int target = WriteBranchFor(r->layers[0].branch);
    if (target < 0 || target == r->layers[0].branch || !branches[target].index.valid()) return;
    std::string entry = IndexName(r->top);
    int fd = openat(branches[target].index.get(), entry.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    fstatat(fd, "", &r->top, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    r->layers[0] = Layer{target, UniqueFd(fd), true};
  }

  int IndexDir(int branch) {
    Branch& b = branches[branch];
    if (b.index.valid()) return b.index.get();
    if (mkdirat(b.fd.get(), kIndexDir, 0700) != 0 && errno != EEXIST) return NegErrno();
    b.index = UniqueFd(openat(b.fd.get(), kIndexDir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    return b.index.valid() ? b.index.get() : NegErrno();
  }

  // Links an indexed copy into its directory under its own name (the cheap "copy-up" of another
  // name of an already copied-up hard-link group).
  int Materialize(NodeId parent_id, std::string_view name, Layer* layer) {
    if (!layer->indexed) return 0;
    Node* parent = Get(parent_id);
    if (parent == nullptr) return -ENOENT;
    int parent_fd = -1;
    int rc = EnsureDir(parent, layer->branch, &parent_fd);
    if (rc != 0) return rc;
    if (linkat(AT_FDCWD, ProcPath(layer->fd.get()).c_str(), parent_fd, std::string(name).c_str(),
               AT_SYMLINK_FOLLOW) != 0) {
      return NegErrno();
    }
    layer->indexed = false;
    return 0;
  }

  int ResolveIn(Node* dir, std::string_view name, Resolution* r) {
    if (!dir->is_dir) return -ENOTDIR;
    if (IsReserved(name)) return 0;  // reserved names never resolve
    return Resolve(dir->layers, name, r);
  }

  // True when some branch below `below` still shows `name` inside dir (no whiteout in between).
  bool LowerVisible(Node* dir, std::string_view name, int below) {
    std::string cname(name);
    for (const Layer& layer : dir->layers) {
      if (layer.branch <= below) continue;
      struct stat st;
      if (fstatat(layer.fd.get(), cname.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return !(Interprets(layer.branch) && IsOverlayWhiteout(st));
      }
      if (Interprets(layer.branch) && HasAufsWhiteout(layer.fd.get(), name)) return false;
    }
    return false;
  }

  int FillEntry(Node* node, Entry* out) {
    int rc = TopStat(*node, &out->attr);
    if (rc != 0) return rc;
    Report(&out->attr);
    out->node = node->id;
    out->lower_only = !Writable(node->layers[0].branch);
    return 0;
  }

  // Looks name up again after a change and returns it as an entry with one lookup count.
  int FinishEntry(Node* parent, std::string_view name, Entry* out) {
    Resolution r;
    int rc = ResolveIn(parent, name, &r);
    if (rc != 0) return rc;
    if (!r.found) return -EIO;
    Node* node = AddNode(parent->id, name, std::move(r), out != nullptr ? 1 : 0);
    if (out == nullptr) return 0;
    return FillEntry(node, out);
  }

  // ---- readdir merge --------------------------------------------------------------------------
  int Merge(const std::vector<Layer>& layers, std::vector<DirEntry>* out, bool stop_at_first) {
    std::unordered_set<std::string> seen;
    std::unordered_set<std::string> hidden;
    for (const Layer& layer : layers) {
      int fd = openat(layer.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return NegErrno();
      DIR* dir = fdopendir(fd);
      if (dir == nullptr) {
        close(fd);
        return NegErrno();
      }
      bool interprets = Interprets(layer.branch);
      struct stat layer_stat;
      dev_t layer_dev = fstat(fd, &layer_stat) == 0 ? layer_stat.st_dev : 0;
      std::vector<std::string> whiteouts;
      while (struct dirent* entry = readdir(dir)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (IsReserved(name)) {
          if (interprets && !StartsWith(name, ".wh..wh.")) whiteouts.emplace_back(name.substr(kWhiteoutPrefix.size()));
          if (Writable(layer.branch) && IsAbandonedTemp(name)) unlinkat(fd, entry->d_name, 0);
          continue;
        }
        if (interprets && (entry->d_type == DT_CHR || entry->d_type == DT_UNKNOWN)) {
          struct stat st;
          if (fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && IsOverlayWhiteout(st)) {
            whiteouts.emplace_back(name);
            continue;
          }
        }
        std::string key(name);
        if (hidden.count(key) != 0 || !seen.insert(key).second) continue;
        out->push_back(DirEntry{key, ReportedIno(layer_dev, entry->d_ino), entry->d_type});
        if (stop_at_first) break;
      }
      closedir(dir);
      if (stop_at_first && !out->empty()) return 0;
      for (std::string& name : whiteouts) hidden.insert(std::move(name));
    }
    return 0;
  }

  // A copy-up temporary left by a union process that no longer exists (killed mid-copy). The
  // names carry the creator's pid; ours and live processes' are in progress and stay.
  static bool IsAbandonedTemp(std::string_view name) {
    constexpr std::string_view kTempPrefix = ".wh..wh.tmp.";
    if (!StartsWith(name, kTempPrefix)) return false;
    std::string rest(name.substr(kTempPrefix.size()));
    long pid = std::strtol(rest.c_str(), nullptr, 10);
    if (pid <= 0 || pid == getpid()) return false;
    return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  }

  // ---- whiteouts ------------------------------------------------------------------------------
  int WriteWhiteout(int dirfd, std::string_view name) {
    std::string cname(name);
    if (format == WhiteoutFormat::kAufs && FitsAufsWhiteout(name)) {
      int fd = openat(dirfd, AufsWhiteoutName(name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0) return NegErrno();
      close(fd);
      return 0;
    }
    // Overlay format, also used for names too long for ".wh." + NAME.
    if (mknodat(dirfd, cname.c_str(), S_IFCHR | 0000, makedev(0, 0)) != 0 && errno != EEXIST) return NegErrno();
    return 0;
  }

  void RemoveWhiteout(int dirfd, std::string_view name) {
    if (FitsAufsWhiteout(name)) unlinkat(dirfd, AufsWhiteoutName(name).c_str(), 0);
    struct stat st;
    std::string cname(name);
    if (fstatat(dirfd, cname.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && IsOverlayWhiteout(st)) {
      unlinkat(dirfd, cname.c_str(), 0);
    }
  }

  int MakeOpaque(int dirfd) {
    if (format == WhiteoutFormat::kAufs) {
      int fd = openat(dirfd, kOpaqueMarker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
      if (fd < 0) return NegErrno();
      close(fd);
      return 0;
    }
    if (setxattr(ProcPath(dirfd).c_str(), kOverlayOpaqueXattr, "y", 1, 0) != 0) return NegErrno();
    return 0;
  }

  // ---- copy-up --------------------------------------------------------------------------------
  // Makes sure directory `dir` exists in branch `target` (copying it and its parents up) and returns
  // that branch's descriptor of it (owned by the node).
  int EnsureDir(Node* dir, int target, int* fd_out) {
    for (const Layer& layer : dir->layers) {
      if (layer.branch == target) {
        *fd_out = layer.fd.get();
        return 0;
      }
    }
    if (dir->id == kRootNode) return -EIO;  // the root always has every branch
    Node* parent = Live(dir->parent);
    if (parent == nullptr) return -ENOENT;
    int parent_fd = -1;
    int rc = EnsureDir(parent, target, &parent_fd);
    if (rc != 0) return rc;
    struct stat st;
    rc = TopStat(*dir, &st);
    if (rc != 0) return rc;
    std::string temp = TempName();
    if (mkdirat(parent_fd, temp.c_str(), 0700) != 0) return NegErrno();
    UniqueFd fd(openat(parent_fd, temp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) rc = NegErrno();
    if (rc == 0) rc = CopyMetadata(dir->layers[0].fd.get(), fd.get(), st, false);
    if (rc == 0 && renameat(parent_fd, temp.c_str(), parent_fd, dir->name.c_str()) != 0) rc = NegErrno();
    if (rc != 0) {
      unlinkat(parent_fd, temp.c_str(), AT_REMOVEDIR);
      return rc;
    }
    *fd_out = fd.get();
    auto pos = std::find_if(dir->layers.begin(), dir->layers.end(),
                            [&](const Layer& layer) { return layer.branch > target; });
    bool new_top = pos == dir->layers.begin();
    dir->layers.insert(pos, Layer{target, std::move(fd)});
    if (new_top) Rekey(dir);
    return 0;
  }

  // Creates a copy of the node's top file in `target` under a temporary name, then renames it into
  // place (see CopyMode for how much is copied).
  int CopyUpTo(Node* node, int target, CopyMode mode) {
    if (node->layers[0].branch == target) {
      int rc = Materialize(node->parent, node->name, &node->layers[0]);
      if (rc == 0 && IsMetacopy(*node) && mode != CopyMode::kMetaOnly) rc = FillMetacopy(node, mode);
      return rc;
    }
    if (node->is_dir) {
      int ignored;
      return EnsureDir(node, target, &ignored);
    }
    Node* parent = Live(node->parent);
    if (parent == nullptr || node->name.empty()) return -ENOENT;
    int parent_fd = -1;
    int rc = EnsureDir(parent, target, &parent_fd);
    if (rc != 0) return rc;
    struct stat st;
    rc = TopStat(*node, &st);
    if (rc != 0) return rc;
    if (IsMetacopy(*node)) {  // moving to another rw branch: the data must come along
      rc = FillMetacopy(node, CopyMode::kData);
      if (rc != 0) return rc;
    }
    int source = TopFd(node);
    if (source < 0) return source;
    std::string temp = TempName();
    // Overlay-format layers must stay readable by overlayfs, which would not understand our mark.
    bool meta_only = mode == CopyMode::kMetaOnly && format == WhiteoutFormat::kAufs && S_ISREG(st.st_mode) &&
                     st.st_nlink == 1 && st.st_size > 0;
    rc = MakeCopy(source, st, parent_fd, temp, mode == CopyMode::kData || (mode == CopyMode::kMetaOnly && !meta_only));
    UniqueFd fd;
    if (rc == 0) {
      fd = UniqueFd(openat(parent_fd, temp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) rc = NegErrno();
    }
    if (rc == 0 && meta_only) rc = MarkMetacopy(source, fd.get(), st.st_size, &meta_only);
    if (rc == 0) rc = CopyMetadata(source, fd.get(), st, S_ISLNK(st.st_mode));
    if (rc == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
      // Other names of this file must find this copy: record it in the index before it is visible.
      int index = IndexDir(target);
      rc = index < 0 ? index : 0;
      if (rc == 0 && linkat(parent_fd, temp.c_str(), index, IndexName(st).c_str(), 0) != 0) rc = NegErrno();
    }
    if (rc == 0 && renameat(parent_fd, temp.c_str(), parent_fd, node->name.c_str()) != 0) rc = NegErrno();
    if (rc != 0) {
      unlinkat(parent_fd, temp.c_str(), 0);
      return rc;
    }
    Layer data_source = std::move(node->layers[0]);
    node->layers.clear();
    node->layers.push_back(Layer{target, std::move(fd)});
    if (meta_only) node->layers.push_back(std::move(data_source));
    Rekey(node);
    return 0;
  }

  // Gives the (empty) copy its size as a hole and marks it; where the mark cannot be set (no
  // trusted xattrs) the data is copied after all and *meta_only turns false.
  int MarkMetacopy(int source, int copy, off_t size, bool* meta_only) {
    std::string path = ProcPath(copy);
    if (truncate(path.c_str(), size) != 0) return NegErrno();
    if (setxattr(path.c_str(), kMetacopyXattr, "y", 1, 0) == 0) return 0;
    *meta_only = false;
    UniqueFd out(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    UniqueFd in(open(ProcPath(source).c_str(), O_RDONLY | O_CLOEXEC));
    if (!out.valid() || !in.valid()) return NegErrno();
    return CopyData(in.get(), out.get(), size);
  }

  int MakeCopy(int source, const struct stat& st, int parent_fd, const std::string& temp, bool with_data) {
    if (S_ISREG(st.st_mode)) {
      UniqueFd out(openat(parent_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!out.valid()) return NegErrno();
      if (!with_data) return 0;
      UniqueFd in(open(ProcPath(source).c_str(), O_RDONLY | O_CLOEXEC));
      if (!in.valid()) return NegErrno();
      return CopyData(in.get(), out.get(), st.st_size);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(PATH_MAX, '\0');
      ssize_t n = readlinkat(source, "", target.data(), target.size());
      if (n < 0) return NegErrno();
      target.resize(static_cast<size_t>(n));
      if (symlinkat(target.c_str(), parent_fd, temp.c_str()) != 0) return NegErrno();
      return 0;
    }
    if (mknodat(parent_fd, temp.c_str(), st.st_mode, st.st_rdev) != 0) return NegErrno();
    return 0;
  }

  // Copies the node up to the branch it should be written in.
  int CopyUpForWrite(Node* node, CopyMode mode) {
    int target = WriteBranchFor(node->layers[0].branch);
    if (target < 0) return target;
    return CopyUpTo(node, target, mode);
  }

  // Copies a whole directory tree (merged view) into target, for rename of a lower directory.
  // REQUIRES: dir holds a reference (a lookup count) so freeing its children cannot free it.
  int CopyUpTree(Node* dir, int target) {
    int dir_fd = -1;
    int rc = EnsureDir(dir, target, &dir_fd);
    if (rc != 0) return rc;
    std::vector<DirEntry> entries;
    rc = Merge(dir->layers, &entries, false);
    if (rc != 0) return rc;
    for (const DirEntry& entry : entries) {
      Resolution r;
      rc = ResolveIn(dir, entry.name, &r);
      if (rc != 0) return rc;
      if (!r.found) continue;
      Node* child = AddNode(dir->id, entry.name, std::move(r), 1);
      rc = child->is_dir ? CopyUpTree(child, target) : CopyUpTo(child, target, CopyMode::kData);
      --child->lookups;
      MaybeFree(child);
      if (rc != 0) return rc;
    }
    // Everything is in target now; the lower layers must no longer merge in.
    while (dir->layers.size() > 1) dir->layers.pop_back();
    return 0;
  }

  // ---- create ---------------------------------------------------------------------------------
  struct CreateTarget {
    int branch = -1;
    int parent_fd = -1;
    int whiteout_branch = -1;
  };

  int PrepareCreate(Node* parent, std::string_view name, CreateTarget* target) {
    if (!parent->is_dir) return -ENOTDIR;
    if (IsReserved(name)) return -EPERM;
    Resolution r;
    int rc = Resolve(parent->layers, name, &r);
    if (rc != 0) return rc;
    if (r.found) return -EEXIST;
    int limit = r.whiteout_branch >= 0 ? r.whiteout_branch : static_cast<int>(branches.size()) - 1;
    std::vector<CreateCandidate> candidates;
    for (int b = 0; b <= limit; ++b) {
      if (!Writable(b)) continue;
      CreateCandidate candidate{b, false, 0};
      for (const Layer& layer : parent->layers) candidate.parent_exists |= layer.branch == b;
      if (policy->needs_free_space()) {
        struct statvfs vfs;
        if (fstatvfs(branches[b].fd.get(), &vfs) == 0) candidate.free_bytes = vfs.f_bavail * vfs.f_frsize;
      }
      candidates.push_back(candidate);
    }
    if (candidates.empty()) return -EROFS;
    target->branch = candidates[policy->Choose(candidates)].branch;
    target->whiteout_branch = r.whiteout_branch;
    rc = EnsureDir(parent, target->branch, &target->parent_fd);
    if (rc != 0) return rc;
    if (target->whiteout_branch == target->branch) RemoveWhiteout(target->parent_fd, name);
    return 0;
  }

  void Chown(int dirfd, std::string_view name, Caller caller) {
    if (caller.uid == static_cast<uid_t>(-1) && caller.gid == static_cast<gid_t>(-1)) return;
    fchownat(dirfd, std::string(name).c_str(), caller.uid, caller.gid, AT_SYMLINK_NOFOLLOW);
  }

  // ---- removal --------------------------------------------------------------------------------
  // Removes a resolved name from the union: deletes it from writable branches and writes a
  // whiteout where something read-only (or lower) would otherwise show through.
  int RemoveName(Node* parent, std::string_view name, Resolution* r) {
    int blocking = -1;  // topmost branch we cannot delete from, or that shows through from below
    for (const Layer& layer : r->layers) {
      if (!Writable(layer.branch)) {
        blocking = layer.branch;
        break;
      }
    }
    if (blocking < 0 && LowerVisible(parent, name, r->layers.back().branch)) {
      blocking = static_cast<int>(branches.size());
    }
    int whiteout_fd = -1;
    if (blocking >= 0) {
      int target = TopmostWritable(std::min(blocking, r->layers[0].branch + 1));
      if (target < 0) return target;
      int rc = EnsureDir(parent, target, &whiteout_fd);
      if (rc != 0) return rc;
      if (format == WhiteoutFormat::kAufs && FitsAufsWhiteout(name)) {
        rc = WriteWhiteout(whiteout_fd, name);
        if (rc != 0) return rc;
        whiteout_fd = -1;  // written already
      }
    }
    std::string cname(name);
    for (const Layer& layer : r->layers) {
      if (!Writable(layer.branch)) break;
      int parent_fd = -1;
      for (const Layer& p : parent->layers) {
        if (p.branch == layer.branch) parent_fd = p.fd.get();
      }
      if (parent_fd < 0) continue;
      if (S_ISDIR(r->top.st_mode)) {
        UniqueFd dirfd(openat(parent_fd, cname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (dirfd.valid()) RemoveContents(dirfd.get());
      }
      if (unlinkat(parent_fd, cname.c_str(), S_ISDIR(r->top.st_mode) ? AT_REMOVEDIR : 0) != 0) return NegErrno();
    }
    if (whiteout_fd >= 0) return WriteWhiteout(whiteout_fd, name);
    return 0;
  }

  // Before a name goes away: its node (if the kernel holds one) keeps its descriptor for good, as
  // the name can no longer reopen it and open files of it still answer getattr.
  void PinRemoved(const Resolution& r) {
    auto it = by_key.find(Key{r.top.st_dev, r.top.st_ino});
    Node* node = it == by_key.end() ? nullptr : Get(it->second);
    if (node == nullptr || node->layers.empty()) return;
    if (TopFd(node) >= 0) node->pinned = true;
    LruRemove(node);
  }

  void Detach(const Resolution& r) {
    auto it = by_key.find(Key{r.top.st_dev, r.top.st_ino});
    if (it == by_key.end()) return;
    Node* node = Get(it->second);
    if (node == nullptr) return;
    if (r.top.st_nlink > 1 && !S_ISDIR(r.top.st_mode)) return;  // other names still lead to it
    Unkey(node);
  }

  // 0 when the merged view of a directory's layers has no visible entry, -ENOTEMPTY when it has,
  // or the error from reading the layers. rmdir and rename-over-a-directory share this rule.
  int CheckMergedEmpty(const std::vector<Layer>& layers) {
    std::vector<DirEntry> entries;
    int rc = Merge(layers, &entries, true);
    if (rc != 0) return rc;
    return entries.empty() ? 0 : -ENOTEMPTY;
  }

  int Remove(NodeId parent_id, std::string_view name, bool want_dir) {
    Node* parent = Get(parent_id);
    if (parent == nullptr) return -ENOENT;
    Resolution r;
    int rc = ResolveIn(parent, name, &r);
    if (rc != 0) return rc;
    if (!r.found) return -ENOENT;
    bool is_dir = S_ISDIR(r.top.st_mode);
    if (want_dir && !is_dir) return -ENOTDIR;
    if (!want_dir && is_dir) return -EISDIR;
    if (is_dir && (rc = CheckMergedEmpty(r.layers)) != 0) return rc;
    rc = Materialize(parent_id, name, &r.layers[0]);
    if (rc == 0) PinRemoved(r);
    if (rc == 0) rc = RemoveName(parent, name, &r);
    if (rc == 0) Detach(r);
    return rc;
  }

  // ---- live branch changes -------------------------------------------------------------------
  int Depth(Node* node) {
    int depth = 0;
    for (Node* n = node; n != nullptr && n->id != kRootNode; n = Get(n->parent)) ++depth;
    return depth;
  }

  // Swaps in a new branch list and re-resolves every node top-down, so each one shows what its
  // name means now. REQUIRES: mu held.
  void ReplaceBranches(std::vector<Branch> fresh) {
    branches = std::move(fresh);
    Node* root = Get(kRootNode);
    root->layers.clear();
    for (size_t i = 0; i < branches.size(); ++i) {
      root->layers.push_back(Layer{static_cast<int>(i), UniqueFd(dup(branches[i].fd.get()))});
    }
    std::vector<std::pair<int, Node*>> order;
    for (auto& [id, node] : nodes) {
      if (id != kRootNode) order.emplace_back(Depth(node.get()), node.get());
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [depth, node] : order) {
      Node* parent = Live(node->parent);
      Resolution r;
      if (parent == nullptr || node->name.empty() || ResolveIn(parent, node->name, &r) != 0 || !r.found) {
        Unkey(node);
        LruRemove(node);
        node->layers.clear();
        continue;
      }
      node->is_dir = S_ISDIR(r.top.st_mode);
      node->layers = std::move(r.layers);
      Rekey(node);
      Touch(node);
    }
  }

  // ---- rename ---------------------------------------------------------------------------------
  int Rename(NodeId src_parent_id, std::string_view name, NodeId dst_parent_id, std::string_view new_name,
             unsigned flags) {
    if ((flags & ~static_cast<unsigned>(RENAME_NOREPLACE)) != 0) return -EINVAL;
    Node* src_parent = Get(src_parent_id);
    Node* dst_parent = Get(dst_parent_id);
    if (src_parent == nullptr || dst_parent == nullptr) return -ENOENT;
    if (IsReserved(new_name)) return -EPERM;
    Resolution rs, rd;
    int rc = ResolveIn(src_parent, name, &rs);
    if (rc == 0) rc = ResolveIn(dst_parent, new_name, &rd);
    if (rc != 0) return rc;
    if (!rs.found) return -ENOENT;
    bool src_dir = S_ISDIR(rs.top.st_mode);
    if (rd.found) {
      if (flags & RENAME_NOREPLACE) return -EEXIST;
      if (rd.top.st_dev == rs.top.st_dev && rd.top.st_ino == rs.top.st_ino) return 0;
      bool dst_dir = S_ISDIR(rd.top.st_mode);
      if (src_dir && !dst_dir) return -ENOTDIR;
      if (!src_dir && dst_dir) return -EISDIR;
      if (dst_dir && (rc = CheckMergedEmpty(rd.layers)) != 0) return rc;
    }
    int target = TopmostWritable(static_cast<int>(branches.size()));
    if (target < 0) return target;
    if (rd.found) PinRemoved(rd);
    if (rs.layers[0].branch < target || (rd.found && rd.layers[0].branch < target)) return -EROFS;

    bool src_lower = rs.layers.size() > 1 || rs.layers[0].branch != target ||
                     LowerVisible(src_parent, name, target);
    bool dst_lower = (rd.found && (rd.layers.size() > 1 || rd.layers[0].branch != target)) ||
                     LowerVisible(dst_parent, new_name, target);
    bool src_below = LowerVisible(src_parent, name, target) ||
                     std::any_of(rs.layers.begin(), rs.layers.end(),
                                 [&](const Layer& l) { return l.branch != target; });
    Node* node = AddNode(src_parent->id, name, std::move(rs), 0);
    Key src_key = node->key;
    ++node->lookups;  // keep it while copying
    rc = src_dir ? (src_lower ? CopyUpTree(node, target) : 0) : CopyUpTo(node, target, CopyMode::kData);
    int src_fd = -1, dst_fd = -1;
    if (rc == 0) rc = EnsureDir(src_parent, target, &src_fd);
    if (rc == 0) rc = EnsureDir(dst_parent, target, &dst_fd);
    if (rc == 0 && src_dir && (src_lower || dst_lower)) rc = MakeOpaque(node->layers[0].fd.get());
    if (rc == 0) rc = MoveInBranch(src_fd, name, dst_fd, new_name, src_dir, rd, target, src_below, flags);
    if (rc == 0) {
      if (rd.found) Detach(rd);
      SetParent(node, dst_parent->id, new_name);
    }
    --node->lookups;
    (void)src_key;
    MaybeFree(node);
    return rc;
  }

  // The rename itself, inside one branch, plus the whiteout at the old name and cleanup at the new.
  int MoveInBranch(int src_fd, std::string_view name, int dst_fd, std::string_view new_name, bool src_dir,
                   const Resolution& rd, int target, bool src_below, unsigned flags) {
    std::string from(name), to(new_name);
    if (rd.found && rd.layers[0].branch == target && S_ISDIR(rd.top.st_mode)) {
      UniqueFd old_dir(openat(dst_fd, to.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (old_dir.valid()) RemoveContents(old_dir.get());  // only whiteouts: it is empty in the union
    }
    if (src_dir || format == WhiteoutFormat::kOverlay) RemoveWhiteout(dst_fd, new_name);
    bool aufs_whiteout = src_below && format == WhiteoutFormat::kAufs && FitsAufsWhiteout(name);
    if (aufs_whiteout) {
      int rc = WriteWhiteout(src_fd, name);
      if (rc != 0) return rc;
    }
    if (renameat2(src_fd, from.c_str(), dst_fd, to.c_str(), flags & RENAME_NOREPLACE) != 0) {
      int rc = NegErrno();
      if (aufs_whiteout) unlinkat(src_fd, AufsWhiteoutName(name).c_str(), 0);
      return rc;
    }
    RemoveWhiteout(dst_fd, new_name);
    if (src_below && !aufs_whiteout) return WriteWhiteout(src_fd, name);
    return 0;
  }
};

// ======================================================================================= public API

UnionFs::UnionFs(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

namespace {

// A quarter of the descriptor limit for plain files' descriptors: directories, open files and
// libfuse need the rest.
size_t DefaultFdBudget() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 4096;
  return std::max<size_t>(64, static_cast<size_t>(limit.rlim_cur / 4));
}

Result<std::vector<Branch>> OpenBranches(const std::vector<BranchSpec>& specs) {
  std::vector<Branch> branches;
  for (const BranchSpec& spec : specs) {
    int fd = open(spec.path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open branch " + spec.path, errno);
    branches.push_back(Branch{spec.path, spec.mode, UniqueFd(fd), UniqueFd()});
    if (spec.mode == BranchMode::kReadWrite) {
      branches.back().index = UniqueFd(openat(fd, kIndexDir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
  }
  return branches;
}

}  // namespace

Status UnionFs::SetBranches(const std::vector<BranchSpec>& specs) {
  MountOptions check;
  check.branches = specs;
  CAIRN_RETURN_IF_ERROR(ValidateMountOptions(check, ""));
  CAIRN_ASSIGN_OR_RETURN(std::vector<Branch> fresh, OpenBranches(specs));
  std::lock_guard lock(impl_->mu);
  impl_->ReplaceBranches(std::move(fresh));
  return Status::Ok();
}

std::vector<BranchSpec> UnionFs::Branches() {
  std::lock_guard lock(impl_->mu);
  std::vector<BranchSpec> specs;
  for (const Branch& branch : impl_->branches) specs.push_back(BranchSpec{branch.path, branch.mode});
  return specs;
}

std::vector<UnionFs::KnownNode> UnionFs::KnownNodes() {
  std::lock_guard lock(impl_->mu);
  std::vector<KnownNode> known;
  for (const auto& [id, node] : impl_->nodes) {
    if (id != kRootNode) known.push_back(KnownNode{id, node->parent, node->name});
  }
  return known;
}

bool UnionFs::LowerOnly(NodeId id) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  return node != nullptr && !impl_->Writable(node->layers[0].branch);
}
bool UnionFs::SingleLayerDirectory(NodeId id) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  return node != nullptr && node->is_dir && node->layers.size() == 1;
}

UnionFs::~UnionFs() = default;

Result<std::unique_ptr<UnionFs>> UnionFs::Open(const MountOptions& options) {
  if (options.branches.empty()) return InvalidArgumentError("no branches");
  auto impl = std::make_unique<Impl>();
  impl->format = options.whiteout;
  impl->fd_budget = options.fd_budget > 0 ? options.fd_budget : DefaultFdBudget();
  CAIRN_ASSIGN_OR_RETURN(impl->policy, MakeCreatePolicy(options.create_policy));
  auto root = std::make_unique<Node>();
  root->id = kRootNode;
  root->is_dir = true;
  root->lookups = 1;
  CAIRN_ASSIGN_OR_RETURN(impl->branches, OpenBranches(options.branches));
  for (size_t i = 0; i < impl->branches.size(); ++i) {
    root->layers.push_back(Layer{static_cast<int>(i), UniqueFd(dup(impl->branches[i].fd.get()))});
  }
  impl->nodes[kRootNode] = std::move(root);
  return std::unique_ptr<UnionFs>(new UnionFs(std::move(impl)));
}

int UnionFs::Lookup(NodeId parent_id, std::string_view name, Entry* out) {
  std::lock_guard lock(impl_->mu);
  Node* parent = impl_->Live(parent_id);
  if (parent == nullptr) return -ENOENT;
  Resolution r;
  int rc = impl_->ResolveIn(parent, name, &r);
  if (rc != 0) return rc;
  if (!r.found) return -ENOENT;
  Node* node = impl_->AddNode(parent_id, name, std::move(r), 1);
  return impl_->FillEntry(node, out);
}

void UnionFs::Forget(NodeId id, uint64_t count) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Get(id);
  if (node == nullptr || id == kRootNode) return;
  node->lookups = count >= node->lookups ? 0 : node->lookups - count;
  impl_->MaybeFree(node);
}

int UnionFs::GetAttr(NodeId id, struct stat* out, bool* lower_only) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  if (lower_only != nullptr) *lower_only = !impl_->Writable(node->layers[0].branch);
  int rc = impl_->TopStat(*node, out);
  if (rc == 0) impl_->Report(out);
  return rc;
}

int UnionFs::SetAttr(NodeId id, const struct stat& values, int which, int fd, struct stat* out) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  CopyMode mode = !(which & kSetSize) ? CopyMode::kMetaOnly : values.st_size == 0 ? CopyMode::kNoData : CopyMode::kData;
  int rc = impl_->CopyUpForWrite(node, mode);
  if (rc != 0) return rc;
  int path_fd = impl_->TopFd(node);
  if (path_fd < 0) return path_fd;
  std::string path = ProcPath(path_fd);
  if ((which & kSetMode) && !S_ISLNK(values.st_mode) && chmod(path.c_str(), values.st_mode & 07777) != 0) {
    return NegErrno();
  }
  if (which & (kSetUid | kSetGid)) {
    uid_t uid = (which & kSetUid) ? values.st_uid : static_cast<uid_t>(-1);
    gid_t gid = (which & kSetGid) ? values.st_gid : static_cast<gid_t>(-1);
    if (fchownat(path_fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return NegErrno();
  }
  if (which & kSetSize) {
    int r = fd >= 0 ? ftruncate(fd, values.st_size) : truncate(path.c_str(), values.st_size);
    if (r != 0) return NegErrno();
  }
  if (which & (kSetAtime | kSetMtime | kSetAtimeNow | kSetMtimeNow)) {
    struct timespec times[2];
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_nsec = UTIME_OMIT;
    if (which & kSetAtime) times[0] = values.st_atim;
    if (which & kSetMtime) times[1] = values.st_mtim;
    if (which & kSetAtimeNow) times[0].tv_nsec = UTIME_NOW;
    if (which & kSetMtimeNow) times[1].tv_nsec = UTIME_NOW;
    struct stat st;
    int r = impl_->TopStat(*node, &st);
    if (r != 0) return r;
    r = S_ISLNK(st.st_mode) ? utimensat(path_fd, "", times, AT_EMPTY_PATH)
                            : utimensat(AT_FDCWD, path.c_str(), times, 0);
    if (r != 0) return NegErrno();
  }
  rc = impl_->TopStat(*node, out);
  if (rc == 0) impl_->Report(out);
  return rc;
}

int UnionFs::ReadLink(NodeId id, std::string* target) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  std::string buffer(PATH_MAX, '\0');
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  ssize_t n = readlinkat(fd, "", buffer.data(), buffer.size());
  if (n < 0) return NegErrno();
  buffer.resize(static_cast<size_t>(n));
  *target = std::move(buffer);
  return 0;
}

int UnionFs::Mknod(NodeId parent_id, std::string_view name, mode_t mode, dev_t rdev, Caller caller, Entry* out) {
  std::lock_guard lock(impl_->mu);
  Node* parent = impl_->Live(parent_id);
  if (parent == nullptr) return -ENOENT;
  Impl::CreateTarget target;
  int rc = impl_->PrepareCreate(parent, name, &target);
  if (rc != 0) return rc;
  if (mknodat(target.parent_fd, std::string(name).c_str(), mode, rdev) != 0) return NegErrno();
  impl_->Chown(target.parent_fd, name, caller);
  return impl_->FinishEntry(parent, name, out);
}

int UnionFs::Mkdir(NodeId parent_id, std::string_view name, mode_t mode, Caller caller, Entry* out) {
  std::lock_guard lock(impl_->mu);
  Node* parent = impl_->Live(parent_id);
  if (parent == nullptr) return -ENOENT;
  Impl::CreateTarget target;
  int rc = impl_->PrepareCreate(parent, name, &target);
  if (rc != 0) return rc;
  std::string cname(name);
  if (target.whiteout_branch == target.branch) {
    // Over a whiteout: build the directory opaque under a temporary name so lower ones never merge in.
    std::string temp = impl_->TempName();
    if (mkdirat(target.parent_fd, temp.c_str(), mode) != 0) return NegErrno();
    UniqueFd fd(openat(target.parent_fd, temp.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    rc = fd.valid() ? impl_->MakeOpaque(fd.get()) : NegErrno();
    if (rc == 0 && renameat(target.parent_fd, temp.c_str(), target.parent_fd, cname.c_str()) != 0) rc = NegErrno();
    if (rc != 0) {
      if (fd.valid()) RemoveContents(fd.get());
      unlinkat(target.parent_fd, temp.c_str(), AT_REMOVEDIR);
      return rc;
    }
  } else if (mkdirat(target.parent_fd, cname.c_str(), mode) != 0) {
    return NegErrno();
  }
  impl_->Chown(target.parent_fd, name, caller);
  return impl_->FinishEntry(parent, name, out);
}

int UnionFs::Symlink(NodeId parent_id, std::string_view name, std::string_view link_target, Caller caller,
                     Entry* out) {
  std::lock_guard lock(impl_->mu);
  Node* parent = impl_->Live(parent_id);
  if (parent == nullptr) return -ENOENT;
  Impl::CreateTarget target;
  int rc = impl_->PrepareCreate(parent, name, &target);
  if (rc != 0) return rc;
  if (symlinkat(std::string(link_target).c_str(), target.parent_fd, std::string(name).c_str()) != 0) {
    return NegErrno();
  }
  impl_->Chown(target.parent_fd, name, caller);
  return impl_->FinishEntry(parent, name, out);
}

int UnionFs::Link(NodeId id, NodeId new_parent_id, std::string_view new_name, Entry* out) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  Node* parent = impl_->Live(new_parent_id);
  if (node == nullptr || parent == nullptr) return -ENOENT;
  if (IsReserved(new_name)) return -EPERM;
  Resolution r;
  int rc = impl_->ResolveIn(parent, new_name, &r);
  if (rc != 0) return rc;
  if (r.found) return -EEXIST;  // checked before the directory test, as the VFS does
  if (node->is_dir) return -EPERM;
  rc = impl_->CopyUpForWrite(node, CopyMode::kData);
  if (rc != 0) return rc;
  int branch = node->layers[0].branch;
  if (r.whiteout_branch >= 0 && r.whiteout_branch < branch) return -EROFS;
  int parent_fd = -1;
  rc = impl_->EnsureDir(parent, branch, &parent_fd);
  if (rc != 0) return rc;
  impl_->RemoveWhiteout(parent_fd, new_name);
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  node->pinned = true;  // several names from now on: a name is no longer enough to reopen it
  if (linkat(AT_FDCWD, ProcPath(fd).c_str(), parent_fd, std::string(new_name).c_str(),
             AT_SYMLINK_FOLLOW) != 0) {
    return NegErrno();
  }
  // Both names are one file: keep the existing node (and its parent link) for the new name's entry.
  Resolution fresh;
  rc = impl_->ResolveIn(parent, new_name, &fresh);
  if (rc != 0) return rc;
  if (!fresh.found) return -EIO;
  ++node->lookups;
  return impl_->FillEntry(node, out);
}

int UnionFs::Unlink(NodeId parent, std::string_view name) {
  std::lock_guard lock(impl_->mu);
  return impl_->Remove(parent, name, false);
}

int UnionFs::Rmdir(NodeId parent, std::string_view name) {
  std::lock_guard lock(impl_->mu);
  return impl_->Remove(parent, name, true);
}

int UnionFs::Rename(NodeId parent, std::string_view name, NodeId new_parent, std::string_view new_name,
                    unsigned flags) {
  std::lock_guard lock(impl_->mu);
  return impl_->Rename(parent, name, new_parent, new_name, flags);
}

int UnionFs::Open(NodeId id, int flags, int* fd) {
  UniqueFd path_fd;
  {
    std::lock_guard lock(impl_->mu);
    Node* node = impl_->Live(id);
    if (node == nullptr) return -ENOENT;
    bool writing = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    if (writing) {
      int rc = impl_->CopyUpForWrite(node, (flags & O_TRUNC) ? CopyMode::kNoData : CopyMode::kData);
      if (rc != 0) return rc;
    }
    // A metadata-only copy is read from its data source below.
    int source = Impl::IsMetacopy(*node) ? node->layers[1].fd.get() : impl_->TopFd(node);
    if (source < 0) return source;
    path_fd = UniqueFd(fcntl(source, F_DUPFD_CLOEXEC, 0));
    if (!path_fd.valid()) return NegErrno();
  }
  // Opened outside the lock: opening a FIFO may block.
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
  int opened = open(ProcPath(path_fd.get()).c_str(), flags | O_CLOEXEC);
  if (opened < 0) return NegErrno();
  *fd = opened;
  return 0;
}

int UnionFs::Create(NodeId parent_id, std::string_view name, mode_t mode, int flags, Caller caller, Entry* out,
                    int* fd) {
  std::lock_guard lock(impl_->mu);
  Node* parent = impl_->Live(parent_id);
  if (parent == nullptr) return -ENOENT;
  Impl::CreateTarget target;
  int rc = impl_->PrepareCreate(parent, name, &target);
  if (rc == -EEXIST && !(flags & O_EXCL)) return -EEXIST;
  if (rc != 0) return rc;
  flags &= ~(O_NOFOLLOW | O_NOCTTY);
  int opened = openat(target.parent_fd, std::string(name).c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (opened < 0) return NegErrno();
  impl_->Chown(target.parent_fd, name, caller);
  rc = impl_->FinishEntry(parent, name, out);
  if (rc != 0) {
    close(opened);
    return rc;
  }
  *fd = opened;
  return 0;
}

int UnionFs::ReadDir(NodeId id, std::vector<DirEntry>* out) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  if (!node->is_dir) return -ENOTDIR;
  return impl_->Merge(node->layers, out, false);
}

int UnionFs::StatFs(struct statvfs* out) {
  std::lock_guard lock(impl_->mu);
  int branch = impl_->TopmostWritable(static_cast<int>(impl_->branches.size()));
  if (branch < 0) branch = 0;
  if (fstatvfs(impl_->branches[branch].fd.get(), out) != 0) return NegErrno();
  return 0;
}

int UnionFs::GetXattr(NodeId id, const std::string& name, std::string* value) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  if (name == kMetacopyXattr) return -ENODATA;
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  std::string path = ProcPath(fd);
  ssize_t size = getxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (size < 0) return NegErrno();
  value->assign(static_cast<size_t>(size), '\0');
  size = getxattr(path.c_str(), name.c_str(), value->data(), value->size());
  if (size < 0) return NegErrno();
  value->resize(static_cast<size_t>(size));
  return 0;
}

int UnionFs::ListXattr(NodeId id, std::string* names) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  std::string path = ProcPath(fd);
  ssize_t size = listxattr(path.c_str(), nullptr, 0);
  if (size < 0) return NegErrno();
  names->assign(static_cast<size_t>(size), '\0');
  size = listxattr(path.c_str(), names->data(), names->size());
  if (size < 0) return NegErrno();
  names->resize(static_cast<size_t>(size));
  // The union's own marks are not part of the file.
  std::string visible;
  for (size_t pos = 0; pos < names->size();) {
    std::string name = names->c_str() + pos;
    pos += name.size() + 1;
    if (name != kMetacopyXattr) visible.append(name).push_back('\0');
  }
  *names = std::move(visible);
  return 0;
}

int UnionFs::SetXattr(NodeId id, const std::string& name, std::string_view value, int flags) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  int rc = impl_->CopyUpForWrite(node, CopyMode::kMetaOnly);
  if (rc != 0) return rc;
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  if (setxattr(ProcPath(fd).c_str(), name.c_str(), value.data(), value.size(), flags) != 0) {
    return NegErrno();
  }
  return 0;
}

int UnionFs::RemoveXattr(NodeId id, const std::string& name) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  int rc = impl_->CopyUpForWrite(node, CopyMode::kMetaOnly);
  if (rc != 0) return rc;
  int fd = impl_->TopFd(node);
  if (fd < 0) return fd;
  if (removexattr(ProcPath(fd).c_str(), name.c_str()) != 0) return NegErrno();
  return 0;
}

int UnionFs::ResolvePath(std::string_view path, NodeId* out) {
  std::lock_guard lock(impl_->mu);
  NodeId current = kRootNode;
  for (const std::string& part : Split(path, '/')) {
    if (part.empty() || part == ".") continue;
    Node* dir = impl_->Live(current);
    Resolution r;
    int rc = impl_->ResolveIn(dir, part, &r);
    if (rc != 0) return rc;
    if (!r.found) return -ENOENT;
    current = impl_->AddNode(current, part, std::move(r), 1)->id;
  }
  *out = current;
  return 0;
}

int UnionFs::TopBranch(NodeId id) {
  std::lock_guard lock(impl_->mu);
  Node* node = impl_->Live(id);
  if (node == nullptr) return -ENOENT;
  return node->layers[0].branch;
}

size_t UnionFs::NodeCount() {
  std::lock_guard lock(impl_->mu);
  return impl_->nodes.size();
}

}  // namespace cairn::unionfs
