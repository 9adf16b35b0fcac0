// Path-based calls on a UnionFs for tests: each splits "dir/name", resolves dir, calls the node API.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "cairn/union/union_fs.h"
#include "test_tree.h"

namespace cairn::unionfs::testing {

inline std::pair<std::string, std::string> SplitPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

class PathOps {
 public:
  explicit PathOps(UnionFs* fs) : fs_(fs) {}

  int Node(const std::string& path, NodeId* node) { return fs_->ResolvePath(path, node); }

  // Resolves a parent directory as the kernel does: a file on the way or at the end is ENOTDIR.
  int Dir(const std::string& path, NodeId* node) {
    int rc = fs_->ResolvePath(path, node);
    if (rc != 0) return rc;
    struct stat st;
    rc = fs_->GetAttr(*node, &st);
    if (rc != 0) return rc;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
  }

  int Write(const std::string& path, const std::string& data, bool append) {
    auto [dir, name] = SplitPath(path);
    NodeId parent, node;
    int rc = Dir(dir, &parent);
    if (rc != 0) return rc;
    int fd = -1;
    Entry entry;
    rc = fs_->ResolvePath(path, &node);
    if (rc == 0) {
      rc = fs_->Open(node, O_WRONLY | (append ? O_APPEND : O_TRUNC), &fd);
    } else if (rc == -ENOENT) {
      rc = fs_->Create(parent, name, 0644, O_WRONLY, Caller{}, &entry, &fd);
    }
    if (rc != 0) return rc;
    ssize_t n = ::write(fd, data.data(), data.size());
    ::close(fd);
    return n == static_cast<ssize_t>(data.size()) ? 0 : -EIO;
  }

  int Read(const std::string& path, std::string* out) {
    NodeId node;
    int rc = fs_->ResolvePath(path, &node);
    if (rc != 0) return rc;
    int fd = -1;
    rc = fs_->Open(node, O_RDONLY, &fd);
    if (rc != 0) return rc;
    out->clear();
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out->append(buffer, static_cast<size_t>(n));
    ::close(fd);
    return n < 0 ? -errno : 0;
  }

  int Mkdir(const std::string& path, mode_t mode = 0755) {
    auto [dir, name] = SplitPath(path);
    NodeId parent;
    int rc = Dir(dir, &parent);
    if (rc != 0) return rc;
    Entry entry;
    return fs_->Mkdir(parent, name, mode, Caller{}, &entry);
  }

  int Unlink(const std::string& path) { return Call(path, [&](NodeId p, const std::string& n) { return fs_->Unlink(p, n); }); }
  int Rmdir(const std::string& path) { return Call(path, [&](NodeId p, const std::string& n) { return fs_->Rmdir(p, n); }); }

  int Rename(const std::string& from, const std::string& to) {
    auto [from_dir, from_name] = SplitPath(from);
    auto [to_dir, to_name] = SplitPath(to);
    NodeId from_parent, to_parent;
    int rc = Dir(from_dir, &from_parent);
    if (rc != 0) return rc;
    rc = Dir(to_dir, &to_parent);
    if (rc != 0) return rc;
    return fs_->Rename(from_parent, from_name, to_parent, to_name, 0);
  }

  int Chmod(const std::string& path, mode_t mode) {
    NodeId node;
    int rc = fs_->ResolvePath(path, &node);
    if (rc != 0) return rc;
    struct stat values {};
    values.st_mode = mode;
    struct stat out;
    return fs_->SetAttr(node, values, kSetMode, -1, &out);
  }

  int Truncate(const std::string& path, off_t size) {
    NodeId node;
    int rc = fs_->ResolvePath(path, &node);
    if (rc != 0) return rc;
    struct stat values {};
    values.st_size = size;
    struct stat out;
    return fs_->SetAttr(node, values, kSetSize, -1, &out);
  }

  int Link(const std::string& from, const std::string& to) {
    NodeId node, parent;
    int rc = fs_->ResolvePath(from, &node);
    if (rc != 0) return rc;
    auto [dir, name] = SplitPath(to);
    rc = Dir(dir, &parent);
    if (rc != 0) return rc;
    Entry entry;
    return fs_->Link(node, parent, name, &entry);
  }

  int Symlink(const std::string& target, const std::string& path) {
    auto [dir, name] = SplitPath(path);
    NodeId parent;
    int rc = Dir(dir, &parent);
    if (rc != 0) return rc;
    Entry entry;
    return fs_->Symlink(parent, name, target, Caller{}, &entry);
  }

  int Stat(const std::string& path, struct stat* st) {
    NodeId node;
    int rc = fs_->ResolvePath(path, &node);
    if (rc != 0) return rc;
    return fs_->GetAttr(node, st);
  }

  // The whole union as a Tree (see test_tree.h), read through the node API.
  int Snapshot(Tree* tree) { return Walk("", tree); }

 private:
  template <typename F>
  int Call(const std::string& path, F f) {
    auto [dir, name] = SplitPath(path);
    NodeId parent;
    int rc = Dir(dir, &parent);
    if (rc != 0) return rc;
    return f(parent, name);
  }

  int Walk(const std::string& dir, Tree* tree) {
    NodeId node;
    int rc = fs_->ResolvePath(dir, &node);
    if (rc != 0) return rc;
    std::vector<DirEntry> entries;
    rc = fs_->ReadDir(node, &entries);
    if (rc != 0) return rc;
    for (const DirEntry& entry : entries) {
      std::string path = dir.empty() ? entry.name : dir + "/" + entry.name;
      struct stat st;
      rc = Stat(path, &st);
      if (rc != 0) return rc;
      std::string mode = std::to_string(st.st_mode & 07777);
      if (S_ISDIR(st.st_mode)) {
        (*tree)[path] = "d " + mode;
        rc = Walk(path, tree);
        if (rc != 0) return rc;
      } else if (S_ISLNK(st.st_mode)) {
        NodeId link;
        std::string target;
        fs_->ResolvePath(path, &link);
        fs_->ReadLink(link, &target);
        (*tree)[path] = "l:" + target;
      } else if (S_ISREG(st.st_mode)) {
        std::string content;
        rc = Read(path, &content);
        if (rc != 0) return rc;
        (*tree)[path] = "f " + mode + ":" + content;
      } else {
        (*tree)[path] = "other";
      }
    }
    return 0;
  }

  UnionFs* fs_;
};

}  // namespace cairn::unionfs::testing
