// WAL behaviour without crashes: round trip, rollover, suffix overwrite, snapshots, restart.
#include "cairn/wal/wal.h"

#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "wal_test_util.h"

namespace cairn::wal {
namespace {

using testing::Indices;
using testing::MakeEntries;
using testing::MakeEntry;
using testing::OpenOrDie;

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(env_->CreateDir("/data").ok()); }
  std::unique_ptr<env::Env> env_ = env::NewMemEnv();
  const std::string dir_ = "/data/wal";
};

TEST_F(WalTest, FreshDirectoryRecoversNothing) {
  Opened opened = OpenOrDie(env_.get(), dir_);
  ASSERT_TRUE(opened.wal);
  EXPECT_TRUE(opened.recovered.hard_state.IsEmpty());
  EXPECT_FALSE(opened.recovered.snapshot.has_value());
  EXPECT_TRUE(opened.recovered.entries.empty());
  EXPECT_EQ(opened.wal->LastIndex(), 0u);
  EXPECT_EQ(opened.wal->SegmentCount(), 1u);
}

TEST_F(WalTest, RoundTripEntriesAndHardState) {
  auto entries = MakeEntries(1, 10, 1);
  entries[3].data = std::string("with\0nul", 8);
  entries[4].data.clear();
  {
    Opened opened = OpenOrDie(env_.get(), dir_);
    ASSERT_TRUE(opened.wal->Save({1, 7, 0}, std::span(entries).first(4), false).ok());
    ASSERT_TRUE(opened.wal->Save({1, 7, 4}, std::span(entries).subspan(4), true).ok());
    EXPECT_EQ(opened.wal->LastIndex(), 10u);
    ASSERT_TRUE(opened.wal->Close().ok());
  }
  Opened reopened = OpenOrDie(env_.get(), dir_);
  EXPECT_EQ(reopened.recovered.entries, entries);
  EXPECT_EQ(reopened.recovered.hard_state, (HardState{1, 7, 4}));
  EXPECT_EQ(reopened.recovered.truncated_bytes, 0u);
  EXPECT_EQ(reopened.wal->LastIndex(), 10u);
}

TEST_F(WalTest, HardStateAloneIsSaved) {
  {
    Opened opened = OpenOrDie(env_.get(), dir_);
    ASSERT_TRUE(opened.wal->Save({3, 2, 0}, {}, true).ok());
  }
  EXPECT_EQ(OpenOrDie(env_.get(), dir_).recovered.hard_state, (HardState{3, 2, 0}));
}

TEST_F(WalTest, SegmentsRollOverAndRecoverInOrder) {
  Options options;
  options.segment_bytes = 400;
  std::vector<Entry> all;
  {
    Opened opened = OpenOrDie(env_.get(), dir_, options);
    for (uint64_t first = 1; first <= 100; first += 5) {
      auto batch = MakeEntries(first, 5, 1);
      ASSERT_TRUE(opened.wal->Save({1, 1, first}, batch, true).ok());
      all.insert(all.end(), batch.begin(), batch.end());
    }
    EXPECT_GT(opened.wal->SegmentCount(), 5u);
  }
  Opened reopened = OpenOrDie(env_.get(), dir_, options);
  EXPECT_EQ(reopened.recovered.entries, all);
  EXPECT_EQ(reopened.recovered.hard_state, (HardState{1, 1, 96}));
  auto names = env_->ListDir(dir_).value();
  EXPECT_EQ(names.front(), "0000000000000001-0000000000000001.wal");
}

TEST_F(WalTest, LaterRecordsOverwriteTheSuffix) {
  Options options;
  options.segment_bytes = 300;
  {
    Opened opened = OpenOrDie(env_.get(), dir_, options);
    ASSERT_TRUE(opened.wal->Save({1, 1, 0}, MakeEntries(1, 20, 1), true).ok());
    ASSERT_TRUE(opened.wal->Save({}, MakeEntries(1, 12, 1), true).ok());  // roll over first
    ASSERT_TRUE(opened.wal->Save({2, 2, 0}, MakeEntries(8, 3, 2), true).ok());
    EXPECT_EQ(opened.wal->LastIndex(), 10u);
    ASSERT_TRUE(opened.wal->Save({}, MakeEntries(11, 2, 2), true).ok());
    ASSERT_TRUE(opened.wal->Save({3, 3, 0}, MakeEntries(12, 1, 3), true).ok());
  }
  Opened reopened = OpenOrDie(env_.get(), dir_, options);
  auto expected = MakeEntries(1, 7, 1);
  for (uint64_t i = 8; i <= 11; ++i) expected.push_back(MakeEntry(i, 2));
  expected.push_back(MakeEntry(12, 3));
  EXPECT_EQ(reopened.recovered.entries, expected);
  EXPECT_EQ(reopened.wal->LastIndex(), 12u);
}

