// POSIX parity of a mounted replicated volume (replica 3, and 2 sets x replica 2): the same
// syscalls on the mount and on a plain directory give the same results, errno, contents, modes,
// owners and trees. Needs root and /dev/fuse (skipped otherwise).
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>

#include "volume_world.h"

namespace cairn::volumemount::testing {
namespace {

int Rc(long r) { return r < 0 ? -errno : 0; }

using Op = std::function<int(const std::string& root)>;

int WriteOp(const std::string& path, const std::string& data, int flags, mode_t mode = 0644) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | flags, mode);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, data.data(), data.size());
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

int PwriteOp(const std::string& path, const std::string& data, off_t offset) {
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) return -errno;
  ssize_t n = pwrite(fd, data.data(), data.size(), offset);
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

int ReadOp(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return -errno;
  char buffer[65536];
  ssize_t n;
  out->clear();
  while ((n = read(fd, buffer, sizeof buffer)) > 0) out->append(buffer, static_cast<size_t>(n));
  close(fd);
  return n < 0 ? -errno : 0;
}

int Renameat2(const std::string& from, const std::string& to, unsigned flags) {
  return Rc(syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
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

// Everything that must agree per relative path: type, mode, owner, size, nlink, content, link
// target, device number, user.* xattrs (times excluded: the two trees were written at different
// moments).
std::map<std::string, std::string> Tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string path = it->path().string();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid << " nlink=" << st.st_nlink;
    if (S_ISREG(st.st_mode)) {
      std::string content = ReadWhole(path);
      line << " size=" << st.st_size << " hash=" << std::hash<std::string>()(content);
    } else if (S_ISLNK(st.st_mode)) {
      line << " -> " << fs::read_symlink(path).string();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      line << " rdev=" << major(st.st_rdev) << "," << minor(st.st_rdev);
    }
    char names[4096];
    ssize_t n = llistxattr(path.c_str(), names, sizeof names);
    std::vector<std::string> xattrs;
    for (ssize_t at = 0; n > 0 && at < n; at += static_cast<ssize_t>(strlen(names + at)) + 1) {
      std::string name = names + at;
      if (name.rfind("user.", 0) != 0) continue;
      char value[4096];
      ssize_t size = lgetxattr(path.c_str(), name.c_str(), value, sizeof value);
      xattrs.push_back(name + "=" + std::string(value, size > 0 ? size : 0));
    }
    std::sort(xattrs.begin(), xattrs.end());
    for (auto& x : xattrs) line << " " << x;
    out[path.substr(root.size())] = line.str();
  }
  return out;
}

class ParityTest : public ::testing::TestWithParam<WorldOptions> {
 protected:
  void SetUp() override {
    if (!CanMount()) GTEST_SKIP() << "needs root and /dev/fuse";
    world_ = std::make_unique<VolumeWorld>(GetParam());
    world_->Build();
    if (HasFatalFailure()) return;
    world_->Mount();
    if (HasFatalFailure()) return;
    mnt_ = world_->mountpoint();
    plain_ = world_->dir() + "/plain";
    fs::create_directories(plain_);
    umask(022);
  }
  void TearDown() override {
    if (HasFailure() && world_) std::cerr << "---- mount log ----\n" << world_->MountLog();
    world_.reset();
  }

  void Both(const std::string& what, const Op& op) {
    int on_mount = op(mnt_);
    int on_plain = op(plain_);
    EXPECT_EQ(on_mount, on_plain) << what << " (mount " << strerror(-on_mount) << ", plain " << strerror(-on_plain)
                                  << ")";
  }
  void ExpectSameTrees() {
    EXPECT_EQ(Tree(mnt_), Tree(plain_));
    EXPECT_EQ(List(mnt_), List(plain_));
  }

  std::unique_ptr<VolumeWorld> world_;
  std::string mnt_, plain_;
};

