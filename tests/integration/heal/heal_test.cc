// The heal runner against in-process bricks on 127.0.0.1: a backup taken out of the in-sync set
// misses a mixed workload, is healed from the primary's journal (or a full scan), and must then be
// identical to the primary. Also: only changed files are copied, a stopped heal resumes from its
// checkpoint, and a primary dying mid-heal is an error, not a crash or a partial delete.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "cairn/heal/heal_runner.h"
#include "heal_harness.h"

namespace cairn::heal::testing {
namespace {

using brickclient::BrickClient;
using namespace std::chrono_literals;
namespace vpb = ::cairn::proto::volume;

std::string Bytes(size_t size, char seed) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed + i * 7 + i / 4096);
  return out;
}

class HealTest : public ::testing::Test {
 protected:
  // Brick i's root is dir_/bI unless `roots` names another.
  void StartBricks(int count, std::map<int, std::string> roots = {}) {
    for (int i = 0; i < count; ++i) {
      std::string root = roots.count(i) ? roots[i] : dir_.path() + "/b" + std::to_string(i);
      bricks_.push_back(std::make_unique<HealBrick>(io_.io(), root));
    }
    client_ = std::make_unique<BrickClient>(io_.io(), primary().address());
  }
  void TearDown() override {
    client_.reset();
    bricks_.clear();
  }
  HealBrick& primary() { return *bricks_[0]; }
  HealBrick& brick(size_t i) { return *bricks_[i]; }
  // Every brick after the primary in sync except those in `out`.
  void SetViews(uint64_t epoch, std::vector<size_t> out) {
    std::vector<std::string> in_sync, out_of_sync;
    for (size_t i = 1; i < bricks_.size(); ++i) {
      bool is_out = std::find(out.begin(), out.end(), i) != out.end();
      (is_out ? out_of_sync : in_sync).push_back(brick(i).address());
    }
    auto view = View(epoch, primary().address(), in_sync, out_of_sync);
    for (auto& brick : bricks_) {
      view.set_self(brick->address());
      ASSERT_TRUE(brick->server().SetView(view).ok());
    }
  }
  std::unique_ptr<HealRunner> Runner(size_t healed, HealRunnerOptions options = {}) {
    return std::make_unique<HealRunner>(io_.io(), brick(healed).store(), primary().address(), brick(healed).address(),
                                        std::move(options));
  }

  // ---- Mutations through the primary ----
  FileId Make(pb::CreateRequest::Kind kind, const FileId& parent, const std::string& name, uint32_t mode,
              const std::string& target = "", uint64_t rdev = 0) {
    auto request = brick::testing::CreateOf(kind, parent, name, mode, target);
    request.set_rdev(rdev);
    auto created = client_->Create(request);
    EXPECT_EQ(created.err(), 0) << name;
    return created.attr().id();
  }
  FileId File(const FileId& parent, const std::string& name, const std::string& data, uint32_t mode = 0644) {
    FileId id = Make(pb::CreateRequest::FILE, parent, name, mode);
    if (!data.empty()) Write(id, 0, data);
    return id;
  }
  FileId Dir(const FileId& parent, const std::string& name, uint32_t mode = 0755) {
    return Make(pb::CreateRequest::DIRECTORY, parent, name, mode);
  }
  void Write(const FileId& id, uint64_t offset, const std::string& data) {
    auto written = client_->Write(id, offset, data);
    EXPECT_EQ(written.err(), 0);
  }
  void Setattr(const FileId& id, uint32_t valid, uint32_t mode, uint32_t uid = 0, uint32_t gid = 0, uint64_t size = 0) {
    pb::SetattrRequest request;
    request.set_id(id);
    request.set_valid(valid);
    request.set_mode(mode);
    request.set_uid(uid);
    request.set_gid(gid);
    request.set_size(size);
    EXPECT_EQ(client_->CallSync<pb::SetattrResponse>("brick.Setattr", request).err(), 0);
  }
  void Xattr(const FileId& id, const std::string& name, const std::string& value) {
    pb::SetxattrRequest request;
    request.set_id(id);
    request.set_name(name);
    request.set_value(value);
    EXPECT_EQ(client_->CallSync<pb::SetxattrResponse>("brick.Setxattr", request).err(), 0) << name;
  }
  void RemoveXattr(const FileId& id, const std::string& name) {
    pb::RemovexattrRequest request;
    request.set_id(id);
    request.set_name(name);
    EXPECT_EQ(client_->CallSync<pb::RemovexattrResponse>("brick.Removexattr", request).err(), 0) << name;
  }
  void Link(const FileId& id, const FileId& parent, const std::string& name) {
    pb::LinkRequest request;
    request.set_id(id);
    request.set_new_parent(parent);
    request.set_new_name(name);
    EXPECT_EQ(client_->CallSync<pb::LinkResponse>("brick.Link", request).err(), 0) << name;
  }
  void Rename(const FileId& parent, const std::string& name, const FileId& to, const std::string& new_name,
              uint32_t flags = 0) {
    EXPECT_EQ(client_->Rename(parent, name, to, new_name, flags).err(), 0) << name;
  }
  void Remove(const FileId& parent, const std::string& name, bool directory = false) {
    EXPECT_EQ(client_->Remove(parent, name, directory).err(), 0) << name;
  }

