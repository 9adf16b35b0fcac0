// Differential test against kernel overlayfs: the same random syscall sequences on an overlay mount
// and on unionmount (whiteout=overlay) over copies of the same branches. Results, merged trees and
// the upper directories (whiteouts as 0/0 devices, opaque xattrs) must match. Directory renames are
// left out: overlayfs without redirect_dir answers EXDEV there, where the union succeeds by design.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <iostream>

#include "mount_guard.h"
#include "random_tree.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::RandomTrees;
using testing::SnapshotDir;
using testing::TempDir;
using testing::Tree;
using testing::UnionMount;
namespace fs = std::filesystem;

int Rc(int r) { return r < 0 ? -errno : 0; }

int WriteOp(const std::string& path, const std::string& data, int flags) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | flags, 0644);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, data.data(), data.size());
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

// An upper directory as overlayfs tooling sees it: whiteouts, opaque flags, files, no private names.
Tree UpperTree(const std::string& root) {
  Tree tree;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (it->path().filename().string().rfind(".wh..wh.", 0) == 0) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    lstat(it->path().c_str(), &st);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      tree[rel] = "whiteout";
    } else if (S_ISDIR(st.st_mode)) {
      char value = 0;
      bool opaque = getxattr(it->path().c_str(), "trusted.overlay.opaque", &value, 1) == 1 && value == 'y';
      tree[rel] = opaque ? "d opaque" : "d";
    } else {
      tree[rel] = testing::Describe(it->path().string());
    }
  }
  return tree;
}

// Tree contents with whiteouts in the overlay format only (overlayfs ignores AUFS .wh. files).
void FillOverlayStyle(RandomTrees& random, const std::string& dir, int depth) {
  for (const std::string& name : testing::kNames) {
    int choice = random.Below(10);
    std::string path = dir + "/" + name;
    if (choice < 3) {
      testing::WriteFile(path, random.Content(), random.Below(2) ? 0644 : 0600);
    } else if (choice < 6 && depth < 3) {
      fs::create_directories(path);
      FillOverlayStyle(random, path, depth + 1);
    }
  }
}

class OverlayDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  }
};

TEST_F(OverlayDiffTest, RandomSequencesMatchKernelOverlay) {
  int whiteouts = 0, opaque = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir tmp;
    std::string lower = tmp.Sub("lower"), o_upper = tmp.Sub("o_upper"), work = tmp.Sub("work");
    std::string o_mnt = tmp.Sub("o_mnt"), u_upper = tmp.Sub("u_upper"), u_mnt = tmp.Sub("u_mnt");
    RandomTrees random(seed);
    FillOverlayStyle(random, lower, 1);
    FillOverlayStyle(random, o_upper, 1);
    fs::copy(o_upper, u_upper, fs::copy_options::recursive);
    std::string data = "lowerdir=" + lower + ",upperdir=" + o_upper + ",workdir=" + work;
    if (mount("overlay", o_mnt.c_str(), "overlay", 0, data.c_str()) != 0) GTEST_SKIP() << "no overlayfs here";
    struct Unmount {
      std::string path;
      ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
    } unmount{o_mnt};
    UnionMount union_mount("dirs=" + u_upper + "=rw:" + lower + "=ro,whiteout=overlay", u_mnt);
    std::string error;
    ASSERT_TRUE(union_mount.Start(&error)) << error;
    ASSERT_EQ(SnapshotDir(u_mnt), SnapshotDir(o_mnt));
    for (int step = 0; step < 100; ++step) {
      std::string a = random.Path(), b = random.Path(), text = random.Content();
      int kind = random.Below(8);
      auto op = [&](const std::string& r) -> int {
        switch (kind) {
          case 0: return WriteOp(r + "/" + a, text, O_TRUNC);
          case 1: return WriteOp(r + "/" + a, text, O_APPEND);
          case 2: return Rc(mkdir((r + "/" + a).c_str(), 0755));
          case 3: return Rc(unlink((r + "/" + a).c_str()));
          case 4: return Rc(rmdir((r + "/" + a).c_str()));
          case 5: return Rc(rename((r + "/" + a).c_str(), (r + "/" + b).c_str()));
          case 6: return Rc(chmod((r + "/" + a).c_str(), 0600));
          default: return Rc(link((r + "/" + a).c_str(), (r + "/" + b).c_str()));
        }
      };
      struct stat st;
      if (kind == 5 && lstat((o_mnt + "/" + a).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      int on_overlay = op(o_mnt);
      int on_union = op(u_mnt);
      ASSERT_EQ(on_union, on_overlay) << step << ": op " << kind << " " << a << " " << b;
    }
    EXPECT_EQ(SnapshotDir(u_mnt), SnapshotDir(o_mnt));
    Tree upper = UpperTree(u_upper);
    EXPECT_EQ(upper, UpperTree(o_upper));
    for (const auto& [path, what] : upper) {
      whiteouts += what == "whiteout";
      opaque += what == "d opaque";
    }
    if (HasFailure()) return;
  }
  // The sequences did exercise the formats being compared.
  EXPECT_GT(whiteouts, 0);
  std::cout << "compared " << whiteouts << " whiteouts and " << opaque << " opaque directories\n";
}

}  // namespace
}  // namespace cairn::unionfs
