// WAL throughput on a real temp dir with real fsyncs:
//   BM_WalSaveSync/B        one Save of B entries + one fsync per iteration (group commit by batch)
//   BM_GroupCommit/threads  concurrent AppendNext callers sharing fsyncs through GroupCommitWal
// items_per_second = acknowledged (durable) entries per second.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>

#include "cairn/wal/group_commit.h"
#include "cairn/wal/wal.h"

namespace cairn::wal {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "cairn-wal-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void BM_WalSaveSync(benchmark::State& state) {
  TempDir dir;
  auto opened = Wal::Open(env::DefaultEnv(), dir.path() + "/wal");
  if (!opened.ok()) return state.SkipWithError(opened.status().ToString().c_str());
  Wal& wal = *opened->wal;
  const uint64_t batch = static_cast<uint64_t>(state.range(0));
  std::vector<Entry> entries(batch);
  uint64_t next = 1;
  for (auto _ : state) {
    for (uint64_t i = 0; i < batch; ++i) entries[i] = Entry{next + i, 1, 0, std::string(256, 'x')};
    Status status = wal.Save({1, 1, next}, entries, /*sync=*/true);
    if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
    next += batch;
  }
  state.SetItemsProcessed(static_cast<int64_t>(next - 1));
}
BENCHMARK(BM_WalSaveSync)->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

std::unique_ptr<TempDir> group_dir;
std::unique_ptr<GroupCommitWal> group_wal;

void BM_GroupCommit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    group_dir = std::make_unique<TempDir>();
    auto opened = Wal::Open(env::DefaultEnv(), group_dir->path() + "/wal");
    if (opened.ok()) group_wal = std::make_unique<GroupCommitWal>(std::move(opened->wal));
  }
  for (auto _ : state) {
    if (!group_wal) return state.SkipWithError("could not open the WAL");
    auto index = group_wal->AppendNext(1, 0, std::string(256, 'x'));
    if (!index.ok()) return state.SkipWithError(index.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["entries_per_fsync"] =
        static_cast<double>(state.iterations() * state.threads()) / static_cast<double>(group_wal->GroupCount());
    group_wal.reset();
    group_dir.reset();
  }
}
BENCHMARK(BM_GroupCommit)->Threads(1)->Threads(8)->Threads(32)->UseRealTime();

}  // namespace
}  // namespace cairn::wal

BENCHMARK_MAIN();