  // The tree both replicas share before the backup leaves.
  void InitialTree() {
    d1_ = Dir(kRootId, "d1");
    d2_ = Dir(kRootId, "d2");
    sub_ = Dir(d1_, "sub");
    File(sub_, "deep", "deep file");
    a_ = File(d1_, "a", Bytes(3 * brick::kMaxIoSize + 100, 'a'));
    Link(a_, d2_, "a_link");
    File(d1_, "b", "bee");
    c_ = File(d2_, "c", Bytes(5000, 'c'));
    x_ = File(kRootId, "x", "ex");
    Xattr(x_, "user.k", "v1");
    Xattr(d1_, "user.dir", "yes");
    Make(pb::CreateRequest::SYMLINK, kRootId, "s1", 0777, "d1/a");
    big_ = File(kRootId, "big", Bytes(2 * brick::kMaxIoSize, 'B'));
    Dir(kRootId, "d4");
    Dir(kRootId, "d4_again");
    FileId d5 = Dir(kRootId, "d5");
    File(d5, "f", "f");
    FileId g = Dir(d5, "g");
    File(g, "h", "h");
    File(kRootId, "victim", "replaced by a rename");
    File(kRootId, "same", "unchanged");
    FileId swap = Dir(kRootId, "swap1");
    File(swap, "in1", "1");
    swap = Dir(kRootId, "swap2");
    File(swap, "in2", "2");
  }

