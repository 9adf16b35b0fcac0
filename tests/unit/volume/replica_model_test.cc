// The replication protocol against random crashes, silences and returns, seed by seed. A failing
// seed prints its trace and reproduces exactly: CAIRN_VOLUME_MODEL_SEED=N runs only that one.
// CAIRN_VOLUME_MODEL_SEEDS=N runs more seeds than the CI default.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "replica_model.h"

namespace cairn::volume::testing {
namespace {

constexpr int kStepsPerSeed = 400;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::strtoull(value, nullptr, 10) : fallback;
}

void RunSeeds(int replicas, pb::NoQuorumPolicy policy, uint64_t default_seeds) {
  uint64_t first = 1;
  uint64_t count = EnvOr("CAIRN_VOLUME_MODEL_SEEDS", default_seeds);
  if (const char* one = std::getenv("CAIRN_VOLUME_MODEL_SEED")) {
    first = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  std::map<std::string, int> counts;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    Random random(seed * 1000 + static_cast<uint64_t>(replicas));
    ReplicaSetModel model(replicas, policy);
    for (int step = 0; step < kStepsPerSeed && !model.failed(); ++step) model.RandomStep(random);
    if (!model.failed()) model.Stabilize();
    if (model.failed()) {
      ADD_FAILURE() << "replicas=" << replicas << " seed=" << seed << ": " << model.Report();
      return;
    }
    for (const auto& [kind, n] : model.counts()) counts[kind] += n;
  }
  std::string summary;
  for (const auto& [kind, n] : counts) summary += " " + kind + "=" + std::to_string(n);
  std::printf("replicas=%d seeds=%llu:%s\n", replicas, static_cast<unsigned long long>(count), summary.c_str());
  // The schedules must exercise every transition, and writes do get acknowledged between faults.
  if (count >= 100) {
    EXPECT_GT(counts["ack"], static_cast<int>(count) * 10);
    for (const char* kind : {"take_over", "drop", "drop_suspected", "readmit", "readmit_refused", "no_quorum"}) {
      EXPECT_GT(counts[kind], 0) << kind;
    }
  }
}

TEST(VolumeReplicaModel, ThreeReplicasRandomFaults) { RunSeeds(3, pb::NO_QUORUM_EIO, 200); }
TEST(VolumeReplicaModel, TwoReplicasRandomFaults) { RunSeeds(2, pb::NO_QUORUM_EIO, 200); }
TEST(VolumeReplicaModel, TwoReplicasReadonlyPolicy) { RunSeeds(2, pb::NO_QUORUM_READONLY, 100); }

size_t PrimaryIndex(const ReplicaSetModel& model) {
  int primary = model.ActivePrimary();
  EXPECT_GE(primary, 0);
  return static_cast<size_t>(primary);
}

// GlusterFS replica 2 splits its brain when each replica is written alone while the other is
// down, in turn. Here the second replica can never take writes: it is not in sync, so it cannot
// become primary, and the set waits for (or, by policy, serves read-only from) the replica that
// holds every acknowledged write.
void GlusterSplitBrainSequence(pb::NoQuorumPolicy policy) {
  ReplicaSetModel model(2, policy);
  model.Stabilize();
  ASSERT_FALSE(model.failed()) << model.Report();
  const size_t p = PrimaryIndex(model);
  const size_t q = 1 - p;
  ASSERT_TRUE(model.ClientWrite(p));

  // q goes down; p drops it and goes on alone.
  model.Crash(q);
  EXPECT_FALSE(model.ClientWrite(p)) << "no ack while q is still in the in-sync set";
  model.DropBackup(p, false);
  ASSERT_TRUE(model.ClientWrite(p));
  const size_t acked_before = model.acked().size();

  // p goes down, q comes back alone: q is out of sync and must not become primary.
  model.Crash(p);
  model.Restart(q);
  model.AdvanceTime(ReplicaSetModel::kTtlMs + 100);
  model.TakeOver(q);
  EXPECT_EQ(model.ActivePrimary(), -1);
  EXPECT_FALSE(model.ClientWrite(q));
  auto record = model.Record();
  EXPECT_EQ(record.state.mode(),
            policy == pb::NO_QUORUM_EIO ? pb::REPLICA_SET_NO_QUORUM_EIO : pb::REPLICA_SET_NO_QUORUM_READONLY);
  if (policy == pb::NO_QUORUM_READONLY) {
    EXPECT_EQ(record.state.read_source(), model.bricks()[q].id);
  }
  EXPECT_EQ(model.acked().size(), acked_before);

  // p returns: it takes over, heals q, and both hold the same writes.
  model.Restart(p);
  model.TakeOver(q);
  EXPECT_EQ(model.ActivePrimary(), static_cast<int>(p));
  model.Stabilize();
  ASSERT_FALSE(model.failed()) << model.Report();
  EXPECT_EQ(model.bricks()[0].log, model.bricks()[1].log);
  for (int write : model.acked()) EXPECT_TRUE(model.bricks()[q].has.count(write));
}

TEST(VolumeReplicaModel, GlusterReplica2SplitBrainSequenceEio) { GlusterSplitBrainSequence(pb::NO_QUORUM_EIO); }
TEST(VolumeReplicaModel, GlusterReplica2SplitBrainSequenceReadonly) {
  GlusterSplitBrainSequence(pb::NO_QUORUM_READONLY);
}

// A silent (SIGSTOPped) primary keeps believing it is primary; once its lease ran out it refuses
// writes even before it hears of the new primary, and the new primary's epoch fences it off.
TEST(VolumeReplicaModel, SilentPrimaryReturnsAfterTakeOver) {
  ReplicaSetModel model(3, pb::NO_QUORUM_EIO);
  model.Stabilize();
  const size_t p = PrimaryIndex(model);
  const size_t q = (p + 1) % 3;
  model.Silence(p);
  model.AdvanceTime(ReplicaSetModel::kTtlMs + 100);
  model.TakeOver(q);
  const int primary = model.ActivePrimary();
  ASSERT_GE(primary, 0);
  EXPECT_NE(primary, static_cast<int>(p));
  model.Reconcile(static_cast<size_t>(primary));
  ASSERT_TRUE(model.ClientWrite(static_cast<size_t>(primary)));
  model.Resume(p);
  EXPECT_TRUE(model.bricks()[p].primary) << "still believes, not having heard";
  EXPECT_FALSE(model.ClientWrite(p));
  model.KeepAlive(p);
  EXPECT_FALSE(model.bricks()[p].primary);
  model.CheckInvariants();
  model.Stabilize();
  EXPECT_FALSE(model.failed()) << model.Report();
}

}  // namespace
}  // namespace cairn::volume::testing
