// JSON <-> protobuf as etcd's grpc-gateway does it, and etcd's error bodies. Internal to the
// gateway; pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/status.hpp>
#include <google/protobuf/message.h>

#include "cairn/common/status.h"

namespace cairn::coord::json {

// Parses one request body into `message`. An empty body (or `null`) is the empty message, as in
// grpc-gateway. Unknown fields, bad base64, malformed JSON and trailing data are InvalidArgument
// (etcd 3.4 ignores unknown fields; Cairn refuses them so typos are not silently dropped).
Status Decode(std::string_view body, google::protobuf::Message* message);

// Replaces *out with the message's JSON (proto field names, zero values omitted, as etcd prints).
void Encode(const google::protobuf::Message& message, std::string* out);

// Splits a body holding a sequence of JSON objects (what /v3/watch reads) into the objects'
// texts. Errors: InvalidArgument when the text is not a sequence of balanced {...} objects.
Result<std::vector<std::string_view>> SplitObjects(std::string_view body);

struct ErrorReply {
  boost::beast::http::status http_status;
  int grpc_code;
  std::string message;
};

// The gRPC code, HTTP status (grpc-gateway's HTTPStatusFromCode) and message etcd would send for
// `status`; mvcc errors get etcd's "etcdserver: " prefix as its gRPC layer adds it.
ErrorReply MapError(const Status& status);

// Standard base64 with padding (what protobuf's JSON mapping uses for bytes).
std::string Base64(std::string_view bytes);

// {"error":MSG,"message":MSG,"code":N}, in etcd 3.4's field order.
std::string ErrorBody(std::string_view message, int grpc_code);

}  // namespace cairn::coord::json
