// Golden traces: each scripted scenario's narration is compared with tests/sim/golden/NAME.txt.
// A difference is either a bug or an intended behaviour change in libs/raft; read the diff, then
// rewrite the files with CAIRN_UPDATE_GOLDEN=1 (e.g. `CAIRN_UPDATE_GOLDEN=1 ctest -R Golden`).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "scenarios.h"

namespace cairn::sim {
namespace {

std::string GoldenPath(const std::string& name) { return std::string(CAIRN_SIM_GOLDEN_DIR) + "/" + name + ".txt"; }

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// First differing line, for a readable failure instead of two whole files.
std::string FirstDifference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string line_a, line_b;
  for (int line = 1;; ++line) {
    bool more_a = static_cast<bool>(std::getline(a, line_a));
    bool more_b = static_cast<bool>(std::getline(b, line_b));
    if (!more_a && !more_b) return "identical";
    if (!more_a || !more_b || line_a != line_b) {
      return "line " + std::to_string(line) + ":\n  golden: " + (more_a ? line_a : "<end>") +
             "\n  actual: " + (more_b ? line_b : "<end>");
    }
  }
}

class GoldenScenario : public testing::TestWithParam<std::string> {};

TEST_P(GoldenScenario, NarrationMatchesGolden) {
  const std::string& name = GetParam();
  ScenarioResult result = RunScenario(name);
  EXPECT_TRUE(result.ok) << result.failure;
  std::string actual = Join(result.narration);
  const char* update = std::getenv("CAIRN_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(GoldenPath(name)) << actual;
    GTEST_SKIP() << "rewrote " << GoldenPath(name);
  }
  std::ifstream in(GoldenPath(name));
  ASSERT_TRUE(in.good()) << "no golden file " << GoldenPath(name) << "; create it with CAIRN_UPDATE_GOLDEN=1";
  std::stringstream golden;
  golden << in.rdbuf();
  EXPECT_EQ(golden.str(), actual) << FirstDifference(golden.str(), actual)
                                  << "\n(rewrite with CAIRN_UPDATE_GOLDEN=1 if the change is intended)";
}

INSTANTIATE_TEST_SUITE_P(Scenarios, GoldenScenario, testing::ValuesIn(ScenarioNames()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(Scenarios, UnknownNameIsAClearError) {
  ScenarioResult result = RunScenario("no-such-scenario");
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.failure.find("leader-crash"), std::string::npos);
}

}  // namespace
}  // namespace cairn::sim
