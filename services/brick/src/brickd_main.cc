// brickd: one brick as a standalone process (tests and benchmarks, until clusterd hosts bricks).
//
//   brickd --root DIR --listen HOST:PORT [--self HOST:PORT] [--threads N] [--replica-timeout 500ms]
//
// Prints "brickd listening on HOST:PORT" on stdout once it accepts connections (port 0 picks a
// free one). The replica-set view arrives by the brick.SetView RPC. Stops on SIGTERM or SIGINT.
#include <signal.h>
#include <sys/stat.h>

#include <iostream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cairn/brick/brick_server.h"
#include "cairn/common/logging.h"
#include "cairn/common/strings.h"

int main(int argc, char** argv) {
  CLI::App app{"brickd: serves one brick directory over the Cairn brick protocol", "brickd"};
  std::string root, listen = "127.0.0.1:0", self, timeout = "500ms";
  size_t threads = 4;
  app.add_option("--root", root, "the brick directory (must exist)")->required()->check(CLI::ExistingDirectory);
  app.add_option("--listen", listen, "HOST:PORT to listen on; port 0 picks a free port");
  app.add_option("--self", self, "this brick's address in replica-set views (default: the listen address)");
  app.add_option("--threads", threads, "file I/O threads")->check(CLI::Range(1, 256));
  app.add_option("--replica-timeout", timeout, "a backup slower than this has failed (e.g. 500ms)");
  CLI11_PARSE(app, argc, argv);

  auto replica_timeout = cairn::ParseDuration(timeout);
  if (!replica_timeout.ok()) {
    std::cerr << "brickd: --replica-timeout: " << replica_timeout.status().message() << "\n";
    return 2;
  }
  (void)cairn::log::Init({.component = "brickd"});
  umask(0);  // modes come from the client, exactly
  auto store = cairn::brick::BrickStore::Open(root);
  if (!store.ok()) {
    std::cerr << "brickd: " << store.status().ToString() << "\n";
    return 1;
  }
  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  cairn::net::Server server(io, {.address = listen});
  cairn::Status started = server.Start();
  if (!started.ok()) {
    std::cerr << "brickd: " << started.ToString() << "\n";
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::string address = host + ":" + std::to_string(server.port());
  cairn::brick::BrickServer brick(io, server, **store,
                                  {.self_address = self.empty() ? address : self, .threads = threads,
                                   .replica_timeout = *replica_timeout});
  signals.async_wait([&](const boost::system::error_code& error, int) {
    if (error) return;
    server.Stop();
    brick.Stop();
    io.stop();
  });
  std::cout << "brickd listening on " << address << std::endl;
  std::vector<std::thread> workers;
  for (int i = 0; i < 2; ++i) workers.emplace_back([&io] { io.run(); });
  for (auto& worker : workers) worker.join();
  return 0;
}