TEST_F(WalTest, RejectsBadIndices) {
  Opened opened = OpenOrDie(env_.get(), dir_);
  EXPECT_EQ(opened.wal->Save({}, MakeEntries(2, 1, 1)).code(), StatusCode::kInvalidArgument);  // gap
  EXPECT_EQ(opened.wal->Save({}, MakeEntries(0, 1, 1)).code(), StatusCode::kInvalidArgument);
  std::vector<Entry> holes = {MakeEntry(1, 1), MakeEntry(3, 1)};
  EXPECT_EQ(opened.wal->Save({}, holes).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(opened.wal->Save({}, MakeEntries(1, 5, 1), true).ok());
  ASSERT_TRUE(opened.wal->SaveSnapshot({3, 1, "s"}).ok());
  EXPECT_EQ(opened.wal->Save({}, MakeEntries(3, 1, 2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(opened.wal->SaveSnapshot({2, 1, "old"}).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(opened.wal->Save({}, MakeEntries(4, 1, 2), true).ok());
}

TEST_F(WalTest, SnapshotRemovesCoveredSegmentsAndRecovers) {
  Options options;
  options.segment_bytes = 400;
  options.snapshots_to_keep = 1;
  Opened opened = OpenOrDie(env_.get(), dir_, options);
  ASSERT_TRUE(opened.wal->Save({4, 1, 0}, {}, true).ok());  // only in the first segment's records
  for (uint64_t first = 1; first <= 100; first += 5) {
    ASSERT_TRUE(opened.wal->Save({}, MakeEntries(first, 5, 4), true).ok());
  }
  size_t before = opened.wal->SegmentCount();
  ASSERT_TRUE(opened.wal->SaveSnapshot({60, 4, "image@60"}).ok());
  EXPECT_LT(opened.wal->SegmentCount(), before);
  ASSERT_TRUE(opened.wal->SaveSnapshot({70, 4, "image@70"}).ok());
  ASSERT_TRUE(opened.wal->Close().ok());

  Opened reopened = OpenOrDie(env_.get(), dir_, options);
  ASSERT_TRUE(reopened.recovered.snapshot.has_value());
  EXPECT_EQ(*reopened.recovered.snapshot, (Snapshot{70, 4, "image@70"}));
  EXPECT_EQ(reopened.recovered.entries, MakeEntries(71, 30, 4));
  EXPECT_EQ(reopened.recovered.hard_state, (HardState{4, 1, 0}));  // survived segment removal
  int snapshots = 0;
  std::vector<std::string> names = env_->ListDir(dir_).value();
  for (const auto& name : names) snapshots += name.ends_with(".snap");
  EXPECT_EQ(snapshots, 1);
}

TEST_F(WalTest, SnapshotPastTheLogRestartsIt) {
  {
    Opened opened = OpenOrDie(env_.get(), dir_);
    ASSERT_TRUE(opened.wal->Save({1, 1, 0}, MakeEntries(1, 10, 1), true).ok());
    ASSERT_TRUE(opened.wal->SaveSnapshot({20, 3, "from leader"}).ok());
    EXPECT_EQ(opened.wal->LastIndex(), 20u);
    EXPECT_EQ(opened.wal->Save({}, MakeEntries(11, 1, 3)).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(opened.wal->Save({3, 1, 20}, MakeEntries(21, 2, 3), true).ok());
  }
  Opened reopened = OpenOrDie(env_.get(), dir_);
  EXPECT_EQ(reopened.recovered.snapshot->index, 20u);
  EXPECT_EQ(reopened.recovered.entries, MakeEntries(21, 2, 3));
}

TEST_F(WalTest, UnfinishedSnapshotTempFileIsIgnored) {
  {
    Opened opened = OpenOrDie(env_.get(), dir_);
    ASSERT_TRUE(opened.wal->Save({}, MakeEntries(1, 3, 1), true).ok());
  }
  auto temp = env_->NewWritableFile(dir_ + "/0000000000000002.snap.tmp");
  ASSERT_TRUE(temp.ok());
  ASSERT_TRUE((*temp)->Append("half a snapshot").ok());
  Opened reopened = OpenOrDie(env_.get(), dir_);
  EXPECT_FALSE(reopened.recovered.snapshot.has_value());
  EXPECT_EQ(reopened.recovered.entries.size(), 3u);
  EXPECT_FALSE(env_->FileExists(dir_ + "/0000000000000002.snap.tmp"));
}

TEST_F(WalTest, SecondOpenIsLockedOut) {
  Opened opened = OpenOrDie(env_.get(), dir_);
  EXPECT_EQ(Wal::Open(env_.get(), dir_).status().code(), StatusCode::kUnavailable);
  opened.wal.reset();
  EXPECT_TRUE(Wal::Open(env_.get(), dir_).ok());
}

TEST_F(WalTest, ClosedWalRefusesWork) {
  Opened opened = OpenOrDie(env_.get(), dir_);
  ASSERT_TRUE(opened.wal->Close().ok());
  EXPECT_EQ(opened.wal->Save({}, MakeEntries(1, 1, 1)).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(opened.wal->Sync().code(), StatusCode::kFailedPrecondition);
}

TEST(WalPosixTest, RestartOnRealFiles) {
  std::string pattern = (std::filesystem::temp_directory_path() / "cairn-wal-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  struct Cleanup {
    std::string path;
    ~Cleanup() { std::filesystem::remove_all(path); }
  } cleanup{pattern};
  env::Env* env = env::DefaultEnv();
  std::string dir = pattern + "/wal";
  Options options;
  options.segment_bytes = 1024;
  {
    Opened opened = OpenOrDie(env, dir, options);
    for (uint64_t first = 1; first <= 50; first += 10) {
      ASSERT_TRUE(opened.wal->Save({2, 1, first}, MakeEntries(first, 10, 2), true).ok());
    }
  }
  {
    Opened opened = OpenOrDie(env, dir, options);
    EXPECT_EQ(Indices(opened.recovered.entries).size(), 50u);
    ASSERT_TRUE(opened.wal->SaveSnapshot({30, 2, "snap"}).ok());
    ASSERT_TRUE(opened.wal->Save({2, 1, 51}, MakeEntries(51, 5, 2), true).ok());
  }
  Opened opened = OpenOrDie(env, dir, options);
  EXPECT_EQ(opened.recovered.snapshot->data, "snap");
  EXPECT_EQ(opened.recovered.entries, MakeEntries(31, 25, 2));
  EXPECT_EQ(opened.recovered.hard_state, (HardState{2, 1, 51}));
}

}  // namespace
}  // namespace cairn::wal
