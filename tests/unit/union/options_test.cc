#include "cairn/union/options.h"

#include <gtest/gtest.h>

#include "cairn/union/policy.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::TempDir;

TEST(ParseBranchList, ParsesModesAndDefaults) {
  auto branches = ParseBranchList("/u=rw:/b=ro:/c=rr:/d");
  ASSERT_TRUE(branches.ok()) << branches.status();
  ASSERT_EQ(branches->size(), 4u);
  EXPECT_EQ((*branches)[0].path, "/u");
  EXPECT_EQ((*branches)[0].mode, BranchMode::kReadWrite);
  EXPECT_EQ((*branches)[1].mode, BranchMode::kReadOnly);
  EXPECT_EQ((*branches)[2].mode, BranchMode::kRealReadOnly);
  EXPECT_EQ((*branches)[3].mode, BranchMode::kReadOnly);
  auto first = ParseBranchList("/only");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)[0].mode, BranchMode::kReadWrite);
}

TEST(ParseBranchList, RejectsBadInput) {
  EXPECT_FALSE(ParseBranchList("").ok());
  EXPECT_FALSE(ParseBranchList("/a=rw::/b").ok());
  EXPECT_FALSE(ParseBranchList("relative=rw").ok());
  auto bad_mode = ParseBranchList("/a=wr");
  ASSERT_FALSE(bad_mode.ok());
  EXPECT_NE(bad_mode.status().message().find("use rw, ro or rr"), std::string::npos);
}

TEST(ParseMountOptionString, ReadsUnionOptionsAndPassesOthers) {
  MountOptions options;
  std::string rest;
  ASSERT_TRUE(ParseMountOptionString("allow_other,dirs=/u=rw:/l=ro,create=mfs,whiteout=overlay", &options, &rest).ok());
  EXPECT_EQ(options.branches.size(), 2u);
  EXPECT_EQ(options.create_policy, "mfs");
  EXPECT_EQ(options.whiteout, WhiteoutFormat::kOverlay);
  EXPECT_EQ(rest, "allow_other");
  EXPECT_FALSE(ParseMountOptionString("create=fastest", &options, nullptr).ok());
  ASSERT_TRUE(ParseMountOptionString("timeout=2.5", &options, nullptr).ok());
  EXPECT_EQ(options.cache_timeout, 2.5);
  EXPECT_FALSE(ParseMountOptionString("timeout=soon", &options, nullptr).ok());
  EXPECT_FALSE(ParseMountOptionString("timeout=-1", &options, nullptr).ok());
  EXPECT_EQ(options.lower_cache_timeout, 600.0);
  ASSERT_TRUE(ParseMountOptionString("rotimeout=3600", &options, nullptr).ok());
  EXPECT_EQ(options.lower_cache_timeout, 3600.0);
  EXPECT_EQ(options.cache_timeout, 2.5);
  auto bad = ParseMountOptionString("rotimeout=forever", &options, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("rotimeout=forever"), std::string::npos) << bad.message();
  EXPECT_FALSE(ParseMountOptionString("whiteout=zfs", &options, nullptr).ok());
}

TEST(ParseMountOptionString, AcceptsFuseOverlayfsOptions) {
  MountOptions options;
  ASSERT_TRUE(ParseMountOptionString("lowerdir=/a:/b,upperdir=/u,workdir=/w", &options, nullptr).ok());
  ASSERT_EQ(options.branches.size(), 3u);
  EXPECT_EQ(options.branches[0].path, "/u");
  EXPECT_EQ(options.branches[0].mode, BranchMode::kReadWrite);
  EXPECT_EQ(options.branches[1].path, "/a");
  EXPECT_EQ(options.branches[2].mode, BranchMode::kReadOnly);
}

