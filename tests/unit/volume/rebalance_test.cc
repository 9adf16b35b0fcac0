// Rebalance planning (hard links), the mover's temp names, FinishRebalanceTxn against a real
// kv::KvStateMachine, the lookup rule while a rebalance is pending, and the status text.
#include <gtest/gtest.h>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/rebalance.h"
#include "cairn/volume/volume_store.h"
#include "store_harness.h"

namespace cairn::volume {
namespace {

using testing::StoreHarness;

pb::VolumeSpec Spec(uint32_t replica, std::vector<std::string> bricks) {
  CreateVolumeRequest request;
  request.name = "vol";
  request.replica_count = replica;
  request.bricks = std::move(bricks);
  request.force = true;
  auto spec = CreateVolumeSpec(request);
  CAIRN_CHECK(spec.ok());
  return *spec;
}

ListedEntry File(const std::string& name, uint32_t set, const std::string& id = "", uint32_t nlink = 1) {
  ListedEntry entry;
  entry.parent_id = "root";
  entry.name = name;
  entry.bytes = 10;
  entry.set_id = set;
  entry.id = id;
  entry.nlink = nlink;
  return entry;
}

// A name in "root" whose set under `layout` is `set`.
std::string NameOn(const pb::VolumeLayout& layout, uint32_t set, int from = 0) {
  for (int i = from;; ++i) {
    std::string name = "n" + std::to_string(i);
    if (SetForName(layout, "root", name) == set) return name;
  }
}

TEST(RebalancePlan, HardLinksStayWhileTheirSetStays) {
  auto spec = Spec(1, {"h:/a"});
  auto grown = AddBricks(spec, {"h:/b"}, false);
  ASSERT_TRUE(grown.ok());
  // Two names of one file on set 0, one of which hashes to the new set 1.
  std::string moving = NameOn(grown->layout(), 1);
  std::string staying = NameOn(grown->layout(), 0);
  auto plan = PlanRebalance(*grown, {File(moving, 0, "id1", 2), File(staying, 0, "id1", 2)});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->moves.empty());
  EXPECT_EQ(plan->hard_links_kept, 2u);
}

TEST(RebalancePlan, HardLinksOfALeavingSetMoveTogetherToTheirFirstNamesSet) {
  auto spec = Spec(1, {"h:/a", "h:/b", "h:/c"});
  auto shrunk = RemoveBricks(spec, {"h:/b"});
  ASSERT_TRUE(shrunk.ok());
  std::vector<ListedEntry> listing = {File("zz", 1, "id1", 3), File("aa", 1, "id1", 3), File("mm", 1, "id1", 3),
                                      File("single", 1)};
  auto plan = PlanRebalance(*shrunk, listing);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->moves.size(), 2u);
  const FileMove& linked = plan->moves[1];
  EXPECT_EQ(linked.entry.name, "aa") << "the first name by (parent, name) leads";
  EXPECT_EQ(linked.to_set, SetForName(shrunk->layout(), "root", "aa"));
  ASSERT_EQ(linked.other_names.size(), 2u);
  EXPECT_EQ(linked.other_names[0].name, "mm");
  EXPECT_EQ(linked.other_names[1].name, "zz");
  EXPECT_EQ(plan->bytes_to_move, 20u) << "a linked file's data count once";
  EXPECT_NE(plan->moves[0].to_set, 1u);
}

TEST(RebalancePlan, SecondPassAfterAllMovesPlansNothing) {
  auto spec = Spec(1, {"h:/a"});
  auto grown = AddBricks(spec, {"h:/b", "h:/c"}, false);
  ASSERT_TRUE(grown.ok());
  std::vector<ListedEntry> listing;
  for (int i = 0; i < 500; ++i) listing.push_back(File("f" + std::to_string(i), 0));
  auto plan = PlanRebalance(*grown, listing);
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->moves.empty());
  // Execute: the mover lists only the previous layout's sets, where the files that stay are.
  std::vector<ListedEntry> after;
  for (const auto& entry : listing) {
    if (SetForName(grown->layout(), "root", entry.name) == 0) after.push_back(entry);
  }
  EXPECT_EQ(after.size() + plan->moves.size(), listing.size());
  auto again = PlanRebalance(*grown, after);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->moves.empty());
}

TEST(RebalanceNames, TempNameIsHiddenFromLookupsByTheRealName) {
  std::string id("\x01\xab\xff\x00", 4);
  EXPECT_EQ(RebalanceTempName(id), ".cairn-rebalance-01abff00");
  EXPECT_TRUE(IsRebalanceTempName(RebalanceTempName(id)));
  EXPECT_FALSE(IsRebalanceTempName("file"));
  EXPECT_FALSE(IsRebalanceTempName(".cairn-heal-park-00"));
  EXPECT_EQ(RebalanceKey("v"), "/cairn/volumes/v/rebalance");
  EXPECT_EQ(RebalanceOwnerKey("v"), "/cairn/volumes/v/rebalance-owner");
}

