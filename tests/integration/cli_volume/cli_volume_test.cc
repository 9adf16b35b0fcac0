// clusterctl volume ... / mount / umount as an operator runs them: the built clusterctl as a child
// process against one real clusterd (its store). The bricks are on hosts h1..h9, which are not
// cluster members, so no volume agent serves them whether or not clusterd has one: every brick
// is "down", and nothing here depends on bricks being served. Records a brick service would
// write (set records, primary keys, addresses, heal checkpoints) are written by the test itself.
//
// One clusterd serves the whole suite (each test uses its own volume names); its Subprocess
// destructor kills it and the temp dir is removed in TearDownTestSuite, also after failures.
// The mount tests need root and /dev/fuse for the parts that mount (skipped otherwise).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/replica_set.h"
#include "cairn/itest/files.h"
#include "cairn/itest/local_cluster.h"

namespace cairn::test_support {
namespace {

using std::chrono::seconds;
namespace vpb = ::cairn::proto::volume;
using itest::IsMountPoint;

const std::string kClusterctl = CLUSTERCTL_PATH;
const std::string kClusterd = CLUSTERD_PATH;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Parses -o json output; fails the test when it is not a JSON object.
google::protobuf::Struct ParseJson(const std::string& text) {
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(text, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << text;
  return parsed;
}

const google::protobuf::Value& Field(const google::protobuf::Struct& object, const std::string& name) {
  static const google::protobuf::Value kMissing;
  auto it = object.fields().find(name);
  EXPECT_NE(it, object.fields().end()) << "no field " << name;
  return it == object.fields().end() ? kMissing : it->second;
}

class CliVolumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string dir = itest::MakeTempDir("cairn-cli-volume");
    ASSERT_FALSE(dir.empty());
    dir_ = new std::string(dir);
    server_ = new itest::StoreProcess(kClusterd, dir);
    Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
    endpoint_ = new HostPort(server_->endpoint());
  }

  static void TearDownTestSuite() {
    delete server_;  // SIGKILL and reap
    server_ = nullptr;
    std::error_code ignored;
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_, ignored);
    delete dir_;
    delete endpoint_;
    dir_ = nullptr;
    endpoint_ = nullptr;
  }

  void SetUp() override {
    if (endpoint_ == nullptr) GTEST_SKIP() << "the store did not start";
  }

  RunResult Ctl(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.push_back("--endpoints");
    args.push_back(endpoint_->ToString());
    return RunProcess(kClusterctl, args, env);
  }

  // Runs clusterctl and expects success; returns stdout.
  std::string CtlOk(const std::vector<std::string>& args) {
    RunResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 0) << "clusterctl " << testing::PrintToString(args) << "\n" << result.out << result.err;
    return result.out;
  }

  std::unique_ptr<etcdclient::EtcdClient> Store() {
    return std::make_unique<etcdclient::EtcdClient>(std::vector<HostPort>{*endpoint_});
  }

  void PutKey(const std::string& key, const std::string& value) {
    etcd::PutRequest put;
    put.set_key(key);
    put.set_value(value);
    auto response = Store()->Put(put);
    ASSERT_TRUE(response.ok()) << response.status().message();
  }

  std::string TempDir(const std::string& name) {
    std::string path = *dir_ + "/" + name;
    std::filesystem::create_directories(path);
    return path;
  }

  static std::string* dir_;
  static itest::StoreProcess* server_;
  static HostPort* endpoint_;  // set once the store serves
};

std::string* CliVolumeTest::dir_ = nullptr;
itest::StoreProcess* CliVolumeTest::server_ = nullptr;
HostPort* CliVolumeTest::endpoint_ = nullptr;

// ---- create, info, list, status --------------------------------------------------------------------

