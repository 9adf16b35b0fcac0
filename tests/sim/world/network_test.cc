#include "cairn/sim/network.h"

#include <string>

#include <gtest/gtest.h>

namespace cairn::sim {
namespace {

std::vector<std::string> Drain(Network<std::string>& network, int64_t until) {
  std::vector<std::string> out;
  for (int64_t now = 0; now <= until; ++now) {
    for (auto& delivery : network.TakeDue(now)) out.push_back(delivery.message);
  }
  return out;
}

TEST(NetworkTest, DeliversAfterDelayInSendOrder) {
  Random random(1);
  Network<std::string> network(random);
  network.SetFaults({.min_delay = 2, .max_delay = 2});
  network.Send(1, 2, "a", 0);
  network.Send(1, 2, "b", 0);
  EXPECT_TRUE(network.TakeDue(1).empty());
  auto due = network.TakeDue(2);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].message, "a");
  EXPECT_EQ(due[1].message, "b");
  EXPECT_EQ(due[0].from, 1u);
  EXPECT_EQ(due[0].to, 2u);
  EXPECT_EQ(network.InFlight(), 0u);
}

TEST(NetworkTest, SameSeedSameSchedule) {
  auto run = [](uint64_t seed) {
    Random random(seed);
    Network<std::string> network(random);
    network.SetFaults({.drop_per_mille = 200, .duplicate_per_mille = 200, .min_delay = 0, .max_delay = 9});
    for (int i = 0; i < 200; ++i) network.Send(1, 2, std::to_string(i), i / 10);
    return Drain(network, 100);
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(NetworkTest, RandomDelaysReorderDropAndDuplicate) {
  Random random(3);
  Network<std::string> network(random);
  network.SetFaults({.drop_per_mille = 100, .duplicate_per_mille = 100, .min_delay = 0, .max_delay = 20});
  for (int i = 0; i < 500; ++i) network.Send(1, 2, std::to_string(i), 0);
  std::vector<std::string> got = Drain(network, 100);
  EXPECT_GT(network.stats().dropped, 0u);
  EXPECT_GT(network.stats().duplicated, 0u);
  EXPECT_EQ(got.size(), 500 - network.stats().dropped + network.stats().duplicated);
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end(),
                              [](const std::string& a, const std::string& b) { return std::stoi(a) < std::stoi(b); }));
}

TEST(NetworkTest, PartitionCutsBothWaysAndSwallowsInFlight) {
  Random random(1);
  Network<std::string> network(random);
  network.SetFaults({.min_delay = 5, .max_delay = 5});
  network.Send(1, 3, "in-flight", 0);
  network.Partition({1, 2}, {3});
  network.Send(3, 1, "x", 1);
  network.Send(1, 2, "inside", 1);
  std::vector<std::string> got = Drain(network, 10);
  EXPECT_EQ(got, std::vector<std::string>{"inside"});
  EXPECT_EQ(network.stats().cut, 2u);
  network.HealLinks();
  network.Send(3, 1, "healed", 11);
  EXPECT_EQ(Drain(network, 20), std::vector<std::string>{"healed"});
}

TEST(NetworkTest, OneWayLinkCut) {
  Random random(1);
  Network<std::string> network(random);
  network.SetLink(1, 2, false);
  network.Send(1, 2, "lost", 0);
  network.Send(2, 1, "arrives", 0);
  EXPECT_EQ(Drain(network, 5), std::vector<std::string>{"arrives"});
}

TEST(NetworkTest, DownNodeLosesTraffic) {
  Random random(1);
  Network<std::string> network(random);
  network.Send(1, 2, "before", 0);
  network.SetNodeUp(2, false);
  network.Send(2, 1, "from-down", 0);
  EXPECT_TRUE(Drain(network, 5).empty());
  network.SetNodeUp(2, true);
  network.Send(1, 2, "after", 6);
  EXPECT_EQ(Drain(network, 10), std::vector<std::string>{"after"});
}

TEST(NetworkTest, DelaySpikes) {
  Random random(9);
  Network<std::string> network(random);
  network.SetFaults({.min_delay = 1, .max_delay = 2, .spike_per_mille = 1000, .spike_delay = 50});
  network.Send(1, 2, "slow", 0);
  EXPECT_GE(network.NextDeliveryTime(), 2);
  EXPECT_LE(network.NextDeliveryTime(), 50);
}

}  // namespace
}  // namespace cairn::sim
