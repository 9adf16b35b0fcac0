// The etcd v3 JSON gateway encoding: protobuf's JSON mapping with the proto field names kept
// (keys and values base64, 64-bit integers as decimal strings), and etcd's error bodies.
//
// Error bodies come in three shapes, all understood here:
//   unary call (etcd 3.4 grpc-gateway):  {"error":"etcdserver: ...","code":5,"message":"etcdserver: ..."}
//   unary call (etcd 3.5+):              {"code":5,"message":"..."}
//   inside a server stream:              {"error":{"grpc_code":5,"http_code":404,"message":"...","http_status":"Not Found"}}
// Stream items are {"result":MESSAGE}, one per line.
//
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "cairn/common/status.h"

namespace cairn::etcdclient {

// The gateway's JSON for a message (compact, default values left out, as etcd prints them).
std::string ToJson(const google::protobuf::Message& message);

// Parses gateway JSON into *out (cleared first). Unknown fields are ignored (newer servers add
// fields). Errors: InvalidArgument with protobuf's reason.
Status FromJson(std::string_view json, google::protobuf::Message* out);

// Maps a gRPC status code (what etcd's error JSON carries) to a Status code.
StatusCode StatusCodeFromGrpc(int grpc_code);

// When body is one of the error shapes above, the Status it describes (its message); otherwise nullopt.
std::optional<Status> ParseErrorBody(std::string_view body);

// One line of a server stream: {"result":...} parses into *out; {"error":...} returns that error;
// anything else is InvalidArgument.
Status ParseStreamItem(std::string_view line, google::protobuf::Message* out);

}  // namespace cairn::etcdclient