  // Creates, writes, truncates, renames of files and directories, unlinks, rmdir, hard links,
  // symlinks, chmod/chown, xattrs, a device node, a sparse file.
  void MixedWorkload() {
    File(d1_, "new1", "brand new");
    FileId d3 = Dir(kRootId, "d3", 0750);
    File(d3, "f1", Bytes(10000, 'f'));
    FileId sub2 = Dir(d3, "sub2");
    File(sub2, "f2", "two");
    Write(a_, brick::kMaxIoSize + 10, "changed in the second block");
    Write(big_, 2 * brick::kMaxIoSize, Bytes(4096, 'g'));  // grows
    Setattr(c_, pb::SETATTR_SIZE, 0, 0, 0, 10);            // truncate
    Rename(d1_, "b", d2_, "b_renamed");
    Rename(d1_, "sub", d3, "sub_moved");  // a directory moves into a new directory
    Rename(d1_, "new1", kRootId, "victim");  // replaces an existing file
    Xattr(c_, "user.k2", "value two");
    RemoveXattr(x_, "user.k");
    Xattr(d1_, "user.dir", "changed");
    Remove(kRootId, "d4", true);
  }
  void MixedWorkload2() {
    FileId d5 = client_->Lookup(kRootId, "d5").attr().id();
    FileId g = client_->Lookup(d5, "g").attr().id();
    Remove(g, "h");
    Remove(d5, "g", true);
    Remove(d5, "f");
    Remove(kRootId, "d5", true);
    FileId d3 = client_->Lookup(kRootId, "d3").attr().id();
    FileId f1 = client_->Lookup(d3, "f1").attr().id();
    Link(f1, d1_, "f1_link");
    Remove(d1_, "a");  // still reachable as d2/a_link
    Make(pb::CreateRequest::SYMLINK, d3, "s2", 0777, "../d1");
    Remove(kRootId, "s1");
    Make(pb::CreateRequest::SYMLINK, kRootId, "s1", 0777, "elsewhere");  // same name, new id
    Setattr(c_, pb::SETATTR_MODE, 0600);
    FileId victim = client_->Lookup(kRootId, "victim").attr().id();
    Setattr(victim, pb::SETATTR_UID | pb::SETATTR_GID, 0, 1234, 5678);
    Setattr(d2_, pb::SETATTR_MODE, 0711);
    Make(pb::CreateRequest::NODE, d3, "fifo", S_IFIFO | 0640);
    FileId sparse = File(kRootId, "sparse", "");
    Setattr(sparse, pb::SETATTR_SIZE, 0, 0, 0, 8 * brick::kMaxIoSize);
    Write(sparse, 5 * brick::kMaxIoSize, Bytes(4096, 's'));
    FileId swap1 = client_->Lookup(kRootId, "swap1").attr().id();
    Rename(kRootId, "swap1", kRootId, "swap2", 2 /* RENAME_EXCHANGE */);
    File(swap1, "added", "after the exchange");
    // A directory renamed over an empty one; a file replaced by a directory of the same name.
    FileId over = Dir(kRootId, "over_src");
    File(over, "inside", "moves along");
    Rename(kRootId, "over_src", kRootId, "d4_again");
    Remove(kRootId, "same");
    FileId now_dir = Dir(kRootId, "same");
    File(now_dir, "child", "was a file");
  }

  void ExpectIdentical(size_t healed) {
    auto want = Walk(primary().store());
    auto got = Walk(brick(healed).store());
    EXPECT_EQ(want.size(), got.size());
    EXPECT_TRUE(want == got) << Diff(want, got);
  }
  void ExpectJournalEmpty(size_t healed) { EXPECT_TRUE(primary().server().JournalIds(brick(healed).address()).empty()); }

  // Makes `count` 4 KiB files in 100-file directories on every brick directly (same ids, same
  // content), as if they had been replicated; returns their ids.
  std::vector<FileId> Populate(size_t count) {
    std::vector<FileId> ids;
    FileId dir;
    for (size_t i = 0; i < count; ++i) {
      if (i % 100 == 0) {
        dir = primary().store().NewId();
        for (auto& brick : bricks_) {
          auto request = brick::testing::CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "p" + std::to_string(i / 100), 0755);
          request.set_new_id(dir);
          EXPECT_EQ(brick->store().Create(request, nullptr).err(), 0);
        }
      }
      FileId id = primary().store().NewId();
      std::string data = Bytes(4096, static_cast<char>(i));
      for (auto& brick : bricks_) {
        auto request = brick::testing::CreateOf(pb::CreateRequest::FILE, dir, "f" + std::to_string(i), 0644);
        request.set_new_id(id);
        EXPECT_EQ(brick->store().Create(request, nullptr).err(), 0);
        pb::WriteRequest write;
        write.set_id(id);
        write.set_data(data);
        EXPECT_EQ(brick->store().Write(write, nullptr).err(), 0);
      }
      ids.push_back(id);
    }
    return ids;
  }

  TempDir dir_;
  IoThreads io_;
  std::vector<std::unique_ptr<HealBrick>> bricks_;
  std::unique_ptr<BrickClient> client_;
  FileId d1_, d2_, sub_, a_, c_, x_, big_;
};

