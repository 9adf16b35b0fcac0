// Volume specs in the store: create, update (start/stop, add-brick, remove-brick, rebalance
// done) and delete, each one etcd TxnRequest that compares the spec's mod_revision. Pure and
// thread-safe; the caller applies the txn and, when it did not succeed, re-reads and retries or
// reports that someone else changed the volume.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/proto/etcd_mvcc.pb.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::volume {

namespace pb = ::cairn::proto::volume;

struct VolumeRecord {
  pb::VolumeSpec spec;
  int64_t mod_revision = 0;  // of SpecKey(spec.name)
};

// Errors: Corruption when the value does not parse or fails ValidateVolumeSpec.
Result<VolumeRecord> ParseVolumeRecord(const etcd::KeyValue& kv);

// Succeeds only if no volume of that name exists; writes the spec and every set's initial record.
etcd::TxnRequest CreateVolumeTxn(const pb::VolumeSpec& spec);

// Replaces `current` by `next` (same name): sets new in `next` get their initial record, sets
// gone from `next` lose their record and primary key. Errors: InvalidArgument for a name change.
Result<etcd::TxnRequest> UpdateVolumeTxn(const VolumeRecord& current, const pb::VolumeSpec& next);

// created/stopped -> started, started -> stopped. Errors: FailedPrecondition when already there.
Result<pb::VolumeSpec> WithVolumeState(const pb::VolumeSpec& spec, pb::VolumeState state);

// Deletes everything under VolumePrefix(name). Errors: FailedPrecondition while started.
Result<etcd::TxnRequest> DeleteVolumeTxn(const VolumeRecord& current);

// The sets a lookup of (parent, name) tries, in order: the owner under the layout, then, while a
// rebalance is pending, the owner under the previous layout if different.
std::vector<uint32_t> LookupSets(const pb::VolumeSpec& spec, std::string_view parent_id, std::string_view name);

}  // namespace cairn::volume
