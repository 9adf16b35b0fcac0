// coord_local_server: an HttpGateway over a LocalCoordApi, for manual experiments and for
// comparing the gateway's JSON with a real etcd (docs/coord-api.md). Not a product binary.
//
//   coord_local_server [--listen 127.0.0.1:0] [--threads 2]
// Prints "listening on PORT" once ready; stops on SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cairn/common/clock.h"
#include "cairn/coord/http_gateway.h"
#include "cairn/coord/local_coord_api.h"

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--listen") {
      listen = argv[i + 1];
    } else if (flag == "--threads") {
      threads = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: coord_local_server [--listen HOST:PORT] [--threads N]\n");
      return 2;
    }
  }
  auto address = cairn::ParseHostPort(listen, /*allow_zero=*/true);
  if (!address.ok()) {
    std::fprintf(stderr, "%s\n", address.status().ToString().c_str());
    return 2;
  }
  boost::asio::io_context io;
  cairn::coord::LocalCoordOptions options;
  options.client_urls = {"http://" + listen};
  cairn::coord::LocalCoordApi api(cairn::RealClock::Instance(), options);
  cairn::coord::HttpGateway gateway(io, api, *address);
  if (auto status = gateway.Start(); !status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening on %u\n", gateway.port());
  std::fflush(stdout);

  // Revoke expired leases twice a second, as a leader would.
  boost::asio::steady_timer ticker(io);
  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(500));
    ticker.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      api.ExpireLeases();
      tick();
    });
  };
  tick();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    gateway.Stop();
    ticker.cancel();
    // Let open connections finish, then end.
    auto done = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(200));
    done->async_wait([&io, done](boost::system::error_code) { io.stop(); });
  });
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& thread : pool) thread.join();
  return 0;
}
