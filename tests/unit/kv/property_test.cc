// Property test: seeded random commands (puts, deletes, delete-ranges, txns, leases, compactions)
// applied to the state machine and to a naive reference that copies the whole key space at every
// revision. Ranges of every form at random past revisions must agree, as must the errors for
// compacted and future revisions. A second machine fed the same command bytes must end with an
// identical snapshot, and a machine restored from a snapshot must stay identical afterwards.
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "cairn/common/ids.h"
#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

struct RefKv {
  std::string value;
  int64_t create = 0, mod = 0, version = 0, lease = 0;
};
using RefState = std::map<std::string, RefKv>;

// The naive model: history[r] is the whole key space at revision r.
class Reference {
 public:
  Reference() : history_(2) {}  // index 0 unused, revision 1 is empty
  int64_t revision() const { return static_cast<int64_t>(history_.size()) - 1; }
  const RefState& At(int64_t revision) const { return history_[revision]; }
  const RefState& Now() const { return history_.back(); }

  // Starts a write at revision()+1 on a copy; Commit keeps it if it changed anything.
  RefState& Begin() {
    draft_ = Now();
    changed_ = false;
    return draft_;
  }
  void Put(const std::string& key, const std::string& value, int64_t lease) {
    int64_t rev = revision() + 1;
    auto it = draft_.find(key);
    RefKv kv{value, rev, rev, 1, lease};
    if (it != draft_.end()) {
      kv.create = it->second.create;
      kv.version = it->second.version + 1;
    }
    draft_[key] = kv;
    changed_ = true;
  }
  void Delete(const KeyRange& range) {
    for (auto it = draft_.begin(); it != draft_.end();) {
      if (range.Contains(it->first)) {
        it = draft_.erase(it);
        changed_ = true;
      } else {
        ++it;
      }
    }
  }
  void Commit() {
    if (changed_) history_.push_back(draft_);
  }

  std::set<int64_t> leases;

 private:
  std::vector<RefState> history_;
  RefState draft_;
  bool changed_ = false;
};

std::string RandomKey(Random& random) {
  static const char kAlphabet[] = {'a', 'b', 'c', '\xff'};
  std::string key(1 + random.Uniform(2), 'a');
  for (char& c : key) c = kAlphabet[random.Uniform(4)];
  return key;
}

std::string RandomRangeEnd(Random& random, const std::string& key) {
  switch (random.Uniform(4)) {
    case 0: return "";
    case 1: return std::string(1, '\0');
    case 2: return PrefixEnd(key);
    default: return RandomKey(random);
  }
}

class PropertyRun {
 public:
  explicit PropertyRun(uint64_t seed, KvOptions options = NoAutoCompaction())
      : random_(seed), machine_(options), twin_(options) {}

  // Makes one random command, applies it to the machine, its twin and the reference.
  void Step() {
    proto::KvCommand command = RandomCommand();
    command.set_now_ms(now_ms_ += 10);
    std::string bytes = command.SerializeAsString();
    Result<proto::KvResponse> result = machine_.Apply(bytes);
    Result<proto::KvResponse> twin = twin_.Apply(bytes);
    ASSERT_EQ(result.ok(), twin.ok());
    if (result.ok()) {
      ASSERT_EQ(result->SerializeAsString(), twin->SerializeAsString());
    }
    bool should_fail = ApplyToReference(command);
    ASSERT_EQ(result.ok(), !should_fail) << result.status() << " for " << command.ShortDebugString();
    ASSERT_EQ(machine_.revision(), reference_.revision());
    commands_.push_back(bytes);
  }

  // Compares a random range with the reference.
  void CheckRandomRange() {
    etcd::RangeRequest request = RangeReq(RandomKey(random_));
    request.set_range_end(RandomRangeEnd(random_, request.key()));
    request.set_limit(static_cast<int64_t>(random_.Uniform(4)));
    int64_t revision = static_cast<int64_t>(random_.Uniform(reference_.revision() + 2));  // may be future
    request.set_revision(revision);
    Result<etcd::RangeResponse> got = machine_.Range(request);
    if (revision > reference_.revision()) {
      ASSERT_EQ(got.status().message(), kErrFutureRevision);
      return;
    }
    if (revision > 0 && revision < machine_.compact_revision()) {
      ASSERT_EQ(got.status().message(), kErrCompacted);
      return;
    }
    ASSERT_TRUE(got.ok()) << got.status();
    const RefState& state = reference_.At(revision > 0 ? revision : reference_.revision());
    KeyRange range = KeyRange::From(request.key(), request.range_end());
    std::vector<std::pair<std::string, RefKv>> expected;
    for (const auto& [key, kv] : state) {
      if (range.Contains(key)) expected.emplace_back(key, kv);
    }
    ASSERT_EQ(got->count(), static_cast<int64_t>(expected.size())) << request.ShortDebugString();
    size_t shown = expected.size();
    if (request.limit() > 0) shown = std::min<size_t>(shown, request.limit());
    ASSERT_EQ(got->kvs_size(), static_cast<int>(shown));
    ASSERT_EQ(got->more(), shown < expected.size());
    for (size_t i = 0; i < shown; ++i) {
      const etcd::KeyValue& kv = got->kvs(static_cast<int>(i));
      ASSERT_EQ(kv.key(), expected[i].first);
      ASSERT_EQ(kv.value(), expected[i].second.value);
      ASSERT_EQ(kv.create_revision(), expected[i].second.create);
      ASSERT_EQ(kv.mod_revision(), expected[i].second.mod);
      ASSERT_EQ(kv.version(), expected[i].second.version);
      ASSERT_EQ(kv.lease(), expected[i].second.lease);
    }
  }

