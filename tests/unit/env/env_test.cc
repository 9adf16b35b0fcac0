// Env parity: the same sequence of calls on PosixEnv (in a temp dir) and on MemEnv must give the same
// results, error codes and side effects.
#include "cairn/env/env.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace cairn::env {
namespace {

enum class Kind { kPosix, kMem };

class EnvParityTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kPosix) {
      env_ = NewPosixEnv();
      std::string pattern = (std::filesystem::temp_directory_path() / "cairn-env-XXXXXX").string();
      ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
      root_ = pattern;
    } else {
      env_ = NewMemEnv();
      root_ = "/mem";
      ASSERT_TRUE(env_->CreateDir(root_).ok());
    }
  }
  void TearDown() override {
    if (GetParam() == Kind::kPosix) std::filesystem::remove_all(root_);
  }
  std::string Path(std::string_view name) const { return JoinPath(root_, name); }

  std::unique_ptr<Env> env_;
  std::string root_;
};

TEST_P(EnvParityTest, WriteAppendReadBack) {
  auto file = env_->NewWritableFile(Path("a"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  EXPECT_EQ((*file)->Size(), 11u);
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ((*file)->Close().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(env_->ReadFile(Path("a")).value(), "hello world");
  EXPECT_EQ(env_->FileSize(Path("a")).value(), 11u);
  EXPECT_EQ(env_->ReadRange(Path("a"), 6, 3).value(), "wor");
  EXPECT_EQ(env_->ReadRange(Path("a"), 9, 100).value(), "ld");
  EXPECT_EQ(env_->ReadRange(Path("a"), 50, 10).value(), "");

  auto again = env_->NewAppendableFile(Path("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Size(), 11u);
  ASSERT_TRUE((*again)->Append("!").ok());
  ASSERT_TRUE((*again)->Close().ok());
  EXPECT_EQ(env_->ReadFile(Path("a")).value(), "hello world!");

  auto truncating = env_->NewWritableFile(Path("a"));
  ASSERT_TRUE(truncating.ok());
  EXPECT_EQ((*truncating)->Size(), 0u);
  EXPECT_EQ(env_->ReadFile(Path("a")).value(), "");
}

TEST_P(EnvParityTest, TruncateThroughHandleAndPath) {
  auto file = env_->NewWritableFile(Path("t"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("0123456789").ok());
  ASSERT_TRUE((*file)->Truncate(4).ok());
  ASSERT_TRUE((*file)->Append("xy").ok());  // appends go to the new end, no hole
  EXPECT_EQ(env_->ReadFile(Path("t")).value(), "0123xy");
  ASSERT_TRUE(env_->Truncate(Path("t"), 2).ok());
  EXPECT_EQ(env_->ReadFile(Path("t")).value(), "01");
  ASSERT_TRUE(env_->Truncate(Path("t"), 4).ok());
  EXPECT_EQ(env_->ReadFile(Path("t")).value(), std::string("01\0\0", 4));
  EXPECT_EQ(env_->Truncate(Path("missing"), 0).code(), StatusCode::kNotFound);
}

TEST_P(EnvParityTest, DirectoriesListRenameRemove) {
  ASSERT_TRUE(env_->CreateDir(Path("d")).ok());
  EXPECT_EQ(env_->CreateDir(Path("d")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(env_->CreateDir(Path("x/y")).code(), StatusCode::kNotFound);
  for (const char* name : {"d/b", "d/a", "d/c"}) {
    auto file = env_->NewWritableFile(Path(name));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append(name).ok());
  }
  ASSERT_TRUE(env_->CreateDir(Path("d/sub")).ok());
  EXPECT_EQ(env_->ListDir(Path("d")).value(), (std::vector<std::string>{"a", "b", "c", "sub"}));
  EXPECT_EQ(env_->ListDir(Path("nope")).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(env_->Rename(Path("d/a"), Path("d/b")).ok());  // replaces b
  EXPECT_EQ(env_->ReadFile(Path("d/b")).value(), "d/a");
  EXPECT_FALSE(env_->FileExists(Path("d/a")));
  EXPECT_EQ(env_->Rename(Path("d/a"), Path("d/z")).code(), StatusCode::kNotFound);
  ASSERT_TRUE(env_->SyncDir(Path("d")).ok());

  EXPECT_EQ(env_->RemoveDir(Path("d")).code(), StatusCode::kIoError);  // ENOTEMPTY
  ASSERT_TRUE(env_->RemoveFile(Path("d/b")).ok());
  EXPECT_EQ(env_->RemoveFile(Path("d/b")).code(), StatusCode::kNotFound);
  EXPECT_EQ(env_->ReadFile(Path("d/b")).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(RemoveDirRecursively(env_.get(), Path("d")).ok());
  EXPECT_FALSE(env_->FileExists(Path("d")));
  EXPECT_TRUE(RemoveDirRecursively(env_.get(), Path("d")).ok());
}

TEST_P(EnvParityTest, CreateDirsAndAtomicWrite) {
  ASSERT_TRUE(CreateDirs(env_.get(), Path("p/q/r")).ok());
  ASSERT_TRUE(CreateDirs(env_.get(), Path("p/q/r")).ok());
  ASSERT_TRUE(WriteFileAtomically(env_.get(), Path("p/q/r/f"), "one").ok());
  ASSERT_TRUE(WriteFileAtomically(env_.get(), Path("p/q/r/f"), "two").ok());
  EXPECT_EQ(env_->ReadFile(Path("p/q/r/f")).value(), "two");
  EXPECT_EQ(env_->ListDir(Path("p/q/r")).value(), std::vector<std::string>{"f"});
}

TEST_P(EnvParityTest, OpenInMissingDirFails) {
  EXPECT_EQ(env_->NewWritableFile(Path("no/f")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env_->NewAppendableFile(Path("no/f")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env_->FileSize(Path("f")).status().code(), StatusCode::kNotFound);
  Status status = env_->ReadFile(Path("f")).status();
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_NE(status.message().find(Path("f")), std::string::npos) << status;  // names the path
}

TEST_P(EnvParityTest, LockIsExclusiveUntilReleased) {
  auto first = env_->LockFile(Path("LOCK"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = env_->LockFile(Path("LOCK"));
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  first->reset();
  auto third = env_->LockFile(Path("LOCK"));
  EXPECT_TRUE(third.ok()) << third.status();
}

TEST_P(EnvParityTest, RemovedFileStaysWritableThroughHandle) {
  auto file = env_->NewWritableFile(Path("gone"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(env_->RemoveFile(Path("gone")).ok());
  EXPECT_TRUE((*file)->Append("still fine").ok());
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_FALSE(env_->FileExists(Path("gone")));
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvParityTest, ::testing::Values(Kind::kPosix, Kind::kMem),
                         [](const auto& info) { return info.param == Kind::kPosix ? "Posix" : "Mem"; });

TEST(PathTest, JoinDirBase) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("/a/b"), "/a");
  EXPECT_EQ(DirName("/a"), "/");
  EXPECT_EQ(DirName("a"), ".");
  EXPECT_EQ(DirName("/a/b/"), "/a");
  EXPECT_EQ(BaseName("/a/b"), "b");
  EXPECT_EQ(BaseName("b"), "b");
}

}  // namespace
}  // namespace cairn::env
