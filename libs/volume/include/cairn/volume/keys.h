// Where volume records live in the coordination store, and small builders for the etcd
// transactions that change them. Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::volume {

// The reserved prefix; nothing else in the store may write below it.
inline constexpr std::string_view kVolumesPrefix = "/cairn/volumes/";

std::string VolumePrefix(std::string_view volume);                     // /cairn/volumes/NAME/
std::string SpecKey(std::string_view volume);                          // .../NAME/spec
std::string SetKey(std::string_view volume, uint32_t set_id);          // .../NAME/sets/000003
std::string PrimaryKey(std::string_view volume, uint32_t set_id);      // .../NAME/sets/000003/primary
std::string HealKey(std::string_view volume, std::string_view brick);  // .../NAME/heal/host:/path
// Where a started brick is served: value "ip:port", attached to the hosting clusterd's store lease,
// so it disappears about a TTL after that host dies. brick: the brick id ("host:/path").
std::string BrickAddressKey(std::string_view volume, std::string_view brick);  // .../NAME/bricks/host:/path
// The range_end that makes a range request over `prefix` return every key starting with it.
std::string PrefixRangeEnd(std::string_view prefix);

// Compare builders. A missing key has version, mod_revision and lease 0 (etcd semantics).
etcd::Compare ModRevisionEquals(std::string_view key, int64_t mod_revision);
etcd::Compare LeaseEquals(std::string_view key, int64_t lease_id);
etcd::Compare KeyAbsent(std::string_view key);
etcd::RequestOp PutOp(std::string_view key, std::string value, int64_t lease_id = 0);

}  // namespace cairn::volume
