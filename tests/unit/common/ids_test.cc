#include "cairn/common/ids.h"

#include <set>

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(IdsTest, UuidsAreWellFormedVersion4AndDistinct) {
  Random random(42);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string uuid = NewUuid(random);
    ASSERT_TRUE(IsUuid(uuid)) << uuid;
    EXPECT_EQ(uuid[14], '4');
    EXPECT_TRUE(seen.insert(uuid).second);
  }
}

TEST(IdsTest, SeededRandomRepeats) {
  Random a(5), b(5);
  EXPECT_EQ(NewUuid(a), NewUuid(b));
}

TEST(IdsTest, IsUuidRejectsMalformedText) {
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42661417400g"));
  EXPECT_TRUE(IsUuid("123E4567-E89B-12D3-A456-426614174000"));
}

TEST(IdsTest, HexIdsRoundTrip) {
  EXPECT_EQ(IdToHex(0x8e9e05c52164694dULL), "8e9e05c52164694d");
  EXPECT_EQ(*IdFromHex("8e9e05c52164694d"), 0x8e9e05c52164694dULL);
  EXPECT_EQ(*IdFromHex("FF"), 255u);
  EXPECT_FALSE(IdFromHex("xyz").ok());
  EXPECT_FALSE(IdFromHex("12345678901234567").ok());
  EXPECT_FALSE(IdFromHex("").ok());
}

TEST(IdsTest, NewId64IsNeverZero) {
  Random random(1);
  for (int i = 0; i < 100; ++i) EXPECT_NE(NewId64(random), 0u);
}

TEST(IdsTest, SecureRandomHexHasTheRequestedLength) {
  auto hex = SecureRandomHex(16);
  ASSERT_TRUE(hex.ok());
  EXPECT_EQ(hex->size(), 32u);
  EXPECT_NE(*hex, *SecureRandomHex(16));
}

}  // namespace
}  // namespace cairn
