#include "cairn/kv/mvcc_store.h"

#include <algorithm>
#include <limits>
#include <tuple>

#include "cairn/kv/errors.h"

namespace cairn::kv {

int64_t MvccStore::key_count() const {
  int64_t count = 0;
  for (const auto& [key, history] : keys_) {
    if (!history.empty() && !history.back().tombstone) ++count;
  }
  return count;
}

int64_t MvccStore::record_count() const {
  int64_t count = 0;
  for (const auto& [key, history] : keys_) count += static_cast<int64_t>(history.size());
  return count;
}

int64_t MvccStore::approximate_bytes() const {
  int64_t bytes = 0;
  for (const auto& [key, history] : keys_) {
    for (const Record& record : history) {
      bytes += static_cast<int64_t>(key.size() + record.kv.value().size()) + 40;  // + revisions etc.
    }
  }
  return bytes;
}

int MvccStore::FindAt(const History& history, int64_t revision) {
  // History is sorted by revision; a hot key can have thousands of records.
  auto after = std::upper_bound(history.begin(), history.end(), revision,
                                [](int64_t rev, const Record& record) { return rev < record.main; });
  return static_cast<int>(after - history.begin()) - 1;
}

template <typename Fn>
void MvccStore::ForEachInRange(const KeyRange& range, Fn&& fn) const {
  if (range.single()) {
    auto it = keys_.find(range.start());
    if (it != keys_.end()) fn(it->first, it->second);
    return;
  }
  for (auto it = keys_.lower_bound(range.start()); it != keys_.end() && range.Contains(it->first);
       ++it) {
    fn(it->first, it->second);
  }
}

Result<RangeResult> MvccStore::Range(const KeyRange& range, const RangeOptions& options) const {
  int64_t at = std::numeric_limits<int64_t>::max();
  if (options.revision > 0) {
    if (options.revision > revision_) return FutureRevisionError();
    if (options.revision < compact_revision_) return CompactedError();
    at = options.revision;
  }
  RangeResult result;
  result.revision = (writing_ && has_pending_writes()) ? pending_revision() : revision_;
  ForEachInRange(range, [&](const std::string&, const History& history) {
    int index = FindAt(history, at);
    if (index < 0 || history[index].tombstone) return;
    ++result.count;
    if (options.count_only) return;
    if (options.limit > 0 && static_cast<int64_t>(result.kvs.size()) >= options.limit) return;
    result.kvs.push_back(history[index].kv);
  });
  return result;
}

std::optional<etcd::KeyValue> MvccStore::Get(const std::string& key) const {
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.empty() || it->second.back().tombstone) return std::nullopt;
  return it->second.back().kv;
}

void MvccStore::BeginWrite() {
  CAIRN_CHECK(!writing_);
  writing_ = true;
  next_sub_ = 0;
}

void MvccStore::Append(const std::string& key, Record record, const etcd::KeyValue* prev) {
  etcd::Event event;
  event.set_type(record.tombstone ? etcd::Event::DELETE : etcd::Event::PUT);
  *event.mutable_kv() = record.kv;
  if (prev != nullptr) *event.mutable_prev_kv() = *prev;
  pending_events_.push_back(std::move(event));
  keys_[key].push_back(std::move(record));
  pending_keys_.push_back(key);
}

etcd::KeyValue MvccStore::Put(const std::string& key, const std::string& value, int64_t lease) {
  CAIRN_CHECK(writing_);
  std::optional<etcd::KeyValue> prev = Get(key);
  Record record;
  record.main = pending_revision();
  record.sub = next_sub_++;
  etcd::KeyValue& kv = record.kv;
  kv.set_key(key);
  kv.set_value(value);
  kv.set_lease(lease);
  kv.set_mod_revision(record.main);
  kv.set_create_revision(prev ? prev->create_revision() : record.main);
  kv.set_version(prev ? prev->version() + 1 : 1);
  etcd::KeyValue result = kv;
  Append(key, std::move(record), prev ? &*prev : nullptr);
  return result;
}

std::vector<etcd::KeyValue> MvccStore::DeleteRange(const KeyRange& range) {
  CAIRN_CHECK(writing_);
  std::vector<etcd::KeyValue> deleted;
  ForEachInRange(range, [&](const std::string&, const History& history) {
    if (!history.empty() && !history.back().tombstone) deleted.push_back(history.back().kv);
  });
  for (const etcd::KeyValue& prev : deleted) {
    Record record;
    record.main = pending_revision();
    record.sub = next_sub_++;
    record.tombstone = true;
    record.kv.set_key(prev.key());
    record.kv.set_mod_revision(record.main);
    Append(prev.key(), std::move(record), &prev);
  }
  return deleted;
}

