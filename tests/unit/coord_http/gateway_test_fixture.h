// A gateway over a ScriptedApi over a LocalCoordApi with a FakeClock, on 127.0.0.1:0, with an
// io_context run by two threads (so strand safety is exercised).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/coord/http_gateway.h"
#include "cairn/coord/local_coord_api.h"
#include "scripted_api.h"
#include "test_client.h"

namespace cairn::coord::testing {

template <typename Message>
Message ParseJson(const std::string& text) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(text, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << text;
  return message;
}

// Waits for `condition` up to 5 s, polling; returns its last value.
template <typename Fn>
bool WaitFor(Fn condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override { StartGateway(GatewayOptions{}); }

  void StartGateway(GatewayOptions options) {
    gateway_ = std::make_unique<HttpGateway>(io_, scripted_, HostPort{"127.0.0.1", 0}, std::move(options));
    ASSERT_TRUE(gateway_->Start().ok());
    ASSERT_NE(gateway_->port(), 0);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  void TearDown() override {
    gateway_->Stop();
    EXPECT_TRUE(WaitFor([&] { return gateway_->connection_count() == 0; }));
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  uint16_t port() const { return gateway_->port(); }

  FakeClock clock_;
  LocalCoordApi local_{clock_};
  ScriptedApi scripted_{local_};
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      boost::asio::make_work_guard(io_)};
  std::unique_ptr<HttpGateway> gateway_;
  std::vector<std::thread> threads_;
};

}  // namespace cairn::coord::testing