  KvStateMachine& machine() { return machine_; }
  KvStateMachine& twin() { return twin_; }
  const std::vector<std::string>& commands() const { return commands_; }
  proto::KvCommand NextCommand() { return RandomCommand(); }

 private:
  proto::KvCommand RandomCommand() {
    proto::KvCommand command;
    uint64_t kind = random_.Uniform(100);
    if (kind < 40) {
      int64_t lease = random_.OneIn(4) ? static_cast<int64_t>(1 + random_.Uniform(3)) : 0;
      command = PutCmd(RandomKey(random_), "v" + std::to_string(random_.Uniform(5)), lease);
    } else if (kind < 55) {
      std::string key = RandomKey(random_);
      command = DeleteCmd(key, random_.OneIn(2) ? "" : RandomRangeEnd(random_, key));
    } else if (kind < 75) {
      // if value(k1) == v then put k2 else delete k3
      std::string k1 = RandomKey(random_), k2 = RandomKey(random_), k3 = RandomKey(random_);
      etcd::TxnRequest* txn = command.mutable_txn();
      etcd::Compare* compare = txn->add_compare();
      compare->set_key(k1);
      compare->set_target(etcd::Compare::VALUE);
      compare->set_value("v" + std::to_string(random_.Uniform(5)));
      *txn->add_success()->mutable_request_put() = PutReq(k2, "t");
      *txn->add_success()->mutable_request_range() = RangeReq(k2);
      txn->add_failure()->mutable_request_delete_range()->set_key(k3);
    } else if (kind < 83) {
      command = GrantCmd(static_cast<int64_t>(1 + random_.Uniform(3)), 60);
    } else if (kind < 90) {
      command = RevokeCmd(static_cast<int64_t>(1 + random_.Uniform(3)));
    } else {
      int64_t low = std::max<int64_t>(machine_.compact_revision(), 1);
      command = CompactCmd(low + static_cast<int64_t>(random_.Uniform(machine_.revision() - low + 2)));
    }
    return command;
  }

  // Applies `command` to the reference; returns true if the machine must reject it.
  bool ApplyToReference(const proto::KvCommand& command) {
    switch (command.command_case()) {
      case proto::KvCommand::kPut: {
        const auto& put = command.put();
        if (put.lease() != 0 && reference_.leases.count(put.lease()) == 0) return true;
        reference_.Begin();
        reference_.Put(put.key(), put.value(), put.lease());
        reference_.Commit();
        return false;
      }
      case proto::KvCommand::kDeleteRange:
        reference_.Begin();
        reference_.Delete(KeyRange::From(command.delete_range().key(), command.delete_range().range_end()));
        reference_.Commit();
        return false;
      case proto::KvCommand::kTxn: {
        const auto& txn = command.txn();
        const std::string& k1 = txn.compare(0).key();
        auto it = reference_.Now().find(k1);
        bool succeeded = it != reference_.Now().end() && it->second.value == txn.compare(0).value();
        reference_.Begin();
        if (succeeded) {
          reference_.Put(txn.success(0).request_put().key(), "t", 0);
        } else {
          reference_.Delete(KeyRange::Single(txn.failure(0).request_delete_range().key()));
        }
        reference_.Commit();
        return false;
      }
      case proto::KvCommand::kLeaseGrant:
        return !reference_.leases.insert(command.lease_grant().id()).second;
      case proto::KvCommand::kLeaseRevoke: {
        int64_t id = command.lease_revoke().id();
        if (reference_.leases.erase(id) == 0) return true;
        RefState& draft = reference_.Begin();
        std::vector<std::string> attached;
        for (const auto& [key, kv] : draft) {
          if (kv.lease == id) attached.push_back(key);
        }
        for (const std::string& key : attached) reference_.Delete(KeyRange::Single(key));
        reference_.Commit();
        return false;
      }
      case proto::KvCommand::kCompaction: {
        int64_t revision = command.compaction().revision();
        if (revision <= compacted_ || revision > reference_.revision()) return true;
        compacted_ = revision;
        return false;
      }
      default:
        ADD_FAILURE() << "unexpected command";
        return true;
    }
  }

  Random random_;
  KvStateMachine machine_;
  KvStateMachine twin_;
  Reference reference_;
  int64_t compacted_ = 0;
  int64_t now_ms_ = 0;
  std::vector<std::string> commands_;
};

