// Property test: the union against a naive reference. Random branch trees (with whiteouts and opaque
// directories) are merged naively into a plain directory; then the same random operations are applied
// to the union (through UnionFs) and with plain syscalls to the merged copy. Every result (errno
// included) and the final trees must match, also after reopening the union on the same branches.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "cairn/union/union_fs.h"
#include "path_ops.h"
#include "random_tree.h"
#include "test_tree.h"

namespace cairn::unionfs {
namespace {

using testing::NaiveMerge;
using testing::PathOps;
using testing::RandomTrees;
using testing::TempDir;
using testing::Tree;
namespace fs = std::filesystem;

// The same operations as PathOps, done with syscalls on a plain directory.
class PlainOps {
 public:
  explicit PlainOps(std::string root) : root_(std::move(root)) {}
  std::string P(const std::string& path) { return root_ + "/" + path; }
  int Rc(int r) { return r == 0 ? 0 : -errno; }
  int Write(const std::string& path, const std::string& data, bool append) {
    int fd = open(P(path).c_str(), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, data.data(), data.size());
    close(fd);
    return n == static_cast<ssize_t>(data.size()) ? 0 : -EIO;
  }
  int Mkdir(const std::string& path) { return Rc(mkdir(P(path).c_str(), 0755)); }
  int Unlink(const std::string& path) { return Rc(unlink(P(path).c_str())); }
  int Rmdir(const std::string& path) { return Rc(rmdir(P(path).c_str())); }
  int Rename(const std::string& a, const std::string& b) { return Rc(rename(P(a).c_str(), P(b).c_str())); }
  int Truncate(const std::string& path, off_t size) { return Rc(truncate(P(path).c_str(), size)); }
  int Chmod(const std::string& path, mode_t mode) { return Rc(chmod(P(path).c_str(), mode)); }
  int Link(const std::string& a, const std::string& b) { return Rc(link(P(a).c_str(), P(b).c_str())); }

 private:
  std::string root_;
};

void RunSeed(uint32_t seed, size_t fd_budget = 0) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  TempDir tmp;
  std::string upper = tmp.Sub("upper"), middle = tmp.Sub("middle"), base = tmp.Sub("base");
  std::string model = tmp.Sub("model");
  RandomTrees random(seed);
  random.Fill(upper, 1, true);
  random.Fill(middle, 1, true);
  random.Fill(base, 1, false);
  NaiveMerge({{true, upper}, {true, middle}, {false, base}}, model);

  MountOptions options;
  options.branches = {{upper, BranchMode::kReadWrite}, {middle, BranchMode::kReadOnly},
                      {base, BranchMode::kRealReadOnly}};
  options.fd_budget = fd_budget;
  auto fs = UnionFs::Open(options);
  ASSERT_TRUE(fs.ok()) << fs.status();
  PathOps ops(fs->get());
  PlainOps plain(model);
  Tree start;
  ASSERT_EQ(ops.Snapshot(&start), 0);
  ASSERT_EQ(start, testing::SnapshotDir(model));

  for (int step = 0; step < 60; ++step) {
    std::string a = random.Path(), b = random.Path(), data = random.Content();
    int kind = random.Below(9);
    std::string what = std::to_string(step) + ": op " + std::to_string(kind) + " " + a + " " + b;
    int expected = 0, got = 0;
    switch (kind) {
      case 0: expected = plain.Write(a, data, false); got = ops.Write(a, data, false); break;
      case 1: expected = plain.Write(a, data, true); got = ops.Write(a, data, true); break;
      case 2: expected = plain.Mkdir(a); got = ops.Mkdir(a); break;
      case 3: expected = plain.Unlink(a); got = ops.Unlink(a); break;
      case 4: expected = plain.Rmdir(a); got = ops.Rmdir(a); break;
      case 5:
        // Into itself or onto an ancestor: the kernel's VFS refuses these before the union sees them.
        if (b.rfind(a + "/", 0) == 0 || a.rfind(b + "/", 0) == 0) continue;
        expected = plain.Rename(a, b); got = ops.Rename(a, b);
        break;
      case 6: expected = plain.Truncate(a, 1); got = ops.Truncate(a, 1); break;
      case 7: expected = plain.Chmod(a, 0600); got = ops.Chmod(a, 0600); break;
      case 8: expected = plain.Link(a, b); got = ops.Link(a, b); break;
    }
    ASSERT_EQ(got, expected) << what << "\n" << ::testing::PrintToString(testing::SnapshotDir(model));
    Tree now;
    ASSERT_EQ(ops.Snapshot(&now), 0) << what;
    ASSERT_EQ(now, testing::SnapshotDir(model)) << what;
  }
  // A fresh union over the same branches (a remount) sees the same tree.
  auto again = UnionFs::Open(options);
  ASSERT_TRUE(again.ok());
  PathOps reopened(again->get());
  Tree after;
  ASSERT_EQ(reopened.Snapshot(&after), 0);
  EXPECT_EQ(after, testing::SnapshotDir(model));
}

TEST(UnionModelProperty, RandomOperationsMatchNaiveMergedCopy) {
  // CAIRN_UNION_SEEDS=N runs more seeds by hand; CI keeps the default small so ASan stays fast.
  const char* env = std::getenv("CAIRN_UNION_SEEDS");
  uint32_t seeds = env != nullptr ? static_cast<uint32_t>(std::atoi(env)) : 25;
  for (uint32_t seed = 1; seed <= seeds; ++seed) {
    RunSeed(seed);
    if (HasFatalFailure()) return;
  }
}

// The same sequences with a descriptor budget of one plain file: every other file's descriptor is
// closed and reopened by name on use, through renames, links, copy-ups and unlinks.
TEST(UnionModelProperty, TinyDescriptorBudgetGivesTheSameResults) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    RunSeed(seed, 1);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace cairn::unionfs
