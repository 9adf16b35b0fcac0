// Volume specs through create, start/stop, add-brick, rebalance done and delete against a real
// kv::KvStateMachine.
#include <gtest/gtest.h>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"
#include "store_harness.h"

namespace cairn::volume {
namespace {

using testing::StoreHarness;

VolumeRecord ReadVolume(const StoreHarness& store, const std::string& name) {
  auto kv = store.Get(SpecKey(name));
  CAIRN_CHECK(kv.has_value());
  auto record = ParseVolumeRecord(*kv);
  CAIRN_CHECK(record.ok());
  return *record;
}

TEST(VolumeStore, LifecycleThroughTransactions) {
  StoreHarness store;
  CreateVolumeRequest request{"data", 2, {"h1:/b", "h2:/b"}, false, pb::NO_QUORUM_READONLY};
  auto spec = CreateVolumeSpec(request);
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(store.Txn(CreateVolumeTxn(*spec)));
  EXPECT_FALSE(store.Txn(CreateVolumeTxn(*spec))) << "the name is taken";
  EXPECT_EQ(store.ReadSet("data", 0).state.in_sync_size(), 2);
  EXPECT_EQ(ReadVolume(store, "data").spec.options().no_quorum(), pb::NO_QUORUM_READONLY);

  auto record = ReadVolume(store, "data");
  EXPECT_EQ(WithVolumeState(record.spec, pb::VOLUME_STOPPED).status().code(), StatusCode::kFailedPrecondition);
  auto started = WithVolumeState(record.spec, pb::VOLUME_STARTED);
  ASSERT_TRUE(started.ok());
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, *started)));
  EXPECT_FALSE(store.Txn(*UpdateVolumeTxn(record, *started))) << "stale mod_revision";
  record = ReadVolume(store, "data");
  EXPECT_EQ(WithVolumeState(record.spec, pb::VOLUME_STARTED).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(DeleteVolumeTxn(record).status().code(), StatusCode::kFailedPrecondition);

  // add-brick creates the new set's record; finishing the rebalance keeps it.
  auto grown = AddBricks(record.spec, {"h1:/c", "h2:/c"}, false);
  ASSERT_TRUE(grown.ok());
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, *grown)));
  EXPECT_EQ(store.ReadSet("data", 1).state.epoch(), 1u);
  record = ReadVolume(store, "data");
  int both = 0;
  for (int i = 0; i < 200; ++i) {
    auto sets = LookupSets(record.spec, "root", "f" + std::to_string(i));
    if (sets.size() == 2) {
      ++both;
      EXPECT_EQ(sets[0], 1u);
      EXPECT_EQ(sets[1], 0u);
    }
  }
  EXPECT_GT(both, 50) << "files moving to the new set are also looked up on the old";
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, FinishRebalance(record.spec))));
  record = ReadVolume(store, "data");
  EXPECT_EQ(LookupSets(record.spec, "root", "f1").size(), 1u);

  // remove-brick of set 0, then the rebalance finishes: its records go.
  auto shrunk = RemoveBricks(record.spec, {"h1:/b", "h2:/b"});
  ASSERT_TRUE(shrunk.ok());
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, *shrunk)));
  record = ReadVolume(store, "data");
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, FinishRebalance(record.spec))));
  EXPECT_FALSE(store.Get(SetKey("data", 0)).has_value());
  EXPECT_TRUE(store.Get(SetKey("data", 1)).has_value());

  record = ReadVolume(store, "data");
  pb::VolumeSpec renamed = record.spec;
  renamed.set_name("other");
  EXPECT_EQ(UpdateVolumeTxn(record, renamed).status().code(), StatusCode::kInvalidArgument);
  auto stopped = WithVolumeState(record.spec, pb::VOLUME_STOPPED);
  ASSERT_TRUE(stopped.ok());
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(record, *stopped)));
  record = ReadVolume(store, "data");
  ASSERT_TRUE(store.Txn(*DeleteVolumeTxn(record)));
  EXPECT_FALSE(store.Get(SpecKey("data")).has_value());
  EXPECT_FALSE(store.Get(SetKey("data", 1)).has_value());
}

TEST(VolumeStore, CorruptSpecIsAnError) {
  etcd::KeyValue kv;
  kv.set_key("k");
  kv.set_value("\xff\xff");
  EXPECT_EQ(ParseVolumeRecord(kv).status().code(), StatusCode::kCorruption);
}

// A spec from the store is checked before placement code trusts its layout.
TEST(VolumeStore, InvalidSpecsAreRefused) {
  CreateVolumeRequest request{"data", 2, {"h1:/b", "h2:/b", "h1:/c", "h2:/c"}, false, pb::NO_QUORUM_EIO};
  auto spec = CreateVolumeSpec(request);
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(ValidateVolumeSpec(*spec).ok());
  auto expect_corrupt = [](const pb::VolumeSpec& bad) {
    EXPECT_EQ(ValidateVolumeSpec(bad).code(), StatusCode::kCorruption) << bad.DebugString();
    etcd::KeyValue kv;
    kv.set_key("k");
    kv.set_value(bad.SerializeAsString());
    EXPECT_EQ(ParseVolumeRecord(kv).status().code(), StatusCode::kCorruption);
  };
  pb::VolumeSpec bad = *spec;
  bad.mutable_layout()->mutable_ranges(0)->set_start(5);
  expect_corrupt(bad);
  bad = *spec;
  bad.mutable_layout()->clear_ranges();
  expect_corrupt(bad);
  bad = *spec;
  bad.mutable_layout()->mutable_ranges(1)->set_set_id(9);
  expect_corrupt(bad);
  bad = *spec;
  bad.mutable_sets(1)->set_id(0);
  expect_corrupt(bad);
  bad = *spec;
  bad.mutable_sets(0)->mutable_bricks()->RemoveLast();
  expect_corrupt(bad);
  bad = *spec;
  bad.set_replica_count(0);
  expect_corrupt(bad);
  bad = *spec;
  bad.mutable_sets(0)->mutable_bricks(0)->set_path("relative");
  expect_corrupt(bad);
}

}  // namespace
}  // namespace cairn::volume
