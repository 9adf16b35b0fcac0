// What etcdctl does around the API, so clusterctl behaves like it: hex lease and member ids, the
// prefix range end, `-w json` output, and the text format of `etcdctl txn`.
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "cairn/common/status.h"
#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::etcdclient {

// Lease and member ids are shown and read in hexadecimal, as etcdctl does ("694d7ff5a2b4c10b").
std::string HexId(uint64_t id);
// Errors: InvalidArgument naming what (e.g. `lease id "xyz" is not hexadecimal`).
Result<uint64_t> ParseHexId(std::string_view text, std::string_view what);

// The range end that selects every key starting with prefix (etcd's GetPrefixRangeEnd): prefix with
// its last byte below 0xff incremented and the rest dropped; "\0" (all keys) when there is none.
std::string PrefixRangeEnd(std::string_view prefix);

// JSON as `etcdctl -w json` prints a message: Go's encoding/json of the generated struct: proto
// field names, zero values left out, 64-bit integers as JSON numbers, bytes base64, enums as numbers.
std::string EtcdctlJson(const google::protobuf::Message& message);

std::string Base64Encode(std::string_view bytes);
// Standard base64 (padding optional). Errors: InvalidArgument for a character outside the alphabet
// or a length that cannot be base64.
Result<std::string> Base64Decode(std::string_view text);

// Parses etcdctl's txn text (what `etcdctl txn` reads from stdin, one item per line):
//   compares, an empty line, success requests, an empty line, failure requests.
//   compare:  value("k") = "v"   version("k") > "0"   create("k") < "5"   mod("k") != "3"   lease("k") = "694d..."
//             (mod/m, create/c, version/ver, value/val, lease; operators = != < >; numbers may be quoted)
//   request:  put KEY VALUE [--lease=HEX] [--prev-kv]
//             get KEY [END] [--prefix] [--from-key] [--limit=N] [--rev=N] [--keys-only] [--count-only]
//             del KEY [END] [--prefix] [--from-key] [--prev-kv]
// Words may be "double quoted" with Go escapes (\" \\ \n \t). Errors: InvalidArgument with the
// line number and what was expected.
Result<etcd::TxnRequest> ParseTxnText(std::string_view text);

}  // namespace cairn::etcdclient
