#include "cairn/common/crc32c.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "cairn/common/ids.h"

namespace cairn::crc32c {
namespace {

// Test vectors from RFC 3720 (iSCSI), section B.4.
TEST(Crc32cTest, MatchesRfc3720Vectors) {
  char zeros[32];
  std::memset(zeros, 0, sizeof zeros);
  EXPECT_EQ(Value(zeros, sizeof zeros), 0x8a9136aau);
  char ones[32];
  std::memset(ones, 0xff, sizeof ones);
  EXPECT_EQ(Value(ones, sizeof ones), 0x62a8ab43u);
  char ascending[32];
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Value(ascending, sizeof ascending), 0x46dd794eu);
  EXPECT_EQ(Value("123456789"), 0xe3069283u);
}

TEST(Crc32cTest, ExtendEqualsWholeValue) {
  std::string data = "hello, write-ahead log";
  uint32_t whole = Value(data);
  for (size_t split = 0; split <= data.size(); ++split) {
    EXPECT_EQ(Extend(Value(data.data(), split), data.data() + split, data.size() - split), whole);
  }
}

TEST(Crc32cTest, HardwareAndPortableAgree) {
  Random random(7);
  for (int round = 0; round < 200; ++round) {
    std::string data(random.Uniform(300), '\0');
    for (char& c : data) c = static_cast<char>(random.Next());
    EXPECT_EQ(Extend(0, data.data(), data.size()), ExtendPortable(0, data.data(), data.size()));
  }
}

TEST(Crc32cTest, MaskRoundTripsAndDiffers) {
  uint32_t crc = Value("abc");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
}

}  // namespace
}  // namespace cairn::crc32c
