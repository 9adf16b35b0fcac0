// libFuzzer target for FrameDecoder. The first input byte picks how the rest is cut into Feed()
// calls, so split-point bugs are explored too. Checks: no crash, no unbounded buffering, and every
// decoded frame re-encodes and decodes to the same frame.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <google/protobuf/stubs/logging.h>

#include "cairn/net/frame.h"

namespace {

constexpr size_t kMaxFrameSize = 1 << 16;  // small, so the oversized path is reachable

void CheckReencodes(const cairn::proto::Frame& frame) {
  auto encoded = cairn::net::EncodeFrame(frame, kMaxFrameSize);
  if (!encoded.ok()) std::abort();
  cairn::net::FrameDecoder again(kMaxFrameSize);
  again.Feed(*encoded);
  auto next = again.Next();
  if (!next.ok() || !next->has_value()) std::abort();
  if ((*next)->SerializeAsString() != frame.SerializeAsString()) std::abort();
}

}  // namespace

// Protobuf logs every invalid UTF-8 string field it rejects; that is expected here and only noise.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = static_cast<size_t>(data[0] % 16) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  cairn::net::FrameDecoder decoder(kMaxFrameSize);
  for (size_t at = 0; at < input.size(); at += chunk) {
    decoder.Feed(input.substr(at, chunk));
    while (true) {
      auto next = decoder.Next();
      if (!next.ok()) return 0;
      if (!next->has_value()) break;
      CheckReencodes(**next);
    }
    if (decoder.buffered_bytes() > kMaxFrameSize + cairn::net::kFrameHeaderSize + chunk) std::abort();
  }
  return 0;
}