TEST_F(HealTest, Replica2MixedWorkloadHealsToIdenticalBricks) {
  StartBricks(2);
  SetViews(1, {});
  InitialTree();
  ExpectIdentical(1);
  SetViews(2, {1});
  MixedWorkload();
  MixedWorkload2();
  EXPECT_FALSE(Walk(primary().store()) == Walk(brick(1).store()));
  EXPECT_FALSE(primary().server().JournalIds(brick(1).address()).empty());

  std::vector<vpb::HealCheckpoint> checkpoints;
  auto runner = Runner(1, {.brick_id = "h2:/b", .set_id = 7, .epoch = 2, .window = 8, .batch = 4,
                           .checkpoint = [&](const vpb::HealCheckpoint& checkpoint) {
                             checkpoints.push_back(checkpoint);
                             return Status::Ok();
                           }});
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
  auto progress = runner->progress();
  EXPECT_TRUE(progress.ready_for_readmission);
  EXPECT_GT(progress.files_copied, 0u);
  EXPECT_GT(progress.entries_created, 0u);
  EXPECT_GT(progress.entries_removed, 0u);
  ASSERT_FALSE(checkpoints.empty());
  EXPECT_EQ(checkpoints.back().brick(), "h2:/b");
  EXPECT_EQ(checkpoints.back().set_id(), 7u);
  EXPECT_EQ(checkpoints.back().files_left(), 0u);
  EXPECT_GT(checkpoints.front().files_left(), 0u);  // the round's list is checkpointed before any work
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/b1/.cairn/heal-pending"));

  // Healed means caught up: the next changes on the primary heal again, and nothing is left over.
  File(d2_, "later", "after the heal");
  ASSERT_TRUE(runner->HealUntilClean().ok());
  ExpectIdentical(1);
}

TEST_F(HealTest, Replica3HealsTheBackupThatWasOut) {
  StartBricks(3);
  SetViews(1, {});
  InitialTree();
  SetViews(2, {2});  // brick 1 stays in sync, brick 2 is out
  MixedWorkload();
  MixedWorkload2();
  auto runner = Runner(2, {.epoch = 2});
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
  ExpectIdentical(2);
  ExpectJournalEmpty(2);
}

TEST_F(HealTest, FullScanGivesTheSameResult) {
  StartBricks(2);
  SetViews(1, {});
  InitialTree();
  SetViews(2, {1});
  MixedWorkload();
  MixedWorkload2();
  // The journal is lost: the runner walks the whole tree instead.
  primary().server().ClearJournal(brick(1).address(), {});
  auto runner = Runner(1, {.full_scan = true});
  auto round = runner->RunRound();
  ASSERT_TRUE(round.ok()) << round.status();
  EXPECT_TRUE(round->full_scan);
  EXPECT_FALSE(round->clean);
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
}

// Heal rounds while the primary keeps changing files (writes, truncates, creates, renames,
// unlinks): an id changed during its copy must be journaled again, never lost. Once the writer
// stops (the primary's agent holds writes), the last rounds make the bricks identical.
TEST_F(HealTest, ChangesDuringTheHealAreNotLost) {
  StartBricks(2);
  SetViews(1, {});
  std::vector<FileId> files;
  FileId dir = Dir(kRootId, "busy");
  for (int i = 0; i < 60; ++i) files.push_back(File(dir, "f" + std::to_string(i), Bytes(8192, static_cast<char>(i))));
  SetViews(2, {1});

  std::atomic<bool> writing{true};
  std::atomic<int> ops{0};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    BrickClient client(io_.io(), primary().address());
    uint64_t state = 42;  // seeded: the operations are the same each run, their timing is not
    auto next = [&state](uint64_t bound) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return (state >> 33) % bound;
    };
    for (int op = 0; writing && op < 5000; ++op) {
      const FileId& id = files[next(files.size())];
      switch (next(5)) {
        case 0:
        case 1:
          client.Write(id, next(3) * 4096, Bytes(4096, static_cast<char>(op)));
          break;
        case 2: {
          pb::SetattrRequest truncate;
          truncate.set_id(id);
          truncate.set_valid(pb::SETATTR_SIZE);
          truncate.set_size(next(12000));
          client.CallSync<pb::SetattrResponse>("brick.Setattr", truncate);
          break;
        }
        case 3: {
          std::string name = "n" + std::to_string(next(20));
          auto created = client.Create(brick::testing::CreateOf(pb::CreateRequest::FILE, dir, name, 0644));
          if (created.err() == 0) client.Write(created.attr().id(), 0, Bytes(100, 'n'));
          break;
        }
        default:
          client.Rename(dir, "n" + std::to_string(next(20)), dir, "n" + std::to_string(next(20)));
          client.Remove(dir, "n" + std::to_string(next(20)), false);
      }
      ++ops;
    }
    writer_done = true;
  });
  auto runner = Runner(1, {.window = 8, .batch = 16});
  Status failed;
  int rounds = 0;
  // At least 3 rounds, and until the writer did 300 operations (or ran out of them).
  while (failed.ok() && rounds < 10000 && (rounds < 3 || (ops < 300 && !writer_done))) {
    auto round = runner->RunRound();
    if (!round.ok()) failed = round.status();
    ++rounds;
  }
  writing = false;
  writer.join();
  ASSERT_TRUE(failed.ok()) << failed;
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
}

