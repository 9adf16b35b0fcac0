// raft-sim: the deterministic Raft simulator.
//
//   raft-sim --seeds N [--start S] [--nodes K] [--steps M] [--trace]
//       runs seeds S..S+N-1, each a random schedule of M fault ticks followed by a liveness phase and a
//       linearizability check; prints one summary line and exits 0, or on the first violation prints
//       the invariant, the trace tail and the command that replays the seed, and exits 1.
//   raft-sim --scenario NAME      narrates a scripted scenario (--scenario list: the names)
//   --driver-bug skip-sync|stale-read   plants a driver mistake; the run should then find a violation
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include "cluster.h"
#include "scenarios.h"

namespace {

struct Args {
  uint64_t seeds = 1;
  uint64_t start = 1;
  int nodes = 3;
  int steps = 300;
  bool trace = false;
  std::string scenario;
  cairn::sim::DriverBug driver_bug = cairn::sim::DriverBug::kNone;
};

int Usage(const std::string& error) {
  std::cerr << "raft-sim: " << error << "\n"
            << "usage: raft-sim --seeds N [--start S] [--nodes 3|5] [--steps M] [--trace]\n"
            << "       raft-sim --scenario NAME|list\n";
  return 2;
}

bool ParseNumber(const char* text, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value > max) return false;
  *out = value;
  return true;
}

int RunScenarioCommand(const std::string& name) {
  if (name == "list") {
    for (const std::string& known : cairn::sim::ScenarioNames()) std::cout << known << "\n";
    return 0;
  }
  cairn::sim::ScenarioResult result = cairn::sim::RunScenario(name);
  for (const std::string& line : result.narration) std::cout << line << "\n";
  if (!result.ok) std::cerr << "raft-sim: " << result.failure << "\n";
  return result.ok ? 0 : 1;
}

int RunSeeds(const Args& args) {
  std::map<std::string, uint64_t> totals;
  for (uint64_t seed = args.start; seed < args.start + args.seeds; ++seed) {
    cairn::sim::SimOptions options;
    options.seed = seed;
    options.nodes = args.nodes;
    options.fault_ticks = args.steps;
    options.driver_bug = args.driver_bug;
    cairn::sim::Cluster cluster(options);
    if (args.trace) cluster.set_trace_sink([](const std::string& line) { std::cout << line << "\n"; });
    bool ok = cluster.RunRandom();
    for (const auto& [name, value] : cluster.Counters()) totals[name] += value;
    if (ok) {
      if (args.trace) std::cout << "seed " << seed << " ok: " << cluster.Summary() << "\n";
      continue;
    }
    std::cout << "VIOLATION seed=" << seed << " nodes=" << args.nodes << ": " << cluster.violation() << "\n";
    if (!args.trace) {
      std::cout << "--- trace tail ---\n";
      for (const std::string& line : cluster.trace_tail()) std::cout << line << "\n";
    }
    std::cout << "--- replay: raft-sim --seeds 1 --start " << seed << " --nodes " << args.nodes << " --steps "
              << args.steps
              << (args.driver_bug == cairn::sim::DriverBug::kSkipSync    ? " --driver-bug skip-sync"
                  : args.driver_bug == cairn::sim::DriverBug::kStaleRead ? " --driver-bug stale-read"
                                                                         : "")
              << " --trace\n";
    std::cout << "seeds=" << (seed - args.start + 1) << " violations=1 first_failing_seed=" << seed << "\n";
    return 1;
  }
  std::cout << "seeds=" << args.seeds << " violations=0 start=" << args.start << " nodes=" << args.nodes
            << " steps=" << args.steps;
  for (const auto& [name, value] : totals) std::cout << " " << name << "=" << value;
  std::cout << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    auto value = [&](uint64_t max, uint64_t* out) {
      if (i + 1 >= argc || !ParseNumber(argv[i + 1], max, out)) return false;
      ++i;
      return true;
    };
    uint64_t number = 0;
    if (flag == "--seeds") {
      if (!value(100'000'000, &args.seeds) || args.seeds == 0) return Usage("--seeds needs a positive number");
    } else if (flag == "--start") {
      if (!value(UINT64_MAX / 2, &args.start)) return Usage("--start needs a number");
    } else if (flag == "--nodes") {
      if (!value(9, &number) || number < 1) return Usage("--nodes needs a number from 1 to 9");
      args.nodes = static_cast<int>(number);
    } else if (flag == "--steps") {
      if (!value(1'000'000, &number)) return Usage("--steps needs a number of ticks");
      args.steps = static_cast<int>(number);
    } else if (flag == "--driver-bug") {
      std::string_view bug = i + 1 < argc ? argv[++i] : "";
      if (bug == "skip-sync") {
        args.driver_bug = cairn::sim::DriverBug::kSkipSync;
      } else if (bug == "stale-read") {
        args.driver_bug = cairn::sim::DriverBug::kStaleRead;
      } else {
        return Usage("--driver-bug takes skip-sync or stale-read");
      }
    } else if (flag == "--trace") {
      args.trace = true;
    } else if (flag == "--scenario") {
      if (i + 1 >= argc) return Usage("--scenario needs a name (or 'list')");
      args.scenario = argv[++i];
    } else {
      return Usage("unknown argument '" + std::string(flag) + "'");
    }
  }
  if (!args.scenario.empty()) return RunScenarioCommand(args.scenario);
  return RunSeeds(args);
}