TEST_F(CliVolumeTest, CreateReplica3ThenInfoListStatus) {
  RunResult create = Ctl({"volume", "create", "r3", "replica", "3", "h1:/data/r3", "h2:/data/r3", "h3:/data/r3"});
  ASSERT_EQ(create.exit_code, 0) << create.err;
  EXPECT_TRUE(Contains(create.out, "volume create: r3: success")) << create.out;
  EXPECT_TRUE(Contains(create.err, "no cluster member is named h1")) << create.err;

  std::string info = CtlOk({"volume", "info", "r3"});
  for (const char* line : {"Volume Name: r3\n", "Type: Replicate\n", "Status: Created\n", "Number of Bricks: 1 x 3 = 3\n",
                           "Brick1: h1:/data/r3 (set ", "Brick3: h3:/data/r3 (set ", "no-quorum: eio\n", "Layout: epoch 1\n"}) {
    EXPECT_TRUE(Contains(info, line)) << line << " missing in\n" << info;
  }
  EXPECT_TRUE(Contains(CtlOk({"volume", "list"}), "r3\n"));

  std::string status = CtlOk({"volume", "status", "r3"});
  EXPECT_TRUE(Contains(status, "Volume r3: Created, Replicate 1 x 3 = 3")) << status;
  for (const char* brick : {"h1:/data/r3", "h2:/data/r3", "h3:/data/r3"}) {
    std::string line = status.substr(status.find(brick));
    line = line.substr(0, line.find('\n'));
    EXPECT_TRUE(Contains(line, "down")) << line;
    EXPECT_TRUE(Contains(line, "in-sync")) << line;
    EXPECT_TRUE(Contains(line, "normal")) << line;
  }
  EXPECT_TRUE(Contains(status, "is not started")) << status;

  google::protobuf::Struct json = ParseJson(CtlOk({"volume", "info", "r3", "-o", "json"}));
  EXPECT_EQ(Field(json, "name").string_value(), "r3");
  EXPECT_EQ(Field(json, "type").string_value(), "Replicate");
  EXPECT_EQ(Field(json, "replica_count").number_value(), 3);
  ASSERT_EQ(Field(json, "sets").list_value().values_size(), 1);
  EXPECT_EQ(Field(Field(json, "sets").list_value().values(0).struct_value(), "bricks").list_value().values_size(), 3);
  EXPECT_EQ(Field(Field(json, "options").struct_value(), "no-quorum").string_value(), "eio");

  google::protobuf::Struct status_json = ParseJson(CtlOk({"-o", "json", "volume", "status", "r3"}));
  const auto& bricks = Field(status_json, "bricks").list_value();
  ASSERT_EQ(bricks.values_size(), 3);
  for (const auto& brick : bricks.values()) {
    EXPECT_FALSE(Field(brick.struct_value(), "online").bool_value());
    EXPECT_EQ(Field(brick.struct_value(), "address").kind_case(), google::protobuf::Value::kNullValue);
    EXPECT_EQ(Field(brick.struct_value(), "role").string_value(), "in-sync");
  }
  google::protobuf::Struct list_json = ParseJson(CtlOk({"volume", "list", "-o", "json"}));
  bool listed = false;
  for (const auto& name : Field(list_json, "volumes").list_value().values()) listed |= name.string_value() == "r3";
  EXPECT_TRUE(listed);
  // Without a name: every volume, as {"volumes":[...]}.
  google::protobuf::Struct all = ParseJson(CtlOk({"volume", "info", "-o", "json"}));
  EXPECT_GE(Field(all, "volumes").list_value().values_size(), 1);
  ParseJson(CtlOk({"volume", "status", "-o", "json"}));
}

TEST_F(CliVolumeTest, CreateDistributedReplicated2x2) {
  std::string out = CtlOk({"volume", "create", "dr", "replica", "2", "h1:/data/dr", "h2:/data/dr", "h3:/data/dr",
                           "h4:/data/dr", "--no-quorum", "readonly"});
  EXPECT_TRUE(Contains(out, "Distributed-Replicate")) << out;
  std::string info = CtlOk({"volume", "info", "dr"});
  EXPECT_TRUE(Contains(info, "Type: Distributed-Replicate\n")) << info;
  EXPECT_TRUE(Contains(info, "Number of Bricks: 2 x 2 = 4\n")) << info;
  EXPECT_TRUE(Contains(info, "no-quorum: readonly\n")) << info;
  EXPECT_TRUE(Contains(info, "50.0% of names")) << info;

  google::protobuf::Struct json = ParseJson(CtlOk({"volume", "info", "dr", "-o", "json"}));
  const auto& sets = Field(json, "sets").list_value();
  ASSERT_EQ(sets.values_size(), 2);
  EXPECT_NE(Field(sets.values(0).struct_value(), "id").number_value(),
            Field(sets.values(1).struct_value(), "id").number_value());
  EXPECT_DOUBLE_EQ(Field(sets.values(0).struct_value(), "share").number_value(), 0.5);
  const auto& second = Field(sets.values(1).struct_value(), "bricks").list_value();
  ASSERT_EQ(second.values_size(), 2);
  EXPECT_EQ(second.values(0).string_value(), "h3:/data/dr");
  EXPECT_EQ(second.values(1).string_value(), "h4:/data/dr");
}