size_t FilesFromEnv(size_t fallback) {
  const char* value = std::getenv("CAIRN_HEAL_FILES");
  return value != nullptr ? std::strtoul(value, nullptr, 10) : fallback;
}

// 5% changed files: only those are copied (CAIRN_HEAL_FILES=20000: 1,000 changed in a 20,000-file
// brick copies 1,000; the default is smaller because making the files dominates the test's time on
// a loaded CI machine). A full scan reads everything but writes only what differs. Prints the heal
// rate of 4 KiB files.
TEST_F(HealTest, OnlyChangedFilesAreCopied) {
  StartBricks(2);
  const size_t total = FilesFromEnv(2000), changed = total / 20;
  auto ids = Populate(total);
  SetViews(1, {});  // brick 1 leaves the in-sync set under this primary: its journal is complete
  SetViews(2, {1});
  for (size_t i = 0; i < changed; ++i) Write(ids[i * 20 + 3], 0, Bytes(4096, 'Z'));

  auto runner = Runner(1, {.window = 32});
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto progress = runner->progress();
  EXPECT_EQ(progress.files_copied, changed);
  EXPECT_EQ(progress.files_examined, changed);
  EXPECT_EQ(progress.bytes_copied, changed * 4096);
  std::printf("heal.rate files=%zu of %zu seconds=%.3f files_per_second=%.0f (4 KiB files, journal)\n", changed,
              total, seconds, changed / seconds);
  ExpectIdentical(1);
  ExpectJournalEmpty(1);

  // Full scan: every file read, only the changed ones written.
  const size_t changed_again = changed / 2;
  for (size_t i = 0; i < changed_again; ++i) Write(ids[i * 40 + 7], 100, "again");
  auto scanner = Runner(1, {.window = 32, .full_scan = true});
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(scanner->HealUntilClean().ok()) << scanner->progress().last_error;
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress = scanner->progress();
  EXPECT_EQ(progress.files_copied, changed_again);
  EXPECT_EQ(progress.files_examined, total);
  std::printf("heal.rate files=%zu seconds=%.3f files_per_second=%.0f (4 KiB files, full scan)\n", total, seconds,
              total / seconds);
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
}

// A brick that left the in-sync set before this primary took over: the changes it missed were
// journaled by the old primary, not here, so the journal (empty) must not be trusted; heal walks
// the whole tree instead and the bricks end identical.
TEST_F(HealTest, ABrickThatLeftUnderAnotherPrimaryIsHealedByFullScan) {
  StartBricks(2);
  auto ids = Populate(50);
  for (size_t i : {3, 17, 42}) {  // changed under the old primary, journaled only there
    pb::WriteRequest write;
    write.set_id(ids[i]);
    write.set_data(Bytes(4096, 'M'));
    ASSERT_EQ(primary().store().Write(write, nullptr).err(), 0);
  }
  SetViews(2, {1});  // this brick's first view as primary: brick 1 is already out

  auto runner = Runner(1, {.window = 4});
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
}

