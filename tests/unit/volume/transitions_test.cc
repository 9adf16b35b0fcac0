// Each replica-set transition applied to a real kv::KvStateMachine: the record it writes and the
// guards that make it fail.
#include <gtest/gtest.h>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"
#include "store_harness.h"

namespace cairn::volume {
namespace {

using testing::StoreHarness;

constexpr char kVolume[] = "vol0";
constexpr int64_t kTtlMs = 2000;

class VolumeTransitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CreateVolumeRequest request{kVolume, 3, {"h1:/b", "h2:/b", "h3:/b"}, false, pb::NO_QUORUM_EIO};
    auto spec = CreateVolumeSpec(request);
    ASSERT_TRUE(spec.ok());
    set_ = spec->sets(0);
    auto initial = InitialReplicaSet(kVolume, set_);
    ASSERT_TRUE(store_.Txn(initial.txn));
    EXPECT_FALSE(store_.Txn(initial.txn)) << "a second create must fail";
  }

  ReplicaSetRecord Read() { return store_.ReadSet(kVolume, 0); }

  // Makes `brick` primary through TakeOverPrimary; returns its lease.
  int64_t BecomePrimary(const std::string& brick, uint64_t sequence = 0) {
    int64_t lease = store_.Grant(kTtlMs);
    auto change = TakeOverPrimary(kVolume, Read(), {{brick, sequence}}, lease, kTtlMs);
    EXPECT_TRUE(change.ok()) << change.status();
    EXPECT_TRUE(store_.Txn(change->txn));
    return lease;
  }

  void ExpireLease() {
    store_.Advance(kTtlMs + 1);
    store_.ExpireLeases();
  }

  StoreHarness store_;
  pb::ReplicaSetSpec set_;
};

TEST_F(VolumeTransitionsTest, InitialRecordHasEveryBrickInSyncAndNoPrimary) {
  auto record = Read();
  EXPECT_EQ(record.state.epoch(), 1u);
  EXPECT_TRUE(record.state.primary().empty());
  EXPECT_EQ(record.state.in_sync_size(), 3);
  EXPECT_GT(record.mod_revision, 0);
}

TEST_F(VolumeTransitionsTest, FirstPrimaryTakesTheLeaseKey) {
  int64_t lease = BecomePrimary("h1:/b");
  auto record = Read();
  EXPECT_EQ(record.state.epoch(), 2u);
  EXPECT_EQ(record.state.primary(), "h1:/b");
  EXPECT_EQ(record.state.in_sync_size(), 3);
  auto key = store_.Get(PrimaryKey(kVolume, 0));
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->value(), "h1:/b");
  EXPECT_EQ(key->lease(), lease);
}

TEST_F(VolumeTransitionsTest, TakeOverIsRefusedWhileTheLeaseLives) {
  BecomePrimary("h1:/b");
  int64_t lease = store_.Grant(kTtlMs);
  auto change = TakeOverPrimary(kVolume, Read(), {{"h2:/b", 5}}, lease, kTtlMs);
  ASSERT_TRUE(change.ok());
  EXPECT_FALSE(store_.Txn(change->txn));
  EXPECT_EQ(Read().state.primary(), "h1:/b");
}

