// etcd's error messages, word for word, so clients that match on them (etcdctl, client libraries,
// scripts) behave as they do against etcd. Status codes:
//   compacted / future revision      -> kOutOfRange
//   lease not found                  -> kNotFound
//   lease already exists             -> kAlreadyExists
//   everything else (bad request)    -> kInvalidArgument
#pragma once

#include <string_view>

#include "cairn/common/status.h"

namespace cairn::kv {

inline constexpr std::string_view kErrCompacted = "mvcc: required revision has been compacted";
inline constexpr std::string_view kErrFutureRevision = "mvcc: required revision is a future revision";
inline constexpr std::string_view kErrLeaseNotFound = "etcdserver: requested lease not found";
inline constexpr std::string_view kErrLeaseExists = "etcdserver: lease already exists";
inline constexpr std::string_view kErrLeaseTtlTooLarge = "etcdserver: too large lease TTL";
inline constexpr std::string_view kErrKeyNotFound = "etcdserver: key not found";
inline constexpr std::string_view kErrEmptyKey = "etcdserver: key is not provided";
inline constexpr std::string_view kErrValueProvided = "etcdserver: value is provided";
inline constexpr std::string_view kErrLeaseProvided = "etcdserver: lease is provided";
inline constexpr std::string_view kErrDuplicateKey = "etcdserver: duplicate key given in txn request";
inline constexpr std::string_view kErrTooManyOps = "etcdserver: too many operations in txn request";
inline constexpr std::string_view kErrDuplicateWatchId =
    "mvcc: duplicate watch ID provided on the WatchStream";

inline Status CompactedError() { return OutOfRangeError(std::string(kErrCompacted)); }
inline Status FutureRevisionError() { return OutOfRangeError(std::string(kErrFutureRevision)); }
inline Status LeaseNotFoundError() { return NotFoundError(std::string(kErrLeaseNotFound)); }

inline bool IsCompacted(const Status& status) { return status.message() == kErrCompacted; }

}  // namespace cairn::kv
