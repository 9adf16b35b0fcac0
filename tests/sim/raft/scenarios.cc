#include "scenarios.h"

#include <functional>
#include <map>

#include "cluster.h"

namespace cairn::sim {
namespace {

// Script helpers: each step narrates what the operator or client does and stops the script (by
// recording a failure) when an expectation does not hold.
class Script {
 public:
  explicit Script(int nodes) : cluster_(Options(nodes)) {}

  static SimOptions Options(int nodes) {
    SimOptions options;
    options.seed = 1;
    options.nodes = nodes;
    options.clients = 2;
    options.random_faults = false;
    options.narrate = true;
    return options;
  }

  Cluster& cluster() { return cluster_; }
  bool failed() const { return !failure_.empty() || !cluster_.violation().empty(); }

  void Expect(bool condition, const std::string& what) {
    if (!condition && failure_.empty()) {
      failure_ = what;
      cluster_.Say("EXPECTATION FAILED: " + what);
    }
  }

  uint64_t AwaitLeader(int max_ticks = 100) {
    if (failed()) return 0;
    bool found = cluster_.RunUntil([&] { return cluster_.Leader() != 0; }, max_ticks);
    Expect(found, "a leader within " + std::to_string(max_ticks) + " ticks");
    return cluster_.Leader();
  }

  uint64_t AwaitNewLeader(uint64_t old_leader, int max_ticks = 100) {
    if (failed()) return 0;
    bool found = cluster_.RunUntil(
        [&] { return cluster_.Leader() != 0 && cluster_.Leader() != old_leader; }, max_ticks);
    Expect(found, "a new leader other than n" + std::to_string(old_leader));
    return cluster_.Leader();
  }

  void Put(uint64_t client, uint64_t node, const std::string& key, const std::string& value, bool must_complete = true) {
    if (failed()) return;
    Expect(cluster_.ClientPut(client, node, key, value), "n" + std::to_string(node) + " accepts the put");
    if (must_complete) AwaitClient(client);
  }

  void Get(uint64_t client, uint64_t node, const std::string& key) {
    if (failed()) return;
    Expect(cluster_.ClientGet(client, node, key), "n" + std::to_string(node) + " accepts the read");
    AwaitClient(client);
  }

  void AwaitClient(uint64_t client) {
    if (failed()) return;
    Expect(cluster_.RunUntil([&] { return cluster_.ClientIdle(client); }, 60), "client c" + std::to_string(client) + " gets an answer");
  }

  void AwaitConverged(int max_ticks = 200) {
    if (failed()) return;
    Expect(cluster_.RunUntil([&] { return cluster_.AllAppliedEqual(); }, max_ticks),
           "every member applies up to the leader's commit index");
  }

  void AwaitConfig(uint64_t id, bool voter) {
    if (failed()) return;
    Expect(cluster_.RunUntil([&] { return cluster_.InLeaderConfig(id, voter); }, 100),
           "n" + std::to_string(id) + " becomes a " + (voter ? "voter" : "learner"));
  }

  void Ticks(int ticks) {
    if (!failed()) cluster_.RunTicks(ticks);
  }

  ScenarioResult Finish() {
    if (!failed()) cluster_.CheckHistory();
    ScenarioResult result;
    result.failure = !cluster_.violation().empty() ? cluster_.violation() : failure_;
    result.ok = result.failure.empty();
    result.narration = cluster_.narration();
    result.narration.push_back(result.ok ? "scenario passed" : "scenario FAILED: " + result.failure);
    return result;
  }