TEST_F(CliVolumeTest, CreateRefusesBadInputWithClearMessages) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"bad1", "h1:data"}, 2, "brick \"h1:data\": the path must be absolute"},
      {{"bad1", "h1"}, 2, "expected HOST:/PATH"},
      {{"bad1", "h1:/"}, 2, "the path cannot be / itself"},
      {{"bad1", "h1:/a/../b"}, 2, "\".\" and \"..\" are not allowed"},
      {{"bad2", "replica", "2", "h1:/d2", "h1:/d2"}, 2, "brick h1:/d2 is given twice"},
      {{"bad2", "replica", "2", "h1:/d2", "h1:/d2/sub"}, 2, "overlap"},
      {{"bad2", "replica", "3", "h1:/d2", "h2:/d2", "h3:/d2", "h4:/d2"}, 2,
       "the number of bricks (4) must be a positive multiple of the replica count (3)"},
      {{"bad2", "replica", "2", "h1:/d2", "h1:/d3"}, 1, "on the same host"},
      {{"bad2", "replica"}, 2, "\"replica\" needs a count"},
      {{"bad2", "replica", "x", "h1:/d2"}, 2, "replica count must be a number"},
      {{"bad2", "replica", "0", "h1:/d2"}, 2, "replica count must be between 1 and 16"},
      {{"bad2", "disperse", "3", "h1:/d2"}, 2, "\"disperse\" volumes are not supported"},
      {{".bad", "h1:/d2"}, 2, "must not start with '.' or '-'"},
      {{"bad/2", "h1:/d2"}, 2, "volume name"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"volume", "create"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    RunResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, c.exit_code) << testing::PrintToString(c.args) << ": " << result.err;
    EXPECT_TRUE(Contains(result.err, c.message)) << testing::PrintToString(c.args) << ": " << result.err;
    EXPECT_TRUE(Contains(result.err, "clusterctl volume create: ")) << result.err;
  }
  // "what to do": the same-host refusal names --force, which then allows it.
  RunResult same_host = Ctl({"volume", "create", "forced", "replica", "2", "h1:/f1", "h1:/f2"});
  EXPECT_TRUE(Contains(same_host.err, "--force")) << same_host.err;
  CtlOk({"volume", "create", "forced", "replica", "2", "h1:/f1", "h1:/f2", "--force"});

  // Name clash, and a brick (or a directory inside it) that another volume uses.
  RunResult clash = Ctl({"volume", "create", "forced", "h5:/other"});
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_TRUE(Contains(clash.err, "volume forced already exists")) << clash.err;
  RunResult reused = Ctl({"volume", "create", "reuse", "h1:/f1"});
  EXPECT_EQ(reused.exit_code, 1);
  EXPECT_TRUE(Contains(reused.err, "brick h1:/f1 is already a brick of volume forced")) << reused.err;
  RunResult nested = Ctl({"volume", "create", "reuse", "h1:/f2/inner"});
  EXPECT_TRUE(Contains(nested.err, "overlaps brick h1:/f2 of volume forced")) << nested.err;

  RunResult bad_policy = Ctl({"volume", "create", "np", "h6:/np", "--no-quorum", "maybe"});
  EXPECT_EQ(bad_policy.exit_code, 2) << bad_policy.err;

  // Nothing was created by the refused commands.
  for (const char* name : {"bad1", "bad2", "reuse", "np"}) {
    RunResult info = Ctl({"volume", "info", name});
    EXPECT_EQ(info.exit_code, 1) << name;
    EXPECT_TRUE(Contains(info.err, std::string("volume ") + name + " does not exist")) << info.err;
  }
}

// ---- start, stop, delete -------------------------------------------------------------------------------

