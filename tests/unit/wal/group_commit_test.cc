// GroupCommitWal: concurrent callers share fsyncs and every acknowledged entry is durable.
#include "cairn/wal/group_commit.h"

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/env/fault_injection_env.h"
#include "wal_test_util.h"

namespace cairn::wal {
namespace {

using testing::MakeEntries;
using testing::OpenOrDie;

// An Env whose file Syncs wait at a gate the test opens, so a test can hold the writer inside an
// fsync while more callers queue up. Everything else is forwarded to a MemEnv.
class GatedEnv final : public env::Env {
 public:
  void CloseGate() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void OpenGate() {
    std::lock_guard lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Waits (with a deadline) until a Sync is blocked at the gate.
  bool WaitForBlockedSync() {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return blocked_ > 0; });
  }

  Result<std::unique_ptr<env::WritableFile>> NewWritableFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path));
    return std::unique_ptr<env::WritableFile>(new File(this, std::move(file)));
  }
  Result<std::unique_ptr<env::WritableFile>> NewAppendableFile(const std::string& path) override {
    CAIRN_ASSIGN_OR_RETURN(auto file, base_->NewAppendableFile(path));
    return std::unique_ptr<env::WritableFile>(new File(this, std::move(file)));
  }
  Result<std::string> ReadFile(const std::string& p) override { return base_->ReadFile(p); }
  Result<std::string> ReadRange(const std::string& p, uint64_t o, size_t n) override { return base_->ReadRange(p, o, n); }
  Result<uint64_t> FileSize(const std::string& p) override { return base_->FileSize(p); }
  bool FileExists(const std::string& p) override { return base_->FileExists(p); }
  Result<std::vector<std::string>> ListDir(const std::string& d) override { return base_->ListDir(d); }
  Status Rename(const std::string& f, const std::string& t) override { return base_->Rename(f, t); }
  Status RemoveFile(const std::string& p) override { return base_->RemoveFile(p); }
  Status Truncate(const std::string& p, uint64_t s) override { return base_->Truncate(p, s); }
  Status CreateDir(const std::string& d) override { return base_->CreateDir(d); }
  Status RemoveDir(const std::string& d) override { return base_->RemoveDir(d); }
  Status SyncDir(const std::string& d) override { return base_->SyncDir(d); }
  Result<std::unique_ptr<env::FileLock>> LockFile(const std::string& p) override { return base_->LockFile(p); }

 private:
  class File final : public env::WritableFile {
   public:
    File(GatedEnv* env, std::unique_ptr<env::WritableFile> base) : env_(env), base_(std::move(base)) {}
    Status Append(std::string_view data) override { return base_->Append(data); }
    Status Sync() override {
      env_->PassGate();
      return base_->Sync();
    }
    Status Truncate(uint64_t size) override { return base_->Truncate(size); }
    Status Close() override { return base_->Close(); }
    uint64_t Size() const override { return base_->Size(); }

   private:
    GatedEnv* env_;
    std::unique_ptr<env::WritableFile> base_;
  };

  void PassGate() {
    std::unique_lock lock(mu_);
    ++blocked_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    --blocked_;
  }

  std::unique_ptr<env::Env> base_ = env::NewMemEnv();
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = true;
  int blocked_ = 0;
};

TEST(GroupCommitTest, CallersQueuedDuringAnFsyncShareTheNextOne) {
  GatedEnv env;
  GroupCommitWal wal(OpenOrDie(&env, "/wal").wal);
  env.CloseGate();
  std::thread first([&] { EXPECT_EQ(wal.AppendNext(1, 0, "first").value_or(0), 1u); });
  ASSERT_TRUE(env.WaitForBlockedSync());
  constexpr int kWaiting = 9;
  std::vector<std::thread> others;
  std::vector<uint64_t> indices(kWaiting);
  for (int i = 0; i < kWaiting; ++i) {
    others.emplace_back([&, i] { indices[i] = wal.AppendNext(1, 0, "x" + std::to_string(i)).value_or(0); });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (wal.QueuedCount() < kWaiting && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_EQ(wal.QueuedCount(), static_cast<size_t>(kWaiting));
  env.OpenGate();
  first.join();
  for (auto& t : others) t.join();
  EXPECT_EQ(wal.GroupCount(), 2u);  // one fsync for the first caller, one for the nine
  std::set<uint64_t> unique(indices.begin(), indices.end());
  EXPECT_EQ(unique, (std::set<uint64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_TRUE(wal.Close().ok());
  EXPECT_EQ(OpenOrDie(&env, "/wal").recovered.entries.size(), 10u);
}

TEST(GroupCommitTest, ManyThreadsEveryAcknowledgedEntrySurvivesACrash) {
  auto base = env::NewMemEnv();
  env::FaultInjectionEnv env(base.get());
  std::atomic<int> acknowledged{0};
  {
    GroupCommitWal wal(OpenOrDie(&env, "/wal").wal);
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 40; ++i) {
          if (wal.AppendNext(1, 0, "t" + std::to_string(t) + "-" + std::to_string(i)).ok()) ++acknowledged;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_LE(wal.GroupCount(), 240u);
    // No Close: the crash comes first.
    ASSERT_TRUE(env.DropUnsyncedData().ok());
  }
  auto base_reopened = OpenOrDie(&env, "/wal");
  EXPECT_EQ(acknowledged.load(), 240);
  EXPECT_EQ(base_reopened.recovered.entries.size(), 240u);
  for (size_t i = 0; i < base_reopened.recovered.entries.size(); ++i) {
    EXPECT_EQ(base_reopened.recovered.entries[i].index, i + 1);
  }
}

TEST(GroupCommitTest, ExplicitIndicesAndErrors) {
  auto env = env::NewMemEnv();
  GroupCommitWal wal(OpenOrDie(env.get(), "/wal").wal);
  ASSERT_TRUE(wal.Append({1, 1, 3}, MakeEntries(1, 3, 1)).ok());
  EXPECT_EQ(wal.Append({}, MakeEntries(7, 1, 1)).code(), StatusCode::kInvalidArgument);  // gap
  EXPECT_EQ(wal.AppendNext(1, 0, "d").value_or(0), 4u);
  ASSERT_TRUE(wal.Close().ok());
  EXPECT_EQ(wal.AppendNext(1, 0, "late").status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cairn::wal