TEST_F(VolumeTransitionsTest, DropBackupBumpsEpochAndNeedsTheLease) {
  BecomePrimary("h1:/b");
  auto before = Read();
  auto wrong_caller = DropBackup(kVolume, before, "h2:/b", "h3:/b");
  EXPECT_EQ(wrong_caller.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(DropBackup(kVolume, before, "h1:/b", "h1:/b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DropBackup(kVolume, before, "h1:/b", "h9:/b").status().code(), StatusCode::kFailedPrecondition);
  auto change = DropBackup(kVolume, before, "h1:/b", "h3:/b");
  ASSERT_TRUE(change.ok());
  EXPECT_TRUE(store_.Txn(change->txn));
  auto after = Read();
  EXPECT_EQ(after.state.epoch(), before.state.epoch() + 1);
  EXPECT_FALSE(IsInSync(after.state, "h3:/b"));
  EXPECT_TRUE(IsInSync(after.state, "h2:/b"));
  EXPECT_EQ(OutOfSyncBricks(set_, after.state), (std::vector<std::string>{"h3:/b"}));
  // The same change computed from the old record no longer applies.
  EXPECT_FALSE(store_.Txn(change->txn));
  // Once the primary's lease is gone it cannot change the record any more.
  ExpireLease();
  auto late = DropBackup(kVolume, Read(), "h1:/b", "h2:/b");
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(store_.Txn(late->txn));
}

TEST_F(VolumeTransitionsTest, TakeOverPicksTheFreshestInSyncReplicaAndDropsTheOldPrimary) {
  BecomePrimary("h1:/b");
  auto drop = DropBackup(kVolume, Read(), "h1:/b", "h3:/b");
  ASSERT_TRUE(store_.Txn(drop->txn));
  ExpireLease();
  int64_t lease = store_.Grant(kTtlMs);
  // h3 reports the highest sequence but is out of sync: it must not win.
  auto change = TakeOverPrimary(kVolume, Read(), {{"h3:/b", 99}, {"h2:/b", 7}}, lease, kTtlMs);
  ASSERT_TRUE(change.ok());
  ASSERT_TRUE(store_.Txn(change->txn));
  auto record = Read();
  EXPECT_EQ(record.state.primary(), "h2:/b");
  EXPECT_EQ(record.state.in_sync_size(), 1);
  EXPECT_EQ(record.state.primary_lease_id(), lease);
  EXPECT_EQ(record.state.epoch(), 4u);
}

TEST_F(VolumeTransitionsTest, TakeOverTieGoesToTheEarlierInSyncReplica) {
  int64_t lease = store_.Grant(kTtlMs);
  auto change = TakeOverPrimary(kVolume, Read(), {{"h3:/b", 4}, {"h2:/b", 4}}, lease, kTtlMs);
  ASSERT_TRUE(change.ok());
  EXPECT_EQ(change->next.primary(), "h2:/b");
  // A newer epoch wins over a higher sequence from an older primary's stream.
  auto by_epoch = TakeOverPrimary(kVolume, Read(), {{"h3:/b", 90, 2}, {"h2:/b", 3, 5}}, lease, kTtlMs);
  ASSERT_TRUE(by_epoch.ok());
  EXPECT_EQ(by_epoch->next.primary(), "h2:/b");
  EXPECT_EQ(TakeOverPrimary(kVolume, Read(), {{"h2:/b", 4}}, 0, kTtlMs).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(VolumeTransitionsTest, NoReachableInSyncReplicaMeansTheNoQuorumPolicy) {
  BecomePrimary("h1:/b");
  ASSERT_TRUE(store_.Txn(DropBackup(kVolume, Read(), "h1:/b", "h2:/b")->txn));
  ASSERT_TRUE(store_.Txn(DropBackup(kVolume, Read(), "h1:/b", "h3:/b")->txn));
  std::vector<ReplicaReport> others = {{"h2:/b", 3}, {"h3:/b", 8}};
  // While h1's lease lives, neither the policy nor a take-over applies.
  auto early = EnterNoQuorum(kVolume, Read(), pb::NO_QUORUM_READONLY, others);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(store_.Txn(early->txn));
  ExpireLease();
  int64_t lease = store_.Grant(kTtlMs);
  EXPECT_EQ(TakeOverPrimary(kVolume, Read(), others, lease, kTtlMs).status().code(), StatusCode::kUnavailable);
  auto readonly = EnterNoQuorum(kVolume, Read(), pb::NO_QUORUM_READONLY, others);
  ASSERT_TRUE(readonly.ok());
  ASSERT_TRUE(store_.Txn(readonly->txn));
  auto record = Read();
  EXPECT_EQ(record.state.mode(), pb::REPLICA_SET_NO_QUORUM_READONLY);
  EXPECT_EQ(record.state.read_source(), "h3:/b");
  EXPECT_EQ(record.state.in_sync_size(), 1);  // h1 keeps the only complete copy
  EXPECT_EQ(EnterNoQuorum(kVolume, Read(), pb::NO_QUORUM_READONLY, others).status().code(),
            StatusCode::kFailedPrecondition);
  auto eio = EnterNoQuorum(kVolume, Read(), pb::NO_QUORUM_EIO, others);
  ASSERT_TRUE(eio.ok());
  ASSERT_TRUE(store_.Txn(eio->txn));
  EXPECT_EQ(Read().state.mode(), pb::REPLICA_SET_NO_QUORUM_EIO);
  EXPECT_TRUE(Read().state.read_source().empty());
  // The policy is refused when an in-sync replica is reachable.
  EXPECT_EQ(EnterNoQuorum(kVolume, Read(), pb::NO_QUORUM_EIO, {{"h1:/b", 9}}).status().code(),
            StatusCode::kFailedPrecondition);
  // h1 returns: it takes over again and the set serves normally.
  auto back = TakeOverPrimary(kVolume, Read(), {{"h1:/b", 9}, {"h3:/b", 8}}, lease, kTtlMs);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(store_.Txn(back->txn));
  EXPECT_EQ(Read().state.mode(), pb::REPLICA_SET_NORMAL);
  EXPECT_EQ(Read().state.primary(), "h1:/b");
  EXPECT_EQ(Read().state.in_sync_size(), 1);
}

TEST_F(VolumeTransitionsTest, ReadmitNeedsAFinishedHealInTheCurrentEpoch) {
  BecomePrimary("h1:/b");
  ASSERT_TRUE(store_.Txn(DropBackup(kVolume, Read(), "h1:/b", "h3:/b")->txn));
  auto record = Read();
  pb::HealCheckpoint heal;
  heal.set_brick("h3:/b");
  heal.set_set_id(0);
  heal.set_epoch(record.state.epoch());
  heal.set_files_left(2);
  heal.set_healed_through(12);
  EXPECT_EQ(ReadmitReplica(kVolume, record, "h1:/b", heal, 12, 0).status().code(), StatusCode::kFailedPrecondition);
  heal.set_files_left(0);
  heal.set_epoch(record.state.epoch() - 1);
  EXPECT_EQ(ReadmitReplica(kVolume, record, "h1:/b", heal, 12, 0).status().code(), StatusCode::kFailedPrecondition);
  heal.set_epoch(record.state.epoch());
  EXPECT_EQ(ReadmitReplica(kVolume, record, "h2:/b", heal, 12, 0).status().code(), StatusCode::kFailedPrecondition);
  pb::HealCheckpoint in_sync = heal;
  in_sync.set_brick("h2:/b");
  EXPECT_EQ(ReadmitReplica(kVolume, record, "h1:/b", in_sync, 12, 0).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadmitReplica(kVolume, record, "h1:/b", heal, 13, 0).status().code(), StatusCode::kFailedPrecondition)
      << "writes after the heal's last round";
  auto change = ReadmitReplica(kVolume, record, "h1:/b", heal, 12, 0);
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_TRUE(store_.Txn(change->txn));
  EXPECT_TRUE(IsInSync(Read().state, "h3:/b"));
  EXPECT_EQ(Read().state.epoch(), record.state.epoch() + 1);
}

TEST(VolumeKeys, LayoutAndPrefixRangeEnd) {
  EXPECT_EQ(SpecKey("v"), "/cairn/volumes/v/spec");
  EXPECT_EQ(SetKey("v", 3), "/cairn/volumes/v/sets/000003");
  EXPECT_EQ(PrimaryKey("v", 3), "/cairn/volumes/v/sets/000003/primary");
  EXPECT_EQ(HealKey("v", "h1:/b"), "/cairn/volumes/v/heal/h1:/b");
  EXPECT_EQ(PrefixRangeEnd("/cairn/volumes/"), "/cairn/volumes0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
}

TEST(VolumeParseRecord, CorruptValueIsAnError) {
  etcd::KeyValue kv;
  kv.set_key("k");
  kv.set_value("\xff\xff\xff");
  EXPECT_EQ(ParseReplicaSetRecord(kv).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace cairn::volume
