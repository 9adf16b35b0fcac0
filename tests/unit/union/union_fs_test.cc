#include "cairn/union/union_fs.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <gtest/gtest.h>

#include "path_ops.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::Exists;
using testing::PathOps;
using testing::ReadFile;
using testing::TempDir;
using testing::Tree;
using testing::WriteFile;

// upper (rw) over lower (ro) over base (rr).
class UnionFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upper_ = tmp_.Sub("upper");
    lower_ = tmp_.Sub("lower");
    base_ = tmp_.Sub("base");
  }
  void Mount(WhiteoutFormat format = WhiteoutFormat::kAufs, std::string policy = "tdp", size_t fd_budget = 0) {
    MountOptions options;
    options.fd_budget = fd_budget;
    options.branches = {{upper_, BranchMode::kReadWrite}, {lower_, BranchMode::kReadOnly},
                        {base_, BranchMode::kRealReadOnly}};
    options.whiteout = format;
    options.create_policy = policy;
    auto fs = UnionFs::Open(options);
    ASSERT_TRUE(fs.ok()) << fs.status();
    fs_ = std::move(fs).value();
    ops_ = std::make_unique<PathOps>(fs_.get());
  }
  Tree Snapshot() {
    Tree tree;
    EXPECT_EQ(ops_->Snapshot(&tree), 0);
    return tree;
  }
  std::string Read(const std::string& path) {
    std::string content;
    EXPECT_EQ(ops_->Read(path, &content), 0) << path;
    return content;
  }

  TempDir tmp_;
  std::string upper_, lower_, base_;
  std::unique_ptr<UnionFs> fs_;
  std::unique_ptr<PathOps> ops_;
};

TEST_F(UnionFsTest, FirstBranchHoldingANameWins) {
  WriteFile(base_ + "/a", "base");
  WriteFile(lower_ + "/a", "lower");
  WriteFile(base_ + "/b", "base-b");
  Mount();
  EXPECT_EQ(Read("a"), "lower");
  EXPECT_EQ(Read("b"), "base-b");
  NodeId a;
  ASSERT_EQ(ops_->Node("a", &a), 0);
  EXPECT_EQ(fs_->TopBranch(a), 1);
}

TEST_F(UnionFsTest, LookupGivesSameNodeForSameFileAndCountsLookups) {
  WriteFile(lower_ + "/d/f", "x");
  Mount();
  Entry first, second, dir;
  ASSERT_EQ(fs_->Lookup(kRootNode, "d", &dir), 0);
  ASSERT_EQ(fs_->Lookup(dir.node, "f", &first), 0);
  ASSERT_EQ(fs_->Lookup(dir.node, "f", &second), 0);
  EXPECT_EQ(first.node, second.node);
  EXPECT_EQ(first.attr.st_ino, second.attr.st_ino);
  EXPECT_TRUE(first.lower_only);
  size_t before = fs_->NodeCount();
  fs_->Forget(first.node, 2);
  EXPECT_EQ(fs_->NodeCount(), before - 1);
  fs_->Forget(dir.node, 1);
  EXPECT_EQ(fs_->NodeCount(), 1u);  // only the root is left
  EXPECT_EQ(fs_->Lookup(kRootNode, "missing", &first), -ENOENT);
}

TEST_F(UnionFsTest, WhiteoutsAndOpaqueDirectoriesStopTheSearch) {
  WriteFile(lower_ + "/gone", "x");
  WriteFile(upper_ + "/.wh.gone", "");
  WriteFile(lower_ + "/dir/old", "x");
  WriteFile(upper_ + "/dir/new", "y");
  WriteFile(upper_ + "/dir/.wh..wh..opq", "");
  WriteFile(base_ + "/kept", "k");
  WriteFile(base_ + "/.wh.kept", "");  // rr branch: never interpreted, never shown
  Mount();
  NodeId node;
  EXPECT_EQ(ops_->Node("gone", &node), -ENOENT);
  EXPECT_EQ(ops_->Node("dir/old", &node), -ENOENT);
  EXPECT_EQ(Read("kept"), "k");
  Tree expected{{"dir", "d 493"}, {"dir/new", "f 420:y"}, {"kept", "f 420:k"}};
  EXPECT_EQ(Snapshot(), expected);
}