TEST_F(HealTest, StoppedHealResumesFromItsCheckpoint) {
  StartBricks(2);
  auto ids = Populate(400);
  SetViews(1, {});  // brick 1 leaves the in-sync set under this primary: its journal is complete
  SetViews(2, {1});
  for (size_t i = 0; i < 300; ++i) Write(ids[i], 0, Bytes(4096, 'R'));

  std::optional<vpb::HealCheckpoint> stored;
  std::atomic<int> saves{0};
  HealRunner* first_runner = nullptr;
  auto first = Runner(1, {.window = 4, .batch = 50, .checkpoint = [&](const vpb::HealCheckpoint& checkpoint) {
                            stored = checkpoint;
                            if (++saves == 3) first_runner->Stop();  // after two batches
                            return Status::Ok();
                          }});
  first_runner = first.get();
  auto stopped = first->RunRound();
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kAborted);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->files_total(), 300u);
  EXPECT_EQ(stored->files_left(), 200u);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/b1/.cairn/heal-pending"));
  first.reset();

  // A new runner (the process restarted) resumes: only what was left is read.
  auto second = Runner(1, {.window = 4, .batch = 50, .resume_from = stored});
  auto resumed = second->RunRound();
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(second->progress().files_examined, 200u);
  EXPECT_EQ(second->progress().job.files_total, 300u);
  ASSERT_TRUE(second->HealUntilClean().ok());
  ExpectIdentical(1);
  ExpectJournalEmpty(1);
}

TEST_F(HealTest, PrimaryDyingMidHealIsAnErrorAndRemovesNothing) {
  StartBricks(2);
  auto ids = Populate(400);
  SetViews(1, {});  // brick 1 leaves the in-sync set under this primary: its journal is complete
  SetViews(2, {1});
  for (size_t i = 0; i < 300; ++i) Write(ids[i], 0, Bytes(4096, 'D'));
  auto before = Walk(brick(1).store());
  std::atomic<int> saves{0};
  auto runner = Runner(1, {.window = 4, .batch = 25, .call_timeout = 3s, .checkpoint = [&](const vpb::HealCheckpoint&) {
                             if (++saves == 3) primary().Kill();
                             return Status::Ok();
                           }});
  auto round = runner->RunRound();
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), StatusCode::kUnavailable) << round.status();
  auto after = Walk(brick(1).store());
  for (const auto& [path, line] : before) EXPECT_EQ(after.count(path), 1u) << path << " was removed";
  EXPECT_FALSE(runner->progress().last_error.empty());
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/b1/.cairn/heal-pending"));
}

// The healed brick on a 1 MiB tmpfs: the copy fails with ENOSPC, the round ends with IoError
// naming it, and a later round (after space was freed) finishes.
TEST_F(HealTest, NoSpaceOnTheHealedBrickStopsTheRound) {
  std::string small = dir_.path() + "/small";
  std::filesystem::create_directories(small);
  if (mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string path;
    ~Unmount() { (void)umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  StartBricks(2, {{1, small + "/b1"}});
  SetViews(1, {});
  File(kRootId, "small", "fits");
  SetViews(2, {1});
  FileId big = File(kRootId, "big", Bytes(3 * brick::kMaxIoSize, 'n'));
  auto runner = Runner(1);
  auto round = runner->RunRound();
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), StatusCode::kIoError) << round.status();
  EXPECT_NE(round.status().message().find("No space left"), std::string::npos) << round.status();
  // The owner frees space (here: the file shrinks on the primary) and retries.
  Setattr(big, pb::SETATTR_SIZE, 0, 0, 0, 1000);
  ASSERT_TRUE(runner->HealUntilClean().ok()) << runner->progress().last_error;
  ExpectIdentical(1);
}

}  // namespace
}  // namespace cairn::heal::testing
