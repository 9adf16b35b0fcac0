// Linearizability checker for a key-value store whose keys are independent registers
// (put / get / delete). Wing & Gong's search with Lowe's memoization, as in Porcupine: the history
// is split by key (a KV map is linearizable iff every key's sub-history is), and each key's history
// is searched for an order of operations that respects real time and the register's semantics.
//
// Time is any monotonic integer the recorder chooses (the simulator uses a global event counter).
// Operation A precedes B in real time only when A.returned < B.called; equal times count as
// concurrent, which is the lenient (never falsely failing) choice.
//
// Operations that never completed (client timeout, crash) have no `returned` time:
//   - a put or delete may or may not have taken effect, at any point after its call;
//   - a get that never returned observed nothing and is ignored.
//
// Threading: pure functions, no shared state; safe to call from several threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::lincheck {

enum class OpKind { kPut, kGet, kDelete };

struct Operation {
  uint64_t client = 0;
  OpKind kind = OpKind::kGet;
  std::string key;
  // kPut: the value written. kGet: the value observed (nullopt = key absent). kDelete: unused.
  std::optional<std::string> value;
  int64_t called = 0;
  // nullopt: the operation never completed (see above).
  std::optional<int64_t> returned;
};

enum class Verdict {
  kLinearizable,
  kNotLinearizable,
  // The search hit CheckOptions::max_steps_per_key before deciding.
  kUnknown,
};

std::string_view VerdictName(Verdict verdict);

struct CheckOptions {
  // Search steps allowed per key before giving up with kUnknown.
  uint64_t max_steps_per_key = 20'000'000;
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  // For kNotLinearizable / kUnknown: the first key that failed and a readable explanation naming
  // the longest linearizable prefix found and the operation that could not be placed.
  std::string key;
  std::string explanation;
  // Keys checked and operations considered (after dropping incomplete gets).
  uint64_t keys_checked = 0;
  uint64_t operations_checked = 0;
};

// Checks `history` (any order) against the register model; every key starts absent.
// Errors: InvalidArgument for malformed operations (returned < called, a put without a value),
// naming the operation's index. Never crashes on bad input.
Result<CheckResult> CheckKvHistory(const std::vector<Operation>& history,
                                   const CheckOptions& options = {});

// "c3 put(k1, \"v7\") [12, 18]" / "c2 get(k1) -> absent [3, pending]"
std::string DescribeOperation(const Operation& op);

}  // namespace cairn::lincheck
