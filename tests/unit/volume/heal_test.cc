#include <gtest/gtest.h>

#include <chrono>

#include "cairn/common/clock.h"
#include "cairn/volume/heal.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/replica_set.h"
#include "store_harness.h"

namespace cairn::volume {
namespace {

using namespace std::chrono_literals;

TEST(VolumeChangeJournal, RecordsEachFileOnceWithItsLatestSequence) {
  ChangeJournal journal("h2:/b", 100);
  journal.Record("f1");
  journal.Record("f2");
  journal.Record("f1");
  EXPECT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal.SequenceOf("f1"), 3u);
  EXPECT_EQ(journal.SequenceOf("f2"), 2u);
  EXPECT_EQ(journal.SequenceOf("f3"), std::nullopt);
  EXPECT_EQ(journal.FileIds(), (std::vector<std::string>{"f1", "f2"}));
}

TEST(VolumeChangeJournal, AcknowledgeKeepsFilesChangedAgainDuringTheCopy) {
  ChangeJournal journal("h2:/b", 100);
  journal.Record("f1");
  const uint64_t seen = *journal.SequenceOf("f1");
  journal.Record("f1");  // written again while heal copied it
  EXPECT_FALSE(journal.Acknowledge("f1", seen));
  EXPECT_EQ(journal.size(), 1u);
  EXPECT_TRUE(journal.Acknowledge("f1", *journal.SequenceOf("f1")));
  EXPECT_EQ(journal.size(), 0u);
  EXPECT_FALSE(journal.Acknowledge("missing", 99));
}

TEST(VolumeChangeJournal, OverflowFallsBackToAFullScan) {
  ChangeJournal journal("h2:/b", 2);
  journal.Record("a");
  journal.Record("b");
  EXPECT_FALSE(journal.full_scan_needed());
  journal.Record("c");
  EXPECT_TRUE(journal.full_scan_needed());
  EXPECT_EQ(journal.size(), 0u);
  journal.Record("d");
  EXPECT_EQ(journal.size(), 0u);
  journal.ClearFullScanNeeded();
  journal.Record("e");
  EXPECT_EQ(journal.size(), 1u);
}

TEST(VolumeChangeJournal, SurvivesARestartThroughItsRecord) {
  ChangeJournal journal("h2:/b", 100);
  journal.Record("x");
  journal.Record("y");
  auto restored = ChangeJournal::FromProto(journal.ToProto(), 100);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->brick(), "h2:/b");
  EXPECT_EQ(restored->FileIds(), journal.FileIds());
  EXPECT_EQ(restored->next_sequence(), journal.next_sequence());
  restored->Record("z");
  EXPECT_EQ(restored->SequenceOf("z"), 3u) << "sequences continue after a restart";
  // A smaller limit after restart turns into a full scan rather than losing ids.
  auto smaller = ChangeJournal::FromProto(journal.ToProto(), 1);
  ASSERT_TRUE(smaller.ok());
  EXPECT_TRUE(smaller->full_scan_needed());
}

TEST(VolumeChangeJournal, FromProtoRefusesBadRecords) {
  pb::ChangeJournalRecord record;
  record.set_brick("b");
  record.set_next_sequence(5);
  auto* entry = record.add_entries();
  entry->set_file_id("");
  entry->set_sequence(1);
  EXPECT_EQ(ChangeJournal::FromProto(record, 10).status().code(), StatusCode::kInvalidArgument);
  entry->set_file_id("f");
  entry->set_sequence(5);
  EXPECT_EQ(ChangeJournal::FromProto(record, 10).status().code(), StatusCode::kInvalidArgument);
  entry->set_sequence(4);
  *record.add_entries() = *entry;
  EXPECT_EQ(ChangeJournal::FromProto(record, 10).status().code(), StatusCode::kInvalidArgument);
}