TEST_F(CliVolumeTest, StartReportsMissingBricksStopAndDelete) {
  CtlOk({"volume", "create", "life", "replica", "2", "h1:/data/life", "h2:/data/life"});

  RunResult refused = Ctl({"volume", "delete", "life"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(Contains(refused.err, "--yes")) << refused.err;
  EXPECT_TRUE(Contains(refused.err, "stay on disk")) << refused.err;

  // --wait 0: start, look once, report what is missing, succeed.
  RunResult start = Ctl({"volume", "start", "life", "--wait", "0"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_TRUE(Contains(start.out, "volume start: life: success")) << start.out;
  EXPECT_TRUE(Contains(start.err, "still missing")) << start.err;
  EXPECT_TRUE(Contains(start.err, "brick h1:/data/life is not served yet (no cluster member is named h1")) << start.err;
  EXPECT_TRUE(Contains(start.err, "brick h2:/data/life is not served yet")) << start.err;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "life"}), "Status: Started\n"));

  RunResult again = Ctl({"volume", "start", "life"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(Contains(again.err, "volume life is already started")) << again.err;

  RunResult status = Ctl({"volume", "status", "life"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_TRUE(Contains(status.out, "Volume life: Started")) << status.out;
  EXPECT_TRUE(Contains(status.out, "h1:/data/life")) << status.out;
  EXPECT_FALSE(Contains(status.out, "127.0.0.1")) << status.out;  // nothing is served

  RunResult in_use = Ctl({"volume", "delete", "life", "--yes"});
  EXPECT_EQ(in_use.exit_code, 1);
  EXPECT_TRUE(Contains(in_use.err, "volume life is started; stop it first (clusterctl volume stop life)")) << in_use.err;

  EXPECT_TRUE(Contains(CtlOk({"volume", "stop", "life"}), "volume stop: life: success"));
  RunResult stopped_again = Ctl({"volume", "stop", "life"});
  EXPECT_TRUE(Contains(stopped_again.err, "already stopped")) << stopped_again.err;
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "life"}), "Status: Stopped\n"));

  // A real wait that runs out: the volume is started, the command fails and says what is missing.
  RunResult waited = Ctl({"volume", "start", "life", "--wait", "1s"});
  EXPECT_EQ(waited.exit_code, 1);
  EXPECT_TRUE(Contains(waited.err, "volume life is started, but not serving after --wait 1s")) << waited.err;
  EXPECT_TRUE(Contains(waited.err, "brick h2:/data/life is not served yet")) << waited.err;
  EXPECT_TRUE(Contains(waited.err, "clusterctl volume status life")) << waited.err;
  CtlOk({"volume", "stop", "life"});

  std::string deleted = CtlOk({"volume", "delete", "life", "--yes"});
  EXPECT_TRUE(Contains(deleted, "stay on disk (h1:/data/life, h2:/data/life)")) << deleted;
  RunResult gone = Ctl({"volume", "info", "life"});
  EXPECT_TRUE(Contains(gone.err, "volume life does not exist")) << gone.err;
  RunResult records = Ctl({"kv", "get", std::string(volume::VolumePrefix("life")), "--prefix", "--keys-only"});
  EXPECT_EQ(records.out, "") << "records left behind";

  RunResult missing = Ctl({"volume", "start", "nosuch"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "volume nosuch does not exist (clusterctl volume list shows the volumes)")) << missing.err;
}

TEST_F(CliVolumeTest, StartWaitsUntilBricksAreServedAndSetsHavePrimaries) {
  CtlOk({"volume", "create", "ready", "replica", "2", "h1:/data/ready", "h2:/data/ready"});
  // Play the volume agents: publish both addresses and a primary, as clusterd would once started.
  PutKey(volume::BrickAddressKey("ready", "h1:/data/ready"), "127.0.0.1:7001");
  PutKey(volume::BrickAddressKey("ready", "h2:/data/ready"), "127.0.0.1:7002");
  google::protobuf::Struct info = ParseJson(CtlOk({"volume", "info", "ready", "-o", "json"}));
  auto set_id = static_cast<uint32_t>(
      Field(Field(info, "sets").list_value().values(0).struct_value(), "id").number_value());
  vpb::ReplicaSetState state;
  state.set_set_id(set_id);
  state.set_epoch(2);
  state.set_primary("h1:/data/ready");
  state.add_in_sync("h1:/data/ready");
  state.add_in_sync("h2:/data/ready");
  PutKey(volume::SetKey("ready", set_id), state.SerializeAsString());
  PutKey(volume::PrimaryKey("ready", set_id), "h1:/data/ready");

  RunResult start = Ctl({"volume", "start", "ready", "--wait", "20s"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.err, "");
  std::string status = CtlOk({"volume", "status", "ready"});
  EXPECT_TRUE(Contains(status, "h1:/data/ready  127.0.0.1:7001  primary")) << status;
  EXPECT_TRUE(Contains(status, "h2:/data/ready  127.0.0.1:7002  in-sync")) << status;
  CtlOk({"volume", "stop", "ready"});
}

// ---- set, heal ------------------------------------------------------------------------------------------

TEST_F(CliVolumeTest, SetNoQuorum) {
  CtlOk({"volume", "create", "opt", "replica", "2", "h1:/data/opt", "h2:/data/opt"});
  EXPECT_TRUE(Contains(CtlOk({"volume", "set", "opt", "no-quorum", "readonly"}), "no-quorum is readonly"));
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "opt"}), "no-quorum: readonly\n"));
  CtlOk({"volume", "set", "opt", "no-quorum", "eio"});
  EXPECT_TRUE(Contains(CtlOk({"volume", "info", "opt"}), "no-quorum: eio\n"));

  RunResult bad_value = Ctl({"volume", "set", "opt", "no-quorum", "sometimes"});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_TRUE(Contains(bad_value.err, "no-quorum must be eio")) << bad_value.err;
  RunResult bad_key = Ctl({"volume", "set", "opt", "performance.cache-size", "1GB"});
  EXPECT_EQ(bad_key.exit_code, 2);
  EXPECT_TRUE(Contains(bad_key.err, "unknown option \"performance.cache-size\"")) << bad_key.err;
  RunResult no_volume = Ctl({"volume", "set", "nosuch", "no-quorum", "eio"});
  EXPECT_TRUE(Contains(no_volume.err, "volume nosuch does not exist")) << no_volume.err;
}

