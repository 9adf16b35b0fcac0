#include "json_codec.h"

#include <google/protobuf/util/json_util.h>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"

namespace cairn::coord::json {
namespace {

namespace http = boost::beast::http;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// gRPC status codes (grpc/codes).
enum GrpcCode {
  kOk = 0, kCancelled = 1, kUnknown = 2, kInvalidArgument = 3, kDeadlineExceeded = 4,
  kNotFound = 5, kAlreadyExists = 6, kPermissionDenied = 7, kResourceExhausted = 8,
  kFailedPrecondition = 9, kAborted = 10, kOutOfRange = 11, kUnimplemented = 12,
  kInternal = 13, kUnavailable = 14, kDataLoss = 15, kUnauthenticated = 16,
};

int GrpcCodeOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return kOk;
    case StatusCode::kCancelled: return kCancelled;
    case StatusCode::kInvalidArgument: return kInvalidArgument;
    case StatusCode::kDeadlineExceeded: return kDeadlineExceeded;
    case StatusCode::kNotFound: return kNotFound;
    // etcd sends "lease already exists" as FailedPrecondition (rpctypes.ErrGRPCLeaseExist).
    case StatusCode::kAlreadyExists: return kFailedPrecondition;
    case StatusCode::kPermissionDenied: return kPermissionDenied;
    case StatusCode::kResourceExhausted: return kResourceExhausted;
    case StatusCode::kFailedPrecondition: return kFailedPrecondition;
    case StatusCode::kAborted: return kAborted;
    case StatusCode::kOutOfRange: return kOutOfRange;
    case StatusCode::kUnimplemented: return kUnimplemented;
    case StatusCode::kInternal: return kInternal;
    case StatusCode::kUnavailable: return kUnavailable;
    case StatusCode::kCorruption: return kDataLoss;
    case StatusCode::kIoError: return kInternal;
    case StatusCode::kUnauthenticated: return kUnauthenticated;
  }
  return kUnknown;
}

// grpc-gateway v1 runtime.HTTPStatusFromCode.
http::status HttpStatusOf(int grpc_code) {
  switch (grpc_code) {
    case kOk: return http::status::ok;
    case kCancelled: return http::status::request_timeout;
    case kInvalidArgument: return http::status::bad_request;
    case kDeadlineExceeded: return http::status::gateway_timeout;
    case kNotFound: return http::status::not_found;
    case kAlreadyExists: return http::status::conflict;
    case kPermissionDenied: return http::status::forbidden;
    case kUnauthenticated: return http::status::unauthorized;
    case kResourceExhausted: return http::status::too_many_requests;
    case kFailedPrecondition: return http::status::bad_request;
    case kAborted: return http::status::conflict;
    case kOutOfRange: return http::status::bad_request;
    case kUnimplemented: return http::status::not_implemented;
    case kUnavailable: return http::status::service_unavailable;
    default: return http::status::internal_server_error;
  }
}

}  // namespace

Status Decode(std::string_view body, google::protobuf::Message* message) {
  std::string_view text = Trim(body);
  if (text.empty() || text == "null") {
    message->Clear();
    return Status::Ok();
  }
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), message, options);
  if (!status.ok()) {
    // Protobuf's parser appends a multi-line caret diagram; keep the first line.
    std::string_view reason(status.message().data(), status.message().size());
    reason = Trim(reason.substr(0, reason.find('\n')));
    return InvalidArgumentError("invalid JSON for " + message->GetDescriptor()->full_name() + ": " +
                                std::string(reason));
  }
  return Status::Ok();
}

void Encode(const google::protobuf::Message& message, std::string* out) {
  out->clear();
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = false;
  // Cannot fail for a message of a compiled-in type (no Any fields to resolve).
  (void)google::protobuf::util::MessageToJsonString(message, out, options);
}

Result<std::vector<std::string_view>> SplitObjects(std::string_view body) {
  std::vector<std::string_view> objects;
  size_t i = 0;
  while (i < body.size()) {
    if (IsSpace(body[i])) {
      ++i;
      continue;
    }
    if (body[i] != '{') return InvalidArgumentError("invalid JSON: expected '{' at byte " + std::to_string(i));
    size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < body.size(); ++i) {
      char c = body[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) break;
      }
    }
    if (i >= body.size()) return InvalidArgumentError("invalid JSON: unexpected end of input");
    objects.push_back(body.substr(start, i + 1 - start));
    ++i;
  }
  return objects;
}

ErrorReply MapError(const Status& status) {
  int code = GrpcCodeOf(status.code());
  std::string message = status.message();
  if (StartsWith(message, "mvcc: ")) message = "etcdserver: " + message;
  return ErrorReply{HttpStatusOf(code), code, std::move(message)};
}

std::string ErrorBody(std::string_view message, int grpc_code) {
  std::string escaped = log::JsonEscape(message);
  std::string body;
  body.reserve(escaped.size() * 2 + 40);
  body.append("{\"error\":\"").append(escaped).append("\",\"message\":\"").append(escaped);
  body.append("\",\"code\":").append(std::to_string(grpc_code)).append("}");
  return body;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                 (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) | static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (i + 1 < bytes.size()) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace cairn::coord::json
