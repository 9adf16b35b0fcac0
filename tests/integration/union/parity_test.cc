// POSIX parity of a mounted unionmount: the same syscalls on the mount and on a plain directory that
// holds the naively merged copy must give the same results, errno and trees. Needs root and /dev/fuse.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "mount_guard.h"
#include "random_tree.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::Exists;
using testing::NaiveMerge;
using testing::RandomTrees;
using testing::ReadFile;
using testing::SnapshotDir;
using testing::TempDir;
using testing::UnionMount;
using testing::WriteFile;

int Rc(int r) { return r < 0 ? -errno : 0; }

// Each op takes the root it works under and returns 0 or -errno.
using Op = std::function<int(const std::string& root)>;

int WriteOp(const std::string& path, const std::string& data, int flags) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | flags, 0644);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, data.data(), data.size());
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

int ReadOp(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return -errno;
  char buffer[4096];
  ssize_t n;
  out->clear();
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out->append(buffer, static_cast<size_t>(n));
  close(fd);
  return n < 0 ? -errno : 0;
}

// Sorted names from readdir(3), "." and ".." included.
std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return {"<" + std::string(strerror(errno)) + ">"};
  while (struct dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

class ParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
    upper_ = tmp_.Sub("upper");
    lower_ = tmp_.Sub("lower");
    base_ = tmp_.Sub("base");
    plain_ = tmp_.Sub("plain");
    mnt_ = tmp_.Sub("mnt");
  }
  std::string Options(const std::string& extra = "") {
    return "dirs=" + upper_ + "=rw:" + lower_ + "=ro:" + base_ + "=rr" + extra;
  }
  void MountMerged(const std::string& extra = "") {
    NaiveMerge({{true, upper_}, {true, lower_}, {false, base_}}, plain_);
    mount_ = std::make_unique<UnionMount>(Options(extra), mnt_);
    std::string error;
    ASSERT_TRUE(mount_->Start(&error)) << error;
  }
  // Runs op on both roots and checks the results agree.
  void Both(const std::string& what, const Op& op) {
    int on_mount = op(mnt_);
    int on_plain = op(plain_);
    EXPECT_EQ(on_mount, on_plain) << what << " (mount " << strerror(-on_mount) << ", plain " << strerror(-on_plain) << ")";
  }
  void ExpectSameTrees() {
    EXPECT_EQ(SnapshotDir(mnt_), SnapshotDir(plain_));
    EXPECT_EQ(List(mnt_), List(plain_));
  }

  TempDir tmp_;
  std::string upper_, lower_, base_, plain_, mnt_;
  std::unique_ptr<UnionMount> mount_;
};

