// The backup file format (round trip, and every kind of damage refused with its reason) and the
// offline operations behind clusterd restore / clusterd recover, on an in-memory file system.
#include <gtest/gtest.h>

#include "cairn/coord/node/backup_file.h"
#include "cairn/coord/node/offline.h"
#include "cairn/kv/state_machine.h"
#include "cairn/proto/coord.pb.h"
#include "cairn/wal/wal.h"

namespace cairn::coord {
namespace {

proto::KvCommand PutCommand(const std::string& key, const std::string& value) {
  proto::KvCommand command;
  command.set_now_ms(1000);
  command.mutable_put()->set_key(key);
  command.mutable_put()->set_value(value);
  return command;
}

// A KV image holding keys k0..k(count-1).
std::string KvImage(int count) {
  kv::KvStateMachine kv;
  for (int i = 0; i < count; ++i) EXPECT_TRUE(kv.Apply(PutCommand("k" + std::to_string(i), "v")).ok());
  return kv.Snapshot();
}

std::string SampleBackup(int keys = 3) {
  proto::CoordSnapshot image;
  image.set_format_version(1);
  image.set_kv(KvImage(keys));
  image.set_cluster_id(77);
  BackupHeader header{.cluster_id = 77, .member_id = 5, .raft_index = 42, .raft_term = 3, .revision = keys + 1,
                      .compact_revision = 0, .key_count = static_cast<uint64_t>(keys), .member_count = 0,
                      .created_unix_ms = 123};
  return EncodeBackup(header, image.SerializeAsString());
}

TEST(BackupFile, RoundTripsHeaderAndImage) {
  std::string bytes = SampleBackup();
  auto backup = DecodeBackup(bytes);
  ASSERT_TRUE(backup.ok()) << backup.status();
  EXPECT_EQ(backup->header.raft_index, 42u);
  EXPECT_EQ(backup->header.raft_term, 3u);
  EXPECT_EQ(backup->header.revision, 4);
  EXPECT_EQ(backup->header.key_count, 3u);
  EXPECT_EQ(backup->header.created_unix_ms, 123);
  EXPECT_EQ(backup->image.cluster_id(), 77u);
  EXPECT_EQ(backup->size_bytes, bytes.size());
  EXPECT_EQ(backup->checksum_hex.size(), 64u);
  EXPECT_EQ(backup->checksum_hex, Sha256Hex(std::string_view(bytes).substr(0, bytes.size() - 32)));
  auto peek = PeekBackupHeader(bytes);
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(peek->revision, 4);
}

TEST(BackupFile, DamageIsRefusedWithItsReason) {
  std::string bytes = SampleBackup();
  auto expect = [](std::string_view data, const std::string& reason) {
    auto decoded = DecodeBackup(data);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    EXPECT_NE(decoded.status().message().find(reason), std::string::npos) << decoded.status();
  };
  expect("", "not a Cairn store snapshot");
  expect("something else entirely", "not a Cairn store snapshot");
  expect(std::string_view(bytes).substr(0, 20), "shorter than its header");
  for (size_t cut : {size_t{1}, size_t{32}, bytes.size() / 2}) {
    expect(std::string_view(bytes).substr(0, bytes.size() - cut), "truncated snapshot");
  }
  expect(bytes + "x", "unexpected bytes after its checksum");
  for (size_t at : {size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 1);
    expect(flipped, "checksum mismatch");
  }
  std::string future = bytes;
  future[8] = 9;
  expect(future, "format version 9 is not supported");
}

// What a restore or recovery left in DATA_DIR/coord, read back the way the node reads it.
struct Written {
  wal::Recovered recovered;
  proto::CoordSnapshot image;
  Identity identity;
};

Written ReadBack(env::Env* env, const std::string& data_dir) {
  Written out;
  auto opened = wal::Wal::Open(env, data_dir + "/coord/wal");
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return out;
  out.recovered = std::move(opened->recovered);
  EXPECT_TRUE(opened->wal->Close().ok());
  EXPECT_TRUE(out.recovered.snapshot.has_value());
  if (out.recovered.snapshot) {
    EXPECT_TRUE(out.image.ParseFromString(out.recovered.snapshot->data));
  }
  auto identity = LoadIdentity(env, data_dir + "/coord/member");
  EXPECT_TRUE(identity.ok() && identity->has_value());
  if (identity.ok() && identity->has_value()) {
    out.identity = **identity;
  }
  return out;
}

TEST(Restore, SameFileAndMembersGiveTheSameNewClusterOnEveryHost) {
  auto env = env::NewMemEnv();
  auto backup = DecodeBackup(SampleBackup(5));
  ASSERT_TRUE(backup.ok());
  std::vector<MemberSeed> members = {{"a", "h1:1"}, {"b", "h2:1"}, {"c", "h3:1"}};
  auto first = RestoreFromBackup({.data_dir = "/a", .name = "a", .peer_url = "h1:1", .members = members,
                                  .env = env.get()},
                                 *backup);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = RestoreFromBackup({.data_dir = "/b", .name = "b", .peer_url = "http://h2:1", .members = members,
                                   .env = env.get()},
                                  *backup);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->cluster_id, second->cluster_id);
  EXPECT_NE(first->cluster_id, 77u);
  EXPECT_EQ(first->voters.size(), 3u);

