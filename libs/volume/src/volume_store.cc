#include "cairn/volume/volume_store.h"

#include <algorithm>
#include <set>

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"

namespace cairn::volume {
namespace {

std::string Serialize(const pb::VolumeSpec& spec) {
  std::string bytes;
  CAIRN_CHECK(spec.SerializeToString(&bytes));
  return bytes;
}

void AddInitialSet(std::string_view volume, const pb::ReplicaSetSpec& set, etcd::TxnRequest* txn) {
  Transition initial = InitialReplicaSet(volume, set);
  for (const auto& compare : initial.txn.compare()) *txn->add_compare() = compare;
  for (const auto& op : initial.txn.success()) *txn->add_success() = op;
}

etcd::RequestOp DeleteOp(std::string key, std::string range_end = {}) {
  etcd::RequestOp op;
  op.mutable_request_delete_range()->set_key(std::move(key));
  op.mutable_request_delete_range()->set_range_end(std::move(range_end));
  return op;
}

std::set<uint32_t> SetIds(const pb::VolumeSpec& spec) {
  std::set<uint32_t> ids;
  for (const auto& set : spec.sets()) ids.insert(set.id());
  return ids;
}

}  // namespace

Result<VolumeRecord> ParseVolumeRecord(const etcd::KeyValue& kv) {
  VolumeRecord record;
  if (!record.spec.ParseFromString(kv.value())) {
    return CorruptionError("volume spec at " + kv.key() + " does not parse");
  }
  CAIRN_RETURN_IF_ERROR(ValidateVolumeSpec(record.spec));
  record.mod_revision = kv.mod_revision();
  return record;
}

etcd::TxnRequest CreateVolumeTxn(const pb::VolumeSpec& spec) {
  etcd::TxnRequest txn;
  *txn.add_compare() = KeyAbsent(SpecKey(spec.name()));
  *txn.add_success() = PutOp(SpecKey(spec.name()), Serialize(spec));
  for (const auto& set : spec.sets()) AddInitialSet(spec.name(), set, &txn);
  return txn;
}

Result<etcd::TxnRequest> UpdateVolumeTxn(const VolumeRecord& current, const pb::VolumeSpec& next) {
  const std::string& name = current.spec.name();
  if (next.name() != name) {
    return InvalidArgumentError("a volume cannot be renamed (" + name + " -> " + next.name() + ")");
  }
  etcd::TxnRequest txn;
  *txn.add_compare() = ModRevisionEquals(SpecKey(name), current.mod_revision);
  *txn.add_success() = PutOp(SpecKey(name), Serialize(next));
  const auto before = SetIds(current.spec);
  const auto after = SetIds(next);
  for (const auto& set : next.sets()) {
    if (!before.count(set.id())) AddInitialSet(name, set, &txn);
  }
  for (uint32_t id : before) {
    if (!after.count(id)) {
      *txn.add_success() = DeleteOp(SetKey(name, id));
      *txn.add_success() = DeleteOp(PrimaryKey(name, id));
    }
  }
  return txn;
}

Result<pb::VolumeSpec> WithVolumeState(const pb::VolumeSpec& spec, pb::VolumeState state) {
  if (spec.state() == state) {
    return FailedPreconditionError("volume " + spec.name() + " is already " +
                                   (state == pb::VOLUME_STARTED ? "started" : "stopped"));
  }
  if (state == pb::VOLUME_CREATED) {
    return InvalidArgumentError("a volume cannot go back to the created state");
  }
  if (state == pb::VOLUME_STOPPED && spec.state() != pb::VOLUME_STARTED) {
    return FailedPreconditionError("volume " + spec.name() + " was never started");
  }
  pb::VolumeSpec next = spec;
  next.set_state(state);
  return next;
}

Result<etcd::TxnRequest> DeleteVolumeTxn(const VolumeRecord& current) {
  if (current.spec.state() == pb::VOLUME_STARTED) {
    return FailedPreconditionError("volume " + current.spec.name() + " is started; stop it first");
  }
  const std::string prefix = VolumePrefix(current.spec.name());
  etcd::TxnRequest txn;
  *txn.add_compare() = ModRevisionEquals(SpecKey(current.spec.name()), current.mod_revision);
  *txn.add_success() = DeleteOp(prefix, PrefixRangeEnd(prefix));
  return txn;
}

std::vector<uint32_t> LookupSets(const pb::VolumeSpec& spec, std::string_view parent_id, std::string_view name) {
  std::vector<uint32_t> sets = {SetForName(spec.layout(), parent_id, name)};
  if (spec.has_previous_layout()) {
    uint32_t before = SetForName(spec.previous_layout(), parent_id, name);
    if (before != sets[0]) sets.push_back(before);
  }
  return sets;
}

}  // namespace cairn::volume
