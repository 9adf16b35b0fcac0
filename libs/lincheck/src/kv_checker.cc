#include "cairn/lincheck/kv_checker.h"

#include <algorithm>
#include <limits>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace cairn::lincheck {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int kAbsent = -1;  // register state: the key has no value
constexpr int kNone = -1;    // linked-list null

// One key's operations, with values interned to small integers so search states are cheap to
// compare and hash.
struct KeyHistory {
  std::vector<const Operation*> ops;
  std::vector<int> value_ids;  // per op: interned value (puts and gets), kAbsent for absent
};

// A call or return event in the doubly linked list that the search lifts entries out of.
struct Entry {
  bool is_call = false;
  int op = 0;
  int64_t time = 0;
  int match = kNone;  // call -> its return
  int prev = kNone;
  int next = kNone;
};

struct CacheKey {
  std::vector<uint64_t> linearized;
  int state = kAbsent;
  bool operator==(const CacheKey& other) const = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& key) const {
    uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(key.state + 1);
    for (uint64_t word : key.linearized) h = (h ^ word) * 1099511628211ull + (h >> 29);
    return static_cast<size_t>(h);
  }
};

// Applies op to the register. Returns false when the op cannot happen in `state`.
bool Step(const KeyHistory& history, int op, int state, int* next_state) {
  switch (history.ops[op]->kind) {
    case OpKind::kPut:
      *next_state = history.value_ids[op];
      return true;
    case OpKind::kDelete:
      *next_state = kAbsent;
      return true;
    case OpKind::kGet:
      *next_state = state;
      return history.value_ids[op] == state;
  }
  return false;
}

// Builds the event list: a sentinel head at index 0, then calls and returns sorted by time.
// At equal times calls come first, so touching operations count as concurrent.
std::vector<Entry> BuildEntries(const KeyHistory& history) {
  std::vector<Entry> events;
  for (int i = 0; i < static_cast<int>(history.ops.size()); ++i) {
    const Operation& op = *history.ops[i];
    events.push_back({.is_call = true, .op = i, .time = op.called});
    events.push_back({.is_call = false, .op = i, .time = op.returned.value_or(kNever)});
  }
  std::sort(events.begin(), events.end(), [](const Entry& a, const Entry& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.is_call != b.is_call) return a.is_call;
    return a.op < b.op;
  });
  std::vector<Entry> entries(1);
  entries.insert(entries.end(), events.begin(), events.end());
  std::vector<int> call_index(history.ops.size(), kNone);
  for (int i = 0; i < static_cast<int>(entries.size()); ++i) {
    entries[i].prev = i - 1;
    entries[i].next = i + 1 < static_cast<int>(entries.size()) ? i + 1 : kNone;
    if (i == 0) continue;
    if (entries[i].is_call) {
      call_index[entries[i].op] = i;
    } else {
      entries[call_index[entries[i].op]].match = i;
    }
  }
  return entries;
}

void Unlink(std::vector<Entry>& entries, int i) {
  entries[entries[i].prev].next = entries[i].next;
  if (entries[i].next != kNone) entries[entries[i].next].prev = entries[i].prev;
}

void Relink(std::vector<Entry>& entries, int i) {
  entries[entries[i].prev].next = i;
  if (entries[i].next != kNone) entries[entries[i].next].prev = i;
}

// Removes a call and its return from the list (the op is now linearized).
void Lift(std::vector<Entry>& entries, int call) {
  Unlink(entries, call);
  Unlink(entries, entries[call].match);
}

// Undoes Lift, in reverse order (dancing links).
void Unlift(std::vector<Entry>& entries, int call) {
  Relink(entries, entries[call].match);
  Relink(entries, call);
}

void SetBit(std::vector<uint64_t>& bits, int i, bool on) {
  uint64_t mask = uint64_t{1} << (i % 64);
  if (on) {
    bits[i / 64] |= mask;
  } else {
    bits[i / 64] &= ~mask;
  }
}

struct SearchOutcome {
  Verdict verdict = Verdict::kLinearizable;
  std::vector<int> longest_prefix;  // ops, in linearization order
  int stuck_op = kNone;             // the op whose return came before it could be placed
};

