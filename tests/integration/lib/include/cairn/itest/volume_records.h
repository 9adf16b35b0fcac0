// Reading and writing a volume's records in the store the way the volume suites check them: the
// spec, a replica set's state, its primary key and the bricks' published addresses (docs/volumes.md).
//
// Every call goes through the EtcdClient given (its deadline applies); a record that is absent or
// unreadable (store down) reads as empty. Threading: as the EtcdClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/proto/volume.pb.h"

namespace cairn::itest {

// The key's record; nullopt when it is absent or the store did not answer.
std::optional<etcd::KeyValue> GetKey(etcdclient::EtcdClient& store, const std::string& key);

// Creates volume `name`, already started, with one replica set of `bricks` ("host:/path"), through
// one store transaction retried until it is answered or `limit` passes. Returns the set's id.
// Errors: the spec's validation error, the store's last error, or AlreadyExists.
Result<uint32_t> CreateStartedVolume(etcdclient::EtcdClient& store, const std::string& name,
                                     const std::vector<std::string>& bricks, std::chrono::milliseconds limit);

// The replica set's state (empty when absent).
proto::volume::ReplicaSetState ReadSet(etcdclient::EtcdClient& store, const std::string& volume, uint32_t set);

// The brick's published address ("" when none).
std::string BrickAddress(etcdclient::EtcdClient& store, const std::string& volume, const std::string& brick);

// Waits until the set has a primary other than `not_this` that holds the set's primary key, with
// exactly `in_sync` replicas in sync, each with a published address. Returns the set's state as
// last read (check primary() against what was wanted: the wait may have run out).
proto::volume::ReplicaSetState WaitForPrimary(etcdclient::EtcdClient& store, const std::string& volume, uint32_t set,
                                              int in_sync, std::chrono::milliseconds limit,
                                              const std::string& not_this = "");

}  // namespace cairn::itest
