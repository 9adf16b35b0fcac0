// The wire format of the transport: each frame is a 4-byte big-endian length N followed by N bytes,
// a serialized cairn.proto.Frame (libs/net/README.md has the full specification).
//
// This header is pure (no sockets, no Asio, no threads) so the fuzzer and other tools can link
// the decoder alone (target cairn_net_frame).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/proto/net.pb.h"

namespace cairn::net {

inline constexpr size_t kFrameHeaderSize = 4;
// Default upper bound on N. Big enough for a Raft snapshot chunk, small enough that a peer
// cannot make us allocate gigabytes by lying in a header.
inline constexpr size_t kDefaultMaxFrameSize = size_t{64} << 20;
// Method names longer than this are rejected; they are identifiers, not data.
inline constexpr size_t kMaxMethodSize = 256;

// Checks the fields a receiver relies on: a known kind, and for REQUEST/ONEWAY a method name of
// 1..kMaxMethodSize printable ASCII characters. Returns Corruption with the reason otherwise.
Status ValidateFrame(const proto::Frame& frame);

// Appends header + serialized frame to *out. Returns ResourceExhausted (and appends nothing) when
// the serialized frame is larger than max_frame_size.
Status AppendEncodedFrame(const proto::Frame& frame, std::string* out,
                          size_t max_frame_size = kDefaultMaxFrameSize);

// Convenience: the encoded frame alone. Same errors as AppendEncodedFrame.
Result<std::string> EncodeFrame(const proto::Frame& frame, size_t max_frame_size = kDefaultMaxFrameSize);

// Status <-> StatusProto. Unknown codes from the wire become Internal with the code in the message.
proto::StatusProto StatusToProto(const Status& status);
Status StatusFromProto(const proto::StatusProto& status);

// Incremental decoder: feed bytes as they arrive (in pieces of any size), pull whole frames.
//
// A header whose length exceeds max_frame_size is an error as soon as its 4 bytes are in: the
// decoder never buffers more than one frame's worth of the bytes it was actually given, so a lying
// header costs nothing. Errors are sticky: after the first error every Next() returns it again,
// because the stream position is lost and the connection must be dropped.
//
// Not thread-safe; one decoder per connection.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_frame_size = kDefaultMaxFrameSize);

  // Appends bytes to the internal buffer. Cheap when called after Next() has drained frames.
  void Feed(std::string_view bytes);
  void Feed(const void* data, size_t size) { Feed(std::string_view(static_cast<const char*>(data), size)); }

  // The next whole frame; std::nullopt when more bytes are needed. Errors:
  //   ResourceExhausted - the header announces more than max_frame_size bytes;
  //   Corruption        - the body does not parse as a Frame, or fails ValidateFrame.
  Result<std::optional<proto::Frame>> Next();

  // Bytes fed but not yet returned as frames.
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }
  size_t max_frame_size() const { return max_frame_size_; }
  bool failed() const { return !error_.ok(); }

 private:
  Status Fail(Status status);
  void Compact();

  size_t max_frame_size_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes at the front of buffer_ already returned as frames
  Status error_;
};

}  // namespace cairn::net