// The lookup rule while a rebalance is pending: the new layout's set first (where moved and new
// files are), then the old layout's (where files not moved yet are); one set once finished.
TEST(RebalanceLookup, NewSetFirstThenOldUntilFinished) {
  auto spec = Spec(1, {"h:/a", "h:/b"});
  auto grown = AddBricks(spec, {"h:/c"}, false);
  ASSERT_TRUE(grown.ok());
  int moving = 0;
  for (int i = 0; i < 300; ++i) {
    std::string name = "f" + std::to_string(i);
    auto sets = LookupSets(*grown, "root", name);
    uint32_t now = SetForName(grown->layout(), "root", name);
    uint32_t before = SetForName(spec.layout(), "root", name);
    ASSERT_EQ(sets.front(), now);
    if (now != before) {
      ++moving;
      ASSERT_EQ(sets.size(), 2u);
      EXPECT_EQ(sets[1], before);
    } else {
      EXPECT_EQ(sets.size(), 1u);
    }
    EXPECT_EQ(LookupSets(FinishRebalance(*grown), "root", name), std::vector<uint32_t>{now});
  }
  EXPECT_GT(moving, 50);
}

TEST(RebalanceStore, FinishTxnDropsTheOldLayoutAndRemovedSetsAndStoresProgress) {
  StoreHarness store;
  auto spec = Spec(1, {"h:/a", "h:/b"});
  ASSERT_TRUE(store.Txn(CreateVolumeTxn(spec)));
  auto record = ParseVolumeRecord(*store.Get(SpecKey("vol")));
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(FinishRebalanceTxn(*record, {}).status().code(), StatusCode::kFailedPrecondition);
  auto shrunk = RemoveBricks(record->spec, {"h:/a"});
  ASSERT_TRUE(shrunk.ok());
  ASSERT_TRUE(store.Txn(*UpdateVolumeTxn(*record, *shrunk)));
  record = ParseVolumeRecord(*store.Get(SpecKey("vol")));
  ASSERT_TRUE(record.ok());
  pb::HealCheckpoint done;
  done.set_brick("n1");
  done.set_epoch(record->spec.layout().epoch());
  done.set_files_total(7);
  ASSERT_TRUE(store.Txn([] {
    etcd::TxnRequest claim;
    *claim.add_compare() = KeyAbsent(RebalanceOwnerKey("vol"));
    *claim.add_success() = PutOp(RebalanceOwnerKey("vol"), "n1");
    return claim;
  }()));
  auto txn = FinishRebalanceTxn(*record, done);
  ASSERT_TRUE(txn.ok());
  // A concurrent change of the spec makes the finish lose (it re-reads and plans again).
  VolumeRecord stale = *record;
  stale.mod_revision -= 1;
  EXPECT_FALSE(store.Txn(*FinishRebalanceTxn(stale, done)));
  ASSERT_TRUE(store.Txn(*txn));
  auto finished = ParseVolumeRecord(*store.Get(SpecKey("vol")));
  ASSERT_TRUE(finished.ok());
  EXPECT_FALSE(finished->spec.has_previous_layout());
  ASSERT_EQ(finished->spec.sets_size(), 1);
  EXPECT_EQ(finished->spec.sets(0).id(), 1u);
  EXPECT_FALSE(store.Get(SetKey("vol", 0)).has_value());
  EXPECT_FALSE(store.Get(RebalanceOwnerKey("vol")).has_value()) << "the owner is released";
  pb::HealCheckpoint stored;
  ASSERT_TRUE(stored.ParseFromString(store.Get(RebalanceKey("vol"))->value()));
  EXPECT_EQ(stored.files_total(), 7u);
}

TEST(RebalanceStatusText, EveryState) {
  auto spec = Spec(1, {"h:/a"});
  auto status = RebalanceStatusOf(spec, nullptr, "");
  EXPECT_EQ(status.state, "not needed");
  auto grown = AddBricks(spec, {"h:/b"}, false);
  ASSERT_TRUE(grown.ok());
  status = RebalanceStatusOf(*grown, nullptr, "");
  EXPECT_EQ(status.state, "pending");
  EXPECT_NE(status.detail.find("not started"), std::string::npos);
  grown->set_state(pb::VOLUME_STARTED);
  EXPECT_NE(RebalanceStatusOf(*grown, nullptr, "").detail.find("agent"), std::string::npos);

  pb::HealCheckpoint progress;
  progress.set_brick("n2");
  progress.set_epoch(grown->layout().epoch());
  progress.set_files_total(10);
  progress.set_files_left(4);
  progress.set_bytes_total(4096);
  progress.set_bytes_left(1024);
  progress.set_files_per_second(3);
  progress.set_eta_ms(2000);
  status = RebalanceStatusOf(*grown, &progress, "n2");
  EXPECT_EQ(status.state, "running");
  EXPECT_EQ(status.files_moved, 6u);
  EXPECT_EQ(status.bytes_moved, 3072u);
  std::string text = FormatRebalanceStatus("vol", status);
  EXPECT_NE(text.find("rebalance running (layout epoch 1 -> 2): on n2"), std::string::npos) << text;
  EXPECT_NE(text.find("Files moved: 6, left: 4"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA: 0:00:02"), std::string::npos) << text;
  progress.set_failed(true);
  EXPECT_EQ(RebalanceStatusOf(*grown, &progress, "n2").state, "retrying");
  // Progress of an older rebalance is not shown as this one's.
  progress.set_epoch(1);
  EXPECT_FALSE(RebalanceStatusOf(*grown, &progress, "n2").has_progress);

  progress.set_epoch(grown->layout().epoch());
  progress.set_failed(false);
  progress.set_files_left(0);
  status = RebalanceStatusOf(FinishRebalance(*grown), &progress, "");
  EXPECT_EQ(status.state, "completed");
  EXPECT_EQ(status.files_moved, 10u);
}

}  // namespace
}  // namespace cairn::volume
