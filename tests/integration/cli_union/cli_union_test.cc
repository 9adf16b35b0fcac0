// clusterctl union verbs against real unionmount processes: mount, show, live branch changes,
// umount, and the errors for bad input. Needs root and /dev/fuse (skipped otherwise). Every test
// unmounts in TearDown, also when it failed half-way.
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "mount_guard.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::IsMounted;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

class CliUnionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
    upper_ = tmp_.Sub("upper");
    lower_ = tmp_.Sub("lower");
    extra_ = tmp_.Sub("extra");
    mnt_ = tmp_.Sub("mnt");
  }
  void TearDown() override {
    if (IsMounted(mnt_)) umount2(mnt_.c_str(), MNT_DETACH);
  }
  // Runs clusterctl with args; returns the exit code, output (stdout and stderr) in *out.
  int Ctl(const std::string& args, std::string* out) {
    return RunCommand(std::string(CLUSTERCTL_BIN) + " " + args, out);
  }
  int Mount(std::string* out) {
    return Ctl("union mount --branch " + upper_ + "=rw --branch " + lower_ + "=ro " + mnt_, out);
  }

  TempDir tmp_;
  std::string upper_, lower_, extra_, mnt_;
};

TEST_F(CliUnionTest, MountShowChangeBranchesAndUmount) {
  WriteFile(lower_ + "/base.txt", "from lower");
  WriteFile(extra_ + "/extra.txt", "from extra");
  std::string out;
  ASSERT_EQ(Mount(&out), 0) << out;
  ASSERT_TRUE(IsMounted(mnt_)) << "mount returned before the union was mounted";
  EXPECT_EQ(ReadFile(mnt_ + "/base.txt"), "from lower");

  ASSERT_EQ(Ctl("union show " + mnt_, &out), 0) << out;
  EXPECT_NE(out.find("0      rw    " + upper_), std::string::npos) << out;
  EXPECT_NE(out.find("1      ro    " + lower_), std::string::npos) << out;
  ASSERT_EQ(Ctl("-o json union show " + mnt_, &out), 0) << out;
  EXPECT_EQ(out, "{\"mountpoint\":\"" + mnt_ + "\",\"branches\":[{\"index\":0,\"path\":\"" + upper_ +
                     "\",\"perm\":\"rw\"},{\"index\":1,\"path\":\"" + lower_ + "\",\"perm\":\"ro\"}]}\n");

  // A new branch is visible at once, at the position asked for.
  ASSERT_EQ(Ctl("union branch add " + mnt_ + " " + extra_ + " --position 1 --perm rr", &out), 0) << out;
  EXPECT_NE(out.find("1      rr    " + extra_), std::string::npos) << out;
  EXPECT_EQ(ReadFile(mnt_ + "/extra.txt"), "from extra");
  ASSERT_EQ(Ctl("union branch mod " + mnt_ + " " + extra_ + " --perm ro", &out), 0) << out;
  EXPECT_NE(out.find("1      ro    " + extra_), std::string::npos) << out;

  // Writes go to the upper branch; the lower ones stay untouched.
  WriteFile(mnt_ + "/extra.txt", "changed");
  EXPECT_EQ(ReadFile(upper_ + "/extra.txt"), "changed");
  EXPECT_EQ(ReadFile(extra_ + "/extra.txt"), "from extra");

  ASSERT_EQ(Ctl("union branch del " + mnt_ + " " + lower_, &out), 0) << out;
  EXPECT_EQ(out.find(lower_), std::string::npos) << out;
  EXPECT_NE(access((mnt_ + "/base.txt").c_str(), F_OK), 0);

  ASSERT_EQ(Ctl("union umount " + mnt_, &out), 0) << out;
  EXPECT_FALSE(IsMounted(mnt_));
}

TEST_F(CliUnionTest, BadInputGivesClearErrors) {
  std::string out;
  // Before anything is mounted.
  EXPECT_EQ(Ctl("union show " + mnt_, &out), 1);
  EXPECT_NE(out.find("is not a unionmount mount point"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union umount " + mnt_, &out), 1);
  EXPECT_NE(out.find("is not a unionmount mount point"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union mount --branch " + tmp_.path() + "/missing=rw " + mnt_, &out), 1);
  EXPECT_NE(out.find("missing: No such file or directory"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union mount --branch " + upper_ + "=rw --branch " + upper_ + "/=ro " + mnt_, &out), 1);
  EXPECT_NE(out.find("given twice"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union mount --branch " + upper_ + "=rx " + mnt_, &out), 1);
  EXPECT_NE(out.find("rx"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union mount --branch " + tmp_.path() + "=rw " + mnt_, &out), 1);  // mount point inside
  EXPECT_NE(out.find("inside"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union mount " + mnt_, &out), 2) << out;  // --branch is required
  EXPECT_FALSE(IsMounted(mnt_));

  ASSERT_EQ(Mount(&out), 0) << out;
  EXPECT_EQ(Mount(&out), 1);
  EXPECT_NE(out.find("already a union mount"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union branch add " + mnt_ + " " + tmp_.path() + "/missing", &out), 1);
  EXPECT_NE(out.find("No such file or directory"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union branch add " + mnt_ + " " + lower_, &out), 1);
  EXPECT_NE(out.find("already in the union"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union branch add " + mnt_ + " " + extra_ + " --position 7", &out), 1);
  EXPECT_NE(out.find("index 7"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union branch del " + mnt_ + " " + extra_, &out), 1);
  EXPECT_NE(out.find("no branch " + extra_), std::string::npos) << out;
  EXPECT_EQ(Ctl("union branch mod " + mnt_ + " " + lower_ + " --perm xx", &out), 1);
  EXPECT_NE(out.find("xx"), std::string::npos) << out;
  EXPECT_EQ(Ctl("union show " + mnt_ + "/no-such-dir", &out), 1);
  // A subdirectory of the union is not its mount point.
  WriteFile(lower_ + "/d/f", "x");
  EXPECT_EQ(Ctl("union show " + mnt_ + "/d", &out), 1);
  EXPECT_NE(out.find("is not a unionmount mount point"), std::string::npos) << out;
  // None of that changed the union.
  ASSERT_EQ(Ctl("-o json union show " + mnt_, &out), 0) << out;
  EXPECT_EQ(out.find(extra_), std::string::npos) << out;
  ASSERT_EQ(Ctl("union umount " + mnt_, &out), 0) << out;
}

}  // namespace
}  // namespace cairn::unionfs
