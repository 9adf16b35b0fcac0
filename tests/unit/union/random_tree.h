// Random branch trees and the naive reference merge, shared by the unit property test and the
// FUSE parity tests.
#pragma once

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "test_tree.h"

namespace cairn::unionfs::testing {

inline const std::vector<std::string> kNames = {"a", "b", "c", "d"};

class RandomTrees {
 public:
  explicit RandomTrees(uint32_t seed) : rng_(seed) {}
  int Below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string Name() { return kNames[Below(static_cast<int>(kNames.size()))]; }
  std::string Path() {
    std::string path = Name();
    for (int depth = Below(3); depth > 0; --depth) path += "/" + Name();
    return path;
  }
  std::string Content() { return "c" + std::to_string(Below(1000)); }

  // Fills dir with random files, directories and (when interprets) whiteouts and opaque markers.
  void Fill(const std::string& dir, int depth, bool interprets) {
    for (const std::string& name : kNames) {
      int choice = Below(10);
      std::string path = dir + "/" + name;
      if (choice < 3) {
        testing::WriteFile(path, Content(), Below(2) ? 0644 : 0600);
      } else if (choice < 6 && depth < 3) {
        fs::create_directories(path);
        Fill(path, depth + 1, interprets);
        if (interprets && Below(6) == 0) testing::WriteFile(path + "/.wh..wh..opq", "");
      } else if (choice < 7 && interprets) {
        testing::WriteFile(dir + "/.wh." + name, "");
      }
    }
  }

 private:
  std::mt19937 rng_;
};

// The reference merge: plain paths, one directory level at a time.
inline void NaiveMerge(const std::vector<std::pair<bool, std::string>>& layers, const std::string& out) {
  std::map<std::string, bool> closed;  // name -> no more layers may contribute
  std::map<std::string, std::vector<std::pair<bool, std::string>>> dirs;
  std::set<std::string> hidden;
  for (const auto& [interprets, dir] : layers) {
    std::vector<std::string> whiteouts;
    for (const auto& entry : fs::directory_iterator(dir)) {
      std::string name = entry.path().filename().string();
      if (name.rfind(".wh.", 0) == 0) {
        if (interprets && name.rfind(".wh..wh.", 0) != 0) whiteouts.push_back(name.substr(4));
        continue;
      }
      if (hidden.count(name) != 0 || closed[name]) continue;
      if (entry.is_directory() && !entry.is_symlink()) {
        dirs[name].emplace_back(interprets, entry.path().string());
        if (interprets && fs::exists(entry.path() / ".wh..wh..opq")) closed[name] = true;
      } else if (entry.is_symlink()) {
        closed[name] = true;
        if (dirs.count(name) == 0) fs::create_symlink(fs::read_symlink(entry.path()), out + "/" + name);
      } else {
        closed[name] = true;
        if (dirs.count(name) == 0) {
          fs::copy_file(entry.path(), out + "/" + name);
          fs::permissions(out + "/" + name, fs::status(entry.path()).permissions());
        }
      }
    }
    for (std::string& name : whiteouts) hidden.insert(std::move(name));
  }
  for (const auto& [name, sub_layers] : dirs) {
    fs::create_directory(out + "/" + name);
    NaiveMerge(sub_layers, out + "/" + name);
  }
}

}  // namespace cairn::unionfs::testing
