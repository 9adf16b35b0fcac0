// KvStateMachine: the etcd v3 key-value state machine that committed Raft entries are applied to.
//
// The Raft driver puts a serialized proto::KvCommand in each log entry and calls Apply(bytes) on
// every member in log order; every member then holds the same keys, revisions and leases and
// returns the same responses (errors included: a failed command changes nothing). Time comes
// only from KvCommand.now_ms, which the proposing leader sets from its clock.
//
// Reads that do not go through the log (serializable reads, or linearizable ones after a
// ReadIndex) call Range / LeaseTimeToLive / LeaseLeases directly. The leader calls
// ExpiredLeases(now) periodically and proposes a lease_revoke for each id it returns, and
// proposes lease_promote once after winning an election.
//
// Response headers carry only `revision`; the service fills cluster_id, member_id and raft_term.
//
// Threading: not thread-safe. Apply, the reads and the watch hub must be used from one thread
// (or under one lock held by the caller). Watch sinks run on that thread, inside Apply.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/kv/auto_compactor.h"
#include "cairn/kv/lessor.h"
#include "cairn/kv/mvcc_store.h"
#include "cairn/kv/watch_hub.h"
#include "cairn/proto/etcd_rpc.pb.h"
#include "cairn/proto/kv.pb.h"

namespace cairn::kv {

struct KvOptions {
  // Every member must use the same options, or their states diverge.
  AutoCompactionOptions auto_compaction;
  int64_t min_lease_ttl_seconds = 2;  // shorter requested TTLs are raised to this, like etcd
  int max_txn_ops = 128;              // etcd's --max-txn-ops default
};

class KvStateMachine {
 public:
  explicit KvStateMachine(KvOptions options = {});
  KvStateMachine(const KvStateMachine&) = delete;
  KvStateMachine& operator=(const KvStateMachine&) = delete;

  // Applies one serialized KvCommand. Errors: InvalidArgument if the bytes do not parse or name
  // no command; otherwise the etcd errors of the command (see errors.h). On error nothing changed
  // (except auto-compaction, which runs after every command).
  Result<proto::KvResponse> Apply(std::string_view command_bytes);
  Result<proto::KvResponse> Apply(const proto::KvCommand& command);

  // Reads, not through the log. Errors: kErrEmptyKey, kErrCompacted, kErrFutureRevision,
  // kErrLeaseNotFound.
  Result<etcd::RangeResponse> Range(const etcd::RangeRequest& request) const;
  Result<etcd::LeaseTimeToLiveResponse> LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& request,
                                                        int64_t now_ms) const;
  etcd::LeaseLeasesResponse LeaseLeases() const;
  // Leases whose TTL ran out at now_ms (leader time), ascending; the leader revokes them.
  std::vector<int64_t> ExpiredLeases(int64_t now_ms) const;

  int64_t revision() const { return store_.revision(); }
  int64_t compact_revision() const { return store_.compact_revision(); }
  const MvccStore& store() const { return store_; }
  const Lessor& lessor() const { return lessor_; }
  WatchHub& watch_hub() { return watch_hub_; }

  // The whole state (keys with history, revisions, leases, auto-compaction state) as bytes; the
  // same state always gives the same bytes.
  std::string Snapshot() const;
  // Replaces the whole state with a snapshot's, then catches watchers up (or cancels them if the
  // history they need is compacted). Errors: kCorruption; on error the state is unchanged.
  Status Restore(std::string_view snapshot_bytes);

 private:
  Result<proto::KvResponse> Dispatch(const proto::KvCommand& command);
  // Runs `write` inside one store write batch: commits on success (one revision), rolls back on
  // error; then updates lease attachments and notifies watchers.
  template <typename Response, typename Fn>
  Result<Response> RunWrite(Fn&& write);
  void Commit();

  Result<etcd::RangeResponse> DoRange(const etcd::RangeRequest& request) const;
  Result<etcd::PutResponse> DoPut(const etcd::PutRequest& request);
  Result<etcd::DeleteRangeResponse> DoDeleteRange(const etcd::DeleteRangeRequest& request);
  Result<etcd::TxnResponse> DoTxn(const etcd::TxnRequest& request);
  Result<etcd::ResponseOp> DoOp(const etcd::RequestOp& op);
  bool Compare(const etcd::Compare& compare) const;
  Status CheckTxn(const etcd::TxnRequest& request) const;

  Result<proto::KvResponse> ApplyKeyCommand(const proto::KvCommand& command);
  Result<proto::KvResponse> ApplyLeaseCommand(const proto::KvCommand& command);
  Status LeaseRevoke(int64_t id);
  void MaybeAutoCompact(int64_t now_ms);
  int64_t VisibleRevision() const;

  KvOptions options_;
  MvccStore store_;
  Lessor lessor_;
  AutoCompactor compactor_;
  WatchHub watch_hub_;
};

// The top-level header of whichever response `response` holds; nullptr if it holds none.
etcd::ResponseHeader* MutableHeader(proto::KvResponse* response);
// Sets the identity fields the state machine leaves empty (etcd sets them only on the top-level
// header, not on the responses nested in a txn).
void FillHeaderIdentity(proto::KvResponse* response, uint64_t cluster_id, uint64_t member_id,
                        uint64_t raft_term);

}  // namespace cairn::kv