TEST(VolumeChangeJournal, MergeTakesTheUnionAndTheFullScanFlag) {
  ChangeJournal mine("h3:/b", 100);
  mine.Record("a");
  ChangeJournal theirs("h3:/b", 100);
  theirs.Record("b");
  theirs.Record("a");
  ASSERT_TRUE(mine.Merge(theirs).ok());
  EXPECT_EQ(mine.FileIds(), (std::vector<std::string>{"a", "b"}));
  EXPECT_GT(*mine.SequenceOf("a"), 1u) << "merged entries take fresh sequences";
  ChangeJournal other_brick("h9:/b", 100);
  EXPECT_EQ(mine.Merge(other_brick).code(), StatusCode::kInvalidArgument);
  ChangeJournal lost("h3:/b", 100);
  lost.MarkFullScanNeeded();
  ASSERT_TRUE(mine.Merge(lost).ok());
  EXPECT_TRUE(mine.full_scan_needed());
}

std::vector<HealJob::Item> Items(int count, uint64_t bytes) {
  std::vector<HealJob::Item> items;
  for (int i = count - 1; i >= 0; --i) {  // unsorted on purpose
    char key[16];
    std::snprintf(key, sizeof(key), "f%03d", i);
    items.push_back({key, bytes});
  }
  return items;
}

TEST(VolumeHealJob, ProgressRateAndEta) {
  FakeClock clock;
  auto job = HealJob::Start(clock, "h2:/b", 0, 7, false, Items(10, 4096));
  ASSERT_TRUE(job.ok()) << job.status();
  auto progress = job->Progress();
  EXPECT_EQ(progress.state, HealState::kRunning);
  EXPECT_EQ(progress.files_left, 10u);
  EXPECT_EQ(progress.bytes_left, 40960u);
  EXPECT_FALSE(progress.eta.has_value());
  auto batch = job->NextBatch(4);
  ASSERT_EQ(batch.size(), 4u);
  EXPECT_EQ(batch[0].key, "f000");
  EXPECT_EQ(job->NextBatch(2)[0].key, "f004") << "handed-out items are not handed out again";
  clock.Advance(2s);
  for (const auto& item : batch) ASSERT_TRUE(job->Completed(item.key).ok());
  progress = job->Progress();
  EXPECT_EQ(progress.files_left, 6u);
  EXPECT_EQ(progress.bytes_left, 6u * 4096);
  EXPECT_DOUBLE_EQ(progress.files_per_second, 2.0);
  EXPECT_DOUBLE_EQ(progress.bytes_per_second, 8192.0);
  ASSERT_TRUE(progress.eta.has_value());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*progress.eta), 3s);
  EXPECT_EQ(job->Checkpoint(123).cursor(), "f003");
  EXPECT_EQ(job->Checkpoint(123).files_left(), 6u);
  EXPECT_EQ(job->Checkpoint(123).epoch(), 7u);
  EXPECT_EQ(job->Completed("nope").code(), StatusCode::kNotFound);
  EXPECT_TRUE(job->Completed("f000").ok()) << "completing twice is a no-op";
  EXPECT_EQ(job->Progress().files_left, 6u);
}

TEST(VolumeHealJob, CursorCoversOnlyTheCompletedPrefix) {
  FakeClock clock;
  auto job = HealJob::Start(clock, "h2:/b", 0, 1, false, Items(5, 1));
  ASSERT_TRUE(job.ok());
  (void)job->NextBatch(5);
  ASSERT_TRUE(job->Completed("f002").ok());
  EXPECT_EQ(job->Checkpoint(0).cursor(), "");
  ASSERT_TRUE(job->Completed("f000").ok());
  EXPECT_EQ(job->Checkpoint(0).cursor(), "f000");
  ASSERT_TRUE(job->Completed("f001").ok());
  EXPECT_EQ(job->Checkpoint(0).cursor(), "f002");
}

