// The clusterd and clusterctl binaries as an operator runs them: exit codes, messages, signals.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "subprocess.h"

namespace cairn::test_support {
namespace {

using std::chrono::seconds;

const std::string kClusterd = CLUSTERD_PATH;
const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kExamples = CAIRN_CONFIG_EXAMPLES_DIR;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-cli-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // A valid single-node file; ports 0 so parallel tests never collide.
  std::string WriteNodeConfig(const std::string& data_dir) {
    return Write("node.yaml", "name: n1\ndata_dir: " + data_dir +
                                  "\npeer_address: 127.0.0.1:0\nclient_address: 127.0.0.1:0\nlog:\n  level: info\n");
  }

  std::string dir_;
};

TEST_F(CliTest, ClusterdHelpAndVersionExitZero) {
  RunResult help = RunProcess(kClusterd, {"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("--config"), std::string::npos) << help.out;
  RunResult version = RunProcess(kClusterd, {"--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_NE(version.out.find("clusterd "), std::string::npos) << version.out;
}

TEST_F(CliTest, ClusterdWithoutConfigIsAUsageError) {
  RunResult result = RunProcess(kClusterd, {});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--config is required"), std::string::npos) << result.err;
}

TEST_F(CliTest, ClusterdRejectsABrokenConfigWithItsLocation) {
  std::string path = Write("node.yaml", "name: n1\ndata_dir: " + dir_ + "/data\nrole: boss\n");
  RunResult result = RunProcess(kClusterd, {"--config", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(path + ":3:7: role: \"boss\" is not a role"), std::string::npos) << result.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/data"));  // nothing was created
}

TEST_F(CliTest, ClusterdRejectsASyntaxErrorWithItsLocation) {
  std::string path = Write("node.yaml", "name: n1\ndata_dir: [" + dir_ + "\n");
  RunResult result = RunProcess(kClusterd, {"--config", path});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find(path + ":3:1: syntax error"), std::string::npos) << result.err;
}

TEST_F(CliTest, ClusterdStartsCreatesDataDirAndStopsOnSigterm) {
  std::string data_dir = dir_ + "/var/data";
  Subprocess clusterd(kClusterd, {"--config", WriteNodeConfig(data_dir)});
  ASSERT_TRUE(clusterd.started());
  ASSERT_TRUE(clusterd.WaitForOutput("clusterd.started", seconds(10))) << clusterd.err();
  EXPECT_NE(clusterd.err().find("name=n1"), std::string::npos) << clusterd.err();
  EXPECT_TRUE(std::filesystem::is_directory(data_dir));
  EXPECT_EQ(std::filesystem::status(data_dir).permissions(), std::filesystem::perms::owner_all);
  clusterd.Signal(SIGTERM);
  EXPECT_EQ(clusterd.WaitForExit(seconds(10)), 0) << clusterd.err();
  EXPECT_NE(clusterd.err().find("clusterd.stopped"), std::string::npos) << clusterd.err();
}

// The port from "peer_address=127.0.0.1:PORT" in the started line; 0 when absent.
int PeerPortFromLog(const std::string& log) {
  const std::string key = " peer_address=127.0.0.1:";
  size_t at = log.find(key);
  if (at == std::string::npos) return 0;
  return std::atoi(log.c_str() + at + key.size());
}

bool CanConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

TEST_F(CliTest, ClusterdListensOnItsPeerAddressUntilStopped) {
  Subprocess clusterd(kClusterd, {"--config", WriteNodeConfig(dir_ + "/data")});
  // The last field of the started line: once it is in, the peer_address field before it is complete.
  ASSERT_TRUE(clusterd.WaitForOutput("advertise_client_address=", seconds(10))) << clusterd.err();
  int port = PeerPortFromLog(clusterd.err());
  ASSERT_GT(port, 0) << clusterd.err();
  EXPECT_TRUE(CanConnect(port));
  clusterd.Signal(SIGTERM);
  EXPECT_EQ(clusterd.WaitForExit(seconds(10)), 0) << clusterd.err();
  EXPECT_FALSE(CanConnect(port));  // the listener is gone with the process
}

TEST_F(CliTest, ClusterdReportsATakenPeerPort) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  std::string port = std::to_string(ntohs(address.sin_port));
  std::string config = Write("node.yaml", "name: n1\ndata_dir: " + dir_ + "/data\npeer_address: 127.0.0.1:" + port +
                                              "\nclient_address: 127.0.0.1:0\n");
  RunResult result = RunProcess(kClusterd, {"--config", config});
  ::close(fd);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("clusterd.start_failed"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("peer listener on 127.0.0.1:" + port), std::string::npos) << result.err;
}

TEST_F(CliTest, ClusterdStopsOnSigint) {
  Subprocess clusterd(kClusterd, {"--config", WriteNodeConfig(dir_ + "/data"), "--log-level", "debug"});
  ASSERT_TRUE(clusterd.WaitForOutput("clusterd.started", seconds(10))) << clusterd.err();
  clusterd.Signal(SIGINT);
  EXPECT_EQ(clusterd.WaitForExit(seconds(10)), 0) << clusterd.err();
}

TEST_F(CliTest, SecondClusterdOnTheSameDataDirIsRefused) {
  std::string config = WriteNodeConfig(dir_ + "/data");
  Subprocess first(kClusterd, {"--config", config});
  ASSERT_TRUE(first.WaitForOutput("clusterd.started", seconds(10))) << first.err();
  RunResult second = RunProcess(kClusterd, {"--config", config});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is in use by another clusterd"), std::string::npos) << second.err;
  first.Signal(SIGTERM);
  EXPECT_EQ(first.WaitForExit(seconds(10)), 0) << first.err();
}

TEST_F(CliTest, ClusterdReportsADataDirItCannotCreate) {
  Write("file", "not a directory");
  RunResult result = RunProcess(kClusterd, {"--config", WriteNodeConfig(dir_ + "/file/data")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("cannot create data_dir " + dir_ + "/file/data"), std::string::npos) << result.err;
}

TEST_F(CliTest, ClusterctlHelpAndVersionExitZero) {
  RunResult help = RunProcess(kClusterctl, {"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("config"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--endpoints"), std::string::npos) << help.out;
  RunResult version = RunProcess(kClusterctl, {"--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_NE(version.out.find("clusterctl "), std::string::npos) << version.out;
}

TEST_F(CliTest, ClusterctlEndpointsDefaultComesFromTheEnvironment) {
  RunResult help = RunProcess(kClusterctl, {"--help"}, {"CAIRN_ENDPOINTS=10.9.8.7:2379"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("10.9.8.7:2379"), std::string::npos) << help.out;
}

TEST_F(CliTest, ClusterctlBadArgumentsExitTwo) {
  EXPECT_EQ(RunProcess(kClusterctl, {}).exit_code, 2);
  EXPECT_EQ(RunProcess(kClusterctl, {"config"}).exit_code, 2);
  EXPECT_EQ(RunProcess(kClusterctl, {"config", "check"}).exit_code, 2);
  RunResult output = RunProcess(kClusterctl, {"-o", "xml", "config", "check", "x.yaml"});
  EXPECT_EQ(output.exit_code, 2);
  EXPECT_NE(output.err.find("xml"), std::string::npos) << output.err;
  RunResult verb = RunProcess(kClusterctl, {"config", "bogus"});
  EXPECT_EQ(verb.exit_code, 2);
  EXPECT_NE(verb.err.find("clusterctl config: unknown command \"bogus\""), std::string::npos) << verb.err;
  RunResult endpoints = RunProcess(kClusterctl, {"--endpoints", "nohost", "config", "check", "x.yaml"});
  EXPECT_EQ(endpoints.exit_code, 2);
  EXPECT_NE(endpoints.err.find("\"nohost\" is not host:port"), std::string::npos) << endpoints.err;
}

TEST_F(CliTest, ClusterctlConfigCheckAcceptsTheExamples) {
  for (const char* name : {"node1", "node2", "node3", "single"}) {
    RunResult result = RunProcess(kClusterctl, {"config", "check", kExamples + "/" + name + ".yaml"});
    EXPECT_EQ(result.exit_code, 0) << name << ": " << result.err;
    EXPECT_EQ(result.out.rfind("OK ", 0), 0u) << result.out;
  }
}

TEST_F(CliTest, ClusterctlConfigCheckReportsTheLocation) {
  std::string path = Write("bad.yaml", "name: n1\ndata_dir: /d\nnmae: x\n");
  RunResult result = RunProcess(kClusterctl, {"config", "check", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, path + ":3:1: unknown field \"nmae\", did you mean \"name\"?\n");
  EXPECT_EQ(result.out, "");
}

TEST_F(CliTest, ClusterctlConfigCheckJsonAfterTheVerb) {
  std::string path = Write("bad.yaml", "name: n1\ndata_dir: relative\n");
  RunResult bad = RunProcess(kClusterctl, {"config", "check", path, "-o", "json"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("\"valid\":false"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find(":2:11: data_dir: "), std::string::npos) << bad.out;
  RunResult good = RunProcess(kClusterctl, {"-o", "json", "config", "check", kExamples + "/node1.yaml"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  EXPECT_NE(good.out.find("\"valid\":true,\"name\":\"node1\""), std::string::npos) << good.out;
}

TEST_F(CliTest, ClusterctlConfigCheckMissingFile) {
  RunResult result = RunProcess(kClusterctl, {"config", "check", dir_ + "/absent.yaml"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("absent.yaml"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace cairn::test_support