TEST_F(ParityTest, ScriptedSequenceMatchesPlainDirectory) {
  WriteFile(lower_ + "/etc/passwd", "root:x:0:0\n");
  WriteFile(lower_ + "/etc/hosts", "127.0.0.1 localhost\n", 0600);
  WriteFile(base_ + "/usr/bin/sh", "#!elf", 0755);
  WriteFile(base_ + "/usr/lib/libc.so", std::string(300000, 'c'));
  WriteFile(lower_ + "/var/log/old.log", "old");
  ASSERT_EQ(symlink("../usr/bin/sh", (lower_ + "/etc/shell").c_str()), 0);
  MountMerged();
  ExpectSameTrees();
  auto P = [](const std::string& rel) { return [rel](const std::string& root) { return root + "/" + rel; }; };
  (void)P;
  Both("append", [](auto& r) { return WriteOp(r + "/etc/passwd", "user:x:1000:1000\n", O_APPEND); });
  Both("truncate", [](auto& r) { return Rc(truncate((r + "/usr/lib/libc.so").c_str(), 1000)); });
  Both("chmod", [](auto& r) { return Rc(chmod((r + "/etc/hosts").c_str(), 0644)); });
  Both("rename file", [](auto& r) { return Rc(rename((r + "/etc/hosts").c_str(), (r + "/etc/hosts.bak").c_str())); });
  Both("rename dir", [](auto& r) { return Rc(rename((r + "/var/log").c_str(), (r + "/var/logs").c_str())); });
  Both("rename dir into itself", [](auto& r) { return Rc(rename((r + "/usr").c_str(), (r + "/usr/bin/x").c_str())); });
  Both("unlink lower", [](auto& r) { return Rc(unlink((r + "/usr/bin/sh").c_str())); });
  Both("unlink missing", [](auto& r) { return Rc(unlink((r + "/usr/bin/sh").c_str())); });
  Both("rmdir non-empty", [](auto& r) { return Rc(rmdir((r + "/usr").c_str())); });
  Both("rmdir emptied", [](auto& r) { return Rc(rmdir((r + "/usr/bin").c_str())); });
  Both("mkdir again", [](auto& r) { return Rc(mkdir((r + "/usr/bin").c_str(), 0755)); });
  Both("mkdir existing", [](auto& r) { return Rc(mkdir((r + "/etc").c_str(), 0755)); });
  Both("create excl existing", [](auto& r) { return WriteOp(r + "/etc/passwd", "x", O_EXCL); });
  Both("hard link", [](auto& r) { return Rc(link((r + "/etc/passwd").c_str(), (r + "/etc/passwd.link").c_str())); });
  Both("write via link", [](auto& r) { return WriteOp(r + "/etc/passwd.link", "via-link\n", O_APPEND); });
  Both("link a dir", [](auto& r) { return Rc(link((r + "/etc").c_str(), (r + "/etc2").c_str())); });
  Both("symlink", [](auto& r) { return Rc(symlink("passwd", (r + "/etc/pw").c_str())); });
  Both("open through symlink", [](auto& r) { std::string s; return ReadOp(r + "/etc/pw", &s); });
  Both("unlink symlink", [](auto& r) { return Rc(unlink((r + "/etc/shell").c_str())); });
  Both("file as dir", [](auto& r) { return Rc(mkdir((r + "/etc/passwd/x").c_str(), 0755)); });
  Both("rmdir file", [](auto& r) { return Rc(rmdir((r + "/etc/passwd").c_str())); });
  Both("unlink dir", [](auto& r) { return Rc(unlink((r + "/etc").c_str())); });
  Both("rename over dir", [](auto& r) { return Rc(rename((r + "/etc/passwd").c_str(), (r + "/var").c_str())); });
  Both("rename dir over file", [](auto& r) { return Rc(rename((r + "/var").c_str(), (r + "/etc/passwd").c_str())); });
  Both("mkfifo", [](auto& r) { return Rc(mkfifo((r + "/var/fifo").c_str(), 0600)); });
  ExpectSameTrees();
  EXPECT_EQ(List(mnt_ + "/etc"), List(plain_ + "/etc"));
  struct stat a, b;
  ASSERT_EQ(stat((mnt_ + "/etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(stat((mnt_ + "/etc/passwd.link").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  // The lower branches are untouched.
  EXPECT_EQ(ReadFile(lower_ + "/etc/passwd"), "root:x:0:0\n");
  EXPECT_TRUE(Exists(base_ + "/usr/bin/sh"));
}

TEST_F(ParityTest, UpperBranchRecordsWhiteoutsAndOpaqueDirs) {
  WriteFile(lower_ + "/a/file", "x");
  WriteFile(lower_ + "/b/inner/file", "y");
  MountMerged();
  ASSERT_EQ(unlink((mnt_ + "/a/file").c_str()), 0);
  ASSERT_EQ(std::system(("rm -rf " + mnt_ + "/b").c_str()), 0);
  EXPECT_TRUE(Exists(upper_ + "/a/.wh.file"));
  EXPECT_TRUE(Exists(upper_ + "/.wh.b"));
  ASSERT_EQ(mkdir((mnt_ + "/b").c_str(), 0755), 0);
  EXPECT_TRUE(Exists(upper_ + "/b/.wh..wh..opq"));
  EXPECT_FALSE(Exists(upper_ + "/.wh.b"));
  EXPECT_EQ(List(mnt_ + "/b"), (std::vector<std::string>{".", ".."}));
  EXPECT_EQ(List(mnt_ + "/a"), (std::vector<std::string>{".", ".."}));
}

TEST_F(ParityTest, RandomSequencesMatchAndSurviveRemount) {
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir tmp;
    upper_ = tmp.Sub("upper"), lower_ = tmp.Sub("lower"), base_ = tmp.Sub("base");
    plain_ = tmp.Sub("plain"), mnt_ = tmp.Sub("mnt");
    RandomTrees random(seed);
    random.Fill(upper_, 1, true);
    random.Fill(lower_, 1, true);
    random.Fill(base_, 1, false);
    MountMerged();
    ExpectSameTrees();
    for (int step = 0; step < 60; ++step) {
      std::string a = random.Path(), b = random.Path(), data = random.Content();
      int kind = random.Below(9);
      std::string what = std::to_string(step) + ": op " + std::to_string(kind) + " " + a + " " + b;
      switch (kind) {
        case 0: Both(what, [&](auto& r) { return WriteOp(r + "/" + a, data, O_TRUNC); }); break;
        case 1: Both(what, [&](auto& r) { return WriteOp(r + "/" + a, data, O_APPEND); }); break;
        case 2: Both(what, [&](auto& r) { return Rc(mkdir((r + "/" + a).c_str(), 0755)); }); break;
        case 3: Both(what, [&](auto& r) { return Rc(unlink((r + "/" + a).c_str())); }); break;
        case 4: Both(what, [&](auto& r) { return Rc(rmdir((r + "/" + a).c_str())); }); break;
        case 5: Both(what, [&](auto& r) { return Rc(rename((r + "/" + a).c_str(), (r + "/" + b).c_str())); }); break;
        case 6: Both(what, [&](auto& r) { return Rc(truncate((r + "/" + a).c_str(), 1)); }); break;
        case 7: Both(what, [&](auto& r) { return Rc(chmod((r + "/" + a).c_str(), 0600)); }); break;
        case 8: Both(what, [&](auto& r) { return Rc(link((r + "/" + a).c_str(), (r + "/" + b).c_str())); }); break;
      }
      if (HasFailure()) break;
    }
    ExpectSameTrees();
    mount_->Stop();
    mount_ = std::make_unique<UnionMount>(Options(), mnt_);
    std::string error;
    ASSERT_TRUE(mount_->Start(&error)) << error;
    EXPECT_EQ(SnapshotDir(mnt_), SnapshotDir(plain_)) << "after remount";
    mount_.reset();
    if (HasFailure()) return;
  }
}

TEST_F(ParityTest, LongNamesDeepPathsAndLargeSparseFiles) {
  std::string long_name(255, 'x');
  WriteFile(lower_ + "/" + long_name, "long");
  MountMerged();
  // Made after the merged copy so the reference copy does not write a whole GiB.
  int fd = open((lower_ + "/sparse").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "tail", 4, 1LL << 30), 4);
  close(fd);
  EXPECT_EQ(ReadFile(mnt_ + "/" + long_name), "long");
  ASSERT_EQ(unlink((mnt_ + "/" + long_name).c_str()), 0);
  EXPECT_FALSE(Exists(mnt_ + "/" + long_name));
  ASSERT_EQ(WriteOp(mnt_ + "/sparse", "!", O_APPEND), 0);
  struct stat st;
  ASSERT_EQ(stat((upper_ + "/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (1LL << 30) + 5);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
  // Deeper than PATH_MAX from the mount's root, walked with *at() calls.
  int dir = open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  std::string component(250, 'd');
  for (int depth = 0; depth < 20; ++depth) {
    ASSERT_EQ(mkdirat(dir, component.c_str(), 0755), 0) << depth;
    int next = openat(dir, component.c_str(), O_RDONLY | O_DIRECTORY);
    close(dir);
    ASSERT_GE(next, 0);
    dir = next;
  }
  int file = openat(dir, "leaf", O_CREAT | O_WRONLY, 0644);
  EXPECT_GE(file, 0);
  if (file >= 0) close(file);
  close(dir);
}

TEST_F(ParityTest, ReadOnlyUnionGivesErofs) {
  WriteFile(lower_ + "/f", "x");
  mount_ = std::make_unique<UnionMount>("dirs=" + lower_ + "=ro", mnt_);
  std::string error;
  ASSERT_TRUE(mount_->Start(&error)) << error;
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "x");
  EXPECT_EQ(WriteOp(mnt_ + "/f", "y", O_APPEND), -EROFS);
  EXPECT_EQ(WriteOp(mnt_ + "/g", "y", 0), -EROFS);
  EXPECT_EQ(Rc(unlink((mnt_ + "/f").c_str())), -EROFS);
}

TEST_F(ParityTest, ConcurrentCreatesRenamesAndReads) {
  for (int i = 0; i < 50; ++i) WriteFile(lower_ + "/shared/l" + std::to_string(i), "lower" + std::to_string(i));
  MountMerged();
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        std::string name = mnt_ + "/shared/t" + std::to_string(t) + "_" + std::to_string(i);
        if (WriteOp(name, "data" + std::to_string(i), 0) != 0) ++errors;
        if (rename(name.c_str(), (name + ".done").c_str()) != 0) ++errors;
        std::string content;
        if (ReadOp(mnt_ + "/shared/l" + std::to_string((t * 7 + i) % 50), &content) != 0) ++errors;
        if (WriteOp(mnt_ + "/shared/l" + std::to_string(t), "+", O_APPEND) != 0) ++errors;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(ReadFile(mnt_ + "/shared/t" + std::to_string(t) + "_39.done"), "data39");
    EXPECT_EQ(ReadFile(mnt_ + "/shared/l" + std::to_string(t)), "lower" + std::to_string(t) + std::string(40, '+'));
  }
  EXPECT_EQ(List(mnt_ + "/shared").size(), 2u + 50u + 8u * 40u);
}

int SetControl(const std::string& mnt, const std::string& command, const std::string& value) {
  return Rc(setxattr(mnt.c_str(), ("user.unionmount." + command).c_str(), value.data(), value.size(), 0));
}

std::string Branches(const std::string& mnt) {
  char buffer[4096];
  ssize_t n = getxattr(mnt.c_str(), "user.unionmount.branches", buffer, sizeof buffer);
  return n < 0 ? "<" + std::string(strerror(errno)) + ">" : std::string(buffer, static_cast<size_t>(n));
}

TEST_F(ParityTest, LiveBranchChangesAreVisibleAtOnce) {
  WriteFile(lower_ + "/f", "lower");
  std::string extra = tmp_.Sub("extra");
  WriteFile(extra + "/f", "extra");
  WriteFile(extra + "/only-extra", "x");
  MountMerged();
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "lower");
  EXPECT_FALSE(Exists(mnt_ + "/only-extra"));
  ASSERT_EQ(SetControl(mnt_, "add", "1:" + extra + "=ro"), 0);
  EXPECT_EQ(Branches(mnt_), upper_ + "=rw:" + extra + "=ro:" + lower_ + "=ro:" + base_ + "=rr");
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "extra");
  EXPECT_TRUE(Exists(mnt_ + "/only-extra"));
  ASSERT_EQ(SetControl(mnt_, "del", extra), 0);
  EXPECT_EQ(ReadFile(mnt_ + "/f"), "lower");
  EXPECT_FALSE(Exists(mnt_ + "/only-extra"));
  ASSERT_EQ(SetControl(mnt_, "mod", upper_ + "=ro"), 0);
  EXPECT_EQ(WriteOp(mnt_ + "/new", "x", 0), -EROFS);
  ASSERT_EQ(SetControl(mnt_, "mod", upper_ + "=rw"), 0);
  EXPECT_EQ(WriteOp(mnt_ + "/new", "x", 0), 0);
  // Refused changes: a branch inside the mount, an unknown branch, a bad command.
  EXPECT_EQ(SetControl(mnt_, "add", mnt_ + "/new"), -EINVAL);
  EXPECT_EQ(SetControl(mnt_, "del", "/nonexistent"), -EINVAL);
  EXPECT_EQ(SetControl(mnt_, "swap", "/x"), -EINVAL);
  EXPECT_EQ(Branches(mnt_), upper_ + "=rw:" + lower_ + "=ro:" + base_ + "=rr");
}