std::vector<etcd::Event> MvccStore::EndWrite() {
  CAIRN_CHECK(writing_);
  if (!pending_events_.empty()) ++revision_;
  std::vector<etcd::Event> events = std::move(pending_events_);
  pending_events_.clear();
  pending_keys_.clear();
  writing_ = false;
  return events;
}

void MvccStore::AbortWrite() {
  CAIRN_CHECK(writing_);
  for (const std::string& key : pending_keys_) {
    auto it = keys_.find(key);
    if (it == keys_.end()) continue;
    History& history = it->second;
    while (!history.empty() && history.back().main == pending_revision()) history.pop_back();
    if (history.empty()) keys_.erase(it);
  }
  pending_events_.clear();
  pending_keys_.clear();
  writing_ = false;
}

Status MvccStore::Compact(int64_t revision) {
  CAIRN_CHECK(!writing_);
  if (revision <= compact_revision_) return CompactedError();
  if (revision > revision_) return FutureRevisionError();
  for (auto it = keys_.begin(); it != keys_.end();) {
    History& history = it->second;
    int index = FindAt(history, revision);
    if (index >= 0) {
      // The newest record <= revision stays readable at `revision` unless it is a tombstone.
      int keep_from = history[index].tombstone ? index + 1 : index;
      history.erase(history.begin(), history.begin() + keep_from);
    }
    it = history.empty() ? keys_.erase(it) : std::next(it);
  }
  compact_revision_ = revision;
  return Status::Ok();
}

std::vector<etcd::Event> MvccStore::EventsSince(const KeyRange& range, int64_t from_revision) const {
  std::vector<std::tuple<int64_t, int64_t, etcd::Event>> found;
  ForEachInRange(range, [&](const std::string&, const History& history) {
    for (size_t i = 0; i < history.size(); ++i) {
      const Record& record = history[i];
      if (record.main < from_revision || record.main > revision_) continue;
      etcd::Event event;
      event.set_type(record.tombstone ? etcd::Event::DELETE : etcd::Event::PUT);
      *event.mutable_kv() = record.kv;
      if (i > 0 && !history[i - 1].tombstone) *event.mutable_prev_kv() = history[i - 1].kv;
      found.emplace_back(record.main, record.sub, std::move(event));
    }
  });
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b));
  });
  std::vector<etcd::Event> events;
  events.reserve(found.size());
  for (auto& entry : found) events.push_back(std::move(std::get<2>(entry)));
  return events;
}

void MvccStore::SaveTo(proto::KvSnapshot* snapshot) const {
  CAIRN_CHECK(!writing_);
  snapshot->set_revision(revision_);
  snapshot->set_compact_revision(compact_revision_);
  for (const auto& [key, history] : keys_) {
    proto::KvKeyHistory* out = snapshot->add_keys();
    out->set_key(key);
    for (const Record& record : history) {
      proto::KvRecord* r = out->add_records();
      r->set_main(record.main);
      r->set_sub(record.sub);
      r->set_tombstone(record.tombstone);
      *r->mutable_kv() = record.kv;
      r->mutable_kv()->clear_key();  // stored once, in KvKeyHistory.key
    }
  }
}

Status MvccStore::LoadFrom(const proto::KvSnapshot& snapshot) {
  CAIRN_CHECK(!writing_);
  if (snapshot.revision() < 1 || snapshot.compact_revision() < 0 ||
      snapshot.compact_revision() > snapshot.revision()) {
    return CorruptionError("kv snapshot: bad revision " + std::to_string(snapshot.revision()) +
                           " / compact revision " + std::to_string(snapshot.compact_revision()));
  }
  std::map<std::string, History> keys;
  for (const proto::KvKeyHistory& in : snapshot.keys()) {
    if (in.key().empty() || in.records().empty() || keys.count(in.key()) != 0) {
      return CorruptionError("kv snapshot: empty, duplicate or history-less key");
    }
    History& history = keys[in.key()];
    for (const proto::KvRecord& r : in.records()) {
      if (r.main() < 1 || r.main() > snapshot.revision() ||
          (!history.empty() && std::tie(history.back().main, history.back().sub) >=
                                   std::make_tuple(r.main(), r.sub()))) {
        return CorruptionError("kv snapshot: records of key out of order or beyond the revision");
      }
      Record record{r.main(), r.sub(), r.tombstone(), r.kv()};
      record.kv.set_key(in.key());
      history.push_back(std::move(record));
    }
  }
  keys_ = std::move(keys);
  revision_ = snapshot.revision();
  compact_revision_ = snapshot.compact_revision();
  return Status::Ok();
}

}  // namespace cairn::kv