// Wing & Gong / Lowe search over one key's events. See Porcupine's checkSingle.
SearchOutcome Search(const KeyHistory& history, uint64_t max_steps) {
  std::vector<Entry> entries = BuildEntries(history);
  std::vector<uint64_t> linearized((history.ops.size() + 63) / 64, 0);
  std::unordered_set<CacheKey, CacheKeyHash> cache;
  struct Frame {
    int call;
    int state_before;
  };
  std::vector<Frame> calls;
  SearchOutcome outcome;
  int state = kAbsent;
  int entry = entries[0].next;
  for (uint64_t steps = 0; entries[0].next != kNone; ++steps) {
    if (steps >= max_steps) {
      outcome.verdict = Verdict::kUnknown;
      return outcome;
    }
    if (entries[entry].is_call) {
      int next_state = state;
      int op = entries[entry].op;
      if (Step(history, op, state, &next_state)) {
        CacheKey key{linearized, next_state};
        SetBit(key.linearized, op, true);
        if (cache.insert(key).second) {
          calls.push_back({entry, state});
          state = next_state;
          SetBit(linearized, op, true);
          Lift(entries, entry);
          if (calls.size() > outcome.longest_prefix.size()) {
            outcome.longest_prefix.clear();
            for (const Frame& frame : calls) outcome.longest_prefix.push_back(entries[frame.call].op);
            outcome.stuck_op = kNone;
          }
          entry = entries[0].next;
          continue;
        }
      }
      entry = entries[entry].next;
      continue;
    }
    // A return event reached while its op is not linearized: this branch is dead, backtrack.
    if (calls.size() == outcome.longest_prefix.size() && outcome.stuck_op == kNone) {
      outcome.stuck_op = entries[entry].op;
    }
    if (calls.empty()) {
      outcome.verdict = Verdict::kNotLinearizable;
      return outcome;
    }
    Frame frame = calls.back();
    calls.pop_back();
    state = frame.state_before;
    SetBit(linearized, entries[frame.call].op, false);
    Unlift(entries, frame.call);
    entry = entries[frame.call].next;
  }
  return outcome;
}

std::string Explain(const std::string& key, const KeyHistory& history, const SearchOutcome& outcome) {
  std::string text = outcome.verdict == Verdict::kUnknown
                         ? "key \"" + key + "\": search limit reached before a verdict"
                         : "key \"" + key + "\": no linearization exists";
  text += "\n  " + std::to_string(history.ops.size()) + " operations on this key; longest linearizable prefix has " +
          std::to_string(outcome.longest_prefix.size()) + ":";
  size_t shown_from = outcome.longest_prefix.size() > 12 ? outcome.longest_prefix.size() - 12 : 0;
  if (shown_from > 0) text += "\n    ... (" + std::to_string(shown_from) + " earlier)";
  for (size_t i = shown_from; i < outcome.longest_prefix.size(); ++i) {
    text += "\n    " + DescribeOperation(*history.ops[outcome.longest_prefix[i]]);
  }
  if (outcome.stuck_op != kNone) {
    text += "\n  then this operation returned but fits nowhere after that prefix:\n    " +
            DescribeOperation(*history.ops[outcome.stuck_op]);
  }
  return text;
}

Status Validate(const std::vector<Operation>& history) {
  for (size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    std::string where = "operation " + std::to_string(i) + " (" + DescribeOperation(op) + ")";
    if (op.returned && *op.returned < op.called) {
      return InvalidArgumentError(where + ": returned before it was called");
    }
    if (op.kind == OpKind::kPut && !op.value) return InvalidArgumentError(where + ": put without a value");
    if (op.called == kNever) return InvalidArgumentError(where + ": call time out of range");
  }
  return Status::Ok();
}

// Splits the history by key, dropping gets that never returned, and interns values.
std::map<std::string, KeyHistory> PartitionByKey(const std::vector<Operation>& history) {
  std::map<std::string, KeyHistory> by_key;
  std::map<std::string, std::unordered_map<std::string, int>> interned;
  for (const Operation& op : history) {
    if (op.kind == OpKind::kGet && !op.returned) continue;
    KeyHistory& key_history = by_key[op.key];
    int value_id = kAbsent;
    if (op.kind != OpKind::kDelete && op.value) {
      auto& ids = interned[op.key];
      value_id = ids.emplace(*op.value, static_cast<int>(ids.size())).first->second;
    }
    key_history.ops.push_back(&op);
    key_history.value_ids.push_back(value_id);
  }
  return by_key;
}

}  // namespace

std::string_view VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not-linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string DescribeOperation(const Operation& op) {
  std::string text = "c" + std::to_string(op.client) + " ";
  switch (op.kind) {
    case OpKind::kPut:
      text += "put(" + op.key + ", \"" + op.value.value_or("") + "\")";
      break;
    case OpKind::kDelete:
      text += "delete(" + op.key + ")";
      break;
    case OpKind::kGet:
      text += "get(" + op.key + ") -> ";
      if (!op.returned) {
        text += "?";
      } else {
        text += op.value ? "\"" + *op.value + "\"" : "absent";
      }
      break;
  }
  text += " [" + std::to_string(op.called) + ", " +
          (op.returned ? std::to_string(*op.returned) : std::string("pending")) + "]";
  return text;
}

Result<CheckResult> CheckKvHistory(const std::vector<Operation>& history, const CheckOptions& options) {
  CAIRN_RETURN_IF_ERROR(Validate(history));
  CheckResult result;
  for (const auto& [key, key_history] : PartitionByKey(history)) {
    ++result.keys_checked;
    result.operations_checked += key_history.ops.size();
    SearchOutcome outcome = Search(key_history, options.max_steps_per_key);
    if (outcome.verdict == Verdict::kLinearizable) continue;
    // A definite failure outranks an unknown; keep looking past an unknown for one.
    if (result.verdict == Verdict::kLinearizable || outcome.verdict == Verdict::kNotLinearizable) {
      result.verdict = outcome.verdict;
      result.key = key;
      result.explanation = Explain(key, key_history, outcome);
    }
    if (result.verdict == Verdict::kNotLinearizable) break;
  }
  return result;
}

}  // namespace cairn::lincheck
