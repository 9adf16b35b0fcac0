#include <filesystem>

#include <gtest/gtest.h>

#include "cairn/clusterspec/plan.h"
#include "cairn/clusterspec/records.h"
#include "cairn/clusterspec/spec.h"

namespace cairn::clusterspec {
namespace {

const char kSmall[] = R"(hosts:
  - name: host1
    roles: [voter, storage]
  - name: host2
    roles: [voter, storage]
volumes:
  - name: gv0
    replica: 2
    bricks: [host1:/b/gv0, host2:/b/gv0]
mounts:
  - {host: host1, volume: gv0, path: /mnt/gv0}
)";

ClusterSpec Parse(const std::string& text) {
  auto spec = ParseClusterSpec(text, "c.yaml");
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : ClusterSpec{};
}

std::string ErrorOf(const std::string& text) {
  auto spec = ParseClusterSpec(text, "c.yaml");
  EXPECT_FALSE(spec.ok()) << "parsed:\n" << text;
  return spec.ok() ? "" : spec.status().message();
}

TEST(ClusterSpecParse, ExamplesLoad) {
  std::vector<std::string> files{std::string(CAIRN_CONFIG_DIR) + "/cluster.yaml"};
  for (const auto& entry : std::filesystem::directory_iterator(std::string(CAIRN_CONFIG_DIR) + "/examples")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  for (const std::string& file : files) {
    auto spec = LoadClusterSpec(file);
    EXPECT_TRUE(spec.ok()) << file << ": " << spec.status().ToString();
  }
  auto main = LoadClusterSpec(files[0]);
  ASSERT_TRUE(main.ok());
  EXPECT_EQ(main->hosts.size(), 3u);
  EXPECT_EQ(main->volumes.at(0).replica, 3u);
  EXPECT_EQ(main->containers.size(), 2u);
}

TEST(ClusterSpecParse, DefaultsAndType) {
  ClusterSpec spec = Parse(kSmall);
  ASSERT_EQ(spec.volumes.size(), 1u);
  EXPECT_EQ(spec.volumes[0].type, "replicate");
  EXPECT_EQ(spec.volumes[0].state, "started");
  EXPECT_EQ(spec.volumes[0].no_quorum, "eio");
  EXPECT_TRUE(spec.Has(Kind::kMount));
  EXPECT_FALSE(spec.Has(Kind::kContainer));
}

TEST(ClusterSpecParse, UnknownFieldSuggestsAtLineAndColumn) {
  std::string text = kSmall;
  text.replace(text.find("replica: 2"), 7, "replcia");
  EXPECT_EQ(ErrorOf(text), "c.yaml:8:5: volumes[0]: unknown field \"replcia\", did you mean \"replica\"?");
}

TEST(ClusterSpecParse, BadEnumSuggests) {
  std::string text = std::string(kSmall) + "containers:\n  - {name: c1, image: base, host: host1, state: runing}\n";
  std::string error = ErrorOf(text);
  EXPECT_NE(error.find("c.yaml:13:"), std::string::npos) << error;
  EXPECT_NE(error.find("containers[0].state: \"runing\""), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean \"running\"?"), std::string::npos) << error;
}

TEST(ClusterSpecParse, BrickOnUndeclaredHost) {
  std::string text = kSmall;
  text.replace(text.find("host2:/b"), 5, "hostx");
  std::string error = ErrorOf(text);
  EXPECT_EQ(error.rfind("c.yaml:9:5: volumes[0].bricks: no host \"hostx\" is declared in this file", 0), 0u) << error;
  EXPECT_NE(error.find("did you mean"), std::string::npos) << error;
}

TEST(ClusterSpecParse, BrickCountMustFitReplica) {
  std::string text = kSmall;
  text.replace(text.find("replica: 2"), 10, "replica: 3");
  std::string error = ErrorOf(text);
  EXPECT_EQ(error.rfind("c.yaml:9:5: volumes[0].bricks: ", 0), 0u) << error;
}

TEST(ClusterSpecParse, TypeMustMatchSets) {
  std::string text = kSmall;
  text.replace(text.find("    replica: 2"), 0, "    type: distributed-replicate\n");
  std::string error = ErrorOf(text);
  EXPECT_NE(error.find("volumes[0].type: \"distributed-replicate\" does not match 2 bricks with replica 2"),
            std::string::npos) << error;
}

TEST(ClusterSpecParse, DuplicatesAndReferences) {
  std::string dup = std::string(kSmall) + "  - {host: host1, volume: gv0, path: /mnt/gv0/}\n";
  EXPECT_NE(ErrorOf(dup).find("c.yaml:12:32: mounts[1].path: mount \"host1:/mnt/gv0\" is declared twice (first at c.yaml:11:5)"),
            std::string::npos) << ErrorOf(dup);
  std::string ref = std::string(kSmall) + "  - {host: host2, volume: gv1, path: /mnt/x}\n";
  EXPECT_NE(ErrorOf(ref).find("mounts[1].volume: no volume \"gv1\" is declared in this file; did you mean \"gv0\"?"),
            std::string::npos) << ErrorOf(ref);
  EXPECT_NE(ErrorOf("volumes:\n  - name: v\n    bricks: [nocolon]\n").find("c.yaml:3:14: volumes[0].bricks[0]: "),
            std::string::npos) << ErrorOf("volumes:\n  - name: v\n    bricks: [nocolon]\n");
  EXPECT_NE(ErrorOf("mounts:\n  - {host: h, volume: v, path: relative}\n").find("mounts[0].path"), std::string::npos);
  EXPECT_NE(ErrorOf("hosts:\n  - {name: w, roles: [witness, storage]}\n").find("a witness only votes"), std::string::npos);
  EXPECT_NE(ErrorOf("hosts: [\n").find("c.yaml:"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("the file is empty"), std::string::npos);
  EXPECT_NE(ErrorOf("images:\n  - {name: i, source: http://x}\n").find("busybox, dir:/PATH or tar:/FILE"), std::string::npos);
}

// apply's checks against the store point at the field like the parser's errors do.
TEST(ClusterSpecParse, SourceMapLocatesContainerFields) {
  const std::string text = std::string(kSmall) +
                           "images:\n"
                           "  - {name: bb, source: busybox}\n"
                           "containers:\n"
                           "  - name: c1\n"
                           "    image: bb\n"
                           "    host: host1\n"
                           "    volumes: [gv0:/data, gv0:/ro:ro]\n";
  SourceMap where;
  auto spec = ParseClusterSpec(text, "c.yaml", &where);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(where.Error(Kind::kContainer, "c1", "host", "host host1 is down").message(),
            "c.yaml:17:5: containers[0].host: host host1 is down");
  EXPECT_EQ(where.Error(Kind::kContainer, "c1", "volumes:gv0:/ro:ro", "not started").message(),
            "c.yaml:18:26: containers[0].volumes[1]: not started");
  EXPECT_EQ(where.Error(Kind::kImage, "bb", "source", "missing").message(), "c.yaml:13:16: images[0].source: missing");
  EXPECT_EQ(where.Error(Kind::kContainer, "c9", "volumes:x:/y", "gone").message(), "container c9: volumes: gone")
      << "an item not from the file is named instead";
}

TEST(ClusterSpecRoundTrip, YamlBackToEqualSpec) {
  auto original = LoadClusterSpec(std::string(CAIRN_CONFIG_DIR) + "/cluster.yaml");
  ASSERT_TRUE(original.ok()) << original.status().ToString();
  std::string yaml = ToYaml(*original);
  ClusterSpec again = Parse(yaml);
  EXPECT_EQ(again, *original) << yaml;
  EXPECT_EQ(ToYaml(again), yaml);
  EXPECT_TRUE(ComputePlan(again, *original).empty());
  // A spec with only some sections keeps exactly those (an empty one stays, as []).
  ClusterSpec partial;
  partial.present = {Kind::kVolume};
  EXPECT_EQ(ToYaml(partial), "volumes: []\n");
  EXPECT_EQ(Parse(ToYaml(partial)), partial);
  EXPECT_EQ(ToJson(partial), "{\"volumes\":[]}");
}

TEST(ClusterSpecRoundTrip, StoreRecordsReadBackAsDeclared) {
  ClusterSpec spec = Parse(kSmall);
  EXPECT_EQ(FromRecord(ToRecord(spec.hosts[0])), spec.hosts[0]);
  EXPECT_EQ(FromRecord(ToRecord(spec.mounts[0])), spec.mounts[0]);
  MountRecord record;
  ASSERT_TRUE(ParseRecord("k", RecordJson(ToRecord(spec.mounts[0])), &record).ok());
  EXPECT_EQ(FromRecord(record), spec.mounts[0]);
  EXPECT_FALSE(ParseRecord("k", "{not json", &record).ok());
  EXPECT_EQ(MountKey("host1", "/mnt/gv0"), "/cairn/mounts/host1/mnt/gv0");
  EXPECT_EQ(ImageSourceFromRecord("build:/x", "base"), "dir:/x");
  // A busybox image reads back as the file wrote it, so `diff` after `apply` is empty.
  EXPECT_EQ(ImageSourceFromRecord("busybox:/bin/busybox", ""), "busybox");
  EXPECT_EQ(ImageSourceFromRecord("tar:/x.tar", ""), "tar:/x.tar");
  EXPECT_EQ(ContainerStateFromRecord("failed"), "stopped");
}

// The current state as the store would give it: every section present.
ClusterSpec Current(const std::string& text) {
  ClusterSpec spec = Parse(text);
  spec.present = {std::begin(kAllKinds), std::end(kAllKinds)};
  return spec;
}

TEST(ClusterSpecPlan, CreatesEverythingOnAnEmptyCluster) {
  ClusterSpec current;
  current.present = {std::begin(kAllKinds), std::end(kAllKinds)};
  Plan plan = ComputePlan(Parse(kSmall), current);
  EXPECT_EQ(plan.Count(Action::kCreate), 4u);
  EXPECT_EQ(plan.Render(),
            "+ host host1 (storage,voter)\n"
            "+ host host2 (storage,voter)\n"
            "+ volume gv0 (replicate, replica 2: host1:/b/gv0 host2:/b/gv0)\n"
            "+ mount host1:/mnt/gv0 (volume gv0)\n"
            "Plan: 4 to create, 0 to change, 0 to delete.\n");
}

TEST(ClusterSpecPlan, ChangesAndDeletesOnlyWithinGivenSections) {
  ClusterSpec current = Current(std::string(kSmall) +
                                "images:\n  - {name: base, source: busybox}\n"
                                "containers:\n  - {name: c1, image: base, host: host1, state: stopped}\n"
                                "  - {name: old, image: base, host: host2}\n");
  ClusterSpec desired = Parse(
      "volumes:\n  - name: gv0\n    replica: 2\n    bricks: [host1:/b/gv0, host2:/b/gv0]\n    state: stopped\n"
      "containers:\n  - {name: c1, image: base, host: host1, state: running}\n");
  Plan plan = ComputePlan(desired, current);
  EXPECT_EQ(plan.Render(),
            "- container old (image base on host2, running) [holds data]\n"
            "~ volume gv0: state started -> stopped\n"
            "~ container c1: state stopped -> running\n"
            "Plan: 0 to create, 2 to change, 1 to delete.\n");
  ASSERT_EQ(plan.Deletes().size(), 1u);
  EXPECT_TRUE(plan.Deletes()[0]->holds_data);
  EXPECT_TRUE(plan.Unsupported().empty());
  EXPECT_NE(plan.ToJson().find("\"delete\":1"), std::string::npos);
}

TEST(ClusterSpecPlan, DeletesRunUsersFirst) {
  ClusterSpec current = Current(kSmall);
  ClusterSpec desired;
  desired.present = {Kind::kVolume, Kind::kMount};
  Plan plan = ComputePlan(desired, current);
  ASSERT_EQ(plan.changes.size(), 2u);
  EXPECT_EQ(plan.changes[0].kind, Kind::kMount);
  EXPECT_EQ(plan.changes[1].kind, Kind::kVolume);
  EXPECT_FALSE(plan.changes[0].holds_data);
  EXPECT_TRUE(plan.changes[1].holds_data);
}

TEST(ClusterSpecPlan, BrickAndImageChangesAreUnsupported) {
  ClusterSpec current = Current(std::string(kSmall) + "images:\n  - {name: base, source: busybox}\n");
  std::string text = kSmall;
  text.replace(text.find("host2:/b/gv0"), 12, "host2:/c/gv0");
  ClusterSpec desired = Parse(text + "images:\n  - {name: base, source: 'tar:/x.tar'}\n");
  Plan plan = ComputePlan(desired, current);
  ASSERT_EQ(plan.Unsupported().size(), 2u);
  EXPECT_NE(plan.Render().find("! cannot apply: apply does not move bricks"), std::string::npos) << plan.Render();
  EXPECT_NE(plan.Render().find("images never change"), std::string::npos) << plan.Render();
}

TEST(ClusterSpecKinds, ParseKind) {
  EXPECT_EQ(*ParseKind("volumes"), Kind::kVolume);
  EXPECT_EQ(*ParseKind("mount"), Kind::kMount);
  EXPECT_FALSE(ParseKind("pods").ok());
}

}  // namespace
}  // namespace cairn::clusterspec
