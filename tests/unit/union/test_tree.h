// Test helpers: temporary directories, small file writers, and tree snapshots for comparisons.
#pragma once

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace cairn::unionfs::testing {

namespace fs = std::filesystem;

// A directory under $TMPDIR (or /tmp) removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/cairn-union-XXXXXX";
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const {
    std::string sub = path_ + "/" + name;
    fs::create_directories(sub);
    return sub;
  }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  ::chmod(path.c_str(), mode);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// "d" for a directory, "f:<content>" for a file, "l:<target>" for a symlink, plus the permission bits.
using Tree = std::map<std::string, std::string>;

inline std::string Describe(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return "missing";
  std::string mode = std::to_string(st.st_mode & 07777);
  if (S_ISDIR(st.st_mode)) return "d " + mode;
  if (S_ISLNK(st.st_mode)) return "l:" + fs::read_symlink(path).string();
  if (S_ISREG(st.st_mode)) return "f " + mode + ":" + ReadFile(path);
  return "other";
}

// Snapshot of a plain directory tree (paths relative to root).
inline Tree SnapshotDir(const std::string& root) {
  Tree tree;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    tree[fs::relative(it->path(), root).string()] = Describe(it->path().string());
  }
  return tree;
}

}  // namespace cairn::unionfs::testing