TEST_F(CliVolumeTest, HealStatusFromCheckpointsInTheStore) {
  CtlOk({"volume", "create", "hv", "replica", "3", "h1:/data/hv", "h2:/data/hv", "h3:/data/hv"});
  google::protobuf::Struct info = ParseJson(CtlOk({"volume", "info", "hv", "-o", "json"}));
  auto set_id = static_cast<uint32_t>(
      Field(Field(info, "sets").list_value().values(0).struct_value(), "id").number_value());

  // What the primary writes once h3 dropped out and its heal runs.
  vpb::ReplicaSetState state;
  state.set_set_id(set_id);
  state.set_epoch(3);
  state.set_primary("h1:/data/hv");
  state.add_in_sync("h1:/data/hv");
  state.add_in_sync("h2:/data/hv");
  PutKey(volume::SetKey("hv", set_id), state.SerializeAsString());
  PutKey(volume::PrimaryKey("hv", set_id), "h1:/data/hv");
  vpb::HealCheckpoint checkpoint;
  checkpoint.set_brick("h3:/data/hv");
  checkpoint.set_set_id(set_id);
  checkpoint.set_epoch(3);
  checkpoint.set_files_total(10);
  checkpoint.set_files_left(6);
  checkpoint.set_bytes_total(10000);
  checkpoint.set_bytes_left(6000);
  checkpoint.set_files_per_second(2);
  checkpoint.set_bytes_per_second(2000);
  checkpoint.set_eta_ms(3000);
  PutKey(volume::HealKey("hv", "h3:/data/hv"), checkpoint.SerializeAsString());

  std::string heal = CtlOk({"volume", "heal", "hv", "status"});
  EXPECT_TRUE(Contains(heal, "BRICK")) << heal;
  auto row = [&heal](const std::string& brick) {
    std::string rest = heal.substr(heal.find(brick));
    return rest.substr(0, rest.find('\n'));
  };
  EXPECT_TRUE(Contains(row("h1:/data/hv"), "in-sync (primary)")) << heal;
  EXPECT_TRUE(Contains(row("h2:/data/hv"), "in-sync")) << heal;
  std::string healing = row("h3:/data/hv");
  for (const char* part : {"healing", " 6 ", "5.9 KiB", "2 files/s", "0:00:03"}) {
    EXPECT_TRUE(Contains(healing, part)) << part << " missing in " << healing;
  }

  google::protobuf::Struct json = ParseJson(CtlOk({"volume", "heal", "hv", "status", "-o", "json"}));
  const auto& bricks = Field(json, "bricks").list_value();
  ASSERT_EQ(bricks.values_size(), 3);
  EXPECT_TRUE(Field(bricks.values(0).struct_value(), "primary").bool_value());
  EXPECT_TRUE(Field(bricks.values(2).struct_value(), "healing").bool_value());
  EXPECT_EQ(Field(bricks.values(2).struct_value(), "files_left").number_value(), 6);
  EXPECT_EQ(Field(bricks.values(2).struct_value(), "eta_seconds").number_value(), 3);

  // status shows the same record: h3 out of sync, epoch 3, h1 primary with its lease key.
  std::string status = CtlOk({"volume", "status", "hv"});
  EXPECT_TRUE(Contains(status, "h1:/data/hv  down     primary      3      normal")) << status;
  EXPECT_TRUE(Contains(status, "h3:/data/hv  down     out-of-sync  3      normal")) << status;

  // A set in no-quorum mode: status says so per brick and per set.
  state.set_epoch(4);
  state.set_primary("");
  state.set_mode(vpb::REPLICA_SET_NO_QUORUM_EIO);
  PutKey(volume::SetKey("hv", set_id), state.SerializeAsString());
  CtlOk({"volume", "start", "hv", "--wait", "0"});
  status = CtlOk({"volume", "status", "hv"});
  EXPECT_TRUE(Contains(status, "no-quorum (eio)")) << status;
  EXPECT_TRUE(Contains(status, "no quorum: no in-sync brick is reachable; all I/O fails with EIO")) << status;
  google::protobuf::Struct status_json = ParseJson(CtlOk({"volume", "status", "hv", "-o", "json"}));
  const auto& sets = Field(status_json, "sets").list_value();
  ASSERT_EQ(sets.values_size(), 1);
  EXPECT_FALSE(Field(sets.values(0).struct_value(), "serving").bool_value());
  EXPECT_EQ(Field(sets.values(0).struct_value(), "mode").string_value(), "no-quorum (eio)");
  CtlOk({"volume", "stop", "hv"});

  RunResult bad_action = Ctl({"volume", "heal", "hv", "full"});
  EXPECT_EQ(bad_action.exit_code, 2) << bad_action.err;
}

