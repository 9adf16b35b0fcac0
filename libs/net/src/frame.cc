#include "cairn/net/frame.h"

#include <string>

namespace cairn::net {
namespace {

uint32_t ReadBigEndian32(const char* bytes) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

void AppendBigEndian32(uint32_t value, std::string* out) {
  char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                   static_cast<char>(value >> 8), static_cast<char>(value)};
  out->append(bytes, 4);
}

bool IsPrintableName(const std::string& name) {
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

Status ValidateFrame(const proto::Frame& frame) {
  switch (frame.kind()) {
    case proto::Frame::REQUEST:
    case proto::Frame::ONEWAY:
      if (frame.method().empty()) return CorruptionError("frame has no method name");
      if (frame.method().size() > kMaxMethodSize) {
        return CorruptionError("method name is " + std::to_string(frame.method().size()) +
                               " bytes, more than " + std::to_string(kMaxMethodSize));
      }
      if (!IsPrintableName(frame.method())) return CorruptionError("method name is not printable ASCII");
      return Status::Ok();
    case proto::Frame::RESPONSE:
    case proto::Frame::HELLO:
      return Status::Ok();
    default:
      return CorruptionError("frame kind " + std::to_string(static_cast<int>(frame.kind())) + " is unknown");
  }
}

Status AppendEncodedFrame(const proto::Frame& frame, std::string* out, size_t max_frame_size) {
  size_t size = frame.ByteSizeLong();
  if (size > max_frame_size) {
    return ResourceExhaustedError("frame of " + std::to_string(size) + " bytes exceeds the limit of " +
                                  std::to_string(max_frame_size));
  }
  size_t start = out->size();
  out->reserve(start + kFrameHeaderSize + size);
  AppendBigEndian32(static_cast<uint32_t>(size), out);
  out->resize(start + kFrameHeaderSize + size);
  if (!frame.SerializeToArray(out->data() + start + kFrameHeaderSize, static_cast<int>(size))) {
    out->resize(start);
    return InternalError("frame failed to serialize");
  }
  return Status::Ok();
}

Result<std::string> EncodeFrame(const proto::Frame& frame, size_t max_frame_size) {
  std::string out;
  CAIRN_RETURN_IF_ERROR(AppendEncodedFrame(frame, &out, max_frame_size));
  return out;
}

proto::StatusProto StatusToProto(const Status& status) {
  proto::StatusProto out;
  out.set_code(static_cast<int32_t>(status.code()));
  out.set_message(status.message());
  return out;
}

Status StatusFromProto(const proto::StatusProto& status) {
  int32_t code = status.code();
  if (code == 0) return Status::Ok();
  if (code < 0 || code > static_cast<int32_t>(StatusCode::kUnauthenticated)) {
    return InternalError("unknown status code " + std::to_string(code) + " from peer: " + status.message());
  }
  return Status(static_cast<StatusCode>(code), status.message());
}

FrameDecoder::FrameDecoder(size_t max_frame_size) : max_frame_size_(max_frame_size) {}

void FrameDecoder::Feed(std::string_view bytes) {
  if (failed()) return;  // the stream is already unusable; do not grow the buffer
  Compact();
  buffer_.append(bytes.data(), bytes.size());
}

// Drops the consumed prefix so the buffer holds only pending bytes. Done lazily, before appending,
// so a burst of small frames in one read costs one move rather than one per frame.
void FrameDecoder::Compact() {
  if (consumed_ == 0) return;
  buffer_.erase(0, consumed_);
  consumed_ = 0;
}

Status FrameDecoder::Fail(Status status) {
  error_ = status;
  buffer_.clear();
  buffer_.shrink_to_fit();
  consumed_ = 0;
  return status;
}

Result<std::optional<proto::Frame>> FrameDecoder::Next() {
  if (failed()) return error_;
  size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderSize) return std::optional<proto::Frame>();
  const char* start = buffer_.data() + consumed_;
  uint32_t length = ReadBigEndian32(start);
  if (length > max_frame_size_) {
    return Fail(ResourceExhaustedError("frame header announces " + std::to_string(length) +
                                       " bytes, more than the limit of " + std::to_string(max_frame_size_)));
  }
  if (available - kFrameHeaderSize < length) return std::optional<proto::Frame>();
  proto::Frame frame;
  if (!frame.ParseFromArray(start + kFrameHeaderSize, static_cast<int>(length))) {
    return Fail(CorruptionError("frame body of " + std::to_string(length) + " bytes is not a valid Frame"));
  }
  Status valid = ValidateFrame(frame);
  if (!valid.ok()) return Fail(valid);
  consumed_ += kFrameHeaderSize + length;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return std::optional<proto::Frame>(std::move(frame));
}

}  // namespace cairn::net