 private:
  Cluster cluster_;
  std::string failure_;
};

uint64_t SomeFollower(Cluster& cluster, uint64_t leader) {
  for (uint64_t id : cluster.MemberIds()) {
    if (id != leader && cluster.node(id)->up) return id;
  }
  return 0;
}

ScenarioResult LeaderCrash() {
  Script s(3);
  s.cluster().Say("scenario leader-crash: the leader dies; the others elect a new one and lose nothing");
  uint64_t leader = s.AwaitLeader();
  s.Put(1, leader, "x", "1");
  s.cluster().Crash(leader);
  uint64_t next = s.AwaitNewLeader(leader);
  s.Put(1, next, "x", "2");
  s.cluster().Restart(leader);
  s.AwaitConverged();
  s.Get(2, leader, "x");
  return s.Finish();
}

ScenarioResult FollowerCrashRejoin() {
  Script s(3);
  s.cluster().Say("scenario follower-crash-rejoin: a follower misses writes while down and catches up");
  uint64_t leader = s.AwaitLeader();
  uint64_t follower = SomeFollower(s.cluster(), leader);
  s.Put(1, leader, "x", "1");
  s.cluster().Crash(follower);
  s.Put(1, leader, "x", "2");
  s.Put(1, leader, "y", "3");
  s.cluster().Restart(follower);
  s.AwaitConverged();
  s.Get(2, follower, "y");
  return s.Finish();
}

ScenarioResult NewNodeJoin() {
  Script s(3);
  s.cluster().Say("scenario new-node-join: a fourth node joins as a learner, catches up, is promoted");
  uint64_t leader = s.AwaitLeader();
  s.Put(1, leader, "x", "1");
  uint64_t added = s.failed() ? 0 : s.cluster().AddLearner();
  s.Expect(added != 0, "the leader accepts the learner");
  s.AwaitConfig(added, /*voter=*/false);
  s.AwaitConverged();
  s.Expect(s.failed() || s.cluster().Promote(added), "the leader accepts the promotion");
  s.AwaitConfig(added, /*voter=*/true);
  s.AwaitConverged();
  s.Put(1, s.cluster().Leader(), "x", "2");
  s.AwaitConverged();
  s.Get(2, added, "x");
  return s.Finish();
}

ScenarioResult SplitVote() {
  Script s(3);
  s.cluster().Say("scenario split-vote: n1 and n2 campaign at once while n3 is cut off; nobody wins that "
                  "term; a later election does");
  s.cluster().Isolate(3);
  s.Ticks(1);  // everyone boots and persists the founding configuration; no timer has fired yet
  s.cluster().Campaign(1);
  s.cluster().Campaign(2);
  s.Ticks(3);
  s.Expect(s.cluster().Leader() == 0, "no leader while the vote is split");
  s.cluster().Heal();
  uint64_t leader = s.AwaitLeader();
  s.Put(1, leader, "x", "1");
  s.AwaitConverged();
  return s.Finish();
}

ScenarioResult OldLeaderReturns() {
  Script s(3);
  s.cluster().Say("scenario old-leader-returns: the leader is cut off, accepts a write it cannot commit, "
                  "steps down; the rest elect a new leader; on return its uncommitted entry is overwritten");
  uint64_t old_leader = s.AwaitLeader();
  s.Put(1, old_leader, "x", "1");
  s.cluster().Isolate(old_leader);
  s.Put(1, old_leader, "x", "lost", /*must_complete=*/false);
  uint64_t next = s.AwaitNewLeader(old_leader);
  s.Put(2, next, "x", "2");
  s.Ticks(30);  // the old leader's client times out; CheckQuorum has made it step down
  s.cluster().Heal();
  s.AwaitConverged();
  s.Get(2, old_leader, "x");
  return s.Finish();
}

ScenarioResult SnapshotCatchUp() {
  Script s(3);
  s.cluster().Say("scenario snapshot-catch-up: a follower is down while the leader compacts its log; it "
                  "comes back and is sent a snapshot");
  uint64_t leader = s.AwaitLeader();
  uint64_t follower = SomeFollower(s.cluster(), leader);
  s.Put(1, leader, "x", "1");
  s.cluster().Crash(follower);
  for (int i = 0; i < 5 && !s.failed(); ++i) s.Put(1, leader, "k" + std::to_string(i), std::to_string(i));
  s.Ticks(5);  // let the live follower apply everything before the leader compacts
  for (uint64_t id : s.cluster().MemberIds()) {
    if (id != follower && !s.failed()) s.cluster().Compact(id);
  }
  s.cluster().Restart(follower);
  s.Expect(s.failed() || s.cluster().RunUntil([&] { return s.cluster().AllAppliedEqual(); }, 200),
           "the follower catches up from the snapshot");
  s.Get(2, follower, "k4");
  return s.Finish();
}

const std::map<std::string, std::function<ScenarioResult()>>& Scenarios() {
  static const auto* scenarios = new std::map<std::string, std::function<ScenarioResult()>>{
      {"leader-crash", LeaderCrash},
      {"follower-crash-rejoin", FollowerCrashRejoin},
      {"new-node-join", NewNodeJoin},
      {"split-vote", SplitVote},
      {"old-leader-returns", OldLeaderReturns},
      {"snapshot-catch-up", SnapshotCatchUp},
  };
  return *scenarios;
}

}  // namespace

std::vector<std::string> ScenarioNames() {
  std::vector<std::string> names;
  for (const auto& [name, run] : Scenarios()) names.push_back(name);
  return names;
}

ScenarioResult RunScenario(const std::string& name) {
  auto it = Scenarios().find(name);
  if (it == Scenarios().end()) {
    ScenarioResult result;
    result.failure = "unknown scenario \"" + name + "\"; known:";
    for (const std::string& known : ScenarioNames()) result.failure += " " + known;
    return result;
  }
  return it->second();
}

}  // namespace cairn::sim
