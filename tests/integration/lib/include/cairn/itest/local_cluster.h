// Real clusterd processes on 127.0.0.1 for integration tests: N members of one cluster (each with
// its own data dir and log file), or one clusterd serving only the store.
//
// Ports come from FreePort(); every process is a Subprocess, killed (SIGKILL) and reaped by the
// destructor, and killed by the kernel too when the test binary dies (subprocess.h).
// Threading: one thread at a time per object.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"
#include "subprocess.h"

namespace cairn::itest {

// Members n1..nN of one cluster (static initial_cluster), configs and data below dir.
class LocalCluster {
 public:
  // Writes dir/node<i+1>.yaml for each host (data dir dir/d<i+1>, log file dir/n<i+1>.log).
  // clusterd_path is the clusterd binary. Starts nothing.
  LocalCluster(std::string clusterd_path, std::string dir, int hosts);
  ~LocalCluster();  // KillAll()
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  int hosts() const { return static_cast<int>(client_ports_.size()); }
  static std::string Name(int host) { return "n" + std::to_string(host + 1); }
  std::string LogPath(int host) const { return dir_ + "/n" + std::to_string(host + 1) + ".log"; }
  HostPort ClientEndpoint(int host) const { return {"127.0.0.1", client_ports_[host]}; }
  // Every member's client endpoint but `except` (-1: all of them).
  std::vector<HostPort> ClientEndpoints(int except = -1) const;
  // "127.0.0.1:P1,127.0.0.1:P2,...", as --endpoints takes it.
  std::string EndpointList() const;

  // Starts host and waits until its log has a new "clusterd.started" line (a restarted host's
  // log still holds the previous one). Error: DeadlineExceeded naming the host, with its stderr.
  Status Start(int host, std::chrono::milliseconds limit = std::chrono::seconds(30));
  Status StartAll(std::chrono::milliseconds limit = std::chrono::seconds(30));
  // SIGKILL, reaped within 10 s; the host can be started again (same data dir).
  void Kill(int host);
  // Sends a signal to a running host (no-op when it is not running).
  void Signal(int host, int signal_number);
  // Kills every host (SIGCONT first: a stopped process must run to die).
  void KillAll();
  // The host's process; nullptr when it was never started or was killed.
  test_support::Subprocess* process(int host) const { return processes_[host].get(); }

  // "---- n1 log (tail) ----" and the last `bytes` of each host's log, for a failing test.
  std::string LogTails(size_t bytes) const;

 private:
  const std::string clusterd_path_;
  const std::string dir_;
  std::vector<uint16_t> client_ports_;
  std::vector<std::string> configs_;
  std::vector<std::unique_ptr<test_support::Subprocess>> processes_;
};

// One clusterd that is the whole cluster (name n1, data dir/n1, log level warn, logging to its
// stderr), for CLI suites that need only the store.
class StoreProcess {
 public:
  StoreProcess(std::string clusterd_path, std::string dir);
  // Starts clusterd and waits until a Put succeeds. Error: Unavailable "clusterd never served on
  // ENDPOINT: <its stderr>".
  Status Start(std::chrono::milliseconds limit = std::chrono::seconds(30));
  const HostPort& endpoint() const { return endpoint_; }
  test_support::Subprocess* process() const { return process_.get(); }

 private:
  const std::string clusterd_path_;
  const std::string dir_;
  HostPort endpoint_;
  std::unique_ptr<test_support::Subprocess> process_;
};

}  // namespace cairn::itest
