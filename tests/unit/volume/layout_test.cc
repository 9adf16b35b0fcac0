#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cairn/common/ids.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/rebalance.h"

namespace cairn::volume {
namespace {

CreateVolumeRequest Request(uint32_t replica, std::vector<std::string> bricks, bool force = false) {
  CreateVolumeRequest request;
  request.name = "vol0";
  request.replica_count = replica;
  request.bricks = std::move(bricks);
  request.force = force;
  return request;
}

void ExpectError(const Status& status, StatusCode code, const std::string& fragment) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(fragment), std::string::npos) << status;
}

TEST(VolumeParseBrick, NormalizesPathAndAcceptsV6) {
  auto brick = ParseBrick("h1://data//b1/");
  ASSERT_TRUE(brick.ok()) << brick.status();
  EXPECT_EQ(BrickId(*brick), "h1:/data/b1");
  auto v6 = ParseBrick("[fd00::1]:/b");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host(), "fd00::1");
  EXPECT_EQ(BrickId(*v6), "[fd00::1]:/b");
}

TEST(VolumeParseBrick, RefusesBadText) {
  ExpectError(ParseBrick("h1").status(), StatusCode::kInvalidArgument, "HOST:/PATH");
  ExpectError(ParseBrick(":/b").status(), StatusCode::kInvalidArgument, "host");
  ExpectError(ParseBrick("h1:rel/b").status(), StatusCode::kInvalidArgument, "absolute");
  ExpectError(ParseBrick("h1:/").status(), StatusCode::kInvalidArgument, "cannot be /");
  ExpectError(ParseBrick("h1:/a/../b").status(), StatusCode::kInvalidArgument, "..");
  ExpectError(ParseBrick("h1:/a b").status(), StatusCode::kInvalidArgument, "spaces");
  ExpectError(ParseBrick("[fd00::1/b").status(), StatusCode::kInvalidArgument, "[ADDRESS]");
}

