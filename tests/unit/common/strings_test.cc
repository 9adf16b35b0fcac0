#include "cairn/common/strings.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

using namespace std::chrono_literals;

TEST(StringsTest, SplitKeepsEmptyParts) {
  EXPECT_EQ(Split("a:b::c", ':'), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(Split("", ':'), (std::vector<std::string>{""}));
}

TEST(StringsTest, Trim) {
  EXPECT_EQ(Trim("  a b \n"), "a b");
  EXPECT_EQ(Trim("   "), "");
}

TEST(HostPortTest, ParsesNamesV4AndV6) {
  auto a = ParseHostPort("127.0.0.1:2379");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2379);
  auto b = ParseHostPort("node-1.example:80");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "node-1.example");
  auto c = ParseHostPort("[::1]:7000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:7000");
}

TEST(HostPortTest, ErrorsSayWhatIsWrong) {
  auto bad = ParseHostPort("10.0.0.2:foo");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "\"10.0.0.2:foo\" is not host:port (port \"foo\" is not a number)");
  EXPECT_FALSE(ParseHostPort("10.0.0.2").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("host:0").ok());
  EXPECT_TRUE(ParseHostPort("host:0", /*allow_zero=*/true).ok());
  EXPECT_FALSE(ParseHostPort("host:65536").ok());
  EXPECT_FALSE(ParseHostPort("::1:80").ok());
  EXPECT_FALSE(ParseHostPort("a b:80").ok());
}

TEST(StringsTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3ULL << 30), "3.0 GiB");
}

TEST(StringsTest, ParseDuration) {
  EXPECT_EQ(*ParseDuration("500ms"), 500ms);
  EXPECT_EQ(*ParseDuration("2m"), 120s);
  EXPECT_FALSE(ParseDuration("5").ok());
  EXPECT_FALSE(ParseDuration("ms").ok());
  EXPECT_FALSE(ParseDuration("5 parsecs").ok());
}

}  // namespace
}  // namespace cairn
