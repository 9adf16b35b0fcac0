#include "cairn/common/logging.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace cairn::log {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = "/tmp/cairn-logging-test-" + std::to_string(getpid()) + ".log"; }
  void TearDown() override {
    std::remove(path_.c_str());
    ASSERT_TRUE(Init(Options{}).ok());
  }
  std::string path_;
};

TEST_F(LoggingTest, TextLinesAreEventThenKeyValues) {
  ASSERT_TRUE(Init({.level = "debug", .format = Format::kText, .file = path_, .component = "test"}).ok());
  Info("raft.elected", "term", 5, "node", "n1", "note", "two words");
  Debug("debug.event", "ok", true);
  Trace("hidden.event");
  spdlog::default_logger()->flush();
  std::string text = ReadFile(path_);
  EXPECT_NE(text.find(" I raft.elected component=test term=5 node=n1 note=\"two words\"\n"), std::string::npos) << text;
  EXPECT_NE(text.find("debug.event component=test ok=true"), std::string::npos) << text;
  EXPECT_EQ(text.find("hidden.event"), std::string::npos);
}

TEST_F(LoggingTest, JsonLinesAreObjects) {
  ASSERT_TRUE(Init({.level = "info", .format = Format::kJson, .file = path_}).ok());
  Warn("disk.slow", "path", "/var/\"x\"", "ms", 12);
  spdlog::default_logger()->flush();
  std::string text = ReadFile(path_);
  EXPECT_NE(text.find("\"level\":\"warning\",\"event\":\"disk.slow\",\"path\":\"/var/\\\"x\\\"\",\"ms\":\"12\"}\n"),
            std::string::npos)
      << text;
}

TEST_F(LoggingTest, InfoLinesReachTheFileWithoutAnExplicitFlush) {
  ASSERT_TRUE(Init({.level = "info", .format = Format::kText, .file = path_}).ok());
  Info("service.started", "port", 1234);
  EXPECT_NE(ReadFile(path_).find("service.started port=1234"), std::string::npos);
}

TEST_F(LoggingTest, RejectsUnknownLevelAndFormat) {
  EXPECT_FALSE(Init({.level = "loud"}).ok());
  EXPECT_FALSE(ParseFormat("xml").ok());
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
}

TEST(QuoteValueTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(QuoteValue("plain"), "plain");
  EXPECT_EQ(QuoteValue(""), "\"\"");
  EXPECT_EQ(QuoteValue("a=b"), "\"a=b\"");
  EXPECT_EQ(QuoteValue("line\nbreak"), "\"line\\nbreak\"");
}

}  // namespace
}  // namespace cairn::log