TEST(VolumeCreate, GroupsBricksIntoSetsInOrder) {
  auto spec = CreateVolumeSpec(Request(2, {"h1:/b", "h2:/b", "h1:/c", "h2:/c"}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->sets_size(), 2);
  EXPECT_EQ(BrickId(spec->sets(0).bricks(1)), "h2:/b");
  EXPECT_EQ(BrickId(spec->sets(1).bricks(0)), "h1:/c");
  EXPECT_EQ(spec->sets(1).id(), 1u);
  EXPECT_EQ(spec->next_set_id(), 2u);
  EXPECT_EQ(spec->state(), pb::VOLUME_CREATED);
  EXPECT_EQ(spec->layout().epoch(), 1u);
  EXPECT_TRUE(ValidateLayout(spec->layout()).ok());
  EXPECT_DOUBLE_EQ(LayoutShare(spec->layout(), 0), 0.5);
}

TEST(VolumeCreate, ValidationErrors) {
  ExpectError(CreateVolumeSpec(Request(3, {"h1:/b", "h2:/b"})).status(), StatusCode::kInvalidArgument,
              "multiple of the replica count");
  ExpectError(CreateVolumeSpec(Request(0, {"h1:/b"})).status(), StatusCode::kInvalidArgument, "replica count");
  ExpectError(CreateVolumeSpec(Request(17, {"h1:/b"})).status(), StatusCode::kInvalidArgument, "replica count");
  ExpectError(CreateVolumeSpec(Request(2, {})).status(), StatusCode::kInvalidArgument, "positive multiple");
  ExpectError(CreateVolumeSpec(Request(2, {"h1:/b", "h1:/b/"})).status(), StatusCode::kInvalidArgument,
              "given twice");
  ExpectError(CreateVolumeSpec(Request(2, {"h1:/b", "h1:/b/sub"})).status(), StatusCode::kInvalidArgument,
              "overlap");
  ExpectError(CreateVolumeSpec(Request(2, {"h1:/b", "h1:/c"})).status(), StatusCode::kFailedPrecondition,
              "--force");
  auto bad_name = Request(1, {"h1:/b"});
  bad_name.name = "-x";
  ExpectError(CreateVolumeSpec(bad_name).status(), StatusCode::kInvalidArgument, "must not start");
  bad_name.name = "a/b";
  ExpectError(CreateVolumeSpec(bad_name).status(), StatusCode::kInvalidArgument, "only letters");
  bad_name.name = "";
  ExpectError(CreateVolumeSpec(bad_name).status(), StatusCode::kInvalidArgument, "1 to 64");
}

TEST(VolumeCreate, ForceAllowsOneHostPerSetAndSameHostAcrossSetsIsFine) {
  EXPECT_TRUE(CreateVolumeSpec(Request(2, {"h1:/b", "h1:/c"}, /*force=*/true)).ok());
  // h1 holds one brick of each set: losing h1 loses one replica of each, which is the point.
  EXPECT_TRUE(CreateVolumeSpec(Request(2, {"h1:/b", "h2:/b", "h2:/c", "h1:/c"})).ok());
}

TEST(VolumePlacement, HashIsStableAndSpreadsEvenly) {
  // Pinned values: the hash decides where existing files live, so it must never change.
  EXPECT_EQ(NameHash("p", "a"), 771379048u);
  EXPECT_EQ(NameHash("00000000-0000-0000-0000-000000000001", "hello.txt"), 3303334993u);
  EXPECT_NE(NameHash("p", "a"), NameHash("pa", ""));
  auto spec = CreateVolumeSpec(Request(3, {"h1:/a", "h2:/a", "h3:/a", "h1:/b", "h2:/b", "h3:/b", "h1:/c",
                                           "h2:/c", "h3:/c", "h1:/d", "h2:/d", "h3:/d"}));
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::map<uint32_t, int> count;
  const int files = 40000;
  for (int i = 0; i < files; ++i) ++count[SetForName(spec->layout(), "parent-1", "file" + std::to_string(i))];
  ASSERT_EQ(count.size(), 4u);
  for (const auto& [set, n] : count) EXPECT_NEAR(n, files / 4, files / 40) << "set " << set;
}

TEST(VolumePlacement, DirectoriesGoToEverySet) {
  auto spec = CreateVolumeSpec(Request(1, {"h1:/a", "h2:/a", "h3:/a"}));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(LayoutSets(spec->layout()), (std::vector<uint32_t>{0, 1, 2}));
}

// Adding a set to n moves about 1/(n+1) of the files, all of them to the new set.
TEST(VolumePlacement, AddingASetMovesOnlyItsShare) {
  auto spec = CreateVolumeSpec(Request(2, {"h1:/a", "h2:/a"}));
  ASSERT_TRUE(spec.ok());
  pb::VolumeSpec current = *spec;
  const int files = 20000;
  for (int n = 1; n <= 6; ++n) {
    auto next = AddBricks(current, {"h1:/s" + std::to_string(n), "h2:/s" + std::to_string(n)}, false);
    ASSERT_TRUE(next.ok()) << next.status();
    ASSERT_TRUE(ValidateLayout(next->layout()).ok());
    EXPECT_EQ(next->layout().epoch(), current.layout().epoch() + 1);
    const uint32_t added = next->sets(next->sets_size() - 1).id();
    int moved = 0;
    for (int i = 0; i < files; ++i) {
      std::string name = "f" + std::to_string(i);
      uint32_t before = SetForName(current.layout(), "root", name);
      uint32_t after = SetForName(next->layout(), "root", name);
      if (before != after) {
        ++moved;
        EXPECT_EQ(after, added);
      }
    }
    EXPECT_NEAR(static_cast<double>(moved) / files, 1.0 / (n + 1), 0.02) << "n=" << n;
    for (uint32_t id : LayoutSets(next->layout())) {
      EXPECT_NEAR(LayoutShare(next->layout(), id), 1.0 / (n + 1), 1e-6);
    }
    // Few ranges: each add contributes at most one carved range per existing set.
    EXPECT_LE(next->layout().ranges_size(), (n + 1) * (n + 2) / 2);
    current = FinishRebalance(*next);
  }
}

TEST(VolumePlacement, RemovingASetMovesOnlyItsFiles) {
  auto spec = CreateVolumeSpec(Request(1, {"h1:/a", "h1:/b", "h1:/c", "h1:/d"}));
  ASSERT_TRUE(spec.ok());
  auto next = RemoveBricks(*spec, {"h1:/c"});
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(ValidateLayout(next->layout()).ok());
  EXPECT_EQ(LayoutSets(next->layout()), (std::vector<uint32_t>{0, 1, 3}));
  for (int i = 0; i < 5000; ++i) {
    std::string name = "f" + std::to_string(i);
    uint32_t before = SetForName(spec->layout(), "root", name);
    uint32_t after = SetForName(next->layout(), "root", name);
    if (before != 2) {
      EXPECT_EQ(before, after);
    }
  }
  for (uint32_t id : {0u, 1u, 3u}) EXPECT_NEAR(LayoutShare(next->layout(), id), 1.0 / 3, 1e-6);
  EXPECT_EQ(next->sets_size(), 4);  // set 2 stays until its files moved out
  EXPECT_EQ(FinishRebalance(*next).sets_size(), 3);
}

// Random add-brick/remove-brick sequences: the layout stays valid, every set owns an equal share
// (to within rounding), and each step moves only files to the added set or off the removed one.
TEST(VolumePlacement, RandomAddRemoveSequencesKeepLayoutsSound) {
  int max_ranges = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Random random(seed);
    auto created = CreateVolumeSpec(Request(1, {"h:/s0"}));
    ASSERT_TRUE(created.ok());
    pb::VolumeSpec spec = *created;
    int next_path = 1;
    for (int step = 0; step < 25; ++step) {
      const int sets = spec.sets_size();
      const bool add = sets == 1 || (sets < 12 && random.OneIn(2));
      Result<pb::VolumeSpec> next = Status(StatusCode::kInternal, "unset");
      uint32_t changed = 0;
      if (add) {
        next = AddBricks(spec, {"h:/s" + std::to_string(next_path++)}, false);
        ASSERT_TRUE(next.ok()) << next.status();
        changed = next->sets(next->sets_size() - 1).id();
      } else {
        const auto& victim = spec.sets(static_cast<int>(random.Uniform(static_cast<uint64_t>(sets))));
        changed = victim.id();
        next = RemoveBricks(spec, {BrickId(victim.bricks(0))});
        ASSERT_TRUE(next.ok()) << next.status();
      }
      ASSERT_TRUE(ValidateLayout(next->layout()).ok()) << "seed " << seed << " step " << step;
      max_ranges = std::max(max_ranges, next->layout().ranges_size());
      const auto ids = LayoutSets(next->layout());
      for (uint32_t id : ids) {
        EXPECT_NEAR(LayoutShare(next->layout(), id), 1.0 / static_cast<double>(ids.size()), 1e-6)
            << "seed " << seed << " step " << step << " set " << id;
      }
      for (int i = 0; i < 500; ++i) {
        const std::string name = "f" + std::to_string(i);
        const uint32_t before = SetForName(spec.layout(), "root", name);
        const uint32_t after = SetForName(next->layout(), "root", name);
        if (before != after) {
          ASSERT_EQ(add ? after : before, changed) << "seed " << seed << " step " << step << " " << name;
        }
      }
      spec = FinishRebalance(*next);
      ASSERT_TRUE(ValidateVolumeSpec(spec).ok()) << ValidateVolumeSpec(spec);
    }
  }
  std::printf("most ranges in a layout: %d\n", max_ranges);
  EXPECT_LT(max_ranges, 1000) << "fragmentation stays bounded";
}

