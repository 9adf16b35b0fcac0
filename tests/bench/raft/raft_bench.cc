// Raft core throughput on an in-memory network (no disk, no sockets, one thread):
//   BM_RaftCommit/N  a 3-node group; per iteration the leader proposes N entries of 256 bytes and
//                    messages are delivered (following raft.h's Ready contract, with MemoryStorage as
//                    the "persisted" log) until the leader's commit index covers them.
// items_per_second = entries committed on the leader per second. Measures the state machine's own
// cost (proposal, replication, quorum commit, apply), not durability or the network.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "cairn/raft/raft.h"
#include "cairn/raft/storage.h"

namespace cairn::raft {
namespace {

struct BenchPeer {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<RawNode> node;
  uint64_t applied = 0;
  ConfState conf_state;
};

class BenchCluster {
 public:
  // Returns false (with `error` set) if a node could not be created or no leader emerged.
  bool Start(const std::vector<uint64_t>& ids, std::string* error) {
    for (uint64_t id : ids) {
      BenchPeer& peer = peers_[id];
      peer.storage = std::make_unique<MemoryStorage>();
      Config config;
      config.id = id;
      config.voters = ids;
      config.storage = peer.storage.get();
      auto node = RawNode::Create(config);
      if (!node.ok()) {
        *error = node.status().ToString();
        return false;
      }
      peer.node = std::move(*node);
    }
    Pump();
    Status status = peers_.at(ids.front()).node->Campaign();
    (void)status;
    Pump();
    leader_ = ids.front();
    if (peers_.at(leader_).node->role() != Role::kLeader) {
      *error = "node " + std::to_string(leader_) + " did not become leader";
      return false;
    }
    return true;
  }

  RawNode& leader() { return *peers_.at(leader_).node; }

  // Runs one node's Ready loop until it has nothing to do.
  void Process(BenchPeer& peer) {
    while (peer.node->HasReady()) {
      Ready rd = peer.node->GetReady();
      if (rd.snapshot) {
        (void)peer.storage->ApplySnapshot(*rd.snapshot);
        peer.applied = rd.snapshot->metadata().index();
        peer.conf_state = rd.snapshot->metadata().conf_state();
      }
      (void)peer.storage->Append(rd.entries);
      if (rd.hard_state) peer.storage->SetHardState(*rd.hard_state);
      for (Message& m : rd.messages) queue_.push_back(std::move(m));
      for (const Entry& e : rd.committed_entries) {
        if (e.type() == raftpb::ENTRY_CONF_CHANGE) {
          ConfChange cc;
          if (cc.ParseFromString(e.data())) peer.conf_state = peer.node->ApplyConfChange(cc);
        } else {
          benchmark::DoNotOptimize(e.data().data());
        }
        peer.applied = e.index();
      }
      peer.node->Advance();
    }
  }

  // One round: every node handles its Ready, then every queued message is delivered.
  // Returns false if there was nothing to do.
  bool Round() {
    for (auto& [id, peer] : peers_) Process(peer);
    if (queue_.empty()) return false;
    std::deque<Message> batch;
    batch.swap(queue_);
    for (const Message& m : batch) {
      auto it = peers_.find(m.to());
      if (it != peers_.end()) (void)it->second.node->Step(m);
    }
    return true;
  }

  void Pump() {
    while (Round()) {
    }
  }

  // Keeps memory bounded: compacts every log below the index all nodes have applied, so no
  // follower ever needs a snapshot.
  void MaybeCompact() {
    uint64_t floor = UINT64_MAX;
    for (auto& [id, peer] : peers_) floor = std::min(floor, peer.applied);
    if (floor < compacted_ + kCompactEvery) return;
    for (auto& [id, peer] : peers_) {
      auto snap = peer.storage->CreateSnapshot(floor, &peer.conf_state, std::string());
      if (snap.ok()) (void)peer.storage->Compact(floor);
    }
    compacted_ = floor;
  }

 private:
  static constexpr uint64_t kCompactEvery = 8192;
  std::map<uint64_t, BenchPeer> peers_;
  std::deque<Message> queue_;
  uint64_t leader_ = kNone;
  uint64_t compacted_ = 0;
};

void BM_RaftCommit(benchmark::State& state) {
  BenchCluster cluster;
  std::string error;
  if (!cluster.Start({1, 2, 3}, &error)) return state.SkipWithError(error.c_str());
  const int64_t batch = state.range(0);
  const std::string payload(256, 'x');
  int64_t committed = 0;
  for (auto _ : state) {
    RawNode& leader = cluster.leader();
    for (int64_t i = 0; i < batch; ++i) {
      Status status = leader.Propose(payload);
      if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
    }
    // Every earlier proposal is committed and nothing else was appended, so the log's tail was
    // the commit index and the new entries end exactly `batch` past it.
    const uint64_t target = leader.commit_index() + static_cast<uint64_t>(batch);
    while (cluster.leader().commit_index() < target) {
      if (!cluster.Round()) return state.SkipWithError("stalled before commit");
    }
    committed += batch;
    cluster.MaybeCompact();
  }
  state.SetItemsProcessed(committed);
  state.SetBytesProcessed(committed * static_cast<int64_t>(payload.size()));
}
BENCHMARK(BM_RaftCommit)->Arg(1)->Arg(64)->Arg(256);

}  // namespace
}  // namespace cairn::raft

BENCHMARK_MAIN();