// A heal interrupted by a restart resumes from its checkpoint and redoes only what the cursor
// does not cover; totals stay those of the whole heal.
TEST(VolumeHealJob, ResumesFromACheckpointAfterARestart) {
  FakeClock clock;
  auto first = HealJob::Start(clock, "h2:/b", 3, 9, false, Items(8, 100));
  ASSERT_TRUE(first.ok());
  for (const auto& item : first->NextBatch(3)) ASSERT_TRUE(first->Completed(item.key).ok());
  (void)first->NextBatch(1);
  ASSERT_TRUE(first->Completed("f005").ok());  // out of order: not covered by the cursor
  const pb::HealCheckpoint saved = first->Checkpoint(1000);
  EXPECT_EQ(saved.cursor(), "f002");

  auto resumed = HealJob::Resume(clock, saved, Items(8, 100));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  auto progress = resumed->Progress();
  EXPECT_EQ(progress.files_total, 8u);
  EXPECT_EQ(progress.files_left, 5u);
  EXPECT_EQ(progress.bytes_left, 500u);
  EXPECT_EQ(resumed->Checkpoint(0).cursor(), "f002");
  EXPECT_EQ(resumed->Checkpoint(0).set_id(), 3u);
  auto rest = resumed->NextBatch(100);
  ASSERT_EQ(rest.size(), 5u);
  EXPECT_EQ(rest[0].key, "f003");
  clock.Advance(1s);
  for (const auto& item : rest) ASSERT_TRUE(resumed->Completed(item.key).ok());
  EXPECT_TRUE(resumed->finished());
  EXPECT_EQ(resumed->Progress().state, HealState::kDone);
  EXPECT_EQ(resumed->Checkpoint(0).files_left(), 0u);
  EXPECT_EQ(resumed->Checkpoint(0).cursor(), "f007");
  EXPECT_DOUBLE_EQ(resumed->Progress().files_per_second, 5.0) << "rate counts this run only";
}

TEST(VolumeHealJob, FailedItemsAreRetriedThenGivenUp) {
  FakeClock clock;
  auto job = HealJob::Start(clock, "h2:/b", 0, 1, false, Items(2, 10));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->NextBatch(1)[0].key, "f000");
  ASSERT_TRUE(job->Failed("f000", 2).ok());
  EXPECT_EQ(job->NextBatch(1)[0].key, "f000") << "retried";
  ASSERT_TRUE(job->Failed("f000", 2).ok());
  EXPECT_EQ(job->NextBatch(5)[0].key, "f001");
  ASSERT_TRUE(job->Completed("f001").ok());
  EXPECT_TRUE(job->finished());
  auto progress = job->Progress();
  EXPECT_EQ(progress.state, HealState::kFailed);
  EXPECT_EQ(progress.files_failed, 1u);
  EXPECT_EQ(progress.files_left, 1u);
  EXPECT_EQ(job->Checkpoint(0).cursor(), "") << "the failed file blocks the cursor";
}

