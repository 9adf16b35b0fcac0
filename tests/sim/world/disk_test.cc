#include "cairn/sim/disk.h"

#include <gtest/gtest.h>

namespace cairn::sim {
namespace {

TEST(DiskTest, SyncedRecordsSurviveACrash) {
  Random random(1);
  Disk disk;
  disk.Append("one");
  disk.Append("two");
  disk.Sync();
  CrashReport report = disk.Crash(random);
  EXPECT_EQ(report.unsynced_bytes, 0u);
  Recovery recovery = disk.Recover();
  EXPECT_EQ(recovery.records, (std::vector<std::string>{"one", "two"}));
  EXPECT_FALSE(recovery.truncated_torn_tail);
}

TEST(DiskTest, CrashLosesSomeUnsyncedRecordsAndTruncatesATornTail) {
  bool saw_torn = false, saw_partial_keep = false;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Random random(seed);
    Disk disk;
    disk.Append("durable");
    disk.Sync();
    for (int i = 0; i < 5; ++i) disk.Append("unsynced-record-" + std::to_string(i));
    disk.Crash(random);
    Recovery recovery = disk.Recover();
    ASSERT_GE(recovery.records.size(), 1u);
    ASSERT_LE(recovery.records.size(), 6u);
    EXPECT_EQ(recovery.records[0], "durable");
    for (size_t i = 1; i < recovery.records.size(); ++i) {
      EXPECT_EQ(recovery.records[i], "unsynced-record-" + std::to_string(i - 1));  // a prefix, in order
    }
    saw_torn |= recovery.truncated_torn_tail;
    saw_partial_keep |= recovery.records.size() > 1 && recovery.records.size() < 6;
    // After truncation the file is clean: appending and recovering again works.
    disk.Append("next");
    disk.Sync();
    Recovery again = disk.Recover();
    EXPECT_FALSE(again.truncated_torn_tail);
    EXPECT_EQ(again.records.back(), "next");
  }
  EXPECT_TRUE(saw_torn);
  EXPECT_TRUE(saw_partial_keep);
}

TEST(DiskTest, RecoverLeavesAnIntactFileAlone) {
  Disk disk;
  disk.Append("a");
  disk.Sync();
  Recovery first = disk.Recover();
  EXPECT_EQ(first.records.size(), 1u);
  EXPECT_EQ(disk.size(), 9u);
}

TEST(DiskTest, RewriteReplacesContentsDurably) {
  Random random(2);
  Disk disk;
  disk.Append("old");
  disk.Rewrite({"new1", "new2"});
  disk.Append("unsynced");
  disk.Crash(random);
  Recovery recovery = disk.Recover();
  ASSERT_GE(recovery.records.size(), 2u);
  EXPECT_EQ(recovery.records[0], "new1");
  EXPECT_EQ(recovery.records[1], "new2");
}

}  // namespace
}  // namespace cairn::sim
