#include "cairn/config/yaml_reader.h"

#include <gtest/gtest.h>

namespace cairn::config {
namespace {

TEST(SourceLocationTest, PrintsFileLineColumn) {
  EXPECT_EQ((SourceLocation{"a.yaml", 7, 3}.ToString()), "a.yaml:7:3");
  EXPECT_EQ((SourceLocation{"a.yaml", 0, 0}.ToString()), "a.yaml");
}

TEST(ConfigErrorTest, LeavesOutAnEmptyPath) {
  EXPECT_EQ(ConfigError({"f", 1, 2}, "", "bad").message(), "f:1:2: bad");
  EXPECT_EQ(ConfigError({"f", 1, 2}, "a.b", "bad").message(), "f:1:2: a.b: bad");
  EXPECT_EQ(ConfigError({"f", 1, 2}, "a", "bad").code(), StatusCode::kInvalidArgument);
}

TEST(ClosestNameTest, SuggestsTyposOnly) {
  std::vector<std::string_view> names = {"name", "data_dir", "peer_address", "client_address", "log"};
  EXPECT_EQ(ClosestName("nmae", names), "name");         // swapped letters count as one edit
  EXPECT_EQ(ClosestName("datadir", names), "data_dir");
  EXPECT_EQ(ClosestName("Name", names), "name");
  EXPECT_EQ(ClosestName("peer_adress", names), "peer_address");
  EXPECT_EQ(ClosestName("client_addr", names), "client_address");
  EXPECT_EQ(ClosestName("lvl", {"level", "format"}), "level");
  EXPECT_EQ(ClosestName("zzz", names), "");
  EXPECT_EQ(ClosestName("completely_different", names), "");
  EXPECT_EQ(ClosestName("x", {}), "");
}

TEST(JoinPathTest, Joins) {
  EXPECT_EQ(JoinPath("", "log"), "log");
  EXPECT_EQ(JoinPath("log", "level"), "log.level");
  EXPECT_EQ(JoinPath("peers[1]", "address"), "peers[1].address");
}

TEST(YamlReaderTest, TracksPathsAndPositionsThroughListsAndMaps) {
  auto root = ParseYaml("peers:\n  - name: a\n    address: 10.0.0.1:1\n  - name: b\n    address: 10.0.0.2:foo\n",
                        "node.yaml");
  ASSERT_TRUE(root.ok()) << root.status();
  auto top = root->Map({"peers"});
  ASSERT_TRUE(top.ok()) << top.status();
  auto peers = top->Require("peers")->List();
  ASSERT_TRUE(peers.ok());
  ASSERT_EQ(peers->size(), 2u);
  auto second = (*peers)[1].Map({"name", "address"});
  ASSERT_TRUE(second.ok()) << second.status();
  auto address = second->Require("address")->HostPortValue();
  EXPECT_EQ(address.status().message(),
            "node.yaml:5:14: peers[1].address: \"10.0.0.2:foo\" is not host:port (port \"foo\" is not a number)");
  EXPECT_EQ((*peers)[0].path(), "peers[0]");
  EXPECT_EQ((*peers)[0].location().line, 2);
  EXPECT_EQ((*peers)[0].location().column, 5);
}

TEST(YamlReaderTest, SyntaxErrorsAreLocated) {
  auto root = ParseYaml("a: 1\nb: [1, 2\n", "x.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_TRUE(StartsWith(root.status().message(), "x.yaml:")) << root.status();
  EXPECT_NE(root.status().message().find("syntax error: "), std::string::npos) << root.status();
}

TEST(YamlReaderTest, RejectsSeveralDocuments) {
  auto root = ParseYaml("a: 1\n---\nb: 2\n", "x.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().message(), "x.yaml:3:1: the file holds several YAML documents (\"---\"); expected one");
}

TEST(YamlReaderTest, EmptyTextIsANullRoot) {
  auto root = ParseYaml("", "x.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->IsNull());
  EXPECT_EQ(root->Error("empty").message(), "x.yaml:1:1: empty");
}

TEST(YamlReaderTest, TypedReaders) {
  auto root = ParseYaml("n: 42\nneg: -3\nbig: 99999999999999999999\nb: true\nbad_b: yes\nd: 500ms\n"
                        "bad_d: 5 minutes\nlist: [1]\np: relative/dir\nabs: /x\n",
                        "t.yaml");
  ASSERT_TRUE(root.ok()) << root.status();
  auto map = root->Map({"n", "neg", "big", "b", "bad_b", "d", "bad_d", "list", "p", "abs"});
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(*map->Get("n")->Int(0, 100), 42);
  EXPECT_EQ(*map->Get("neg")->Int(-10, 0), -3);
  EXPECT_EQ(map->Get("n")->Int(0, 10).status().message(), "t.yaml:1:4: n: 42 is out of range (0 to 10)");
  EXPECT_EQ(map->Get("big")->Int(0, 10).status().message(),
            "t.yaml:3:6: big: \"99999999999999999999\" is not an integer");
  EXPECT_TRUE(*map->Get("b")->Bool());
  EXPECT_EQ(map->Get("bad_b")->Bool().status().message(),
            "t.yaml:5:8: bad_b: \"yes\" is not a boolean (use true or false)");
  EXPECT_EQ(map->Get("d")->Duration()->count(), 500'000'000);
  EXPECT_FALSE(map->Get("bad_d")->Duration().ok());
  EXPECT_EQ(map->Get("list")->String().status().message(), "t.yaml:8:7: list: expected a string, got a list");
  EXPECT_EQ(map->Get("n")->List().status().message(), "t.yaml:1:4: n: expected a list, got a string (\"42\")");
  EXPECT_EQ(map->Get("p")->AbsolutePath().status().message(),
            "t.yaml:9:4: p: \"relative/dir\" is not an absolute path (start it with /)");
  EXPECT_EQ(*map->Get("abs")->AbsolutePath(), "/x");
}

TEST(YamlReaderTest, ReadHelpersLeaveDefaultsWhenAbsentOrNull) {
  auto root = ParseYaml("s: hello\nnothing:\n", "t.yaml");
  ASSERT_TRUE(root.ok());
  auto map = root->Map({"s", "nothing", "absent"});
  ASSERT_TRUE(map.ok()) << map.status();
  std::string s = "default";
  std::string nothing = "default";
  bool flag = true;
  EXPECT_TRUE(map->ReadString("s", &s).ok());
  EXPECT_TRUE(map->ReadString("nothing", &nothing).ok());
  EXPECT_TRUE(map->ReadBool("absent", &flag).ok());
  EXPECT_EQ(s, "hello");
  EXPECT_EQ(nothing, "default");
  EXPECT_TRUE(flag);
  EXPECT_TRUE(map->Has("nothing"));
  EXPECT_FALSE(map->Get("nothing").has_value());
  EXPECT_EQ(map->RequireString("nothing").status().message(), "t.yaml:2:1: nothing: expected a string, got null");
}

TEST(YamlReaderTest, MapRejectsDuplicateAndComplexKeys) {
  auto root = ParseYaml("a: 1\nb: 2\na: 3\n", "t.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->Map({"a", "b"}).status().message(), "t.yaml:3:1: a: duplicate field (first set at line 1)");
  root = ParseYaml("? [x]\n: 1\n", "t.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->Map({"a"}).status().message(), "t.yaml:1:3: field names must be plain strings, got a list");
}

TEST(YamlReaderTest, LoadYamlFileReportsMissingFiles) {
  auto root = LoadYamlFile("/nonexistent/cairn/x.yaml");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), StatusCode::kNotFound);
  EXPECT_NE(root.status().message().find("/nonexistent/cairn/x.yaml"), std::string::npos);
  auto directory = LoadYamlFile("/");
  EXPECT_FALSE(directory.ok());
}

}  // namespace
}  // namespace cairn::config
