// Snapshot/Restore of the whole state, and the auto-compaction policy.
#include <gtest/gtest.h>

#include "cairn/kv/auto_compactor.h"
#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

TEST(KvSnapshotTest, RoundTripKeepsKeysHistoryLeasesAndCounters) {
  KvStateMachine machine(NoAutoCompaction());
  MustApply(machine, GrantCmd(0, 30, 1000));
  int64_t lease = machine.LeaseLeases().leases(0).id();
  MustPut(machine, "a", "1");         // 2
  MustPut(machine, "a", "2", lease);  // 3
  MustPut(machine, "b", "1", lease);  // 4
  MustApply(machine, DeleteCmd("b"));  // 5
  MustPut(machine, "c", "1", lease);  // 6
  MustApply(machine, CompactCmd(3));
  std::string snapshot = machine.Snapshot();

  KvStateMachine restored(NoAutoCompaction());
  ASSERT_TRUE(restored.Restore(snapshot).ok());
  EXPECT_EQ(restored.Snapshot(), snapshot);
  EXPECT_EQ(restored.revision(), 6);
  EXPECT_EQ(restored.compact_revision(), 3);
  EXPECT_EQ(MustRange(restored, RangeReq("a", "", 3)).kvs(0).value(), "2");
  EXPECT_EQ(MustRange(restored, RangeReq("b", "", 4)).kvs(0).value(), "1");
  EXPECT_EQ(restored.Range(RangeReq("a", "", 2)).status().message(), kErrCompacted);
  EXPECT_EQ(restored.ExpiredLeases(31000), std::vector<int64_t>{lease});
  // Attachments are rebuilt: revoking deletes a and c.
  MustApply(restored, RevokeCmd(lease));
  EXPECT_EQ(MustRange(restored, RangeReq("a", "z")).count(), 0);
  // The automatic id sequence continues where it was, on both.
  EXPECT_EQ(MustApply(restored, GrantCmd(0, 30)).lease_grant().id(),
            MustApply(machine, GrantCmd(0, 30)).lease_grant().id());
}

TEST(KvSnapshotTest, CorruptSnapshotIsRejectedAndStateKept) {
  KvStateMachine machine(NoAutoCompaction());
  MustPut(machine, "a", "1");
  std::string before = machine.Snapshot();
  EXPECT_EQ(machine.Restore(std::string_view("\x0a\xff\xff", 3)).code(), StatusCode::kCorruption);

  proto::KvSnapshot bad;
  ASSERT_TRUE(bad.ParseFromString(before));
  bad.set_format_version(9);
  EXPECT_EQ(machine.Restore(bad.SerializeAsString()).code(), StatusCode::kCorruption);

  ASSERT_TRUE(bad.ParseFromString(before));
  bad.mutable_keys(0)->mutable_records(0)->set_main(50);  // beyond the store revision
  EXPECT_EQ(machine.Restore(bad.SerializeAsString()).code(), StatusCode::kCorruption);

  ASSERT_TRUE(bad.ParseFromString(before));
  bad.mutable_keys(0)->mutable_records(0)->mutable_kv()->set_lease(77);  // no such lease
  EXPECT_EQ(machine.Restore(bad.SerializeAsString()).code(), StatusCode::kCorruption);

  EXPECT_EQ(machine.Snapshot(), before);
}

TEST(KvSnapshotTest, EmptyStoreSnapshot) {
  KvStateMachine machine;
  KvStateMachine restored;
  ASSERT_TRUE(restored.Restore(machine.Snapshot()).ok());
  EXPECT_EQ(restored.revision(), 1);
}

TEST(AutoCompactionTest, RevisionModeKeepsTheLastRevisions) {
  KvOptions options;  // default: on, revision mode
  options.auto_compaction.retain_revisions = 20;
  KvStateMachine machine(options);
  for (int i = 0; i < 100; ++i) MustPut(machine, "k", std::to_string(i));
  EXPECT_EQ(machine.revision(), 101);
  EXPECT_GT(machine.compact_revision(), 0);
  EXPECT_LE(machine.compact_revision(), machine.revision() - 20);
  EXPECT_GE(machine.compact_revision(), machine.revision() - 20 - 2);  // steps of retain/10
  EXPECT_TRUE(machine.Range(RangeReq("k", "", machine.revision() - 20)).ok());
}

TEST(AutoCompactionTest, DefaultIsOn) {
  KvOptions options;
  EXPECT_EQ(options.auto_compaction.mode, AutoCompactionOptions::Mode::kRevision);
  AutoCompactor compactor(options.auto_compaction);
  EXPECT_FALSE(compactor.Observe(0, 10000, 0).has_value());
  EXPECT_EQ(compactor.Observe(0, 11001, 0), std::optional<int64_t>(1001));
}

TEST(AutoCompactionTest, PeriodicModeKeepsTheTimeWindow) {
  KvOptions options;
  options.auto_compaction.mode = AutoCompactionOptions::Mode::kPeriodic;
  options.auto_compaction.window_ms = 1000;
  KvStateMachine machine(options);
  // One put every 100 ms of leader time, for 3 s.
  for (int i = 0; i < 30; ++i) {
    proto::KvCommand command = PutCmd("k", std::to_string(i));
    command.set_now_ms(100 * (i + 1));
    MustApply(machine, command);
  }
  // At t=3000 every revision written since t=2000 must still be readable...
  int64_t revision_at_2000 = 1 + 20;
  EXPECT_LE(machine.compact_revision(), revision_at_2000);
  EXPECT_TRUE(machine.Range(RangeReq("k", "", revision_at_2000)).ok());
  // ...and history older than the window (plus one check interval) is gone.
  EXPECT_GE(machine.compact_revision(), revision_at_2000 - 2);
}

TEST(AutoCompactionTest, PeriodicModeWithoutTimeNeverCompacts) {
  AutoCompactionOptions options;
  options.mode = AutoCompactionOptions::Mode::kPeriodic;
  options.window_ms = 1000;
  AutoCompactor compactor(options);
  for (int64_t revision = 1; revision < 100; ++revision) {
    EXPECT_FALSE(compactor.Observe(0, revision, 0).has_value());
  }
}

}  // namespace
}  // namespace cairn::kv
