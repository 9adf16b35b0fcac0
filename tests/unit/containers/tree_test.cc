#include "cairn/containers/tree.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace cairn::containers {
namespace {

namespace fs = std::filesystem;

class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-tree-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    source_ = dir_ + "/source";
    fs::create_directories(source_ + "/etc/deep");
    std::ofstream(source_ + "/etc/passwd") << "root:x:0:0::/root:/bin/sh\n";
    std::ofstream(source_ + "/etc/deep/file") << "deep";
    fs::create_symlink("/etc/passwd", source_ + "/link");
    ASSERT_EQ(link((source_ + "/etc/passwd").c_str(), (source_ + "/hard").c_str()), 0);
    ASSERT_EQ(chmod((source_ + "/etc/deep/file").c_str(), 0640), 0);
    ASSERT_EQ(mkfifo((source_ + "/fifo").c_str(), 0600), 0);
    std::ofstream(source_ + "/.wh.gone");  // a whiteout is just a file to the tree helpers
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, source_;
};

TEST_F(TreeTest, CopyKeepsContentModesLinksAndDigest) {
  std::string copy = dir_ + "/copy";
  ASSERT_TRUE(CopyTree(source_, copy).ok());
  EXPECT_EQ(fs::read_symlink(copy + "/link"), "/etc/passwd");
  struct stat a, b;
  ASSERT_EQ(lstat((copy + "/etc/passwd").c_str(), &a), 0);
  ASSERT_EQ(lstat((copy + "/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "hard links stay one file";
  ASSERT_EQ(lstat((copy + "/etc/deep/file").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  ASSERT_EQ(lstat((copy + "/fifo").c_str(), &a), 0);
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  auto digest_source = DigestTree(source_), digest_copy = DigestTree(copy);
  ASSERT_TRUE(digest_source.ok()) << digest_source.status();
  ASSERT_TRUE(digest_copy.ok());
  EXPECT_EQ(*digest_source, *digest_copy);
  EXPECT_EQ(digest_source->rfind("sha256:", 0), 0u);
  EXPECT_EQ(digest_source->size(), 7u + 64u);
}

TEST_F(TreeTest, DigestChangesWithContentModeAndNames) {
  std::string before = DigestTree(source_).value();
  std::ofstream(source_ + "/etc/deep/file") << "DEEP";
  std::string content = DigestTree(source_).value();
  EXPECT_NE(before, content);
  ASSERT_EQ(chmod((source_ + "/etc/deep/file").c_str(), 0600), 0);
  std::string mode = DigestTree(source_).value();
  EXPECT_NE(content, mode);
  fs::rename(source_ + "/etc/deep/file", source_ + "/etc/deep/file2");
  EXPECT_NE(mode, DigestTree(source_).value());
  // Times are not part of the digest.
  std::string now = DigestTree(source_).value();
  struct timespec times[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (source_ + "/etc/deep/file2").c_str(), times, 0), 0);
  EXPECT_EQ(now, DigestTree(source_).value());
}

TEST_F(TreeTest, MeasureCountsEntriesAndHardLinksOnce) {
  auto stats = MeasureTree(source_);
  ASSERT_TRUE(stats.ok());
  // etc, etc/passwd, etc/deep, etc/deep/file, link, hard, fifo, .wh.gone
  EXPECT_EQ(stats->entries, 8u);
  uint64_t passwd = fs::file_size(source_ + "/etc/passwd");
  EXPECT_EQ(stats->size_bytes, 2 * passwd + 4 + std::string("/etc/passwd").size());
  EXPECT_GT(stats->disk_bytes, 0u);
}

TEST_F(TreeTest, CopyKeepsHoles) {
  std::string sparse = source_ + "/sparse";
  int fd = open(sparse.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "x", 1, 64 << 20), 1);
  close(fd);
  ASSERT_TRUE(CopyTree(source_, dir_ + "/copy").ok());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/copy/sparse").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (64 << 20) + 1);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the hole was written out";
}

TEST_F(TreeTest, ErrorsAreClear) {
  EXPECT_EQ(DigestTree(dir_ + "/missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CopyTree(source_, source_ + "/etc").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(CopyTree(dir_ + "/missing", dir_ + "/x").code(), StatusCode::kNotFound);
  EXPECT_TRUE(RemoveTree(dir_ + "/missing").ok());
}

}  // namespace
}  // namespace cairn::containers
