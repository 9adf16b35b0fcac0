#include "cairn/lincheck/kv_checker.h"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "cairn/common/ids.h"

namespace cairn::lincheck {
namespace {

Operation Put(uint64_t client, std::string key, std::string value, int64_t called,
              std::optional<int64_t> returned) {
  return {.client = client, .kind = OpKind::kPut, .key = std::move(key), .value = std::move(value),
          .called = called, .returned = returned};
}

Operation Get(uint64_t client, std::string key, std::optional<std::string> observed, int64_t called,
              std::optional<int64_t> returned) {
  return {.client = client, .kind = OpKind::kGet, .key = std::move(key), .value = std::move(observed),
          .called = called, .returned = returned};
}

Operation Delete(uint64_t client, std::string key, int64_t called, std::optional<int64_t> returned) {
  return {.client = client, .kind = OpKind::kDelete, .key = std::move(key), .called = called,
          .returned = returned};
}

Verdict Check(const std::vector<Operation>& history) {
  Result<CheckResult> result = CheckKvHistory(history);
  EXPECT_TRUE(result.ok()) << result.status();
  if (!result.ok()) return Verdict::kUnknown;
  return result->verdict;
}

constexpr std::nullopt_t kAbsent = std::nullopt;

TEST(KvCheckerTest, EmptyHistoryIsLinearizable) { EXPECT_EQ(Check({}), Verdict::kLinearizable); }

TEST(KvCheckerTest, SequentialPutThenGetIsLinearizable) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Get(2, "x", "1", 2, 3)}), Verdict::kLinearizable);
}

TEST(KvCheckerTest, ReadOfMissingKeyBeforeAnyWriteSeesAbsent) {
  EXPECT_EQ(Check({Get(1, "x", kAbsent, 0, 1), Put(1, "x", "1", 2, 3)}), Verdict::kLinearizable);
  EXPECT_EQ(Check({Get(1, "x", "1", 0, 1), Put(1, "x", "1", 2, 3)}), Verdict::kNotLinearizable);
}

// The classic: once a write completed, no later read may return the older value.
TEST(KvCheckerTest, StaleReadAfterCompletedWriteIsRejected) {
  std::vector<Operation> history = {Put(1, "x", "1", 0, 1), Put(1, "x", "2", 2, 3), Get(2, "x", "1", 4, 5)};
  Result<CheckResult> result = CheckKvHistory(history);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result->key, "x");
  EXPECT_NE(result->explanation.find("c2 get(x) -> \"1\" [4, 5]"), std::string::npos) << result->explanation;
}

TEST(KvCheckerTest, ReadAbsentAfterCompletedWriteIsRejected) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Get(2, "x", kAbsent, 2, 3)}), Verdict::kNotLinearizable);
}

TEST(KvCheckerTest, ReadOfValueNeverWrittenIsRejected) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Get(2, "x", "9", 2, 3)}), Verdict::kNotLinearizable);
}

// A read concurrent with a write may see either the old or the new value.
TEST(KvCheckerTest, ReadConcurrentWithWriteMaySeeEitherValue) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Put(1, "x", "2", 2, 10), Get(2, "x", "1", 3, 4)}),
            Verdict::kLinearizable);
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Put(1, "x", "2", 2, 10), Get(2, "x", "2", 3, 4)}),
            Verdict::kLinearizable);
}

// Two reads during one write: after one reader saw the new value a later reader must not see the old.
TEST(KvCheckerTest, NewThenOldReadInversionIsRejected) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Put(1, "x", "2", 2, 20), Get(2, "x", "2", 3, 4),
                   Get(3, "x", "1", 5, 6)}),
            Verdict::kNotLinearizable);
  // Overlapping reads may disagree in either order.
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Put(1, "x", "2", 2, 20), Get(2, "x", "2", 3, 6),
                   Get(3, "x", "1", 4, 7)}),
            Verdict::kLinearizable);
}

TEST(KvCheckerTest, EqualTimesCountAsConcurrent) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 5), Get(2, "x", kAbsent, 5, 6)}), Verdict::kLinearizable);
}

TEST(KvCheckerTest, PendingWriteMayTakeEffectLater) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, std::nullopt), Get(2, "x", "1", 50, 51)}), Verdict::kLinearizable);
  EXPECT_EQ(Check({Put(1, "x", "1", 0, std::nullopt), Get(2, "x", kAbsent, 5, 6), Get(2, "x", "1", 7, 8)}),
            Verdict::kLinearizable);
}

TEST(KvCheckerTest, PendingWriteMayNeverTakeEffect) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, std::nullopt), Get(2, "x", kAbsent, 50, 51)}), Verdict::kLinearizable);
}

TEST(KvCheckerTest, PendingWriteTakesEffectAtMostOnce) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, std::nullopt), Get(2, "x", "1", 5, 6), Get(2, "x", kAbsent, 7, 8)}),
            Verdict::kNotLinearizable);
}

TEST(KvCheckerTest, PendingWriteCannotTakeEffectBeforeItsCall) {
  EXPECT_EQ(Check({Get(2, "x", "1", 0, 1), Put(1, "x", "1", 5, std::nullopt)}), Verdict::kNotLinearizable);
}

TEST(KvCheckerTest, PendingReadIsIgnored) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Get(2, "x", "garbage", 2, std::nullopt)}), Verdict::kLinearizable);
}

TEST(KvCheckerTest, DeleteMakesKeyAbsent) {
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Delete(1, "x", 2, 3), Get(2, "x", kAbsent, 4, 5)}),
            Verdict::kLinearizable);
  EXPECT_EQ(Check({Put(1, "x", "1", 0, 1), Delete(1, "x", 2, 3), Get(2, "x", "1", 4, 5)}),
            Verdict::kNotLinearizable);
}

