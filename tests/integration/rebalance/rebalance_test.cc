// Rebalance with real processes: three clusterd on 127.0.0.1, a replica-3 volume created with
// clusterctl, files (root and a subdirectory, a symlink, a hard link, sizes up to 3 MiB) written
// through BrickClient to the primary; then `volume add-brick` of a second set: the agents' mover
// moves every file whose name hash names the new set and FinishRebalance commits; every file is
// on exactly one set (the one its hash names), on all three of its bricks, byte-identical. Then
// `volume remove-brick` of the first set: everything moves to the second set and the first leaves
// the volume. `volume rebalance VOL status` is checked at the end of each.
//
// Each clusterd logs to its own file; a failing test prints the tails.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cairn/brickclient/brick_client.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"
#include "cairn/itest/files.h"
#include "cairn/itest/local_cluster.h"
#include "cairn/itest/volume_records.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using itest::LocalCluster;
using itest::ReadFile;
using test_support::RunProcess;
using test_support::WaitFor;
namespace vpb = ::cairn::proto::volume;
namespace bpb = ::cairn::proto::brick;
namespace fs = std::filesystem;

constexpr int kHosts = 3;
constexpr int kRootFiles = 60;
constexpr int kSubFiles = 30;

std::string Content(int i) {
  size_t size = i % 20 == 0 ? (3u << 20) + 123 : 100 + static_cast<size_t>(i) * 97;  // a few span 1 MiB blocks
  std::string data(size, '\0');
  for (size_t k = 0; k < size; ++k) data[k] = static_cast<char>('a' + (k * 7 + i) % 26);
  return data;
}

// One object written through the volume: where it is (parent id, name, path below the brick).
struct Written {
  std::string parent;
  std::string name;
  std::string path;     // relative to a brick root
  std::string content;  // file data, or the symlink's target
  bool symlink = false;
};

class RebalanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = itest::MakeTempDir("cairn-rebalance");
    ASSERT_FALSE(dir_.empty());
    cluster_ = std::make_unique<LocalCluster>(CLUSTERD_PATH, dir_, kHosts);
    store_ = std::make_unique<etcdclient::EtcdClient>(cluster_->ClientEndpoints(), etcdclient::ClientOptions{.timeout = 5s});
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (cluster_) cluster_->KillAll();
    clients_.clear();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    if (HasFailure() && cluster_) std::cerr << cluster_->LogTails(15000);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static std::string Name(int i) { return LocalCluster::Name(i); }
  std::string BrickPath(int host, const std::string& brick) const { return dir_ + "/bricks/" + Name(host) + "-" + brick; }
  std::string BrickOf(int host, const std::string& brick) const { return Name(host) + ":" + BrickPath(host, brick); }

  void StartAll() {
    Status started = cluster_->StartAll();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  test_support::RunResult Clusterctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--endpoints", cluster_->EndpointList()});
    return RunProcess(CLUSTERCTL_PATH, args);
  }

  std::optional<etcd::KeyValue> Get(const std::string& key) { return itest::GetKey(*store_, key); }

  vpb::VolumeSpec Spec() {
    auto kv = Get(volume::SpecKey("vol"));
    vpb::VolumeSpec spec;
    if (kv) spec.ParseFromString(kv->value());
    return spec;
  }

  // Set 0's primary: address and epoch, once it serves.
  std::pair<std::string, uint64_t> Primary(uint32_t set) {
    std::pair<std::string, uint64_t> route;
    WaitFor([&] {
      auto kv = Get(volume::SetKey("vol", set));
      if (!kv) return false;
      vpb::ReplicaSetState state;
      state.ParseFromString(kv->value());
      auto address = Get(volume::BrickAddressKey("vol", state.primary()));
      if (state.primary().empty() || !address || !Get(volume::PrimaryKey("vol", set))) return false;
      route = {address->value(), state.epoch()};
      return true;
    }, 30s);
    return route;
  }

  brickclient::BrickClient& ClientTo(const std::string& address, uint64_t epoch) {
    auto& client = clients_[address];
    if (!client) {
      client = std::make_unique<brickclient::BrickClient>(io_, address, brickclient::BrickClientOptions{.timeout = 10s});
    }
    client->set_epoch(epoch);
    return *client;
  }

  // Creates an object through set 0's primary (the only set before add-brick); returns its attr.
  bpb::Attr Create(bpb::CreateRequest::Kind kind, const std::string& parent, const std::string& name,
                   const std::string& target = "") {
    auto [address, epoch] = Primary(0);
    auto& brick = ClientTo(address, epoch);
    bpb::CreateRequest create;
    create.set_kind(kind);
    create.set_parent(parent);
    create.set_name(name);
    create.set_mode(kind == bpb::CreateRequest::DIRECTORY ? 0755 : 0640);
    create.set_target(target);
    create.set_exclusive(true);
    create.mutable_header()->set_epoch(epoch);
    auto created = brick.Create(create);
    EXPECT_EQ(created.err(), 0) << name;
    return created.attr();
  }

  void WriteTree() {
    auto [address, epoch] = Primary(0);
    ASSERT_FALSE(address.empty());
    auto& brick = ClientTo(address, epoch);
    bpb::Attr sub = Create(bpb::CreateRequest::DIRECTORY, brickclient::kRootId, "sub");
    for (int i = 0; i < kRootFiles + kSubFiles; ++i) {
      const bool in_sub = i >= kRootFiles;
      Written file{in_sub ? sub.id() : brickclient::kRootId, "f" + std::to_string(i), "", Content(i)};
      file.path = (in_sub ? "sub/" : "") + file.name;
      bpb::Attr attr = Create(bpb::CreateRequest::FILE, file.parent, file.name);
      auto written = brick.Write(attr.id(), 0, file.content);
      ASSERT_EQ(written.err(), 0) << file.path;
      ASSERT_EQ(brick.Fsync(attr.id()).err(), 0);
      written_.push_back(file);
      if (i == 3) hard_link_id_ = attr.id();
    }
    for (int i = 0; i < 8; ++i) {
      Written link{brickclient::kRootId, "l" + std::to_string(i), "l" + std::to_string(i), "f" + std::to_string(i), true};
      Create(bpb::CreateRequest::SYMLINK, link.parent, link.name, link.content);
      written_.push_back(link);
    }
    // A second name of f3 (a hard link).
    bpb::LinkRequest request;
    request.set_id(hard_link_id_);
    request.set_new_parent(brickclient::kRootId);
    request.set_new_name("f3-link");
    request.mutable_header()->set_epoch(epoch);
    ASSERT_EQ(brick.CallSync<bpb::LinkResponse>("brick.Link", request).err(), 0);
  }

  // Every brick path of set `set` in the spec.
  std::vector<std::string> BrickPathsOf(const vpb::VolumeSpec& spec, uint32_t set) {
    std::vector<std::string> paths;
    for (const auto& s : spec.sets()) {
      if (s.id() != set) continue;
      for (const auto& brick : s.bricks()) paths.push_back(brick.path());
    }
    return paths;
  }

  // Waits for FinishRebalance (no previous layout in the spec).
  void WaitForRebalance() {
    ASSERT_TRUE(WaitFor([&] { return !Spec().has_previous_layout(); }, 120s))
        << Clusterctl({"volume", "rebalance", "vol", "status"}).out;
  }

  // Every written object is on every brick of exactly the set its hash names (`hard_link_set`:
  // where f3 and f3-link must be, as hard links stay together), and on no other brick.
  void ExpectPlacement(const std::vector<std::string>& all_bricks, uint32_t* moved_to_second = nullptr) {
    vpb::VolumeSpec spec = Spec();
    uint32_t on_second = 0;
    for (const Written& object : written_) {
      uint32_t set = volume::SetForName(spec.layout(), object.parent, object.name);
      if (object.name == "f3") hard_link_set_ = set;
      on_second += set == 1;
      std::vector<std::string> wanted = BrickPathsOf(spec, set);
      for (const std::string& brick : all_bricks) {
        std::string path = brick + "/" + object.path;
        bool want = std::find(wanted.begin(), wanted.end(), brick) != wanted.end();
        struct stat st{};
        bool there = ::lstat(path.c_str(), &st) == 0;
        ASSERT_EQ(there, want) << object.path << " on " << brick << " (set " << set << ")";
        if (!there) continue;
        if (object.symlink) {
          EXPECT_EQ(fs::read_symlink(path).string(), object.content) << path;
        } else {
          EXPECT_EQ(st.st_mode & 07777, 0640u) << path;
          std::string data = ReadFile(path);
          EXPECT_TRUE(data == object.content) << path << ": " << data.size() << " bytes, want " << object.content.size();
        }
      }
    }
    if (moved_to_second != nullptr) *moved_to_second = on_second;
  }

  std::string dir_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<etcdclient::EtcdClient> store_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread io_thread_;
  std::map<std::string, std::unique_ptr<brickclient::BrickClient>> clients_;
  std::vector<Written> written_;
  std::string hard_link_id_;
  uint32_t hard_link_set_ = 0;
};

