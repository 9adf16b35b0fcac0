// A coordination store for tests: a real kv::KvStateMachine driven by hand, with the time the
// Raft leader would stamp on each command. Leases expire only when ExpireLeases is called, as
// when the store leader proposes the revocations.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cairn/kv/state_machine.h"
#include "cairn/proto/kv.pb.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/replica_set.h"

namespace cairn::volume::testing {

class StoreHarness {
 public:
  explicit StoreHarness(int64_t start_ms = 1'000'000) : now_ms_(start_ms) {
    kv::KvOptions options;
    options.min_lease_ttl_seconds = 1;
    machine_ = std::make_unique<kv::KvStateMachine>(options);
  }

  int64_t now_ms() const { return now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }

  // True when the txn applied and its compares held.
  bool Txn(const etcd::TxnRequest& txn) {
    proto::KvCommand command;
    command.set_now_ms(now_ms_);
    *command.mutable_txn() = txn;
    auto result = machine_->Apply(command);
    return result.ok() && result->txn().succeeded();
  }

  // A lease of ttl_ms (rounded up to seconds), or 0 if the grant failed.
  int64_t Grant(int64_t ttl_ms) {
    proto::KvCommand command;
    command.set_now_ms(now_ms_);
    command.mutable_lease_grant()->set_ttl((ttl_ms + 999) / 1000);
    command.mutable_lease_grant()->set_id(next_lease_id_++);
    auto result = machine_->Apply(command);
    return result.ok() ? result->lease_grant().id() : 0;
  }

  bool KeepAlive(int64_t lease_id) {
    proto::KvCommand command;
    command.set_now_ms(now_ms_);
    command.mutable_lease_keepalive()->set_id(lease_id);
    return machine_->Apply(command).ok();
  }

  void Revoke(int64_t lease_id) {
    proto::KvCommand command;
    command.set_now_ms(now_ms_);
    command.mutable_lease_revoke()->set_id(lease_id);
    (void)machine_->Apply(command);
  }

  // What the store leader does periodically: revoke every lease whose TTL ran out.
  void ExpireLeases() {
    for (int64_t id : machine_->ExpiredLeases(now_ms_)) Revoke(id);
  }

  std::optional<etcd::KeyValue> Get(const std::string& key) const {
    etcd::RangeRequest request;
    request.set_key(key);
    auto result = machine_->Range(request);
    if (!result.ok() || result->kvs_size() == 0) return std::nullopt;
    return result->kvs(0);
  }

  ReplicaSetRecord ReadSet(const std::string& volume, uint32_t set_id) const {
    auto kv = Get(SetKey(volume, set_id));
    CAIRN_CHECK(kv.has_value());
    auto record = ParseReplicaSetRecord(*kv);
    CAIRN_CHECK(record.ok());
    return *record;
  }

 private:
  std::unique_ptr<kv::KvStateMachine> machine_;
  int64_t now_ms_;
  int64_t next_lease_id_ = 0x1000;
};

}  // namespace cairn::volume::testing