TEST(VolumeAddRemoveBricks, Errors) {
  auto spec = CreateVolumeSpec(Request(2, {"h1:/a", "h2:/a"}));
  ASSERT_TRUE(spec.ok());
  ExpectError(AddBricks(*spec, {"h1:/b"}, false).status(), StatusCode::kInvalidArgument, "multiple");
  ExpectError(AddBricks(*spec, {"h1:/a", "h2:/b"}, false).status(), StatusCode::kInvalidArgument, "twice");
  ExpectError(AddBricks(*spec, {"h1:/b", "h1:/c"}, false).status(), StatusCode::kFailedPrecondition, "--force");
  auto added = AddBricks(*spec, {"h1:/b", "h2:/b"}, false);
  ASSERT_TRUE(added.ok());
  ExpectError(AddBricks(*added, {"h1:/c", "h2:/c"}, false).status(), StatusCode::kFailedPrecondition,
              "rebalancing");
  auto settled = FinishRebalance(*added);
  ExpectError(RemoveBricks(settled, {"h1:/b"}).status(), StatusCode::kInvalidArgument, "every brick");
  ExpectError(RemoveBricks(settled, {"h9:/b"}).status(), StatusCode::kInvalidArgument, "not part");
  ExpectError(RemoveBricks(settled, {"h1:/a", "h2:/a", "h1:/b", "h2:/b"}).status(),
              StatusCode::kFailedPrecondition, "no bricks");
  EXPECT_TRUE(RemoveBricks(settled, {"h1:/b", "h2:/b"}).ok());
}

