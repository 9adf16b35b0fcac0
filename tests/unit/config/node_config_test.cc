#include "cairn/config/node_config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "cairn/common/ids.h"

namespace cairn::config {
namespace {

constexpr const char* kHead = "name: n1\ndata_dir: /d\n";  // lines 1-2 of most cases below

struct ErrorCase {
  const char* title;
  std::string yaml;
  std::string error;  // the whole message, file:line:column included
};

std::vector<ErrorCase> ErrorCases() {
  std::string head = kHead;
  std::string three =
      "initial_cluster:\n"
      "  - name: n1\n"
      "    peer_address: 127.0.0.1:2380\n";
  return {
      {"syntax error", "name: n1\ndata_dir: [/d\n", ""},  // message checked separately: yaml-cpp words it
      {"empty file", "", "node.yaml:1:1: the file is empty; node.yaml needs at least name and data_dir"},
      {"top level is a list", "- a\n", "node.yaml:1:1: expected a mapping, got a list"},
      {"unknown field with suggestion", head + "nmae: x\n",
       "node.yaml:3:1: unknown field \"nmae\", did you mean \"name\"?"},
      {"unknown field without suggestion", head + "zzz: 1\n",
       "node.yaml:3:1: unknown field \"zzz\" (known fields: name, data_dir, role, peer_address, client_address, "
       "advertise_peer_address, advertise_client_address, initial_cluster, join, log, auth)"},
      {"bad peer auth mode", head + "auth:\n  peer: maybe\n",
       "node.yaml:4:9: auth.peer: \"maybe\" is not a peer authentication mode (use auto, required or off)"},
      {"relative key file", head + "auth:\n  cluster_key_file: cluster.key\n",
       "node.yaml:4:21: auth.cluster_key_file: \"cluster.key\" is not an absolute path (start it with /)"},
      {"unknown nested field", head + "log:\n  lvl: debug\n",
       "node.yaml:4:3: log: unknown field \"lvl\", did you mean \"level\"?"},
      {"duplicate field", head + "name: n2\n", "node.yaml:3:1: name: duplicate field (first set at line 1)"},
      {"missing name", "data_dir: /d\n", "node.yaml:1:1: missing required field \"name\""},
      {"missing data_dir", "name: n1\n", "node.yaml:1:1: missing required field \"data_dir\""},
      {"null name", "name:\ndata_dir: /d\n", "node.yaml:1:1: name: expected a string, got null"},
      {"bad name", "name: Node_1\ndata_dir: /d\n",
       "node.yaml:1:7: name: \"Node_1\" is not a valid node name (use only a-z, 0-9 and '-')"},
      {"name ends with dash", "name: n1-\ndata_dir: /d\n",
       "node.yaml:1:7: name: \"n1-\" is not a valid node name (it must start and end with a letter or digit)"},
      {"relative data_dir", "name: n1\ndata_dir: data\n",
       "node.yaml:2:11: data_dir: \"data\" is not an absolute path (start it with /)"},
      {"data_dir is a list", "name: n1\ndata_dir: [/a, /b]\n",
       "node.yaml:2:11: data_dir: expected a string, got a list"},
      {"bad role", head + "role: leader\n", "node.yaml:3:7: role: \"leader\" is not a role (use voter or witness)"},
      {"witness alone", head + "role: witness\n",
       "node.yaml:3:1: role: a witness only votes and cannot form a cluster alone; add initial_cluster or join"},
      {"bad peer_address", head + "peer_address: 127.0.0.1\n",
       "node.yaml:3:15: peer_address: \"127.0.0.1\" is not host:port (missing ':port')"},
      {"client equals peer", head + "peer_address: 127.0.0.1:5\nclient_address: 127.0.0.1:5\n",
       "node.yaml:4:17: client_address: is the same as peer_address; the peer and client listeners need "
       "different ports"},
      {"wildcard advertise", head + "advertise_client_address: 0.0.0.0:2379\n",
       "node.yaml:3:27: advertise_client_address: 0.0.0.0 is a wildcard that other nodes cannot dial; give a "
       "concrete address"},
      {"wildcard peer in a cluster", head + "peer_address: 0.0.0.0:2380\n" + three,
       "node.yaml:3:1: peer_address: \"0.0.0.0:2380\" cannot be dialled by other members; set "
       "advertise_peer_address"},
      {"log is a string", head + "log: debug\n",
       "node.yaml:3:6: log: expected a mapping, got a string (\"debug\")"},
      {"bad log level", head + "log:\n  level: loud\n",
       "node.yaml:4:10: log.level: log level \"loud\" is not one of: trace, debug, info, warn, error, critical, off"},
      {"bad log format", head + "log:\n  format: xml\n",
       "node.yaml:4:11: log.format: log format \"xml\" is not one of: text, json"},
      {"relative log file", head + "log:\n  file: clusterd.log\n",
       "node.yaml:4:9: log.file: \"clusterd.log\" is not an absolute path (start it with /)"},
      {"initial_cluster is a string", head + "initial_cluster: n1\n",
       "node.yaml:3:18: initial_cluster: expected a list, got a string (\"n1\")"},
      {"initial_cluster empty", head + "initial_cluster: []\n",
       "node.yaml:3:18: initial_cluster: is empty; list every founding member, this node included"},
      {"member missing address", head + "initial_cluster:\n  - name: n1\n",
       "node.yaml:4:5: initial_cluster[0]: missing required field \"peer_address\""},
      {"member unknown field", head + "initial_cluster:\n  - name: n1\n    address: 127.0.0.1:2380\n",
       "node.yaml:5:5: initial_cluster[0]: unknown field \"address\" (known fields: name, peer_address)"},
      {"member bad address", head + three + "  - name: n2\n    peer_address: \"10.0.0.2:foo\"\n",
       "node.yaml:7:19: initial_cluster[1].peer_address: \"10.0.0.2:foo\" is not host:port (port \"foo\" is not a "
       "number)"},
      {"member duplicate name", head + three + "  - name: n1\n    peer_address: 127.0.0.1:2381\n",
       "node.yaml:6:11: initial_cluster[1].name: duplicate member name \"n1\" (also initial_cluster[0])"},
      {"member duplicate address", head + three + "  - name: n2\n    peer_address: 127.0.0.1:2380\n",
       "node.yaml:7:19: initial_cluster[1].peer_address: duplicate peer address \"127.0.0.1:2380\" (also "
       "initial_cluster[0])"},
      {"member wildcard address", head + "initial_cluster:\n  - name: n1\n    peer_address: 0.0.0.0:2380\n",
       "node.yaml:5:19: initial_cluster[0].peer_address: 0.0.0.0 is a wildcard that other nodes cannot dial; give "
       "a concrete address"},
      {"this node not listed", head + "initial_cluster:\n  - name: n2\n    peer_address: 127.0.0.1:2380\n",
       "node.yaml:4:3: initial_cluster: does not list this node (name \"n1\"); every founding member, this one "
       "included, must be listed"},
      {"own entry differs", head + "initial_cluster:\n  - name: n1\n    peer_address: 127.0.0.1:9999\n",
       "node.yaml:5:19: initial_cluster[0].peer_address: \"127.0.0.1:9999\" differs from this node's peer_address "
       "\"127.0.0.1:2380\"; the entry for this node must match it"},
      {"join and initial_cluster", head + three + "join:\n  address: 127.0.0.1:2379\n  token: t\n",
       "node.yaml:6:1: join: cannot be combined with initial_cluster (line 3): use initial_cluster to found a new "
       "cluster, join to enter a running one"},
      {"join without token", head + "join:\n  address: 127.0.0.1:2379\n",
       "node.yaml:4:3: join: missing required field \"token\""},
      {"join empty token", head + "join:\n  address: 127.0.0.1:2379\n  token: \"\"\n",
       "node.yaml:5:10: join.token: is empty; use the token printed by the cluster's first node"},
      {"join token with space", head + "join:\n  address: 127.0.0.1:2379\n  token: \"a b\"\n",
       "node.yaml:5:10: join.token: contains whitespace or control characters; paste the token exactly as printed"},
      {"join port zero", head + "join:\n  address: 127.0.0.1:0\n  token: t\n",
       "node.yaml:4:12: join.address: \"127.0.0.1:0\" is not host:port (the port must be 1 to 65535)"},
  };
}

TEST(NodeConfigErrorsTest, EveryErrorNamesFileLineColumnAndField) {
  for (const ErrorCase& test : ErrorCases()) {
    SCOPED_TRACE(test.title);
    auto config = ParseNodeConfig(test.yaml, "node.yaml");
    ASSERT_FALSE(config.ok()) << "accepted:\n" << test.yaml;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    if (test.error.empty()) continue;
    EXPECT_EQ(config.status().message(), test.error);
  }
}

TEST(NodeConfigErrorsTest, SyntaxErrorIsLocated) {
  auto config = ParseNodeConfig("name: n1\ndata_dir: [/d\n", "node.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(StartsWith(config.status().message(), "node.yaml:3:1: syntax error: ")) << config.status();
  config = ParseNodeConfig("name: n1\n  data_dir: /d\n", "node.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(StartsWith(config.status().message(), "node.yaml:2:11: syntax error: ")) << config.status();
}

TEST(NodeConfigTest, MinimalFileIsASingleNodeVoterWithDefaults) {
  auto config = ParseNodeConfig(kHead, "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "n1");
  EXPECT_EQ(config->data_dir, "/d");
  EXPECT_EQ(config->peer_address.ToString(), "127.0.0.1:2380");
  EXPECT_EQ(config->client_address.ToString(), "127.0.0.1:2379");
  EXPECT_EQ(config->role, Role::kVoter);
  EXPECT_EQ(config->bootstrap_mode(), BootstrapMode::kSingleNode);
  EXPECT_EQ(config->log.level, "info");
  EXPECT_EQ(config->log.format, log::Format::kText);
  EXPECT_EQ(config->AdvertisedPeerAddress().ToString(), "127.0.0.1:2380");
}

TEST(NodeConfigTest, PortZeroListensOnAnyPortForASingleNode) {
  auto config = ParseNodeConfig(std::string(kHead) + "peer_address: 127.0.0.1:0\nclient_address: 127.0.0.1:0\n",
                                "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->peer_address.port, 0);
}

TEST(NodeConfigTest, WildcardListenWithAdvertiseJoins) {
  auto config = ParseNodeConfig(std::string(kHead) +
                                    "peer_address: 0.0.0.0:2380\n"
                                    "advertise_peer_address: 10.0.0.1:2380\n"
                                    "join:\n  address: 10.0.0.2:2379\n  token: abc.def\n",
                                "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->bootstrap_mode(), BootstrapMode::kJoin);
  EXPECT_EQ(config->AdvertisedPeerAddress().ToString(), "10.0.0.1:2380");
  EXPECT_EQ(config->join->token, "abc.def");
}

constexpr const char* kFullFile =
    "name: host-2\n"
    "data_dir: /var/lib/cairn/host-2\n"
    "role: witness\n"
    "peer_address: \"[::]:2380\"\n"
    "client_address: 0.0.0.0:2379\n"
    "advertise_peer_address: \"[fd00::2]:2380\"\n"
    "advertise_client_address: host-2.example:2379\n"
    "initial_cluster:\n"
    "  - name: host-1\n"
    "    peer_address: \"[fd00::1]:2380\"\n"
    "  - name: host-2\n"
    "    peer_address: \"[fd00::2]:2380\"\n"
    "  - name: host-3\n"
    "    peer_address: \"[fd00::3]:2380\"\n"
    "log:\n"
    "  level: debug\n"
    "  format: json\n"
    "  file: /var/log/cairn/clusterd.log\n";

TEST(NodeConfigTest, FullFileRoundTrips) {
  auto config = ParseNodeConfig(kFullFile, "full.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->role, Role::kWitness);
  EXPECT_EQ(config->bootstrap_mode(), BootstrapMode::kStatic);
  ASSERT_EQ(config->initial_cluster.size(), 3u);
  EXPECT_EQ(config->initial_cluster[2].peer_address.host, "fd00::3");
  EXPECT_EQ(config->advertise_client_address->ToString(), "host-2.example:2379");
  EXPECT_EQ(config->log.format, log::Format::kJson);

  std::string written = NodeConfigToYaml(*config);
  auto again = ParseNodeConfig(written, "written.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << written;
  EXPECT_EQ(*again, *config) << written;
  EXPECT_EQ(NodeConfigToYaml(*again), written);  // stable
}

TEST(NodeConfigTest, JoinConfigRoundTrips) {
  auto config = ParseNodeConfig(std::string(kHead) + "join:\n  address: 10.0.0.2:2379\n  token: \"x:y#z\"\n",
                                "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto again = ParseNodeConfig(NodeConfigToYaml(*config), "written.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *config);
  EXPECT_EQ(again->join->token, "x:y#z");
}

TEST(NodeConfigTest, AuthSectionRoundTrips) {
  auto config = ParseNodeConfig(std::string(kHead) +
                                    "auth:\n  peer: required\n  cluster_key_file: /etc/cairn/cluster.key\n"
                                    "  api_token_file: /etc/cairn/api.token\n",
                                "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth.peer, PeerAuth::kRequired);
  EXPECT_EQ(config->ClusterKeyPath(), "/etc/cairn/cluster.key");
  EXPECT_EQ(config->auth.api_token_file, "/etc/cairn/api.token");
  auto again = ParseNodeConfig(NodeConfigToYaml(*config), "written.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *config);
}

TEST(NodeConfigTest, AuthDefaultsToAutoWithTheKeyInTheDataDir) {
  auto config = ParseNodeConfig(kHead, "node.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth.peer, PeerAuth::kAuto);
  EXPECT_EQ(config->ClusterKeyPath(), config->data_dir + "/cluster.key");
  EXPECT_TRUE(config->auth.api_token_file.empty());
}

TEST(NodeConfigTest, EqualityNoticesEveryField) {
  auto base = ParseNodeConfig(kFullFile, "full.yaml");
  ASSERT_TRUE(base.ok());
  NodeConfig changed = *base;
  changed.initial_cluster[1].peer_address.port = 1;
  EXPECT_FALSE(changed == *base);
  changed = *base;
  changed.advertise_client_address.reset();
  EXPECT_FALSE(changed == *base);
  changed = *base;
  changed.log.file.clear();
  EXPECT_FALSE(changed == *base);
  changed = *base;
  changed.auth.peer = PeerAuth::kOff;
  EXPECT_FALSE(changed == *base);
}

TEST(NodeConfigTest, ExamplesLoad) {
  const std::string dir = CAIRN_CONFIG_EXAMPLES_DIR;
  for (const char* name : {"node1", "node2", "node3"}) {
    auto config = LoadNodeConfig(dir + "/" + name + ".yaml");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->name, name);
    EXPECT_EQ(config->data_dir, std::string("/var/lib/cairn/") + name);
    EXPECT_EQ(config->bootstrap_mode(), BootstrapMode::kStatic);
    EXPECT_EQ(config->initial_cluster.size(), 3u);
  }
  auto single = LoadNodeConfig(dir + "/single.yaml");
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_EQ(single->bootstrap_mode(), BootstrapMode::kSingleNode);
}

TEST(NodeConfigTest, LoadNodeConfigUsesThePathInMessages) {
  std::string path = "/tmp/cairn-node-config-test-" + std::to_string(getpid()) + ".yaml";
  {
    std::ofstream out(path);
    out << "name: n1\ndata_dir: /d\nrole: boss\n";
  }
  auto config = LoadNodeConfig(path);
  std::remove(path.c_str());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), path + ":3:7: role: \"boss\" is not a role (use voter or witness)");
  EXPECT_EQ(LoadNodeConfig(path).status().code(), StatusCode::kNotFound);
}

TEST(NodeConfigRobustnessTest, OddInputsGiveLocatedErrorsNotCrashes) {
  const std::vector<std::string> inputs = {
      "\t\tname: x\n", "a: &x [*x]\n", "name: *undefined\n", std::string(500, '['), "{{{{", "\xff\xfe\x00\x01",
      "name: n1\ndata_dir: /d\nlog: [1, 2]\n", "name: [n1]\ndata_dir: /d\n", "? \n: x\n", "- - - -\n",
      "name: n1\ndata_dir: /d\ninitial_cluster: [[], {}, 3]\n", "name: n1\ndata_dir: /d\njoin: []\n",
      "name: \"\\u0000\"\ndata_dir: /d\n", "name: n1\ndata_dir: \"/d\\u0000x\"\n"};
  for (const std::string& input : inputs) {
    auto config = ParseNodeConfig(input, "node.yaml");
    ASSERT_FALSE(config.ok()) << input;
    EXPECT_TRUE(StartsWith(config.status().message(), "node.yaml:")) << config.status();
  }
}

// Seeded byte mutations of a valid file: every outcome is a config or a located error.
TEST(NodeConfigRobustnessTest, MutatedFilesNeverCrash) {
  Random random(20261126);
  const std::string base = kFullFile;
  const std::string alphabet = ":-[]{}#&*!|>'\"%@` \n\tax0/.";
  for (int round = 0; round < 1500; ++round) {
    std::string text = base;
    int edits = 1 + static_cast<int>(random.Uniform(4));
    for (int e = 0; e < edits; ++e) {
      size_t at = random.Uniform(text.size());
      char c = alphabet[random.Uniform(alphabet.size())];
      switch (random.Uniform(3)) {
        case 0: text[at] = c; break;
        case 1: text.insert(at, 1, c); break;
        default: text.erase(at, 1); break;
      }
    }
    auto config = ParseNodeConfig(text, "node.yaml");
    if (!config.ok()) {
      ASSERT_TRUE(StartsWith(config.status().message(), "node.yaml:")) << config.status() << "\n" << text;
    }
  }
}

TEST(ValidateNodeNameTest, DnsLabels) {
  EXPECT_TRUE(ValidateNodeName("a").ok());
  EXPECT_TRUE(ValidateNodeName("node-1").ok());
  EXPECT_TRUE(ValidateNodeName(std::string(63, 'a')).ok());
  EXPECT_FALSE(ValidateNodeName(std::string(64, 'a')).ok());
  EXPECT_FALSE(ValidateNodeName("").ok());
  EXPECT_FALSE(ValidateNodeName("-a").ok());
  EXPECT_FALSE(ValidateNodeName("a.b").ok());
  EXPECT_FALSE(ValidateNodeName("A").ok());
}

}  // namespace
}  // namespace cairn::config