// ---- add-brick, remove-brick ------------------------------------------------------------------------------

TEST_F(CliVolumeTest, AddBrickAndRemoveBrickChangeTheLayout) {
  CtlOk({"volume", "create", "grow", "replica", "2", "h1:/data/grow", "h2:/data/grow"});
  RunResult odd = Ctl({"volume", "add-brick", "grow", "h3:/data/grow"});
  EXPECT_EQ(odd.exit_code, 2);
  EXPECT_TRUE(Contains(odd.err, "must be a positive multiple of the replica count (2)")) << odd.err;
  RunResult replica = Ctl({"volume", "add-brick", "grow", "replica", "3", "h3:/data/grow", "h4:/data/grow", "h5:/data/grow"});
  EXPECT_TRUE(Contains(replica.err, "changing the replica count (2 -> 3) is not supported")) << replica.err;
  RunResult dup = Ctl({"volume", "add-brick", "grow", "h1:/data/grow", "h3:/data/grow"});
  EXPECT_TRUE(Contains(dup.err, "brick h1:/data/grow is given twice")) << dup.err;

  RunResult added = Ctl({"volume", "add-brick", "grow", "h3:/data/grow", "h4:/data/grow"});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_TRUE(Contains(added.out, "volume add-brick: grow: success: added set ")) << added.out;
  EXPECT_TRUE(Contains(added.out, "(h3:/data/grow, h4:/data/grow)")) << added.out;
  EXPECT_TRUE(Contains(added.err, "data movement is PENDING")) << added.err;
  std::string info = CtlOk({"volume", "info", "grow"});
  EXPECT_TRUE(Contains(info, "Type: Distributed-Replicate\n")) << info;
  EXPECT_TRUE(Contains(info, "Number of Bricks: 2 x 2 = 4\n")) << info;
  EXPECT_TRUE(Contains(info, "Layout: epoch 2, rebalance pending")) << info;
  google::protobuf::Struct json = ParseJson(CtlOk({"volume", "info", "grow", "-o", "json"}));
  EXPECT_TRUE(Field(json, "rebalance_pending").bool_value());
  EXPECT_EQ(Field(json, "layout_epoch").number_value(), 2);
  // The new set has a record in the store, so the agents can serve it.
  std::string status = CtlOk({"volume", "status", "grow"});
  EXPECT_TRUE(Contains(status, "h4:/data/grow  down     in-sync")) << status;

  RunResult second = Ctl({"volume", "add-brick", "grow", "h5:/data/grow", "h6:/data/grow"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_TRUE(Contains(second.err, "still rebalancing")) << second.err;

  CtlOk({"volume", "create", "shrink", "replica", "2", "h1:/data/shrink", "h2:/data/shrink", "h3:/data/shrink",
         "h4:/data/shrink"});
  RunResult partial = Ctl({"volume", "remove-brick", "shrink", "h3:/data/shrink"});
  EXPECT_EQ(partial.exit_code, 2);
  EXPECT_TRUE(Contains(partial.err, "must name every brick of a replica set")) << partial.err;
  RunResult stranger = Ctl({"volume", "remove-brick", "shrink", "h9:/data/shrink", "h3:/data/shrink"});
  EXPECT_TRUE(Contains(stranger.err, "brick h9:/data/shrink is not part of volume shrink")) << stranger.err;
  RunResult all = Ctl({"volume", "remove-brick", "shrink", "h1:/data/shrink", "h2:/data/shrink", "h3:/data/shrink",
                       "h4:/data/shrink"});
  EXPECT_TRUE(Contains(all.err, "delete the volume instead")) << all.err;

  RunResult removed = Ctl({"volume", "remove-brick", "shrink", "h3:/data/shrink", "h4:/data/shrink"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_TRUE(Contains(removed.out, "(h3:/data/shrink, h4:/data/shrink) gets no new files")) << removed.out;
  EXPECT_TRUE(Contains(removed.err, "data movement is PENDING")) << removed.err;
  info = CtlOk({"volume", "info", "shrink"});
  EXPECT_TRUE(Contains(info, "Brick3: h3:/data/shrink (set ")) << info;
  EXPECT_TRUE(Contains(info, "0.0% of names, being removed)")) << info;
  EXPECT_TRUE(Contains(info, "100.0% of names)")) << info;
}

// ---- mount, umount --------------------------------------------------------------------------------------

TEST_F(CliVolumeTest, MountRefusesWithClearMessages) {
  std::string mnt = TempDir("mnt-errors");
  RunResult unknown = Ctl({"mount", "nosuch", mnt});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(Contains(unknown.err, "clusterctl mount: volume nosuch does not exist")) << unknown.err;

  CtlOk({"volume", "create", "mv", "replica", "2", "h1:/data/mv", "h2:/data/mv"});
  RunResult not_started = Ctl({"mount", "mv", mnt});
  EXPECT_TRUE(Contains(not_started.err, "volume mv is not started (clusterctl volume start mv)")) << not_started.err;
  RunResult no_dir = Ctl({"mount", "mv", mnt + "/absent"});
  EXPECT_TRUE(Contains(no_dir.err, "create the directory first")) << no_dir.err;

  CtlOk({"volume", "start", "mv", "--wait", "0"});
  RunResult no_program = Ctl({"mount", "mv", mnt}, {"CAIRN_MOUNT=/nonexistent/cairn-mount"});
  EXPECT_EQ(no_program.exit_code, 1);
  EXPECT_TRUE(Contains(no_program.err, "CAIRN_MOUNT=/nonexistent/cairn-mount cannot be run")) << no_program.err;
  std::string beside = kClusterctl.substr(0, kClusterctl.rfind('/')) + "/cairn-mount";
  if (access(beside.c_str(), X_OK) != 0) {
    RunResult missing = Ctl({"mount", "mv", mnt});
    EXPECT_TRUE(Contains(missing.err, "the mount program cairn-mount is missing")) << missing.err;
  }

  // A stand-in cairn-mount: records its arguments, then fails the way cairn-mount does.
  std::string args_file = *dir_ + "/mount-args";
  std::string failing = *dir_ + "/failing-mount";
  std::ofstream(failing) << "#!/bin/sh\necho \"$@\" > " << args_file
                         << "\necho 'cairn-mount: volume mv: no brick of set 0 is reachable' >&2\nexit 1\n";
  ::chmod(failing.c_str(), 0755);
  RunResult failed = Ctl({"mount", "mv", mnt, "-o", "ro,allow_other"}, {"CAIRN_MOUNT=" + failing});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_TRUE(Contains(failed.err, "mounting mv at " + mnt + " failed: cairn-mount: volume mv: no brick")) << failed.err;
  std::ifstream recorded(args_file);
  std::string args((std::istreambuf_iterator<char>(recorded)), std::istreambuf_iterator<char>());
  EXPECT_EQ(args, "mv " + mnt + " --endpoints " + endpoint_->ToString() + " -o ro,allow_other\n");

  std::string lying = *dir_ + "/lying-mount";
  std::ofstream(lying) << "#!/bin/sh\nexit 0\n";
  ::chmod(lying.c_str(), 0755);
  RunResult unmounted = Ctl({"mount", "mv", mnt}, {"CAIRN_MOUNT=" + lying});
  EXPECT_TRUE(Contains(unmounted.err, "reported success, but " + mnt + " is not mounted")) << unmounted.err;

  RunResult umount = Ctl({"umount", mnt});
  EXPECT_EQ(umount.exit_code, 1);
  EXPECT_TRUE(Contains(umount.err, "clusterctl umount: " + mnt + " is not a mount point")) << umount.err;
  CtlOk({"volume", "stop", "mv"});
}

#ifdef UNIONMOUNT_PATH
// The success paths, with a stand-in cairn-mount that mounts a unionmount (a real FUSE file
// system) so they run before cairn-mount exists: mount returns once mounted, umount unmounts, a
// busy mount is refused with the --lazy hint and --lazy detaches it.
TEST_F(CliVolumeTest, MountAndUmountARealFuseMount) {
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  std::string source = TempDir("fuse-source");
  std::string mnt = TempDir("fuse-mnt");
  std::ofstream(source + "/hello.txt") << "hello";
  std::string fake = *dir_ + "/union-mount";
  std::ofstream(fake) << "#!/bin/sh\nexec " << UNIONMOUNT_PATH << " -o dirs=" << source << "=rw \"$2\"\n";
  ::chmod(fake.c_str(), 0755);
  struct Unmount {
    std::string path;
    ~Unmount() {
      if (IsMountPoint(path)) ::umount2(path.c_str(), MNT_DETACH);
    }
  } guard{mnt};

  CtlOk({"volume", "create", "fv", "h1:/data/fv"});
  CtlOk({"volume", "start", "fv", "--wait", "0"});
  RunResult mounted = Ctl({"mount", "fv", mnt}, {"CAIRN_MOUNT=" + fake});
  ASSERT_EQ(mounted.exit_code, 0) << mounted.err;
  EXPECT_EQ(mounted.out, "mounted volume fv at " + mnt + "\n");
  ASSERT_TRUE(IsMountPoint(mnt));
  RunResult twice = Ctl({"mount", "fv", mnt}, {"CAIRN_MOUNT=" + fake});
  EXPECT_TRUE(Contains(twice.err, mnt + " is already a mount point")) << twice.err;

  EXPECT_EQ(CtlOk({"umount", mnt}), "unmounted " + mnt + "\n");
  EXPECT_FALSE(IsMountPoint(mnt));

  ASSERT_EQ(Ctl({"mount", "fv", mnt}, {"CAIRN_MOUNT=" + fake}).exit_code, 0);
  int busy = ::open((mnt + "/hello.txt").c_str(), O_RDONLY);
  ASSERT_GE(busy, 0);
  RunResult refused = Ctl({"umount", mnt});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(Contains(refused.err, "use --lazy")) << refused.err;
  EXPECT_TRUE(IsMountPoint(mnt));
  EXPECT_TRUE(Contains(CtlOk({"umount", mnt, "--lazy"}), "detached " + mnt));
  EXPECT_FALSE(IsMountPoint(mnt));
  ::close(busy);
  CtlOk({"volume", "stop", "fv"});
}
#endif

#ifdef CAIRN_MOUNT_PATH
// The whole path with the real pieces: clusterd's volume agent serves two bricks on this node
// (n1), `volume start` returns once they are served with a primary, `clusterctl mount` runs the
// real cairn-mount, a file written through the mount lands in both bricks, `clusterctl umount`
// ends it. Needs root and /dev/fuse.
TEST_F(CliVolumeTest, StartMountWriteUmountWithTheRealAgentAndMount) {
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  std::string b1 = *dir_ + "/real-b1", b2 = *dir_ + "/real-b2";
  std::string mnt = TempDir("real-mnt");
  struct Unmount {
    std::string path;
    ~Unmount() {
      if (IsMountPoint(path)) ::umount2(path.c_str(), MNT_DETACH);
    }
  } guard{mnt};
  CtlOk({"volume", "create", "real", "replica", "2", "n1:" + b1, "n1:" + b2, "--force"});
  RunResult start = Ctl({"volume", "start", "real", "--wait", "30s"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  std::string status = CtlOk({"volume", "status", "real"});
  EXPECT_TRUE(Contains(status, "primary")) << status;
  EXPECT_FALSE(Contains(status, "down")) << status;

  RunResult mounted = Ctl({"mount", "real", mnt}, {"CAIRN_MOUNT=" CAIRN_MOUNT_PATH});
  ASSERT_EQ(mounted.exit_code, 0) << mounted.err;
  ASSERT_TRUE(IsMountPoint(mnt));
  { std::ofstream(mnt + "/hello.txt") << "hello from the mount"; }
  std::ifstream back(mnt + "/hello.txt");
  std::string text((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "hello from the mount");
  back.close();
  EXPECT_EQ(CtlOk({"umount", mnt}), "unmounted " + mnt + "\n");
  EXPECT_FALSE(IsMountPoint(mnt));
  // Both replicas hold the file under its name (docs/brick-protocol.md: bricks keep the tree).
  for (const std::string& brick : {b1, b2}) {
    std::ifstream in(brick + "/hello.txt");
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(content, "hello from the mount") << "brick " << brick;
  }
  CtlOk({"volume", "stop", "real"});
  // Stopped: the agent stops the bricks and deletes their address keys.
  bool gone = WaitFor([&] { return !Contains(CtlOk({"volume", "status", "real"}), "127.0.0.1"); }, seconds(30));
  EXPECT_TRUE(gone) << CtlOk({"volume", "status", "real"});
}
#endif

}  // namespace
}  // namespace cairn::test_support
