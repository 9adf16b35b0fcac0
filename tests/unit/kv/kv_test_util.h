// Helpers for the kv tests: build KvCommands and apply them, failing the test on unexpected errors.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cairn/kv/state_machine.h"

namespace cairn::kv::testing {

inline KvOptions NoAutoCompaction() {
  KvOptions options;
  options.auto_compaction.mode = AutoCompactionOptions::Mode::kOff;
  return options;
}

inline etcd::PutRequest PutReq(const std::string& key, const std::string& value, int64_t lease = 0) {
  etcd::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  return request;
}

inline etcd::RangeRequest RangeReq(const std::string& key, const std::string& range_end = "",
                                   int64_t revision = 0) {
  etcd::RangeRequest request;
  request.set_key(key);
  request.set_range_end(range_end);
  request.set_revision(revision);
  return request;
}

inline proto::KvCommand PutCmd(const std::string& key, const std::string& value, int64_t lease = 0) {
  proto::KvCommand command;
  *command.mutable_put() = PutReq(key, value, lease);
  return command;
}

inline proto::KvCommand DeleteCmd(const std::string& key, const std::string& range_end = "",
                                  bool prev_kv = false) {
  proto::KvCommand command;
  command.mutable_delete_range()->set_key(key);
  command.mutable_delete_range()->set_range_end(range_end);
  command.mutable_delete_range()->set_prev_kv(prev_kv);
  return command;
}

inline proto::KvCommand CompactCmd(int64_t revision) {
  proto::KvCommand command;
  command.mutable_compaction()->set_revision(revision);
  return command;
}

inline proto::KvCommand GrantCmd(int64_t id, int64_t ttl, int64_t now_ms = 0) {
  proto::KvCommand command;
  command.set_now_ms(now_ms);
  command.mutable_lease_grant()->set_id(id);
  command.mutable_lease_grant()->set_ttl(ttl);
  return command;
}

inline proto::KvCommand RevokeCmd(int64_t id) {
  proto::KvCommand command;
  command.mutable_lease_revoke()->set_id(id);
  return command;
}

// Applies through the byte entry point (what the Raft driver uses) and expects success.
inline proto::KvResponse MustApply(KvStateMachine& machine, const proto::KvCommand& command) {
  Result<proto::KvResponse> result = machine.Apply(command.SerializeAsString());
  EXPECT_TRUE(result.ok()) << result.status() << " for " << command.ShortDebugString();
  return result.ok() ? *result : proto::KvResponse();
}

inline etcd::PutResponse MustPut(KvStateMachine& machine, const std::string& key, const std::string& value,
                                 int64_t lease = 0) {
  return MustApply(machine, PutCmd(key, value, lease)).put();
}

inline etcd::RangeResponse MustRange(const KvStateMachine& machine, const etcd::RangeRequest& request) {
  Result<etcd::RangeResponse> result = machine.Range(request);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : etcd::RangeResponse();
}

// The keys of a range response, in order.
inline std::vector<std::string> Keys(const etcd::RangeResponse& response) {
  std::vector<std::string> keys;
  for (const auto& kv : response.kvs()) keys.push_back(kv.key());
  return keys;
}

}  // namespace cairn::kv::testing