TEST(KvPropertyTest, RangesMatchNaiveReferenceAcrossSeeds) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    PropertyRun run(seed);
    for (int step = 0; step < 250; ++step) {
      ASSERT_NO_FATAL_FAILURE(run.Step());
      for (int check = 0; check < 3; ++check) ASSERT_NO_FATAL_FAILURE(run.CheckRandomRange());
    }
    ASSERT_EQ(run.machine().Snapshot(), run.twin().Snapshot());
  }
}

TEST(KvPropertyTest, SameCommandsGiveIdenticalSnapshotsWithAutoCompaction) {
  KvOptions options;
  options.auto_compaction.retain_revisions = 20;
  PropertyRun run(99, NoAutoCompaction());
  for (int step = 0; step < 400; ++step) ASSERT_NO_FATAL_FAILURE(run.Step());
  KvStateMachine first(options);
  KvStateMachine second(options);
  for (const std::string& bytes : run.commands()) {
    Result<proto::KvResponse> a = first.Apply(bytes);
    Result<proto::KvResponse> b = second.Apply(bytes);
    ASSERT_EQ(a.ok(), b.ok());
    ASSERT_EQ(a.status(), b.status());
  }
  EXPECT_GT(first.compact_revision(), 0);
  EXPECT_EQ(first.Snapshot(), second.Snapshot());
}

TEST(KvPropertyTest, RestoredMachineStaysIdentical) {
  PropertyRun run(7);
  for (int step = 0; step < 200; ++step) ASSERT_NO_FATAL_FAILURE(run.Step());
  KvStateMachine restored(NoAutoCompaction());
  ASSERT_TRUE(restored.Restore(run.machine().Snapshot()).ok());
  EXPECT_EQ(restored.Snapshot(), run.machine().Snapshot());
  for (int step = 0; step < 200; ++step) {
    std::string bytes = run.NextCommand().SerializeAsString();
    Result<proto::KvResponse> a = run.machine().Apply(bytes);
    Result<proto::KvResponse> b = restored.Apply(bytes);
    ASSERT_EQ(a.status(), b.status());
    if (a.ok()) {
      ASSERT_EQ(a->SerializeAsString(), b->SerializeAsString());
    }
  }
  EXPECT_EQ(restored.Snapshot(), run.machine().Snapshot());
}

}  // namespace
}  // namespace cairn::kv

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

// Garbage and extreme values from the log give errors (or harmless results), never a crash or
// undefined behaviour (this runs under ASan+UBSan in CI).
TEST(KvRobustnessTest, RandomBytesAndExtremeValues) {
  KvStateMachine machine;
  Random random(4242);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(random.Uniform(40), '\0');
    for (char& c : bytes) c = static_cast<char>(random.Uniform(256));
    (void)machine.Apply(bytes);
  }
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  for (int64_t now : {kMin, int64_t{-1}, int64_t{0}, kMax}) {
    proto::KvCommand grant = GrantCmd(0, kMax, now);
    (void)machine.Apply(grant);
    grant.mutable_lease_grant()->set_ttl(9'000'000'000);
    ASSERT_TRUE(machine.Apply(grant).ok());
    proto::KvCommand checkpoint;
    checkpoint.set_now_ms(now);
    auto* entry = checkpoint.mutable_lease_checkpoint()->add_checkpoints();
    entry->set_id(machine.LeaseLeases().leases(0).id());
    entry->set_remaining_ttl(kMin);
    ASSERT_TRUE(machine.Apply(checkpoint).ok());
    proto::KvCommand promote;
    promote.set_now_ms(now);
    promote.mutable_lease_promote();
    ASSERT_TRUE(machine.Apply(promote).ok());
    (void)machine.ExpiredLeases(now);
    etcd::LeaseTimeToLiveRequest ttl;
    ttl.set_id(machine.LeaseLeases().leases(0).id());
    ASSERT_TRUE(machine.LeaseTimeToLive(ttl, now / -2).ok());
  }
  etcd::RangeRequest range = RangeReq("a", std::string(1, '\0'), kMax);
  EXPECT_EQ(machine.Range(range).status().message(), kErrFutureRevision);
  range.set_revision(kMin);
  range.set_limit(kMax);
  EXPECT_TRUE(machine.Range(range).ok());
  EXPECT_FALSE(machine.Apply(CompactCmd(kMin)).ok());
  EXPECT_FALSE(machine.Apply(CompactCmd(kMax)).ok());

  KvOptions periodic;
  periodic.auto_compaction.mode = AutoCompactionOptions::Mode::kPeriodic;
  KvStateMachine timed(periodic);
  for (int64_t now : {kMax, kMin, kMax, int64_t{0}}) {
    proto::KvCommand put = PutCmd("k", "v");
    put.set_now_ms(now);
    ASSERT_TRUE(timed.Apply(put).ok());
  }
}

}  // namespace
}  // namespace cairn::kv
