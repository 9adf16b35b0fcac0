#include "cairn/kv/state_machine.h"

#include <algorithm>
#include <limits>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "cairn/kv/errors.h"

namespace cairn::kv {
namespace {

Status InvalidRequest(std::string_view message) { return InvalidArgumentError(std::string(message)); }

// ---- txn validation (etcd's checkTxnRequest / checkIntervals) ----

struct WriteSet {
  std::set<std::string> puts;
  std::vector<KeyRange> deletes;
};

Status CollectWrites(const google::protobuf::RepeatedPtrField<etcd::RequestOp>& ops, WriteSet* writes);

Status CollectOp(const etcd::RequestOp& op, WriteSet* writes) {
  switch (op.request_case()) {
    case etcd::RequestOp::kRequestPut: {
      const std::string& key = op.request_put().key();
      bool in_delete = std::any_of(writes->deletes.begin(), writes->deletes.end(),
                                   [&](const KeyRange& range) { return range.Contains(key); });
      if (in_delete || !writes->puts.insert(key).second) return InvalidRequest(kErrDuplicateKey);
      return Status::Ok();
    }
    case etcd::RequestOp::kRequestDeleteRange: {
      const auto& request = op.request_delete_range();
      KeyRange range = KeyRange::From(request.key(), request.range_end());
      for (const std::string& key : writes->puts) {
        if (range.Contains(key)) return InvalidRequest(kErrDuplicateKey);
      }
      writes->deletes.push_back(std::move(range));
      return Status::Ok();
    }
    case etcd::RequestOp::kRequestTxn: {
      // Either branch of a nested txn may run: each must fit with what came before, and what
      // follows must fit with both.
      WriteSet success = *writes;
      WriteSet failure = *writes;
      CAIRN_RETURN_IF_ERROR(CollectWrites(op.request_txn().success(), &success));
      CAIRN_RETURN_IF_ERROR(CollectWrites(op.request_txn().failure(), &failure));
      writes->puts.insert(success.puts.begin(), success.puts.end());
      writes->puts.insert(failure.puts.begin(), failure.puts.end());
      writes->deletes = std::move(success.deletes);
      writes->deletes.insert(writes->deletes.end(), failure.deletes.begin(), failure.deletes.end());
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

Status CollectWrites(const google::protobuf::RepeatedPtrField<etcd::RequestOp>& ops, WriteSet* writes) {
  for (const etcd::RequestOp& op : ops) CAIRN_RETURN_IF_ERROR(CollectOp(op, writes));
  return Status::Ok();
}

int CountOps(const etcd::TxnRequest& request) {
  return std::max({request.compare_size(), request.success_size(), request.failure_size()});
}

// ---- range helpers ----

bool KeepByRevisionFilters(const etcd::RangeRequest& request, const etcd::KeyValue& kv) {
  if (request.min_mod_revision() != 0 && kv.mod_revision() < request.min_mod_revision()) return false;
  if (request.max_mod_revision() != 0 && kv.mod_revision() > request.max_mod_revision()) return false;
  if (request.min_create_revision() != 0 && kv.create_revision() < request.min_create_revision()) return false;
  if (request.max_create_revision() != 0 && kv.create_revision() > request.max_create_revision()) return false;
  return true;
}

bool HasRevisionFilters(const etcd::RangeRequest& request) {
  return request.min_mod_revision() != 0 || request.max_mod_revision() != 0 ||
         request.min_create_revision() != 0 || request.max_create_revision() != 0;
}

// Sorts like etcd's applier: results already come in ascending key order, so KEY+ASCEND is a
// no-op and a non-KEY target without an order means ASCEND.
void SortKvs(const etcd::RangeRequest& request, std::vector<etcd::KeyValue>* kvs) {
  auto order = request.sort_order();
  auto target = request.sort_target();
  if (target != etcd::RangeRequest::KEY && order == etcd::RangeRequest::NONE) order = etcd::RangeRequest::ASCEND;
  if (target == etcd::RangeRequest::KEY && order == etcd::RangeRequest::ASCEND) order = etcd::RangeRequest::NONE;
  if (order == etcd::RangeRequest::NONE) return;
  auto less = [target](const etcd::KeyValue& a, const etcd::KeyValue& b) {
    switch (target) {
      case etcd::RangeRequest::VERSION: return a.version() < b.version();
      case etcd::RangeRequest::CREATE: return a.create_revision() < b.create_revision();
      case etcd::RangeRequest::MOD: return a.mod_revision() < b.mod_revision();
      case etcd::RangeRequest::VALUE: return a.value() < b.value();
      default: return a.key() < b.key();
    }
  };
  if (order == etcd::RangeRequest::DESCEND) {
    std::stable_sort(kvs->begin(), kvs->end(), [&](const auto& a, const auto& b) { return less(b, a); });
  } else {
    std::stable_sort(kvs->begin(), kvs->end(), less);
  }
}

template <typename T>
int CompareValues(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// etcd's compareKV: one key's field against the compare's target value.
bool CompareKv(const etcd::Compare& compare, const etcd::KeyValue& kv) {
  int result = 0;
  switch (compare.target()) {
    case etcd::Compare::VALUE: result = CompareValues(kv.value(), compare.value()); break;
    case etcd::Compare::CREATE: result = CompareValues(kv.create_revision(), compare.create_revision()); break;
    case etcd::Compare::MOD: result = CompareValues(kv.mod_revision(), compare.mod_revision()); break;
    case etcd::Compare::VERSION: result = CompareValues(kv.version(), compare.version()); break;
    case etcd::Compare::LEASE: result = CompareValues(kv.lease(), compare.lease()); break;
    default: return false;
  }
  switch (compare.result()) {
    case etcd::Compare::EQUAL: return result == 0;
    case etcd::Compare::NOT_EQUAL: return result != 0;
    case etcd::Compare::GREATER: return result > 0;
    case etcd::Compare::LESS: return result < 0;
    default: return false;
  }
}

}  // namespace

KvStateMachine::KvStateMachine(KvOptions options)
    : options_(options),
      lessor_(options.min_lease_ttl_seconds),
      compactor_(options.auto_compaction),
      watch_hub_(&store_) {}

int64_t KvStateMachine::VisibleRevision() const {
  return store_.has_pending_writes() ? store_.pending_revision() : store_.revision();
}

// ---------------- Apply ----------------

Result<proto::KvResponse> KvStateMachine::Apply(std::string_view command_bytes) {
  proto::KvCommand command;
  if (!command.ParseFromArray(command_bytes.data(), static_cast<int>(command_bytes.size()))) {
    return InvalidArgumentError("kv command: " + std::to_string(command_bytes.size()) +
                                " bytes do not parse as cairn.proto.KvCommand");
  }
  return Apply(command);
}

Result<proto::KvResponse> KvStateMachine::Apply(const proto::KvCommand& command) {
  Result<proto::KvResponse> result = Dispatch(command);
  MaybeAutoCompact(command.now_ms());
  return result;
}

Result<proto::KvResponse> KvStateMachine::Dispatch(const proto::KvCommand& command) {
  switch (command.command_case()) {
    case proto::KvCommand::kPut:
    case proto::KvCommand::kDeleteRange:
    case proto::KvCommand::kTxn:
    case proto::KvCommand::kRange:
    case proto::KvCommand::kCompaction:
      return ApplyKeyCommand(command);
    case proto::KvCommand::kLeaseGrant:
    case proto::KvCommand::kLeaseRevoke:
    case proto::KvCommand::kLeaseKeepalive:
    case proto::KvCommand::kLeaseCheckpoint:
    case proto::KvCommand::kLeasePromote:
      return ApplyLeaseCommand(command);
    case proto::KvCommand::COMMAND_NOT_SET:
      break;
  }
  return InvalidArgumentError("kv command names no operation");
}

Result<proto::KvResponse> KvStateMachine::ApplyKeyCommand(const proto::KvCommand& command) {
  proto::KvResponse response;
  switch (command.command_case()) {
    case proto::KvCommand::kPut: {
      CAIRN_ASSIGN_OR_RETURN(*response.mutable_put(),
                             RunWrite<etcd::PutResponse>([&] { return DoPut(command.put()); }));
      break;
    }
    case proto::KvCommand::kDeleteRange: {
      auto write = [&] { return DoDeleteRange(command.delete_range()); };
      CAIRN_ASSIGN_OR_RETURN(*response.mutable_delete_range(), RunWrite<etcd::DeleteRangeResponse>(write));
      break;
    }
    case proto::KvCommand::kTxn: {
      CAIRN_RETURN_IF_ERROR(CheckTxn(command.txn()));
      CAIRN_ASSIGN_OR_RETURN(*response.mutable_txn(),
                             RunWrite<etcd::TxnResponse>([&] { return DoTxn(command.txn()); }));
      break;
    }
    case proto::KvCommand::kRange: {
      CAIRN_ASSIGN_OR_RETURN(*response.mutable_range(), DoRange(command.range()));
      break;
    }
    case proto::KvCommand::kCompaction: {
      CAIRN_RETURN_IF_ERROR(store_.Compact(command.compaction().revision()));
      response.mutable_compaction()->mutable_header()->set_revision(store_.revision());
      break;
    }
    default:
      Panic("ApplyKeyCommand called with a lease command", __FILE__, __LINE__);
  }
  return response;
}

Result<proto::KvResponse> KvStateMachine::ApplyLeaseCommand(const proto::KvCommand& command) {
  const int64_t now = command.now_ms();
  proto::KvResponse response;
  switch (command.command_case()) {
    case proto::KvCommand::kLeaseGrant: {
      const auto& request = command.lease_grant();
      CAIRN_ASSIGN_OR_RETURN(const Lease* lease, lessor_.Grant(request.id(), request.ttl(), now));
      etcd::LeaseGrantResponse* out = response.mutable_lease_grant();
      out->set_id(lease->id);
      out->set_ttl(lease->ttl);
      break;
    }
    case proto::KvCommand::kLeaseRevoke:
      CAIRN_RETURN_IF_ERROR(LeaseRevoke(command.lease_revoke().id()));
      response.mutable_lease_revoke();
      break;
    case proto::KvCommand::kLeaseKeepalive: {
      const int64_t id = command.lease_keepalive().id();
      CAIRN_ASSIGN_OR_RETURN(int64_t ttl, lessor_.KeepAlive(id, now));
      response.mutable_lease_keepalive()->set_id(id);
      response.mutable_lease_keepalive()->set_ttl(ttl);
      break;
    }
    case proto::KvCommand::kLeaseCheckpoint:
      for (const auto& checkpoint : command.lease_checkpoint().checkpoints()) {
        lessor_.Checkpoint(checkpoint.id(), checkpoint.remaining_ttl(), now);
      }
      response.mutable_lease_checkpoint();
      break;
    case proto::KvCommand::kLeasePromote:
      lessor_.Promote(now);
      response.mutable_lease_promote();
      break;
    default:
      Panic("ApplyLeaseCommand called with a key command", __FILE__, __LINE__);
  }
  MutableHeader(&response)->set_revision(store_.revision());
  return response;
}

template <typename Response, typename Fn>
Result<Response> KvStateMachine::RunWrite(Fn&& write) {
  store_.BeginWrite();
  Result<Response> result = write();
  if (!result.ok()) {
    store_.AbortWrite();
    return result;
  }
  Commit();
  result->mutable_header()->set_revision(store_.revision());
  return result;
}

void KvStateMachine::Commit() {
  std::vector<etcd::Event> events = store_.EndWrite();
  for (const etcd::Event& event : events) {
    const std::string& key = event.kv().key();
    if (event.has_prev_kv() && event.prev_kv().lease() != 0) lessor_.Detach(event.prev_kv().lease(), key);
    if (event.type() == etcd::Event::PUT && event.kv().lease() != 0) lessor_.Attach(event.kv().lease(), key);
  }
  if (!events.empty()) watch_hub_.Publish(store_.revision(), events);
}

void KvStateMachine::MaybeAutoCompact(int64_t now_ms) {
  std::optional<int64_t> target = compactor_.Observe(now_ms, store_.revision(), store_.compact_revision());
  if (!target) return;
  // The compactor only proposes revisions in (compact_revision, revision], which cannot fail.
  CAIRN_CHECK(store_.Compact(*target).ok());
  compactor_.Compacted(now_ms);
}

// ---------------- KV operations ----------------

Result<etcd::RangeResponse> KvStateMachine::Range(const etcd::RangeRequest& request) const {
  return DoRange(request);
}

Result<etcd::RangeResponse> KvStateMachine::DoRange(const etcd::RangeRequest& request) const {
  if (request.key().empty()) return InvalidRequest(kErrEmptyKey);
  RangeOptions options;
  options.revision = request.revision();
  options.count_only = request.count_only();
  bool fetch_all = request.sort_order() != etcd::RangeRequest::NONE || HasRevisionFilters(request);
  // One extra kv tells whether there are more.
  if (request.limit() > 0 && !fetch_all) {
    options.limit = request.limit() < std::numeric_limits<int64_t>::max() ? request.limit() + 1 : request.limit();
  }
  CAIRN_ASSIGN_OR_RETURN(RangeResult found,
                         store_.Range(KeyRange::From(request.key(), request.range_end()), options));
  std::vector<etcd::KeyValue>& kvs = found.kvs;
  if (HasRevisionFilters(request)) {
    std::erase_if(kvs, [&](const etcd::KeyValue& kv) { return !KeepByRevisionFilters(request, kv); });
  }
  SortKvs(request, &kvs);
  etcd::RangeResponse response;
  if (request.limit() > 0 && static_cast<int64_t>(kvs.size()) > request.limit()) {
    kvs.resize(request.limit());
    response.set_more(true);
  }
  response.mutable_header()->set_revision(found.revision);
  response.set_count(found.count);
  for (etcd::KeyValue& kv : kvs) {
    if (request.keys_only()) kv.clear_value();
    *response.add_kvs() = std::move(kv);
  }
  return response;
}

Result<etcd::PutResponse> KvStateMachine::DoPut(const etcd::PutRequest& request) {
  if (request.key().empty()) return InvalidRequest(kErrEmptyKey);
  if (request.ignore_value() && !request.value().empty()) return InvalidRequest(kErrValueProvided);
  if (request.ignore_lease() && request.lease() != 0) return InvalidRequest(kErrLeaseProvided);
  if (request.lease() != 0 && lessor_.Find(request.lease()) == nullptr) return LeaseNotFoundError();
  std::optional<etcd::KeyValue> prev = store_.Get(request.key());
  if ((request.ignore_value() || request.ignore_lease()) && !prev) return InvalidRequest(kErrKeyNotFound);
  const std::string& value = request.ignore_value() ? prev->value() : request.value();
  int64_t lease = request.ignore_lease() ? prev->lease() : request.lease();
  store_.Put(request.key(), value, lease);
  etcd::PutResponse response;
  response.mutable_header()->set_revision(store_.pending_revision());
  if (request.prev_kv() && prev) *response.mutable_prev_kv() = std::move(*prev);
  return response;
}

Result<etcd::DeleteRangeResponse> KvStateMachine::DoDeleteRange(const etcd::DeleteRangeRequest& request) {
  if (request.key().empty()) return InvalidRequest(kErrEmptyKey);
  std::vector<etcd::KeyValue> deleted = store_.DeleteRange(KeyRange::From(request.key(), request.range_end()));
  etcd::DeleteRangeResponse response;
  response.set_deleted(static_cast<int64_t>(deleted.size()));
  if (request.prev_kv()) {
    for (etcd::KeyValue& kv : deleted) *response.add_prev_kvs() = std::move(kv);
  }
  response.mutable_header()->set_revision(VisibleRevision());
  return response;
}

// ---------------- txn ----------------

Status KvStateMachine::CheckTxn(const etcd::TxnRequest& request) const {
  if (CountOps(request) > options_.max_txn_ops) return InvalidRequest(kErrTooManyOps);
  for (const auto& branch : {&request.success(), &request.failure()}) {
    for (const etcd::RequestOp& op : *branch) {
      if (op.has_request_txn()) CAIRN_RETURN_IF_ERROR(CheckTxn(op.request_txn()));
    }
    WriteSet writes;
    CAIRN_RETURN_IF_ERROR(CollectWrites(*branch, &writes));
  }
  return Status::Ok();
}

bool KvStateMachine::Compare(const etcd::Compare& compare) const {
  // Compares see the state before the txn (etcd evaluates them all up front), so they read at
  // the committed revision, not the open batch.
  RangeOptions options;
  options.revision = store_.revision();
  Result<RangeResult> found = store_.Range(KeyRange::From(compare.key(), compare.range_end()), options);
  if (!found.ok()) return false;
  if (found->kvs.empty()) {
    // A missing key has no value to compare (etcd cannot tell a missing value from an empty one).
    if (compare.target() == etcd::Compare::VALUE) return false;
    return CompareKv(compare, etcd::KeyValue());
  }
  return std::all_of(found->kvs.begin(), found->kvs.end(),
                     [&](const etcd::KeyValue& kv) { return CompareKv(compare, kv); });
}

Result<etcd::TxnResponse> KvStateMachine::DoTxn(const etcd::TxnRequest& request) {
  bool succeeded = std::all_of(request.compare().begin(), request.compare().end(),
                               [&](const etcd::Compare& compare) { return Compare(compare); });
  etcd::TxnResponse response;
  response.set_succeeded(succeeded);
  for (const etcd::RequestOp& op : succeeded ? request.success() : request.failure()) {
    CAIRN_ASSIGN_OR_RETURN(*response.add_responses(), DoOp(op));
  }
  response.mutable_header()->set_revision(VisibleRevision());
  return response;
}

Result<etcd::ResponseOp> KvStateMachine::DoOp(const etcd::RequestOp& op) {
  etcd::ResponseOp out;
  switch (op.request_case()) {
    case etcd::RequestOp::kRequestRange: {
      CAIRN_ASSIGN_OR_RETURN(*out.mutable_response_range(), DoRange(op.request_range()));
      break;
    }
    case etcd::RequestOp::kRequestPut: {
      CAIRN_ASSIGN_OR_RETURN(*out.mutable_response_put(), DoPut(op.request_put()));
      break;
    }
    case etcd::RequestOp::kRequestDeleteRange: {
      CAIRN_ASSIGN_OR_RETURN(*out.mutable_response_delete_range(), DoDeleteRange(op.request_delete_range()));
      break;
    }
    case etcd::RequestOp::kRequestTxn: {
      CAIRN_ASSIGN_OR_RETURN(*out.mutable_response_txn(), DoTxn(op.request_txn()));
      break;
    }
    case etcd::RequestOp::REQUEST_NOT_SET:
      return InvalidArgumentError("txn request op names no operation");
  }
  return out;
}

// ---------------- leases ----------------

Status KvStateMachine::LeaseRevoke(int64_t id) {
  CAIRN_ASSIGN_OR_RETURN(Lease lease, lessor_.Remove(id));
  // All attached keys go in one revision, in key order, like etcd.
  store_.BeginWrite();
  for (const std::string& key : lease.keys) store_.DeleteRange(KeyRange::Single(key));
  Commit();
  return Status::Ok();
}

Result<etcd::LeaseTimeToLiveResponse> KvStateMachine::LeaseTimeToLive(
    const etcd::LeaseTimeToLiveRequest& request, int64_t now_ms) const {
  const Lease* lease = lessor_.Find(request.id());
  if (lease == nullptr) return LeaseNotFoundError();
  etcd::LeaseTimeToLiveResponse response;
  response.mutable_header()->set_revision(store_.revision());
  response.set_id(lease->id);
  response.set_ttl(Lessor::RemainingSeconds(*lease, now_ms));
  response.set_grantedttl(lease->ttl);
  if (request.keys()) {
    for (const std::string& key : lease->keys) response.add_keys(key);
  }
  return response;
}

etcd::LeaseLeasesResponse KvStateMachine::LeaseLeases() const {
  etcd::LeaseLeasesResponse response;
  response.mutable_header()->set_revision(store_.revision());
  for (const auto& [id, lease] : lessor_.leases()) response.add_leases()->set_id(id);
  return response;
}

std::vector<int64_t> KvStateMachine::ExpiredLeases(int64_t now_ms) const { return lessor_.Expired(now_ms); }

// ---------------- snapshots ----------------

std::string KvStateMachine::Snapshot() const {
  proto::KvSnapshot snapshot;
  snapshot.set_format_version(1);
  store_.SaveTo(&snapshot);
  lessor_.SaveTo(&snapshot);
  compactor_.SaveTo(&snapshot);
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  CAIRN_CHECK(snapshot.SerializeToCodedStream(&coded));
  coded.Trim();
  return bytes;
}

Status KvStateMachine::Restore(std::string_view snapshot_bytes) {
  proto::KvSnapshot snapshot;
  if (!snapshot.ParseFromArray(snapshot_bytes.data(), static_cast<int>(snapshot_bytes.size()))) {
    return CorruptionError("kv snapshot: bytes do not parse");
  }
  if (snapshot.format_version() != 1) {
    return CorruptionError("kv snapshot: unknown format version " + std::to_string(snapshot.format_version()));
  }
  MvccStore store;
  CAIRN_RETURN_IF_ERROR(store.LoadFrom(snapshot));
  Lessor lessor(options_.min_lease_ttl_seconds);
  CAIRN_RETURN_IF_ERROR(lessor.LoadFrom(snapshot));
  CAIRN_ASSIGN_OR_RETURN(RangeResult live, store.Range(KeyRange::From(std::string(1, '\0'), std::string(1, '\0')), {}));
  for (const etcd::KeyValue& kv : live.kvs) {
    if (kv.lease() == 0) continue;
    if (lessor.Find(kv.lease()) == nullptr) {
      return CorruptionError("kv snapshot: key attached to missing lease " + std::to_string(kv.lease()));
    }
    lessor.Attach(kv.lease(), kv.key());
  }
  store_ = std::move(store);
  lessor_ = std::move(lessor);
  compactor_.LoadFrom(snapshot);
  watch_hub_.Resync();
  return Status::Ok();
}

etcd::ResponseHeader* MutableHeader(proto::KvResponse* response) {
  switch (response->response_case()) {
    case proto::KvResponse::kPut: return response->mutable_put()->mutable_header();
    case proto::KvResponse::kDeleteRange: return response->mutable_delete_range()->mutable_header();
    case proto::KvResponse::kTxn: return response->mutable_txn()->mutable_header();
    case proto::KvResponse::kCompaction: return response->mutable_compaction()->mutable_header();
    case proto::KvResponse::kLeaseGrant: return response->mutable_lease_grant()->mutable_header();
    case proto::KvResponse::kLeaseRevoke: return response->mutable_lease_revoke()->mutable_header();
    case proto::KvResponse::kLeaseCheckpoint: return response->mutable_lease_checkpoint()->mutable_header();
    case proto::KvResponse::kLeaseKeepalive: return response->mutable_lease_keepalive()->mutable_header();
    case proto::KvResponse::kLeasePromote: return response->mutable_lease_promote()->mutable_header();
    case proto::KvResponse::kRange: return response->mutable_range()->mutable_header();
    case proto::KvResponse::RESPONSE_NOT_SET: break;
  }
  return nullptr;
}

void FillHeaderIdentity(proto::KvResponse* response, uint64_t cluster_id, uint64_t member_id,
                        uint64_t raft_term) {
  etcd::ResponseHeader* header = MutableHeader(response);
  if (header == nullptr) return;
  header->set_cluster_id(cluster_id);
  header->set_member_id(member_id);
  header->set_raft_term(raft_term);
}

}  // namespace cairn::kv