TEST_P(ParityTest, EveryOperationMatchesAPlainDirectory) {
  Both("mkdir", [](auto& r) { return Rc(mkdir((r + "/etc").c_str(), 0755)); });
  Both("mkdir nested", [](auto& r) { return Rc(mkdir((r + "/var").c_str(), 0750)); });
  Both("mkdir deeper", [](auto& r) { return Rc(mkdir((r + "/var/log").c_str(), 0700)); });
  Both("mkdir existing", [](auto& r) { return Rc(mkdir((r + "/etc").c_str(), 0755)); });
  Both("mkdir missing parent", [](auto& r) { return Rc(mkdir((r + "/nope/x").c_str(), 0755)); });
  Both("create", [](auto& r) { return WriteOp(r + "/etc/passwd", "root:x:0:0\n", O_TRUNC); });
  Both("create 0600", [](auto& r) { return WriteOp(r + "/etc/shadow", "secret\n", O_TRUNC, 0600); });
  Both("create excl existing", [](auto& r) { return WriteOp(r + "/etc/passwd", "x", O_EXCL); });
  Both("append", [](auto& r) { return WriteOp(r + "/etc/passwd", "user:x:1000:1000\n", O_APPEND); });
  Both("pwrite beyond end (hole)", [](auto& r) { return PwriteOp(r + "/etc/passwd", "tail", 70000); });
  Both("read", [](auto& r) {
    std::string s;
    int rc = ReadOp(r + "/etc/passwd", &s);
    return rc != 0 ? rc : static_cast<int>(s.size());
  });
  Both("read missing", [](auto& r) { std::string s; return ReadOp(r + "/etc/none", &s); });
  Both("truncate shorter", [](auto& r) { return Rc(truncate((r + "/etc/passwd").c_str(), 20)); });
  Both("truncate longer", [](auto& r) { return Rc(truncate((r + "/etc/shadow").c_str(), 5000)); });
  Both("O_TRUNC", [](auto& r) { return WriteOp(r + "/etc/shadow", "new\n", O_TRUNC); });
  Both("chmod", [](auto& r) { return Rc(chmod((r + "/etc/shadow").c_str(), 0640)); });
  Both("chmod dir", [](auto& r) { return Rc(chmod((r + "/var").c_str(), 0711)); });
  Both("chown", [](auto& r) { return Rc(chown((r + "/etc/shadow").c_str(), 1000, 42)); });
  Both("lchown symlinkless", [](auto& r) { return Rc(lchown((r + "/var/log").c_str(), 7, 8)); });
  Both("utimens", [](auto& r) {
    timespec times[2] = {{1000, 5}, {2000, 7}};
    int rc = Rc(utimensat(AT_FDCWD, (r + "/etc/passwd").c_str(), times, 0));
    struct stat st;
    if (rc == 0) rc = Rc(stat((r + "/etc/passwd").c_str(), &st));
    return rc != 0 ? rc : static_cast<int>(st.st_mtim.tv_sec + st.st_mtim.tv_nsec + st.st_atim.tv_sec);
  });
  Both("symlink", [](auto& r) { return Rc(symlink("passwd", (r + "/etc/pw").c_str())); });
  Both("symlink existing", [](auto& r) { return Rc(symlink("x", (r + "/etc/pw").c_str())); });
  Both("readlink", [](auto& r) {
    char buf[64];
    ssize_t n = readlink((r + "/etc/pw").c_str(), buf, sizeof buf);
    return n < 0 ? -errno : static_cast<int>(n);
  });
  Both("readlink of a file", [](auto& r) {
    char buf[64];
    return Rc(readlink((r + "/etc/passwd").c_str(), buf, sizeof buf));
  });
  Both("open through symlink", [](auto& r) { std::string s; return ReadOp(r + "/etc/pw", &s); });
  Both("hard link", [](auto& r) { return Rc(link((r + "/etc/passwd").c_str(), (r + "/var/passwd.link").c_str())); });
  Both("write via link", [](auto& r) { return WriteOp(r + "/var/passwd.link", "via-link\n", O_APPEND); });
  Both("link a dir", [](auto& r) { return Rc(link((r + "/etc").c_str(), (r + "/etc2").c_str())); });
  Both("link existing", [](auto& r) { return Rc(link((r + "/etc/passwd").c_str(), (r + "/etc/shadow").c_str())); });
  Both("mkfifo", [](auto& r) { return Rc(mkfifo((r + "/var/fifo").c_str(), 0600)); });
  Both("mknod char", [](auto& r) { return Rc(mknod((r + "/var/null").c_str(), S_IFCHR | 0666, makedev(1, 3))); });
  Both("fallocate", [](auto& r) {
    int fd = open((r + "/var/big").c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0) return -errno;
    int rc = Rc(fallocate(fd, 0, 0, 1 << 20));
    if (rc == 0) rc = Rc(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 4096));
    struct stat st;
    if (rc == 0) rc = Rc(fstat(fd, &st));
    close(fd);
    return rc != 0 ? rc : static_cast<int>(st.st_size);
  });
  Both("punch hole", [](auto& r) {
    int fd = open((r + "/var/big").c_str(), O_RDWR);
    if (fd < 0) return -errno;
    int rc = Rc(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192));
    close(fd);
    return rc;
  });
  Both("fsync, fdatasync", [](auto& r) {
    int fd = open((r + "/etc/passwd").c_str(), O_RDWR);
    if (fd < 0) return -errno;
    int rc = Rc(fsync(fd));
    if (rc == 0) rc = Rc(fdatasync(fd));
    close(fd);
    return rc;
  });
  Both("fsync dir", [](auto& r) {
    int fd = open((r + "/etc").c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -errno;
    int rc = Rc(fsync(fd));
    close(fd);
    return rc;
  });
  Both("setxattr", [](auto& r) { return Rc(setxattr((r + "/etc/passwd").c_str(), "user.color", "blue", 4, 0)); });
  Both("setxattr dir", [](auto& r) { return Rc(setxattr((r + "/etc").c_str(), "user.kind", "conf", 4, 0)); });
  Both("setxattr create existing", [](auto& r) {
    return Rc(setxattr((r + "/etc/passwd").c_str(), "user.color", "red", 3, XATTR_CREATE));
  });
  Both("setxattr replace missing", [](auto& r) {
    return Rc(setxattr((r + "/etc/passwd").c_str(), "user.none", "x", 1, XATTR_REPLACE));
  });
  Both("getxattr", [](auto& r) {
    char value[16];
    ssize_t n = getxattr((r + "/etc/passwd").c_str(), "user.color", value, sizeof value);
    return n < 0 ? -errno : static_cast<int>(n);
  });
  Both("getxattr size probe", [](auto& r) {
    ssize_t n = getxattr((r + "/etc/passwd").c_str(), "user.color", nullptr, 0);
    return n < 0 ? -errno : static_cast<int>(n);
  });
  Both("getxattr too small", [](auto& r) {
    char value[2];
    return Rc(getxattr((r + "/etc/passwd").c_str(), "user.color", value, sizeof value));
  });
  Both("getxattr missing", [](auto& r) {
    char value[16];
    return Rc(getxattr((r + "/etc/passwd").c_str(), "user.none", value, sizeof value));
  });
  Both("listxattr", [](auto& r) {
    char names[256];
    ssize_t n = listxattr((r + "/etc/passwd").c_str(), names, sizeof names);
    return n < 0 ? -errno : static_cast<int>(n);
  });
  Both("removexattr", [](auto& r) { return Rc(removexattr((r + "/etc/passwd").c_str(), "user.color")); });
  Both("removexattr missing", [](auto& r) { return Rc(removexattr((r + "/etc/passwd").c_str(), "user.color")); });
  Both("rename file", [](auto& r) { return Rc(rename((r + "/etc/shadow").c_str(), (r + "/etc/shadow.bak").c_str())); });
  Both("rename over file", [](auto& r) {
    WriteOp(r + "/etc/a", "A", O_TRUNC);
    return Rc(rename((r + "/etc/a").c_str(), (r + "/etc/shadow.bak").c_str()));
  });
  Both("rename noreplace", [](auto& r) {
    WriteOp(r + "/etc/b", "B", O_TRUNC);
    return Renameat2(r + "/etc/b", r + "/etc/passwd", RENAME_NOREPLACE);
  });
  // Two files on different replica sets cannot trade places (the brick protocol renames within
  // one set): EXDEV, as between two file systems. Where the mount refuses, the plain side skips.
  int exchanged = Renameat2(mnt_ + "/etc/b", mnt_ + "/etc/passwd", RENAME_EXCHANGE);
  if (GetParam().sets == 1 || exchanged == 0) {
    EXPECT_EQ(exchanged, Renameat2(plain_ + "/etc/b", plain_ + "/etc/passwd", RENAME_EXCHANGE));
  } else {
    EXPECT_EQ(exchanged, -EXDEV);
  }
  Both("rename dir", [](auto& r) { return Rc(rename((r + "/var/log").c_str(), (r + "/var/logs").c_str())); });
  Both("rename dir into itself", [](auto& r) { return Rc(rename((r + "/var").c_str(), (r + "/var/logs/x").c_str())); });
  Both("rename over non-empty dir", [](auto& r) { return Rc(rename((r + "/etc2x").c_str(), (r + "/var").c_str())); });
  Both("rename file over dir", [](auto& r) { return Rc(rename((r + "/etc/passwd").c_str(), (r + "/var").c_str())); });
  Both("rename dir over file", [](auto& r) { return Rc(rename((r + "/var/logs").c_str(), (r + "/etc/passwd").c_str())); });
  Both("rename missing", [](auto& r) { return Rc(rename((r + "/nope").c_str(), (r + "/nope2").c_str())); });
  Both("unlink", [](auto& r) { return Rc(unlink((r + "/etc/pw").c_str())); });
  Both("unlink missing", [](auto& r) { return Rc(unlink((r + "/etc/pw").c_str())); });
  Both("unlink dir", [](auto& r) { return Rc(unlink((r + "/etc").c_str())); });
  Both("rmdir non-empty", [](auto& r) { return Rc(rmdir((r + "/var").c_str())); });
  Both("rmdir file", [](auto& r) { return Rc(rmdir((r + "/etc/passwd").c_str())); });
  Both("rmdir", [](auto& r) { return Rc(rmdir((r + "/var/logs").c_str())); });
  Both("file as dir", [](auto& r) { return Rc(mkdir((r + "/etc/passwd/x").c_str(), 0755)); });
  Both("name too long", [](auto& r) { return WriteOp(r + "/" + std::string(256, 'n'), "x", 0); });
  Both("name of 255 bytes", [](auto& r) { return WriteOp(r + "/" + std::string(255, 'n'), "x", 0); });
  Both("open a dir for writing", [](auto& r) { return Rc(open((r + "/etc").c_str(), O_WRONLY)); });
  ExpectSameTrees();
  EXPECT_EQ(List(mnt_ + "/etc"), List(plain_ + "/etc"));
  struct statvfs st;
  ASSERT_EQ(statvfs(mnt_.c_str(), &st), 0) << strerror(errno);
  EXPECT_GT(st.f_blocks, 0u);
  EXPECT_EQ(st.f_namemax, 255u);
}

