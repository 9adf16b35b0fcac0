#include "cairn/net/frame.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::net {
namespace {

proto::Frame Request(uint64_t call_id, std::string method, std::string payload) {
  proto::Frame frame;
  frame.set_call_id(call_id);
  frame.set_kind(proto::Frame::REQUEST);
  frame.set_method(std::move(method));
  frame.set_payload(std::move(payload));
  return frame;
}

std::string Encoded(const proto::Frame& frame) {
  auto encoded = EncodeFrame(frame);
  EXPECT_TRUE(encoded.ok()) << encoded.status();
  return encoded.value_or("");
}

std::string Header(uint32_t length) {
  return std::string{static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                     static_cast<char>(length >> 8), static_cast<char>(length)};
}

// Drains every complete frame; fails the test on a decoder error.
std::vector<proto::Frame> Drain(FrameDecoder& decoder) {
  std::vector<proto::Frame> frames;
  while (true) {
    auto next = decoder.Next();
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || !next->has_value()) return frames;
    frames.push_back(std::move(**next));
  }
}

TEST(FrameTest, HeaderIsBigEndianLengthOfBody) {
  proto::Frame frame = Request(7, "kv.Put", "hello");
  std::string encoded = Encoded(frame);
  ASSERT_EQ(encoded.size(), kFrameHeaderSize + frame.ByteSizeLong());
  EXPECT_EQ(encoded.substr(0, 4), Header(static_cast<uint32_t>(frame.ByteSizeLong())));
}

TEST(FrameTest, RoundTripsOneFrame) {
  FrameDecoder decoder;
  decoder.Feed(Encoded(Request(42, "raft.Append", std::string("\0\1\2", 3))));
  auto frames = Drain(decoder);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].call_id(), 42u);
  EXPECT_EQ(frames[0].kind(), proto::Frame::REQUEST);
  EXPECT_EQ(frames[0].method(), "raft.Append");
  EXPECT_EQ(frames[0].payload(), std::string("\0\1\2", 3));
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
}

TEST(FrameTest, SplitAtEveryByteBoundary) {
  std::string stream = Encoded(Request(1, "a", "first")) + Encoded(Request(2, "b", std::string(300, 'x')));
  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder decoder;
    decoder.Feed(stream.substr(0, split));
    auto frames = Drain(decoder);
    decoder.Feed(stream.substr(split));
    auto rest = Drain(decoder);
    frames.insert(frames.end(), rest.begin(), rest.end());
    ASSERT_EQ(frames.size(), 2u) << "split at " << split;
    EXPECT_EQ(frames[0].payload(), "first");
    EXPECT_EQ(frames[1].payload(), std::string(300, 'x'));
  }
}

TEST(FrameTest, ByteAtATime) {
  std::string stream = Encoded(Request(1, "a", "one")) + Encoded(Request(2, "b", "two"));
  FrameDecoder decoder;
  std::vector<proto::Frame> frames;
  for (char c : stream) {
    decoder.Feed(std::string_view(&c, 1));
    auto got = Drain(decoder);
    frames.insert(frames.end(), got.begin(), got.end());
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].payload(), "two");
}

TEST(FrameTest, ManyFramesInOneBuffer) {
  std::string stream;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(AppendEncodedFrame(Request(i, "m", std::to_string(i)), &stream).ok());
  FrameDecoder decoder;
  decoder.Feed(stream);
  auto frames = Drain(decoder);
  ASSERT_EQ(frames.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(frames[i].payload(), std::to_string(i));
}

TEST(FrameTest, EmptyBodyIsAnInvalidKind) {
  FrameDecoder decoder;
  decoder.Feed(Header(0));
  auto next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kCorruption);
}

TEST(FrameTest, OversizedHeaderFailsBeforeTheBodyArrives) {
  FrameDecoder decoder(1024);
  decoder.Feed(Header(1025));
  auto next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kResourceExhausted);
  // Sticky, and feeding more does not grow the buffer.
  decoder.Feed(std::string(4096, 'x'));
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_FALSE(decoder.Next().ok());
}

TEST(FrameTest, FourGibHeaderIsRejected) {
  FrameDecoder decoder;
  decoder.Feed(Header(0xffffffffu));
  auto next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kResourceExhausted);
}

TEST(FrameTest, FrameAtExactlyTheLimitIsAccepted) {
  proto::Frame frame = Request(1, "m", std::string(100, 'p'));
  size_t size = frame.ByteSizeLong();
  FrameDecoder decoder(size);
  decoder.Feed(Encoded(frame));
  EXPECT_EQ(Drain(decoder).size(), 1u);
}

TEST(FrameTest, CorruptBodyIsAnError) {
  FrameDecoder decoder;
  std::string body = "\xff\xff\xff\xff\xff";  // a varint that never ends
  decoder.Feed(Header(static_cast<uint32_t>(body.size())) + body);
  auto next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), StatusCode::kCorruption);
}

TEST(FrameTest, RequestWithoutMethodIsAnError) {
  FrameDecoder decoder;
  decoder.Feed(Encoded(Request(1, "", "x")));
  EXPECT_FALSE(decoder.Next().ok());
}

TEST(FrameTest, UnknownKindIsAnError) {
  proto::Frame frame = Request(1, "m", "x");
  frame.set_kind(static_cast<proto::Frame::Kind>(99));
  FrameDecoder decoder;
  decoder.Feed(Encoded(frame));
  auto next = decoder.Next();
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("99"), std::string::npos);
}

TEST(FrameTest, EncoderRefusesOversizedFrame) {
  std::string out = "keep";
  Status status = AppendEncodedFrame(Request(1, "m", std::string(2000, 'x')), &out, 1000);
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(out, "keep");
}

TEST(FrameTest, StatusRoundTrip) {
  Status status = NotFoundError("no key");
  EXPECT_EQ(StatusFromProto(StatusToProto(status)), status);
  EXPECT_TRUE(StatusFromProto(StatusToProto(Status::Ok())).ok());
  proto::StatusProto weird;
  weird.set_code(1000);
  EXPECT_EQ(StatusFromProto(weird).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace cairn::net
