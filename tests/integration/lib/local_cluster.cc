#include "cairn/itest/local_cluster.h"

#include <signal.h>

#include <fstream>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/itest/files.h"

namespace cairn::itest {

using test_support::FreePort;
using test_support::Subprocess;
using test_support::WaitFor;

LocalCluster::LocalCluster(std::string clusterd_path, std::string dir, int hosts)
    : clusterd_path_(std::move(clusterd_path)), dir_(std::move(dir)), processes_(static_cast<size_t>(hosts)) {
  std::vector<uint16_t> peer_ports;
  for (int i = 0; i < hosts; ++i) {
    peer_ports.push_back(FreePort());
    client_ports_.push_back(FreePort());
  }
  for (int i = 0; i < hosts; ++i) {
    std::string yaml = "name: " + Name(i) + "\ndata_dir: " + dir_ + "/d" + std::to_string(i + 1) +
                       "\npeer_address: 127.0.0.1:" + std::to_string(peer_ports[i]) +
                       "\nclient_address: 127.0.0.1:" + std::to_string(client_ports_[i]) + "\nlog:\n  file: " +
                       LogPath(i) + "\ninitial_cluster:\n";
    for (int j = 0; j < hosts; ++j) {
      yaml += "  - name: " + Name(j) + "\n    peer_address: 127.0.0.1:" + std::to_string(peer_ports[j]) + "\n";
    }
    configs_.push_back(dir_ + "/node" + std::to_string(i + 1) + ".yaml");
    std::ofstream(configs_.back()) << yaml;
  }
}

LocalCluster::~LocalCluster() { KillAll(); }

std::vector<HostPort> LocalCluster::ClientEndpoints(int except) const {
  std::vector<HostPort> endpoints;
  for (int i = 0; i < hosts(); ++i) {
    if (i != except) endpoints.push_back(ClientEndpoint(i));
  }
  return endpoints;
}

std::string LocalCluster::EndpointList() const {
  std::string list;
  for (int i = 0; i < hosts(); ++i) list += (i == 0 ? "" : ",") + ClientEndpoint(i).ToString();
  return list;
}

Status LocalCluster::Start(int host, std::chrono::milliseconds limit) {
  const std::string log = LogPath(host);
  const size_t seen = ReadFile(log).size();
  processes_[host] = std::make_unique<Subprocess>(clusterd_path_, std::vector<std::string>{"--config", configs_[host]});
  if (WaitFor([&] { return ReadFile(log).find("clusterd.started", seen) != std::string::npos; }, limit)) {
    return Status::Ok();
  }
  return DeadlineExceededError(Name(host) + " did not start within " + std::to_string(limit.count()) +
                               " ms; its stderr: " + processes_[host]->err());
}

Status LocalCluster::StartAll(std::chrono::milliseconds limit) {
  for (int i = 0; i < hosts(); ++i) CAIRN_RETURN_IF_ERROR(Start(i, limit));
  return Status::Ok();
}

void LocalCluster::Kill(int host) {
  if (!processes_[host]) return;
  processes_[host]->Signal(SIGKILL);
  processes_[host]->WaitForExit(std::chrono::seconds(10));
  processes_[host].reset();
}

void LocalCluster::Signal(int host, int signal_number) {
  if (processes_[host]) processes_[host]->Signal(signal_number);
}

void LocalCluster::KillAll() {
  for (auto& process : processes_) {
    if (!process) continue;
    process->Signal(SIGCONT);
    process.reset();  // SIGKILL + reap
  }
}

std::string LocalCluster::LogTails(size_t bytes) const {
  std::string text;
  for (int i = 0; i < hosts(); ++i) text += "---- " + Name(i) + " log (tail) ----\n" + Tail(ReadFile(LogPath(i)), bytes) + "\n";
  return text;
}

StoreProcess::StoreProcess(std::string clusterd_path, std::string dir)
    : clusterd_path_(std::move(clusterd_path)), dir_(std::move(dir)) {}

Status StoreProcess::Start(std::chrono::milliseconds limit) {
  uint16_t peer = FreePort(), client = FreePort();
  std::string config = dir_ + "/n1.yaml";
  std::ofstream(config) << "name: n1\ndata_dir: " << dir_ << "/n1\npeer_address: 127.0.0.1:" << peer
                        << "\nclient_address: 127.0.0.1:" << client << "\nlog:\n  level: warn\n";
  process_ = std::make_unique<Subprocess>(clusterd_path_, std::vector<std::string>{"--config", config});
  endpoint_ = HostPort{"127.0.0.1", client};
  etcdclient::EtcdClient probe({endpoint_}, {.timeout = std::chrono::seconds(2), .connect_timeout = std::chrono::milliseconds(200)});
  etcd::PutRequest put;
  put.set_key("ready-probe");
  if (WaitFor([&] { return probe.Put(put).ok(); }, limit)) return Status::Ok();
  return UnavailableError("clusterd never served on " + endpoint_.ToString() + ": " + process_->err());
}

}  // namespace cairn::itest