TEST(KvCheckerTest, KeysAreCheckedIndependentlyAndTheBadKeyIsNamed) {
  std::vector<Operation> history = {Put(1, "x", "1", 0, 1), Get(2, "x", "1", 2, 3), Put(1, "y", "a", 0, 1),
                                    Put(1, "y", "b", 2, 3), Get(2, "y", "a", 4, 5)};
  Result<CheckResult> result = CheckKvHistory(history);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(result->key, "y");
  EXPECT_EQ(result->keys_checked, 2u);
}

// The recorder may hand operations over in any order; only the call/return times matter.
TEST(KvCheckerTest, HistoryOrderDoesNotMatter) {
  std::vector<Operation> history = {Get(2, "x", "2", 4, 5), Put(1, "x", "2", 2, 3), Put(1, "x", "1", 0, 1)};
  EXPECT_EQ(Check(history), Verdict::kLinearizable);
}

TEST(KvCheckerTest, MalformedOperationsAreInvalidArgument) {
  Result<CheckResult> backwards = CheckKvHistory({Put(1, "x", "1", 5, 4)});
  ASSERT_FALSE(backwards.ok());
  EXPECT_EQ(backwards.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(backwards.status().message().find("operation 0"), std::string::npos);

  Operation no_value{.client = 1, .kind = OpKind::kPut, .key = "x", .called = 0, .returned = 1};
  Result<CheckResult> missing = CheckKvHistory({no_value});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
}

TEST(KvCheckerTest, StepLimitGivesUnknown) {
  std::vector<Operation> history;
  for (int i = 0; i < 20; ++i) history.push_back(Put(i, "x", std::to_string(i), 0, 100));
  history.push_back(Get(99, "x", "nope", 0, 100));
  Result<CheckResult> result = CheckKvHistory(history, {.max_steps_per_key = 5});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->verdict, Verdict::kUnknown);
}

TEST(KvCheckerTest, DescribeOperationIsReadable) {
  EXPECT_EQ(DescribeOperation(Put(3, "k1", "v7", 12, 18)), "c3 put(k1, \"v7\") [12, 18]");
  EXPECT_EQ(DescribeOperation(Get(2, "k1", kAbsent, 3, std::nullopt)), "c2 get(k1) -> ? [3, pending]");
  EXPECT_EQ(DescribeOperation(Get(2, "k1", kAbsent, 3, 4)), "c2 get(k1) -> absent [3, 4]");
}

// Property test against a naive reference: pick a linearization point inside every operation's
// interval, run the operations in that order on a std::map, and record what each get observed.
// Such a history is linearizable by construction; corrupting one completed read breaks it.
std::vector<Operation> RandomLinearizableHistory(Random& random, int ops, int keys) {
  struct Planned {
    Operation op;
    int64_t point;
  };
  std::vector<Planned> planned;
  for (int i = 0; i < ops; ++i) {
    Operation op;
    op.client = random.Uniform(5);
    op.key = "k" + std::to_string(random.Uniform(keys));
    uint64_t kind = random.Uniform(10);
    op.kind = kind < 4 ? OpKind::kPut : (kind < 9 ? OpKind::kGet : OpKind::kDelete);
    if (op.kind == OpKind::kPut) op.value = "v" + std::to_string(i);
    op.called = static_cast<int64_t>(random.Uniform(400));
    int64_t returned = op.called + static_cast<int64_t>(random.Uniform(40));
    int64_t point = op.called + static_cast<int64_t>(random.Uniform(returned - op.called + 1));
    if (random.OneIn(15) && op.kind != OpKind::kGet) {
      // Never returned: the write either happened at `point` or not at all.
      if (random.OneIn(2)) point = std::numeric_limits<int64_t>::max();
    } else {
      op.returned = returned;
    }
    planned.push_back({op, point});
  }
  std::stable_sort(planned.begin(), planned.end(), [](const Planned& a, const Planned& b) { return a.point < b.point; });
  std::map<std::string, std::string> state;
  std::vector<Operation> history;
  for (Planned& p : planned) {
    if (p.point == std::numeric_limits<int64_t>::max()) {
      history.push_back(p.op);
      continue;
    }
    switch (p.op.kind) {
      case OpKind::kPut:
        state[p.op.key] = *p.op.value;
        break;
      case OpKind::kDelete:
        state.erase(p.op.key);
        break;
      case OpKind::kGet: {
        auto it = state.find(p.op.key);
        p.op.value = it == state.end() ? std::nullopt : std::optional<std::string>(it->second);
        break;
      }
    }
    history.push_back(p.op);
  }
  return history;
}

TEST(KvCheckerTest, RandomLinearizableHistoriesAreAccepted) {
  Random random(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<Operation> history = RandomLinearizableHistory(random, 60, 3);
    Result<CheckResult> result = CheckKvHistory(history);
    ASSERT_TRUE(result.ok());
    ASSERT_EQ(result->verdict, Verdict::kLinearizable) << "round " << round << "\n" << result->explanation;
  }
}

TEST(KvCheckerTest, ReadOfUnwrittenValueInRandomHistoryIsRejected) {
  Random random(11);
  for (int round = 0; round < 100; ++round) {
    std::vector<Operation> history = RandomLinearizableHistory(random, 60, 3);
    auto read = std::find_if(history.begin(), history.end(),
                             [](const Operation& op) { return op.kind == OpKind::kGet && op.returned; });
    if (read == history.end()) continue;
    read->value = "never-written";
    ASSERT_EQ(Check(history), Verdict::kNotLinearizable) << "round " << round;
  }
}

}  // namespace
}  // namespace cairn::lincheck