// Many files in one directory: readdir(plus) pages, every name once, stat of each.
TEST_P(ParityTest, LargeDirectoriesListEveryNameOnce) {
  for (auto* root : {&mnt_, &plain_}) {
    ASSERT_EQ(mkdir((*root + "/many").c_str(), 0755), 0);
    for (int i = 0; i < 600; ++i) {
      std::string name = *root + "/many/f" + std::to_string(i);
      ASSERT_EQ(WriteOp(name, std::to_string(i), O_TRUNC), 0) << name;
    }
    for (int i = 0; i < 20; ++i) ASSERT_EQ(mkdir((*root + "/many/d" + std::to_string(i)).c_str(), 0755), 0);
  }
  EXPECT_EQ(List(mnt_ + "/many"), List(plain_ + "/many"));
  ExpectSameTrees();
}

// An unlinked file that is still open stays readable and writable (brick keep_id), and its id is
// dropped from the bricks once it is closed and forgotten.
TEST_P(ParityTest, UnlinkedOpenFileStaysUsable) {
  for (auto* root : {&mnt_, &plain_}) {
    std::string path = *root + "/tmpfile";
    int fd = open(path.c_str(), O_RDWR | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "before", 6), 6);
    ASSERT_EQ(unlink(path.c_str()), 0);
    ASSERT_EQ(pwrite(fd, "after!", 6, 6), 6);
    char buf[32] = {};
    ASSERT_EQ(pread(fd, buf, sizeof buf, 0), 12) << *root;
    EXPECT_EQ(std::string(buf, 12), "beforeafter!");
    struct stat st;
    ASSERT_EQ(fstat(fd, &st), 0);
    EXPECT_EQ(st.st_nlink, 0u) << *root;
    // A rename that replaces an open file keeps it usable too.
    ASSERT_EQ(WriteOp(*root + "/victim", "victim", O_TRUNC), 0);
    int victim = open((*root + "/victim").c_str(), O_RDONLY);
    ASSERT_GE(victim, 0);
    ASSERT_EQ(WriteOp(*root + "/other", "other", O_TRUNC), 0);
    ASSERT_EQ(rename((*root + "/other").c_str(), (*root + "/victim").c_str()), 0);
    ASSERT_EQ(pread(victim, buf, sizeof buf, 0), 6) << *root;
    EXPECT_EQ(std::string(buf, 6), "victim");
    close(victim);
    close(fd);
  }
  ExpectSameTrees();
  // Once the kernel forgot them, the mount sent brick.Forget: no index entry without a name is left.
  auto orphans = [&] {
    int count = 0;
    for (size_t b = 0; b < world_->brick_count(); ++b) {
      for (auto& entry : fs::recursive_directory_iterator(world_->brick(b).root() + "/.cairn/ids")) {
        struct stat st;
        if (lstat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) ++count;
      }
    }
    return count;
  };
  EXPECT_TRUE(test_support::WaitFor([&] { return orphans() == 0; }, 10s)) << orphans() << " kept ids never forgotten";
}

INSTANTIATE_TEST_SUITE_P(Layouts, ParityTest,
                         ::testing::Values(WorldOptions{.replica = 3, .sets = 1}, WorldOptions{.replica = 2, .sets = 2}),
                         [](const auto& info) {
                           return "replica" + std::to_string(info.param.replica) + "x" + std::to_string(info.param.sets);
                         });

}  // namespace
}  // namespace cairn::volumemount::testing