TEST_F(UnionFsTest, ReadDirMergesAndDeduplicates) {
  WriteFile(upper_ + "/d/a", "1");
  WriteFile(lower_ + "/d/a", "2");
  WriteFile(lower_ + "/d/b", "3");
  WriteFile(lower_ + "/d/.wh.c", "");
  WriteFile(base_ + "/d/c", "4");
  WriteFile(base_ + "/d/e", "5");
  Mount();
  NodeId d;
  ASSERT_EQ(ops_->Node("d", &d), 0);
  std::vector<DirEntry> entries;
  ASSERT_EQ(fs_->ReadDir(d, &entries), 0);
  std::vector<std::string> names;
  for (auto& e : entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "e"}));
}

TEST_F(UnionFsTest, WriteCopiesUpDataModeTimesAndXattrs) {
  WriteFile(lower_ + "/d/f", "hello", 0640);
  ASSERT_EQ(setxattr((lower_ + "/d/f").c_str(), "user.k", "v", 1, 0), 0);
  struct timespec times[2] = {{1000, 0}, {2000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (lower_ + "/d/f").c_str(), times, 0), 0);
  Mount();
  NodeId f;
  ASSERT_EQ(ops_->Node("d/f", &f), 0);
  int fd = -1;
  ASSERT_EQ(fs_->Open(f, O_RDWR, &fd), 0);
  close(fd);
  EXPECT_EQ(fs_->TopBranch(f), 0);
  struct stat st;
  ASSERT_EQ(stat((upper_ + "/d/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(ReadFile(upper_ + "/d/f"), "hello");
  char value[8] = {};
  EXPECT_EQ(getxattr((upper_ + "/d/f").c_str(), "user.k", value, sizeof value), 1);
  EXPECT_EQ(ReadFile(lower_ + "/d/f"), "hello");
  // No temporary names are left behind.
  EXPECT_EQ(testing::SnapshotDir(upper_).size(), 2u);
}

TEST_F(UnionFsTest, CopyUpKeepsHolesAndLargeFiles) {
  std::string path = lower_ + "/sparse";
  int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "end", 3, 64 << 20), 3);
  close(fd);
  Mount();
  ASSERT_EQ(ops_->Write("sparse", "!", true), 0);
  struct stat st;
  ASSERT_EQ(stat((upper_ + "/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (64 << 20) + 4);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);  // the hole stayed a hole
}

TEST_F(UnionFsTest, TruncateToZeroCopiesNoData) {
  WriteFile(lower_ + "/f", std::string(100000, 'x'));
  Mount();
  ASSERT_EQ(ops_->Truncate("f", 0), 0);
  EXPECT_EQ(ReadFile(upper_ + "/f"), "");
  EXPECT_EQ(Read("f"), "");
}

TEST_F(UnionFsTest, ChmodCopiesMetadataOnlyUntilAWrite) {
  std::string data(1 << 20, 'd');
  WriteFile(lower_ + "/f", data, 0644);
  Mount();
  ASSERT_EQ(ops_->Chmod("f", 0600), 0);
  struct stat st;
  ASSERT_EQ(ops_->Stat("f", &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 1 << 20);
  ASSERT_EQ(stat((upper_ + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);  // no data was copied
  EXPECT_EQ(Read("f"), data);
  NodeId f;
  ASSERT_EQ(ops_->Node("f", &f), 0);
  std::string names;
  ASSERT_EQ(fs_->ListXattr(f, &names), 0);
  EXPECT_EQ(names.find("cairn"), std::string::npos);
  // Seen the same way after a remount, and a write brings the data up in place.
  Mount();
  EXPECT_EQ(Read("f"), data);
  ASSERT_EQ(ops_->Write("f", "!", true), 0);
  EXPECT_EQ(ReadFile(upper_ + "/f"), data + "!");
  ASSERT_EQ(stat((upper_ + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(getxattr((upper_ + "/f").c_str(), "trusted.cairn.metacopy", nullptr, 0), -1);
  ASSERT_EQ(stat((lower_ + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(UnionFsTest, MetadataOnlyCopyRenamesAndDeletesCorrectly) {
  WriteFile(lower_ + "/f", "payload", 0644);
  WriteFile(lower_ + "/g", "other", 0644);
  Mount();
  ASSERT_EQ(ops_->Chmod("f", 0640), 0);
  ASSERT_EQ(ops_->Rename("f", "moved"), 0);  // the data must travel with the name
  EXPECT_EQ(Read("moved"), "payload");
  ASSERT_EQ(ops_->Chmod("g", 0600), 0);
  ASSERT_EQ(ops_->Unlink("g"), 0);  // the lower data source must be whited out too
  NodeId node;
  EXPECT_EQ(ops_->Node("g", &node), -ENOENT);
  Tree expected{{"moved", "f 416:payload"}};
  EXPECT_EQ(Snapshot(), expected);
}

TEST_F(UnionFsTest, UnlinkOfLowerNameWritesWhiteout) {
  WriteFile(lower_ + "/d/f", "x");
  WriteFile(base_ + "/g", "y");
  Mount();
  ASSERT_EQ(ops_->Unlink("d/f"), 0);
  ASSERT_EQ(ops_->Unlink("g"), 0);
  EXPECT_TRUE(Exists(upper_ + "/d/.wh.f"));
  EXPECT_TRUE(Exists(upper_ + "/.wh.g"));
  EXPECT_TRUE(Exists(lower_ + "/d/f"));
  EXPECT_TRUE(Exists(base_ + "/g"));
  NodeId node;
  EXPECT_EQ(ops_->Node("d/f", &node), -ENOENT);
  EXPECT_EQ(ops_->Unlink("d/f"), -ENOENT);
  EXPECT_EQ(ops_->Unlink("d"), -EISDIR);
  // A new file over the whiteout replaces it.
  ASSERT_EQ(ops_->Write("d/f", "new", false), 0);
  EXPECT_FALSE(Exists(upper_ + "/d/.wh.f"));
  EXPECT_EQ(Read("d/f"), "new");
}

// More files than descriptors: nodes whose descriptor was closed reopen it by name, follow renames,
// and a node the kernel still holds after its name is removed keeps answering.
TEST_F(UnionFsTest, NodesBeyondTheDescriptorBudgetReopenByName) {
  for (int i = 0; i < 20; ++i) WriteFile(lower_ + "/d/f" + std::to_string(i), "data" + std::to_string(i));
  Mount(WhiteoutFormat::kAufs, "tdp", 2);
  std::vector<NodeId> nodes(20);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ops_->Node("d/f" + std::to_string(i), &nodes[i]), 0);
  for (int i = 0; i < 20; ++i) {
    struct stat st;
    ASSERT_EQ(fs_->GetAttr(nodes[i], &st), 0) << i;
    EXPECT_EQ(st.st_size, static_cast<off_t>(5 + (i >= 10)));
  }
  EXPECT_EQ(Read("d/f3"), "data3");
  ASSERT_EQ(ops_->Rename("d/f0", "d/moved"), 0);
  ASSERT_EQ(ops_->Write("d/f1", "changed", false), 0);  // copy-up of an evicted node
  for (int i = 2; i < 20; ++i) ops_->Node("d/f" + std::to_string(i), &nodes[i]);  // evicts f0 and f1 again
  struct stat st;
  ASSERT_EQ(fs_->GetAttr(nodes[0], &st), 0);  // reopened under its new name
  EXPECT_EQ(Read("d/moved"), "data0");
  EXPECT_EQ(Read("d/f1"), "changed");
  ASSERT_EQ(ops_->Write("d/up", "upper file", false), 0);
  NodeId up;
  ASSERT_EQ(ops_->Node("d/up", &up), 0);
  for (int i = 2; i < 20; ++i) ops_->Node("d/f" + std::to_string(i), &nodes[i]);
  ASSERT_EQ(ops_->Unlink("d/up"), 0);
  ASSERT_EQ(fs_->GetAttr(up, &st), 0);  // unlinked but still held: like an open file
  EXPECT_EQ(st.st_nlink, 0u);
}

TEST_F(UnionFsTest, UnlinkOfUpperOnlyNameLeavesNoWhiteout) {
  Mount();
  ASSERT_EQ(ops_->Write("f", "x", false), 0);
  ASSERT_EQ(ops_->Unlink("f"), 0);
  EXPECT_TRUE(testing::SnapshotDir(upper_).empty());
}

TEST_F(UnionFsTest, RmdirThenMkdirMakesAnOpaqueDirectory) {
  WriteFile(lower_ + "/d/old", "x");
  Mount();
  EXPECT_EQ(ops_->Rmdir("d"), -ENOTEMPTY);
  ASSERT_EQ(ops_->Unlink("d/old"), 0);
  ASSERT_EQ(ops_->Rmdir("d"), 0);
  EXPECT_TRUE(Exists(upper_ + "/.wh.d"));
  ASSERT_EQ(ops_->Mkdir("d"), 0);
  EXPECT_TRUE(Exists(upper_ + "/d/.wh..wh..opq"));
  EXPECT_FALSE(Exists(upper_ + "/.wh.d"));
  Tree expected{{"d", "d 493"}};
  EXPECT_EQ(Snapshot(), expected);
}

TEST_F(UnionFsTest, RenameLowerFileAndDirectoryWithoutExdev) {
  WriteFile(lower_ + "/f", "file");
  WriteFile(lower_ + "/dir/a", "a");
  WriteFile(base_ + "/dir/sub/b", "b");
  WriteFile(upper_ + "/dir/c", "c");
  Mount();
  ASSERT_EQ(ops_->Rename("f", "g"), 0);
  ASSERT_EQ(ops_->Rename("dir", "moved"), 0);
  Tree expected{{"g", "f 420:file"},         {"moved", "d 493"},         {"moved/a", "f 420:a"},
                {"moved/c", "f 420:c"},      {"moved/sub", "d 493"},     {"moved/sub/b", "f 420:b"}};
  EXPECT_EQ(Snapshot(), expected);
  // The rename survives a remount (whiteouts and opaque markers are on disk).
  Mount();
  EXPECT_EQ(Snapshot(), expected);
  EXPECT_TRUE(Exists(upper_ + "/.wh.dir"));
  EXPECT_TRUE(Exists(upper_ + "/.wh.f"));
}

TEST_F(UnionFsTest, RenameOverExistingNamesFollowsPosix) {
  WriteFile(lower_ + "/a", "a");
  WriteFile(lower_ + "/b", "b");
  WriteFile(lower_ + "/d/x", "x");
  WriteFile(lower_ + "/e/.keep", "");
  Mount();
  ASSERT_EQ(ops_->Mkdir("empty"), 0);
  EXPECT_EQ(ops_->Rename("a", "d"), -EISDIR);
  EXPECT_EQ(ops_->Rename("d", "a"), -ENOTDIR);
  EXPECT_EQ(ops_->Rename("empty", "e"), -ENOTEMPTY);
  EXPECT_EQ(ops_->Rename("missing", "z"), -ENOENT);
  ASSERT_EQ(ops_->Rename("a", "b"), 0);
  EXPECT_EQ(Read("b"), "a");
  ASSERT_EQ(ops_->Unlink("e/.keep"), 0);
  ASSERT_EQ(ops_->Rename("d", "e"), 0);  // over an empty lower directory: result must be opaque
  Tree expected{{"b", "f 420:a"}, {"e", "d 493"}, {"e/x", "f 420:x"}, {"empty", "d 493"}};
  EXPECT_EQ(Snapshot(), expected);
}

TEST_F(UnionFsTest, HardLinkAfterCopyUpIsOneFile) {
  WriteFile(lower_ + "/f", "one");
  Mount();
  ASSERT_EQ(ops_->Link("f", "g"), 0);
  ASSERT_EQ(ops_->Write("g", "two", false), 0);
  EXPECT_EQ(Read("f"), "two");
  struct stat st;
  ASSERT_EQ(ops_->Stat("f", &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(UnionFsTest, SymlinksAndSpecialFilesCopyUp) {
  ASSERT_EQ(symlink("target", (lower_ + "/link").c_str()), 0);
  ASSERT_EQ(mkfifo((lower_ + "/fifo").c_str(), 0600), 0);
  Mount();
  ASSERT_EQ(ops_->Rename("link", "link2"), 0);
  ASSERT_EQ(ops_->Rename("fifo", "fifo2"), 0);
  EXPECT_EQ(testing::Describe(upper_ + "/link2"), "l:target");
  struct stat st;
  ASSERT_EQ(lstat((upper_ + "/fifo2").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(UnionFsTest, LongNamesAndDeepPaths) {
  std::string long_name(255, 'n');
  WriteFile(lower_ + "/" + long_name, "x");
  Mount();
  ASSERT_EQ(ops_->Unlink(long_name), 0);  // ".wh." + 255 bytes does not fit: an overlay-style whiteout
  NodeId node;
  EXPECT_EQ(ops_->Node(long_name, &node), -ENOENT);
  EXPECT_EQ(Snapshot(), Tree{});
  EXPECT_EQ(ops_->Node(std::string(256, 'n'), &node), -ENAMETOOLONG);

  // A path longer than PATH_MAX, built one directory at a time through the node API.
  NodeId dir = kRootNode;
  std::string component(200, 'd');
  for (int depth = 0; depth < 25; ++depth) {
    Entry entry;
    ASSERT_EQ(fs_->Mkdir(dir, component, 0755, Caller{}, &entry), 0) << depth;
    dir = entry.node;
  }
  Entry file;
  int fd = -1;
  ASSERT_EQ(fs_->Create(dir, "leaf", 0644, O_WRONLY, Caller{}, &file, &fd), 0);
  close(fd);
  EXPECT_EQ(fs_->Unlink(dir, "leaf"), 0);
}

TEST_F(UnionFsTest, NoWritableBranchGivesErofs) {
  WriteFile(lower_ + "/f", "x");
  MountOptions options;
  options.branches = {{lower_, BranchMode::kReadOnly}};
  auto fs = UnionFs::Open(options);
  ASSERT_TRUE(fs.ok());
  PathOps ops(fs->get());
  EXPECT_EQ(ops.Write("f", "y", true), -EROFS);
  EXPECT_EQ(ops.Write("new", "y", false), -EROFS);
  EXPECT_EQ(ops.Unlink("f"), -EROFS);
  EXPECT_EQ(ops.Mkdir("d"), -EROFS);
  EXPECT_EQ(ops.Rename("f", "g"), -EROFS);
  EXPECT_EQ(ReadFile(lower_ + "/f"), "x");
}

TEST_F(UnionFsTest, OverlayWhiteoutFormat) {
  WriteFile(lower_ + "/f", "x");
  WriteFile(lower_ + "/d/y", "y");
  Mount(WhiteoutFormat::kOverlay);
  ASSERT_EQ(ops_->Unlink("f"), 0);
  struct stat st;
  ASSERT_EQ(lstat((upper_ + "/f").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  ASSERT_EQ(ops_->Unlink("d/y"), 0);
  ASSERT_EQ(ops_->Rmdir("d"), 0);
  ASSERT_EQ(ops_->Mkdir("d"), 0);
  char value = 0;
  EXPECT_EQ(getxattr((upper_ + "/d").c_str(), "trusted.overlay.opaque", &value, 1), 1);
  EXPECT_EQ(value, 'y');
  ASSERT_EQ(ops_->Write("f", "new", false), 0);
  Tree expected{{"d", "d 493"}, {"f", "f 420:new"}};
  EXPECT_EQ(Snapshot(), expected);
}

TEST_F(UnionFsTest, RoundRobinCreatePolicySpreadsFiles) {
  std::string second = tmp_.Sub("second");
  MountOptions options;
  options.branches = {{upper_, BranchMode::kReadWrite}, {second, BranchMode::kReadWrite}};
  options.create_policy = "rr";
  auto fs = UnionFs::Open(options);
  ASSERT_TRUE(fs.ok());
  PathOps ops(fs->get());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ops.Write("f" + std::to_string(i), "x", false), 0);
  EXPECT_EQ(testing::SnapshotDir(upper_).size(), 2u);
  EXPECT_EQ(testing::SnapshotDir(second).size(), 2u);
}

TEST_F(UnionFsTest, ReservedNamesAreRefused) {
  Mount();
  EXPECT_EQ(ops_->Write(".wh.x", "y", false), -EPERM);
  EXPECT_EQ(ops_->Mkdir(".wh..wh..opq"), -EPERM);
}

}  // namespace
}  // namespace cairn::unionfs

namespace cairn::unionfs {
namespace {

TEST_F(UnionFsTest, LowerHardLinkPairStaysOneFileAfterCopyUpAndRemount) {
  WriteFile(lower_ + "/a", "one");
  ASSERT_EQ(link((lower_ + "/a").c_str(), (lower_ + "/b").c_str()), 0);
  Mount();
  ASSERT_EQ(ops_->Write("a", "+two", true), 0);
  EXPECT_EQ(Read("b"), "one+two");  // b still names the same file
  Mount();                          // a remount finds the copy through the index
  EXPECT_EQ(Read("b"), "one+two");
  ASSERT_EQ(ops_->Write("b", "+three", true), 0);
  EXPECT_EQ(Read("a"), "one+two+three");
  struct stat sa, sb;
  ASSERT_EQ(stat((upper_ + "/a").c_str(), &sa), 0);
  ASSERT_EQ(stat((upper_ + "/b").c_str(), &sb), 0);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(ReadFile(lower_ + "/b"), "one");
  ASSERT_EQ(ops_->Unlink("b"), 0);
  EXPECT_EQ(Read("a"), "one+two+three");
  Tree expected{{"a", "f 420:one+two+three"}};
  EXPECT_EQ(Snapshot(), expected);
}

}  // namespace
}  // namespace cairn::unionfs

namespace cairn::unionfs {
namespace {

TEST_F(UnionFsTest, LiveBranchChangesReresolveKnownNodes) {
  WriteFile(lower_ + "/f", "lower");
  WriteFile(base_ + "/g", "base");
  Mount();
  NodeId f, g;
  ASSERT_EQ(ops_->Node("f", &f), 0);
  ASSERT_EQ(ops_->Node("g", &g), 0);
  std::string extra = tmp_.Sub("extra");
  WriteFile(extra + "/f", "extra");
  // Add a branch between upper and lower: it now provides f.
  auto next = ApplyBranchCommand(fs_->Branches(), "add", "1:" + extra + "=ro");
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(fs_->SetBranches(*next).ok());
  EXPECT_EQ(Read("f"), "extra");
  EXPECT_EQ(fs_->TopBranch(f), 1);
  // Remove base: g is gone, its node answers ENOENT.
  next = ApplyBranchCommand(fs_->Branches(), "del", base_);
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(fs_->SetBranches(*next).ok());
  struct stat st;
  EXPECT_EQ(fs_->GetAttr(g, &st), -ENOENT);
  // Make the only rw branch read-only: writes fail with EROFS.
  next = ApplyBranchCommand(fs_->Branches(), "mod", upper_ + "=ro");
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(fs_->SetBranches(*next).ok());
  EXPECT_EQ(ops_->Write("new", "x", false), -EROFS);
  // Bad lists are refused and leave the union as it was.
  EXPECT_FALSE(fs_->SetBranches({{upper_, BranchMode::kReadWrite}, {upper_, BranchMode::kReadOnly}}).ok());
  EXPECT_EQ(fs_->Branches().size(), 3u);
  fs_->Forget(g, 1);
}

}  // namespace
}  // namespace cairn::unionfs

namespace cairn::unionfs {
namespace {

TEST_F(UnionFsTest, ReadDirSweepsCopyUpTemporariesOfDeadProcesses) {
  WriteFile(upper_ + "/d/.wh..wh.tmp.999999999.1", "half a copy");  // no such pid (above pid_max)
  WriteFile(upper_ + "/d/.wh..wh.tmp." + std::to_string(getpid()) + ".7", "in progress");
  WriteFile(upper_ + "/d/kept", "k");
  Mount();
  Tree expected{{"d", "d 493"}, {"d/kept", "f 420:k"}};
  EXPECT_EQ(Snapshot(), expected);
  EXPECT_FALSE(Exists(upper_ + "/d/.wh..wh.tmp.999999999.1"));
  EXPECT_TRUE(Exists(upper_ + "/d/.wh..wh.tmp." + std::to_string(getpid()) + ".7"));
}

}  // namespace
}  // namespace cairn::unionfs