TEST(VolumeRebalance, PlanMovesExactlyTheMisplacedFilesAndCreatesDirectories) {
  auto spec = CreateVolumeSpec(Request(1, {"h1:/a", "h1:/b"}));
  ASSERT_TRUE(spec.ok());
  std::vector<ListedEntry> listing;
  listing.push_back({"root", "dir", true, 0, 0});
  for (int i = 0; i < 3000; ++i) {
    std::string name = "f" + std::to_string(i);
    listing.push_back({"root", name, false, 100, SetForName(spec->layout(), "root", name)});
  }
  ExpectError(PlanRebalance(*spec, listing).status(), StatusCode::kFailedPrecondition, "no rebalance");
  auto next = AddBricks(*spec, {"h1:/c"}, false);
  ASSERT_TRUE(next.ok());
  auto plan = PlanRebalance(*next, listing);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->directories.size(), 1u);
  EXPECT_EQ(plan->directories[0].set_id, 2u);
  EXPECT_EQ(plan->files_listed, 3001u);
  EXPECT_NEAR(static_cast<double>(plan->moves.size()) / 3000, 1.0 / 3, 0.03);
  EXPECT_EQ(plan->bytes_to_move, plan->moves.size() * 100);
  for (const auto& move : plan->moves) {
    EXPECT_EQ(move.to_set, 2u);
    EXPECT_EQ(move.to_set, SetForName(next->layout(), "root", move.entry.name));
  }
  listing.push_back({"root", "stray", false, 1, 7});
  ExpectError(PlanRebalance(*next, listing).status(), StatusCode::kInvalidArgument, "does not name");
}

TEST(VolumeRebalance, RemovePlanEmptiesTheRemovedSet) {
  auto spec = CreateVolumeSpec(Request(1, {"h1:/a", "h1:/b", "h1:/c"}));
  ASSERT_TRUE(spec.ok());
  std::vector<ListedEntry> listing;
  for (int i = 0; i < 2000; ++i) {
    std::string name = "f" + std::to_string(i);
    listing.push_back({"root", name, false, 1, SetForName(spec->layout(), "root", name)});
  }
  auto next = RemoveBricks(*spec, {"h1:/b"});
  ASSERT_TRUE(next.ok());
  auto plan = PlanRebalance(*next, listing);
  ASSERT_TRUE(plan.ok());
  size_t on_removed = 0;
  for (const auto& entry : listing) on_removed += entry.set_id == 1;
  EXPECT_EQ(plan->moves.size(), on_removed);
  for (const auto& move : plan->moves) {
    EXPECT_EQ(move.from_set, 1u);
    EXPECT_NE(move.to_set, 1u);
  }
}

}  // namespace
}  // namespace cairn::volume