TEST(VolumeHealJob, StartErrorsAndEmptyJob) {
  FakeClock clock;
  EXPECT_EQ(HealJob::Start(clock, "", 0, 1, false, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HealJob::Start(clock, "b", 0, 1, false, {{"a", 1}, {"a", 2}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(HealJob::Start(clock, "b", 0, 1, false, {{"", 1}}).status().code(), StatusCode::kInvalidArgument);
  auto empty = HealJob::Start(clock, "b", 0, 1, true, {});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->finished());
  EXPECT_EQ(empty->Progress().state, HealState::kDone);
  EXPECT_TRUE(empty->Checkpoint(0).full_scan());
}

TEST(VolumeHealStatus, RowsAndTable) {
  FakeClock clock;
  auto job = HealJob::Start(clock, "h3:/b", 0, 5, false, Items(10, 1000));
  ASSERT_TRUE(job.ok());
  for (const auto& item : job->NextBatch(4)) ASSERT_TRUE(job->Completed(item.key).ok());
  clock.Advance(2s);
  pb::HealCheckpoint checkpoint = job->Checkpoint(0);
  EXPECT_DOUBLE_EQ(checkpoint.files_per_second(), 2.0);
  EXPECT_EQ(checkpoint.eta_ms(), 3000);

  pb::ReplicaSetSpec set;
  for (const char* host : {"h1", "h2", "h3"}) {
    auto* brick = set.add_bricks();
    brick->set_host(host);
    brick->set_path("/b");
  }
  pb::ReplicaSetState state;
  state.set_primary("h1:/b");
  state.add_in_sync("h1:/b");
  pb::HealCheckpoint stale;  // left over from an earlier heal of h1
  stale.set_files_left(99);
  auto rows = HealStatus(set, state, {{"h3:/b", checkpoint}, {"h1:/b", stale}});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_TRUE(rows[0].in_sync);
  EXPECT_TRUE(rows[0].primary);
  EXPECT_FALSE(rows[0].healing);
  EXPECT_FALSE(rows[1].in_sync);
  EXPECT_FALSE(rows[1].healing);
  EXPECT_TRUE(rows[2].healing);
  EXPECT_EQ(rows[2].files_left, 6u);
  EXPECT_EQ(rows[2].bytes_left, 6000u);
  ASSERT_TRUE(rows[2].eta.has_value());
  pb::ReplicaSetState no_quorum = state;
  no_quorum.set_mode(pb::REPLICA_SET_NO_QUORUM_EIO);
  EXPECT_FALSE(HealStatus(set, no_quorum, {})[0].primary) << "no primary serves in no-quorum mode";
  const std::string table = FormatHealStatus(rows);
  EXPECT_NE(table.find("in-sync (primary)"), std::string::npos) << table;
  EXPECT_NE(table.find("out-of-sync, heal pending"), std::string::npos) << table;
  EXPECT_NE(table.find("2 files/s"), std::string::npos) << table;
  EXPECT_NE(table.find("0:00:03"), std::string::npos) << table;
}

// The whole path: a backup drops out, the primary journals the files changed meanwhile, the heal
// copies them (surviving a restart through its checkpoint in the store), and the primary
// readmits the backup with a transaction that only a finished, current heal satisfies.
TEST(VolumeHealFlow, JournalToHealToReadmission) {
  testing::StoreHarness store;
  pb::ReplicaSetSpec set;
  set.set_id(0);
  for (const char* host : {"h1", "h2"}) {
    auto* brick = set.add_bricks();
    brick->set_host(host);
    brick->set_path("/b");
  }
  ASSERT_TRUE(store.Txn(InitialReplicaSet("v", set).txn));
  int64_t lease = store.Grant(2000);
  ASSERT_TRUE(store.Txn(TakeOverPrimary("v", store.ReadSet("v", 0), {{"h1:/b", 0}}, lease, 2000)->txn));
  ASSERT_TRUE(store.Txn(DropBackup("v", store.ReadSet("v", 0), "h1:/b", "h2:/b")->txn));
  const uint64_t epoch = store.ReadSet("v", 0).state.epoch();

  ChangeJournal journal("h2:/b", 1000);
  for (int i = 0; i < 20; ++i) journal.Record("file" + std::to_string(i % 7));
  std::vector<HealJob::Item> items;
  for (const auto& id : journal.FileIds()) items.push_back({id, 10});

  FakeClock clock;
  auto job = HealJob::Start(clock, "h2:/b", 0, epoch, false, items);
  ASSERT_TRUE(job.ok());
  for (const auto& item : job->NextBatch(3)) {
    ASSERT_TRUE(job->Completed(item.key).ok());
    EXPECT_TRUE(journal.Acknowledge(item.key, *journal.SequenceOf(item.key)));
  }
  etcd::TxnRequest save;
  std::string bytes;
  ASSERT_TRUE(job->Checkpoint(0).SerializeToString(&bytes));
  *save.add_success() = PutOp(HealKey("v", "h2:/b"), bytes);
  ASSERT_TRUE(store.Txn(save));

  // The service restarts: journal from its record, checkpoint from the store.
  auto journal_after = ChangeJournal::FromProto(journal.ToProto(), 1000);
  ASSERT_TRUE(journal_after.ok());
  pb::HealCheckpoint checkpoint;
  ASSERT_TRUE(checkpoint.ParseFromString(store.Get(HealKey("v", "h2:/b"))->value()));
  std::vector<HealJob::Item> left;
  for (const auto& id : journal_after->FileIds()) left.push_back({id, 10});
  auto resumed = HealJob::Resume(clock, checkpoint, left);
  ASSERT_TRUE(resumed.ok());
  EXPECT_EQ(resumed->Progress().files_left, 4u);
  EXPECT_EQ(resumed->Progress().files_total, 7u);
  const int64_t saved_at = store.Get(HealKey("v", "h2:/b"))->mod_revision();
  auto unfinished = resumed->Checkpoint(0);
  unfinished.set_healed_through(20);
  EXPECT_FALSE(ReadmitReplica("v", store.ReadSet("v", 0), "h1:/b", unfinished, 20, saved_at).ok());
  for (const auto& item : resumed->NextBatch(100)) {
    ASSERT_TRUE(resumed->Completed(item.key).ok());
    EXPECT_TRUE(journal_after->Acknowledge(item.key, *journal_after->SequenceOf(item.key)));
  }
  EXPECT_EQ(journal_after->size(), 0u);
  auto done = resumed->Checkpoint(0);
  done.set_healed_through(20);  // the primary's sequence, with writes held for the last round
  std::string done_bytes;
  ASSERT_TRUE(done.SerializeToString(&done_bytes));
  etcd::TxnRequest save_done;
  *save_done.add_success() = PutOp(HealKey("v", "h2:/b"), done_bytes);
  ASSERT_TRUE(store.Txn(save_done));
  const int64_t done_at = store.Get(HealKey("v", "h2:/b"))->mod_revision();

  // A newer round stores its checkpoint (files left) before it clears the journal and copies. A
  // primary deciding from the older "nothing left" copy must not readmit the replica mid-copy
  // (a benchmark run lost acknowledged files this way).
  auto stale = ReadmitReplica("v", store.ReadSet("v", 0), "h1:/b", done, 20, done_at);
  ASSERT_TRUE(stale.ok()) << stale.status();
  auto next_round = HealJob::Start(clock, "h2:/b", 0, epoch, false, {{"file99", 10}});
  ASSERT_TRUE(next_round.ok());
  std::string next_bytes;
  ASSERT_TRUE(next_round->Checkpoint(0).SerializeToString(&next_bytes));
  etcd::TxnRequest save_next;
  *save_next.add_success() = PutOp(HealKey("v", "h2:/b"), next_bytes);
  ASSERT_TRUE(store.Txn(save_next));
  EXPECT_FALSE(store.Txn(stale->txn)) << "readmitted on a checkpoint a newer round replaced";
  EXPECT_FALSE(IsInSync(store.ReadSet("v", 0).state, "h2:/b"));

  // That round finishes: its own "nothing left" checkpoint readmits.
  ASSERT_TRUE(store.Txn(save_done));
  auto readmit = ReadmitReplica("v", store.ReadSet("v", 0), "h1:/b", done, 20,
                                store.Get(HealKey("v", "h2:/b"))->mod_revision());
  ASSERT_TRUE(readmit.ok()) << readmit.status();
  ASSERT_TRUE(store.Txn(readmit->txn));
  EXPECT_TRUE(IsInSync(store.ReadSet("v", 0).state, "h2:/b"));
}

}  // namespace
}  // namespace cairn::volume