bool HasTempFile(const std::string& dir) {
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind(".wh..wh.tmp.", 0) == 0) return true;
  }
  return false;
}

TEST_F(ParityTest, KillDuringCopyUpLeavesAConsistentUnion) {
  std::string big(256 << 20, 'b');
  WriteFile(lower_ + "/big", big);
  big.clear();
  mount_ = std::make_unique<UnionMount>(Options(), mnt_);
  std::string error;
  ASSERT_TRUE(mount_->Start(&error)) << error;
  std::thread writer([&] { WriteOp(mnt_ + "/big", "tail", O_APPEND); });  // copy-up starts at open
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool caught = false;
  while (std::chrono::steady_clock::now() < deadline && !(caught = HasTempFile(upper_))) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  mount_->Kill();
  mount_->Stop();
  writer.join();
  // Whether or not the kill landed mid-copy, the union after a remount is either the old file or the
  // completely copied one with the append; never a partial copy.
  mount_ = std::make_unique<UnionMount>(Options(), mnt_);
  ASSERT_TRUE(mount_->Start(&error)) << error;
  struct stat st;
  ASSERT_EQ(stat((mnt_ + "/big").c_str(), &st), 0);
  EXPECT_TRUE(st.st_size == (256 << 20) || st.st_size == (256 << 20) + 4) << st.st_size;
  EXPECT_EQ(List(mnt_), (std::vector<std::string>{".", "..", "big"}));
  EXPECT_FALSE(HasTempFile(upper_));  // the dead process's temporary was swept by the listing
  if (!caught) GTEST_LOG_(INFO) << "the copy-up finished before the kill; consistency still checked";
}