  Written written = ReadBack(env.get(), "/a");
  EXPECT_EQ(written.recovered.snapshot->index, 42u);
  EXPECT_EQ(written.recovered.hard_state.commit, 42u);
  EXPECT_EQ(written.recovered.hard_state.term, 3u);
  EXPECT_EQ(written.image.conf_state().voters_size(), 3);
  EXPECT_EQ(written.image.members_size(), 3);
  EXPECT_EQ(written.image.cluster_id(), first->cluster_id);
  EXPECT_EQ(written.identity, (Identity{first->cluster_id, DeriveMemberId("h1:1"), "a"}));
  kv::KvStateMachine kv;
  ASSERT_TRUE(kv.Restore(written.image.kv()).ok());
  EXPECT_EQ(kv.revision(), 6);
}

TEST(Restore, RefusesExistingDataUnlessForcedAndThenKeepsIt) {
  auto env = env::NewMemEnv();
  auto backup = DecodeBackup(SampleBackup());
  ASSERT_TRUE(backup.ok());
  RestoreOptions options{.data_dir = "/d", .name = "a", .peer_url = "h1:1", .env = env.get()};
  ASSERT_TRUE(RestoreFromBackup(options, *backup).ok());
  auto again = RestoreFromBackup(options, *backup);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("--force"), std::string::npos);
  options.force = true;
  auto forced = RestoreFromBackup(options, *backup);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_NE(forced->moved_aside.find("/d/coord.before-restore-"), std::string::npos);
  EXPECT_TRUE(env->FileExists(forced->moved_aside + "/member"));

  options.members = {{"x", "h9:9"}};
  auto not_listed = RestoreFromBackup(options, *backup);
  EXPECT_EQ(not_listed.status().code(), StatusCode::kInvalidArgument);
}