TEST(ValidateMountOptions, RejectsMissingIdenticalAndOverlapping) {
  TempDir tmp;
  std::string upper = tmp.Sub("upper"), lower = tmp.Sub("lower"), mnt = tmp.Sub("mnt");
  MountOptions good{{{upper, BranchMode::kReadWrite}, {lower, BranchMode::kReadOnly}}};
  EXPECT_TRUE(ValidateMountOptions(good, mnt).ok());

  MountOptions missing{{{upper, BranchMode::kReadWrite}, {tmp.path() + "/nope", BranchMode::kReadOnly}}};
  EXPECT_FALSE(ValidateMountOptions(missing, mnt).ok());

  testing::WriteFile(tmp.path() + "/file", "x");
  MountOptions not_dir{{{tmp.path() + "/file", BranchMode::kReadWrite}}};
  EXPECT_NE(ValidateMountOptions(not_dir, mnt).message().find("not a directory"), std::string::npos);

  MountOptions twice{{{upper, BranchMode::kReadWrite}, {upper + "/.", BranchMode::kReadOnly}}};
  EXPECT_NE(ValidateMountOptions(twice, mnt).message().find("twice"), std::string::npos);

  std::string inside = tmp.Sub("upper/mnt");
  EXPECT_NE(ValidateMountOptions(good, inside).message().find("overlaps"), std::string::npos);
}

TEST(CreatePolicy, TopDownParentPrefersExistingParent) {
  auto policy = MakeCreatePolicy("tdp");
  ASSERT_TRUE(policy.ok());
  std::vector<CreateCandidate> candidates{{0, false, 0}, {2, true, 0}};
  EXPECT_EQ((*policy)->Choose(candidates), 1u);
  candidates[1].parent_exists = false;
  EXPECT_EQ((*policy)->Choose(candidates), 0u);
}

TEST(CreatePolicy, RoundRobinAndMostFreeSpace) {
  auto rr = MakeCreatePolicy("rr");
  ASSERT_TRUE(rr.ok());
  std::vector<CreateCandidate> candidates{{0, true, 10}, {1, true, 30}, {2, false, 20}};
  EXPECT_EQ((*rr)->Choose(candidates), 0u);
  EXPECT_EQ((*rr)->Choose(candidates), 1u);
  EXPECT_EQ((*rr)->Choose(candidates), 2u);
  EXPECT_EQ((*rr)->Choose(candidates), 0u);
  auto mfs = MakeCreatePolicy("mfs");
  ASSERT_TRUE(mfs.ok());
  EXPECT_TRUE((*mfs)->needs_free_space());
  EXPECT_EQ((*mfs)->Choose(candidates), 1u);
  EXPECT_FALSE(MakeCreatePolicy("random").ok());
}

}  // namespace
}  // namespace cairn::unionfs

namespace cairn::unionfs {
namespace {

TEST(ApplyBranchCommand, AddDelModSet) {
  std::vector<BranchSpec> current{{"/u", BranchMode::kReadWrite}, {"/l", BranchMode::kReadOnly}};
  auto added = ApplyBranchCommand(current, "add", "1:/m=rr");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(FormatBranchList(*added), "/u=rw:/m=rr:/l=ro");
  auto top = ApplyBranchCommand(current, "add", "/t");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(FormatBranchList(*top), "/t=ro:/u=rw:/l=ro");
  auto removed = ApplyBranchCommand(current, "del", "/u");
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(FormatBranchList(*removed), "/l=ro");
  auto modified = ApplyBranchCommand(current, "mod", "/l=rw");
  ASSERT_TRUE(modified.ok());
  EXPECT_EQ(FormatBranchList(*modified), "/u=rw:/l=rw");
  EXPECT_EQ(FormatBranchList(ApplyBranchCommand(current, "set", "/x=rw").value()), "/x=rw");
  EXPECT_FALSE(ApplyBranchCommand(current, "del", "/nope").ok());
  EXPECT_FALSE(ApplyBranchCommand(current, "add", "9:/z").ok());
  EXPECT_FALSE(ApplyBranchCommand(current, "add", "/u").ok());
  EXPECT_FALSE(ApplyBranchCommand(current, "mod", "/l").ok());
  EXPECT_FALSE(ApplyBranchCommand(current, "swap", "/l").ok());
  EXPECT_FALSE(ApplyBranchCommand({{"/u", BranchMode::kReadWrite}}, "del", "/u").ok());
}

}  // namespace
}  // namespace cairn::unionfs
