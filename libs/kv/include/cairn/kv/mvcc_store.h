// MvccStore: the multi-version key space behind the etcd v3 API.
//
// Every write gets a store revision (starting at 1, like etcd's empty store); the writes of one
// write batch (a put, a delete-range, a whole txn) share one revision and are ordered by a
// sub-revision. Each key keeps its history of (revision, value | tombstone) until compaction, so
// reads at a past revision and watch catch-up work. Compaction at revision R drops every record
// that is superseded at R, keeps the newest record <= R of each live key, and makes reads below R
// fail with kErrCompacted.
//
// Deterministic and single-threaded: no clocks, no files, no locks. The owner serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/kv/key_range.h"
#include "cairn/proto/etcd_mvcc.pb.h"
#include "cairn/proto/kv.pb.h"

namespace cairn::kv {

struct RangeOptions {
  int64_t revision = 0;    // <= 0: newest (including an open write batch's own writes)
  int64_t limit = 0;       // 0: no limit; otherwise at most `limit` kvs, count stays the total
  bool count_only = false; // fill count only
};

struct RangeResult {
  std::vector<etcd::KeyValue> kvs;  // ascending by key
  int64_t count = 0;                // keys in the range at that revision, ignoring limit
  int64_t revision = 0;             // the store revision the read ran against (newest, like etcd)
};

class MvccStore {
 public:
  MvccStore() = default;

  // The newest committed revision; 1 for an empty store.
  int64_t revision() const { return revision_; }
  // The revision of the last compaction; 0 if never compacted.
  int64_t compact_revision() const { return compact_revision_; }
  // Number of live keys at the newest revision (for metrics and tests).
  int64_t key_count() const;
  // Stored records (live values, old values and tombstones) and their approximate size in bytes
  // (keys + values), for metrics and etcd's dbSize-style reporting. O(records).
  int64_t record_count() const;
  int64_t approximate_bytes() const;

  // Reads `range` at options.revision.
  // Errors: kErrCompacted if revision < compact_revision(), kErrFutureRevision if > revision().
  Result<RangeResult> Range(const KeyRange& range, const RangeOptions& options) const;

  // The newest live value of `key`, if any (includes an open batch's writes).
  std::optional<etcd::KeyValue> Get(const std::string& key) const;

  // ---- Writes. BeginWrite, then any number of Put/DeleteRange, then EndWrite or AbortWrite. ----
  void BeginWrite();
  // Writes key=value with `lease`, returns the new KeyValue. The previous kv is in the event.
  etcd::KeyValue Put(const std::string& key, const std::string& value, int64_t lease);
  // Deletes every live key in range; returns the deleted kvs (before deletion), by key.
  std::vector<etcd::KeyValue> DeleteRange(const KeyRange& range);
  // The revision the open batch writes at (revision() + 1).
  int64_t pending_revision() const { return revision_ + 1; }
  // True if the open batch has written anything.
  bool has_pending_writes() const { return !pending_events_.empty(); }
  // Commits the batch: revision() advances by one if it wrote anything. Returns its events in
  // sub-revision order, each with prev_kv filled when a previous live value existed.
  std::vector<etcd::Event> EndWrite();
  // Drops every write of the open batch.
  void AbortWrite();

  // Compacts at `revision`. Errors: kErrCompacted if revision <= compact_revision(),
  // kErrFutureRevision if revision > revision().
  Status Compact(int64_t revision);

  // Events on keys in `range` with revision >= from_revision, in (revision, sub) order, with
  // prev_kv when the previous value is still in history. REQUIRES: from_revision >=
  // compact_revision() (callers check; older events are gone).
  std::vector<etcd::Event> EventsSince(const KeyRange& range, int64_t from_revision) const;

  void SaveTo(proto::KvSnapshot* snapshot) const;
  // Replaces the whole state. Errors: kCorruption when the snapshot breaks an invariant.
  Status LoadFrom(const proto::KvSnapshot& snapshot);

 private:
  struct Record {
    int64_t main = 0;
    int64_t sub = 0;
    bool tombstone = false;
    etcd::KeyValue kv;  // full kv including key; for a tombstone only key and mod_revision
  };
  using History = std::vector<Record>;  // ascending (main, sub)

  // Index of the newest record with main <= revision, or -1.
  static int FindAt(const History& history, int64_t revision);
  template <typename Fn>
  void ForEachInRange(const KeyRange& range, Fn&& fn) const;
  template <typename Fn>
  void ForEachInRangeMutable(const KeyRange& range, Fn&& fn);
  void Append(const std::string& key, Record record, const etcd::KeyValue* prev);

  std::map<std::string, History> keys_;
  int64_t revision_ = 1;
  int64_t compact_revision_ = 0;
  bool writing_ = false;
  int64_t next_sub_ = 0;
  std::vector<etcd::Event> pending_events_;
  std::vector<std::string> pending_keys_;  // keys with a record in the open batch
};

}  // namespace cairn::kv
