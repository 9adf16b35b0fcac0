#include "cairn/etcdclient/json.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

namespace cairn::etcdclient {
namespace {

namespace pb = google::protobuf;

Result<pb::Struct> ParseObject(std::string_view json) {
  pb::Struct object;
  pb::util::JsonParseOptions options;
  auto status = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), &object, options);
  if (!status.ok()) return InvalidArgumentError("not a JSON object: " + std::string(status.message()));
  return object;
}

const pb::Value* Field(const pb::Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? nullptr : &it->second;
}

int NumberField(const pb::Struct& object, const std::string& name) {
  const pb::Value* value = Field(object, name);
  if (value == nullptr || value->kind_case() != pb::Value::kNumberValue) return -1;
  return static_cast<int>(value->number_value());
}

std::string StringField(const pb::Struct& object, const std::string& name) {
  const pb::Value* value = Field(object, name);
  return value != nullptr && value->kind_case() == pb::Value::kStringValue ? value->string_value() : std::string();
}

// Reads the error carried by an object, if it has the shape of one.
std::optional<Status> ErrorFromObject(const pb::Struct& object) {
  const pb::Value* error = Field(object, "error");
  if (error != nullptr && error->kind_case() == pb::Value::kStructValue) {  // stream shape
    const pb::Struct& inner = error->struct_value();
    std::string message = StringField(inner, "message");
    return Status(StatusCodeFromGrpc(NumberField(inner, "grpc_code")), message.empty() ? "error" : message);
  }
  int code = NumberField(object, "code");
  std::string message = StringField(object, "message");
  if (message.empty()) message = StringField(object, "error");
  if (code < 0 || message.empty()) return std::nullopt;
  if (code == 0) code = 2;  // an error body with code OK is still an error
  return Status(StatusCodeFromGrpc(code), message);
}

}  // namespace

std::string ToJson(const pb::Message& message) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)pb::util::MessageToJsonString(message, &out, options);  // fails only for Any without a resolver
  return out;
}

Status FromJson(std::string_view json, pb::Message* out) {
  out->Clear();
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), out, options);
  if (!status.ok()) {
    return InvalidArgumentError("bad " + out->GetDescriptor()->name() + " JSON: " + std::string(status.message()));
  }
  return Status::Ok();
}

StatusCode StatusCodeFromGrpc(int grpc_code) {
  switch (grpc_code) {
    case 1: return StatusCode::kCancelled;
    case 3: return StatusCode::kInvalidArgument;
    case 4: return StatusCode::kDeadlineExceeded;
    case 5: return StatusCode::kNotFound;
    case 6: return StatusCode::kAlreadyExists;
    case 7: return StatusCode::kPermissionDenied;
    case 8: return StatusCode::kResourceExhausted;
    case 9: return StatusCode::kFailedPrecondition;
    case 10: return StatusCode::kAborted;
    case 11: return StatusCode::kOutOfRange;
    case 12: return StatusCode::kUnimplemented;
    case 14: return StatusCode::kUnavailable;
    case 16: return StatusCode::kUnauthenticated;
    default: return StatusCode::kInternal;  // 2 (unknown), 13, 15 and anything unexpected
  }
}

std::optional<Status> ParseErrorBody(std::string_view body) {
  auto object = ParseObject(body);
  if (!object.ok()) return std::nullopt;
  return ErrorFromObject(*object);
}

Status ParseStreamItem(std::string_view line, pb::Message* out) {
  CAIRN_ASSIGN_OR_RETURN(pb::Struct object, ParseObject(line));
  const pb::Value* result = Field(object, "result");
  if (result != nullptr && result->kind_case() == pb::Value::kStructValue) {
    std::string inner;
    (void)pb::util::MessageToJsonString(result->struct_value(), &inner);
    return FromJson(inner, out);
  }
  if (auto error = ErrorFromObject(object)) return *error;
  return InvalidArgumentError("stream item is neither a result nor an error: " + std::string(line.substr(0, 200)));
}

}  // namespace cairn::etcdclient