TEST_F(RebalanceTest, AddBrickMovesFilesToTheNewSetAndRemoveBrickMovesThemBack) {
  StartAll();
  ASSERT_FALSE(HasFatalFailure());
  auto created = Clusterctl({"volume", "create", "vol", "replica", "3", BrickOf(0, "a"), BrickOf(1, "a"), BrickOf(2, "a")});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto started = Clusterctl({"volume", "start", "vol", "--wait", "30s"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err;
  WriteTree();
  ASSERT_FALSE(HasFatalFailure());
  auto before = Clusterctl({"volume", "rebalance", "vol", "status"});
  EXPECT_NE(before.out.find("rebalance not needed"), std::string::npos) << before.out;

  // add-brick: a second set on the same three hosts.
  auto added = Clusterctl({"volume", "add-brick", "vol", BrickOf(0, "b"), BrickOf(1, "b"), BrickOf(2, "b")});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.err.find("volume rebalance vol status"), std::string::npos) << added.err;
  ASSERT_TRUE(Spec().has_previous_layout());
  auto pending = Clusterctl({"volume", "info", "vol"});
  EXPECT_NE(pending.out.find("Rebalance: "), std::string::npos) << pending.out;
  WaitForRebalance();
  ASSERT_FALSE(HasFatalFailure());
  std::vector<std::string> all;
  for (const char* b : {"a", "b"}) {
    for (int i = 0; i < kHosts; ++i) all.push_back(BrickPath(i, b));
  }
  // f3 has two names and stays on set 0 with both (its set did not leave).
  written_.push_back({brickclient::kRootId, "f3-link", "f3-link", Content(3)});
  std::vector<Written> without_links;
  for (const auto& object : written_) {
    if (object.name != "f3" && object.name != "f3-link") without_links.push_back(object);
  }
  std::vector<Written> everything = written_;
  written_ = without_links;
  uint32_t on_second = 0;
  ExpectPlacement(all, &on_second);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_GT(on_second, 10u) << "about half the names hash to the new set";
  for (int i = 0; i < kHosts; ++i) {
    EXPECT_TRUE(fs::is_directory(BrickPath(i, "b") + "/sub")) << "directories exist on every set";
    EXPECT_EQ(ReadFile(BrickPath(i, "a") + "/f3-link"), Content(3));
  }
  auto status = Clusterctl({"volume", "rebalance", "vol", "status"});
  std::cout << "after add-brick:\n" << status.out;
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("rebalance completed"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("Files moved: " + std::to_string(on_second) + ", left: 0"), std::string::npos) << status.out;

  // remove-brick of the first set: everything (f3 with both names too) moves to set 1.
  written_ = everything;
  auto removed = Clusterctl({"volume", "remove-brick", "vol", BrickOf(0, "a"), BrickOf(1, "a"), BrickOf(2, "a")});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  ASSERT_TRUE(Spec().has_previous_layout());
  WaitForRebalance();
  ASSERT_FALSE(HasFatalFailure());
  vpb::VolumeSpec spec = Spec();
  ASSERT_EQ(spec.sets_size(), 1);
  EXPECT_EQ(spec.sets(0).id(), 1u);
  ExpectPlacement(all);
  struct stat first{}, second{};
  ASSERT_EQ(::stat((BrickPath(0, "b") + "/f3").c_str(), &first), 0);
  ASSERT_EQ(::stat((BrickPath(0, "b") + "/f3-link").c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino) << "hard links stay one file";
  status = Clusterctl({"volume", "rebalance", "vol", "status"});
  std::cout << "after remove-brick:\n" << status.out;
  EXPECT_NE(status.out.find("rebalance completed"), std::string::npos) << status.out;
  auto info = Clusterctl({"volume", "info", "vol"});
  EXPECT_EQ(info.out.find(BrickOf(0, "a")), std::string::npos) << "the removed set left the volume: " << info.out;
}

}  // namespace
}  // namespace cairn