TEST_F(ParityTest, FullUpperGivesEnospcWithoutDamage) {
  std::string small = tmp_.Sub("small");
  ASSERT_EQ(mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  std::string data(4 << 20, 'x');
  WriteFile(lower_ + "/large", data);
  mount_ = std::make_unique<UnionMount>("dirs=" + small + "=rw:" + lower_ + "=ro", mnt_);
  std::string error;
  ASSERT_TRUE(mount_->Start(&error)) << error;
  EXPECT_EQ(WriteOp(mnt_ + "/large", "more", O_APPEND), -ENOSPC);
  EXPECT_EQ(ReadFile(mnt_ + "/large"), data);
  EXPECT_EQ(ReadFile(lower_ + "/large"), data);
  EXPECT_EQ(List(mnt_), (std::vector<std::string>{".", "..", "large"}));
  EXPECT_EQ(List(small), (std::vector<std::string>{".", ".."}));  // the partial copy was removed
  mount_.reset();
}

class BadInputTest : public ::testing::Test {
 protected:
  std::string Run(const std::string& args, int* code) {
    std::string output;
    *code = testing::RunCommand(std::string(UNIONMOUNT_BIN) + " " + args, &output);
    return output;
  }
  TempDir tmp_;
};

TEST_F(BadInputTest, MountHelperAndFuseOverlayfsConventionsReturnOnceMounted) {
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  std::string upper = tmp_.Sub("upper"), lower = tmp_.Sub("lower"), work = tmp_.Sub("work"), mnt = tmp_.Sub("mnt");
  WriteFile(lower + "/f", "from lower");
  struct Unmount {
    std::string path;
    ~Unmount() {
      if (testing::IsMounted(path)) umount2(path.c_str(), MNT_DETACH);
    }
  } unmount{mnt};
  int code = 0;
  // mount(8) helper style: SOURCE MOUNTPOINT -o OPTIONS; returns once the mount is ready.
  std::string output = Run(upper + "=rw:" + lower + "=ro " + mnt + " -o timeout=1", &code);
  ASSERT_EQ(code, 0) << output;
  EXPECT_TRUE(testing::IsMounted(mnt));
  EXPECT_EQ(ReadFile(mnt + "/f"), "from lower");
  ASSERT_EQ(umount2(mnt.c_str(), 0), 0);
  // fuse-overlayfs style options.
  output = Run("-o lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work + " " + mnt, &code);
  ASSERT_EQ(code, 0) << output;
  EXPECT_TRUE(testing::IsMounted(mnt));
  ASSERT_EQ(unlink((mnt + "/f").c_str()), 0);
  EXPECT_TRUE(Exists(upper + "/.wh.f"));
  ASSERT_EQ(umount2(mnt.c_str(), 0), 0);
}

TEST_F(BadInputTest, ClearErrorsForBadBranchesAndMountPoints) {
  std::string upper = tmp_.Sub("upper"), mnt = tmp_.Sub("mnt"), inside = tmp_.Sub("upper/mnt");
  int code = 0;
  EXPECT_NE(Run("-o dirs=" + upper + "=rw:" + tmp_.path() + "/missing=ro " + mnt, &code).find("missing"), std::string::npos);
  EXPECT_EQ(code, 1);
  EXPECT_NE(Run("-o dirs=" + upper + "=rw:" + upper + "=ro " + mnt, &code).find("given twice"), std::string::npos);
  EXPECT_EQ(code, 1);
  EXPECT_NE(Run("-o dirs=" + upper + "=rw " + inside, &code).find("overlaps branch"), std::string::npos);
  EXPECT_EQ(code, 1);
  EXPECT_NE(Run("-o dirs=" + upper + "=rw", &code).find("no mount point"), std::string::npos);
  EXPECT_EQ(code, 1);
  EXPECT_NE(Run("-o dirs=" + upper + "=rw,create=fast " + mnt, &code).find("create policy"), std::string::npos);
  EXPECT_EQ(code, 1);
  EXPECT_NE(Run("--help", &code).find("usage: unionmount"), std::string::npos);
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace cairn::unionfs
