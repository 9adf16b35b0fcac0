#include "cairn/itest/brick_snapshot.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <filesystem>
#include <sstream>

#include "cairn/itest/files.h"

namespace cairn::itest {

namespace fs = std::filesystem;

BrickSnapshot SnapshotBrick(const std::string& root) {
  BrickSnapshot out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string path = it->path().string();
    std::string relative = path.substr(root.size());
    if (relative.rfind("/.cairn/tmp", 0) == 0 || relative.rfind("/.cairn/journal", 0) == 0) continue;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) {
      std::string content = ReadFile(path);
      line << " size=" << content.size() << " hash=" << std::hash<std::string>()(content);
    } else if (S_ISLNK(st.st_mode)) {
      line << " -> " << fs::read_symlink(path, ec).string();
    }
    char id[16];
    ssize_t n = lgetxattr(path.c_str(), "trusted.cairn.id", id, sizeof(id));
    if (n == 16) {
      line << " id=";
      for (char c : id) line << std::hex << (static_cast<unsigned>(c) & 0xff);
    }
    out[relative] = line.str();
  }
  return out;
}

std::string FirstDifference(const BrickSnapshot& a, const BrickSnapshot& b) {
  for (const auto& [path, line] : a) {
    auto other = b.find(path);
    if (other == b.end()) return path + " only in the first";
    if (other->second != line) return path + ": " + line + " vs " + other->second;
  }
  for (const auto& [path, line] : b) {
    if (a.count(path) == 0) return path + " only in the second";
  }
  return "";
}

}  // namespace cairn::itest
