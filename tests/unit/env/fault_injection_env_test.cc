// FaultInjectionEnv: a simulated crash keeps exactly what was synced; injected faults fail cleanly.
#include "cairn/env/fault_injection_env.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace cairn::env {
namespace {

enum class Base { kPosix, kMem };

class FaultInjectionEnvTest : public ::testing::TestWithParam<Base> {
 protected:
  void SetUp() override {
    if (GetParam() == Base::kPosix) {
      base_ = NewPosixEnv();
      std::string pattern = (std::filesystem::temp_directory_path() / "cairn-fault-XXXXXX").string();
      ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
      root_ = pattern;
    } else {
      base_ = NewMemEnv();
      root_ = "/mem";
      ASSERT_TRUE(base_->CreateDir(root_).ok());
    }
    env_ = std::make_unique<FaultInjectionEnv>(base_.get());
  }
  void TearDown() override {
    env_.reset();
    if (GetParam() == Base::kPosix) std::filesystem::remove_all(root_);
  }
  std::string Path(std::string_view name) const { return JoinPath(root_, name); }

  void WriteNew(std::string_view name, std::string_view data, bool sync_file, bool sync_dir) {
    auto file = env_->NewWritableFile(Path(name));
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(data).ok());
    if (sync_file) {
      ASSERT_TRUE((*file)->Sync().ok());
    }
    ASSERT_TRUE((*file)->Close().ok());
    if (sync_dir) {
      ASSERT_TRUE(env_->SyncDir(DirName(Path(name))).ok());
    }
  }

  std::unique_ptr<Env> base_;
  std::unique_ptr<FaultInjectionEnv> env_;
  std::string root_;
};

TEST_P(FaultInjectionEnvTest, CrashKeepsOnlySyncedBytes) {
  auto file = env_->NewWritableFile(Path("log"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(env_->SyncDir(root_).ok());
  ASSERT_TRUE((*file)->Append("durable").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Append("-lost").ok());
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("log")).value(), "durable");
  // The old handle is dead after the crash.
  EXPECT_EQ((*file)->Append("x").code(), StatusCode::kIoError);
}

TEST_P(FaultInjectionEnvTest, UnsyncedCreationVanishes) {
  WriteNew("synced-data-only", "abc", /*sync_file=*/true, /*sync_dir=*/false);
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_FALSE(env_->FileExists(Path("synced-data-only")));

  WriteNew("fully-synced", "abc", true, true);
  WriteNew("entry-synced-data-not", "abc", false, true);
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("fully-synced")).value(), "abc");
  EXPECT_EQ(env_->ReadFile(Path("entry-synced-data-not")).value(), "");
}

TEST_P(FaultInjectionEnvTest, UnsyncedRenameIsUndone) {
  WriteNew("target", "old", true, true);
  WriteNew("target.tmp", "new", true, false);
  ASSERT_TRUE(env_->Rename(Path("target.tmp"), Path("target")).ok());
  EXPECT_EQ(env_->ReadFile(Path("target")).value(), "new");
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("target")).value(), "old");
  EXPECT_FALSE(env_->FileExists(Path("target.tmp")));

  // With the directory synced, the rename survives.
  ASSERT_TRUE(WriteFileAtomically(env_.get(), Path("target"), "newer").ok());
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("target")).value(), "newer");
}

TEST_P(FaultInjectionEnvTest, UnsyncedRemovalIsUndone) {
  auto file = env_->NewWritableFile(Path("keep"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("synced").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Append("+unsynced").ok());
  ASSERT_TRUE(env_->SyncDir(root_).ok());
  ASSERT_TRUE(env_->RemoveFile(Path("keep")).ok());
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("keep")).value(), "synced");

  ASSERT_TRUE(env_->RemoveFile(Path("keep")).ok());
  ASSERT_TRUE(env_->SyncDir(root_).ok());
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_FALSE(env_->FileExists(Path("keep")));
}

TEST_P(FaultInjectionEnvTest, UnsyncedDirectoryVanishesWithContents) {
  ASSERT_TRUE(env_->CreateDir(Path("d")).ok());
  WriteNew("d/f", "x", true, true);  // synced inside d, but d itself is not synced in root
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_FALSE(env_->FileExists(Path("d")));

  ASSERT_TRUE(env_->CreateDir(Path("d")).ok());
  ASSERT_TRUE(env_->SyncDir(root_).ok());
  WriteNew("d/f", "x", true, true);
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("d/f")).value(), "x");
}

TEST_P(FaultInjectionEnvTest, PreexistingFilesAreDurable) {
  auto file = base_->NewWritableFile(Path("before"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("from before").ok());
  ASSERT_TRUE((*file)->Close().ok());
  auto appending = env_->NewAppendableFile(Path("before"));
  ASSERT_TRUE(appending.ok());
  ASSERT_TRUE((*appending)->Append(" and after").ok());
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("before")).value(), "from before");
}

TEST_P(FaultInjectionEnvTest, SyncFailureSyncsNothing) {
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(env_->SyncDir(root_).ok());
  ASSERT_TRUE((*file)->Append("data").ok());
  env_->SetSyncFailure(true);
  EXPECT_EQ((*file)->Sync().code(), StatusCode::kIoError);
  EXPECT_EQ(env_->SyncDir(root_).code(), StatusCode::kIoError);
  env_->ClearFaults();
  ASSERT_TRUE(env_->DropUnsyncedData().ok());
  EXPECT_EQ(env_->ReadFile(Path("f")).value(), "");
}

TEST_P(FaultInjectionEnvTest, NoSpaceWritesWhatFits) {
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  env_->SetNoSpaceAfter(5);
  ASSERT_TRUE((*file)->Append("abc").ok());
  Status status = (*file)->Append("defg");
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find(Path("f")), std::string::npos) << status;
  EXPECT_EQ(env_->ReadFile(Path("f")).value(), "abcde");
  EXPECT_EQ((*file)->Append("h").code(), StatusCode::kResourceExhausted);
  env_->ClearFaults();
  EXPECT_TRUE((*file)->Append("h").ok());
}

TEST_P(FaultInjectionEnvTest, NthAppendFails) {
  auto file = env_->NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  env_->FailNthAppend(2);
  EXPECT_TRUE((*file)->Append("1").ok());
  EXPECT_EQ((*file)->Append("2").code(), StatusCode::kIoError);
  EXPECT_TRUE((*file)->Append("3").ok());
  EXPECT_EQ(env_->ReadFile(Path("f")).value(), "13");
}

INSTANTIATE_TEST_SUITE_P(Bases, FaultInjectionEnvTest, ::testing::Values(Base::kPosix, Base::kMem),
                         [](const auto& info) { return info.param == Base::kPosix ? "Posix" : "Mem"; });

}  // namespace
}  // namespace cairn::env