// A member's WAL as a 3-member cluster would leave it: bootstrap conf changes, puts, a publish,
// and entries past the commit index.
void WriteThreeMemberLog(env::Env* env, const std::string& data_dir, uint64_t* last_index) {
  std::vector<uint64_t> ids = {DeriveMemberId("h1:1"), DeriveMemberId("h2:1"), DeriveMemberId("h3:1")};
  ASSERT_TRUE(env::CreateDirs(env, data_dir + "/coord").ok());
  ASSERT_TRUE(SaveIdentity(env, data_dir + "/coord/member", Identity{99, ids[2], "c"}).ok());
  auto opened = wal::Wal::Open(env, data_dir + "/coord/wal");
  ASSERT_TRUE(opened.ok());
  std::vector<wal::Entry> entries;
  uint64_t index = 0;
  for (uint64_t id : ids) {
    raftpb::ConfChange change;
    change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
    change.set_node_id(id);
    entries.push_back({++index, 1, static_cast<uint32_t>(raftpb::ENTRY_CONF_CHANGE), change.SerializeAsString()});
  }
  entries.push_back({++index, 2, 0, ""});  // the leader's no-op
  proto::CoordEntry publish;
  publish.mutable_publish()->set_id(ids[0]);
  publish.mutable_publish()->set_name("a");
  publish.mutable_publish()->add_peer_urls("h1:1");
  entries.push_back({++index, 2, 0, publish.SerializeAsString()});
  for (int i = 0; i < 10; ++i) {
    proto::CoordEntry put;
    *put.mutable_kv() = PutCommand("k" + std::to_string(i), "v" + std::to_string(i));
    entries.push_back({++index, 2, 0, put.SerializeAsString()});
  }
  // Commit known only up to 3 entries before the end: the rest may have been committed by the
  // members now lost, and must be kept.
  ASSERT_TRUE(opened->wal->Save(wal::HardState{2, ids[0], index - 3}, entries, true).ok());
  ASSERT_TRUE(opened->wal->Close().ok());
  *last_index = index;
}

TEST(Recover, KeepsEveryLoggedEntryAndLeavesOnlyThisMember) {
  auto env = env::NewMemEnv();
  uint64_t last_index = 0;
  ASSERT_NO_FATAL_FAILURE(WriteThreeMemberLog(env.get(), "/c", &last_index));
  RecoverOptions options{.data_dir = "/c", .name = "c", .peer_url = "h3:1", .dry_run = true, .env = env.get()};
  auto dry = ForceNewCluster(options);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->last_index, last_index);
  EXPECT_EQ(dry->commit_index, last_index - 3);
  EXPECT_EQ(dry->key_count, 10u);
  EXPECT_EQ(dry->removed_members.size(), 2u);
  EXPECT_EQ(dry->new_cluster_id, 0u);
  EXPECT_TRUE(env->FileExists("/c/coord/member"));
  EXPECT_TRUE(dry->moved_aside.empty());

  options.dry_run = false;
  auto done = ForceNewCluster(options);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_NE(done->new_cluster_id, 0u);
  EXPECT_NE(done->new_cluster_id, 99u);
  EXPECT_EQ(done->old_cluster_id, 99u);
  EXPECT_TRUE(env->FileExists(done->moved_aside + "/wal"));

  Written written = ReadBack(env.get(), "/c");
  EXPECT_EQ(written.recovered.snapshot->index, last_index);
  EXPECT_EQ(written.recovered.hard_state.commit, last_index);
  EXPECT_TRUE(written.recovered.entries.empty());
  ASSERT_EQ(written.image.conf_state().voters_size(), 1);
  EXPECT_EQ(written.image.conf_state().voters(0), DeriveMemberId("h3:1"));
  ASSERT_EQ(written.image.members_size(), 1);
  EXPECT_EQ(written.image.members(0).name(), "c");
  EXPECT_EQ(written.identity.cluster_id, done->new_cluster_id);
  kv::KvStateMachine kv;
  ASSERT_TRUE(kv.Restore(written.image.kv()).ok());
  etcd::RangeRequest last;
  last.set_key("k9");
  auto range = kv.Range(last);
  ASSERT_TRUE(range.ok());
  ASSERT_EQ(range->kvs_size(), 1);
  EXPECT_EQ(range->kvs(0).value(), "v9");
}

TEST(Recover, RefusesAnEmptyDataDirAndAnotherMembersIdentity) {
  auto env = env::NewMemEnv();
  auto empty = ForceNewCluster({.data_dir = "/none", .name = "c", .peer_url = "h3:1", .env = env.get()});
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  uint64_t last_index = 0;
  ASSERT_NO_FATAL_FAILURE(WriteThreeMemberLog(env.get(), "/c", &last_index));
  auto wrong = ForceNewCluster({.data_dir = "/c", .name = "c", .peer_url = "h1:1", .env = env.get()});
  EXPECT_EQ(wrong.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cairn::coord
