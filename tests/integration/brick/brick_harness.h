// In-process bricks on 127.0.0.1 port 0 for the integration tests: each with its own temp dir,
// BrickStore, net::Server and BrickServer, sharing one io_context run by two threads.
#pragma once

#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cairn/brick/brick_server.h"
#include "cairn/brickclient/brick_client.h"
#include "cairn/net/server.h"

namespace cairn::brick::testing {

namespace fs = std::filesystem;

class IoThreads {
 public:
  IoThreads() : guard_(boost::asio::make_work_guard(io_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() {
    guard_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

// A temp directory removed (with everything in it) on destruction.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/cairn-brick-it-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class TestBrick {
 public:
  TestBrick(boost::asio::io_context& io, const std::string& root, BrickServerOptions options = {})
      : root_(root) {
    fs::create_directories(root);
    store_ = std::move(BrickStore::Open(root)).value();
    server_ = std::make_unique<net::Server>(io, net::ServerOptions{.address = "127.0.0.1:0"});
    EXPECT_TRUE(server_->Start().ok());
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    options.self_address = address_;
    brick_ = std::make_unique<BrickServer>(io, *server_, *store_, std::move(options));
  }
  ~TestBrick() { Kill(); }
  // Like kill -9 of a brick process: the port closes, calls in flight get no answer.
  void Kill() {
    if (server_) server_->Stop();
    if (brick_) brick_->Stop();
  }
  const std::string& address() const { return address_; }
  const std::string& root() const { return root_; }
  BrickServer& server() { return *brick_; }

 private:
  std::string root_, address_;
  std::unique_ptr<BrickStore> store_;
  std::unique_ptr<net::Server> server_;
  std::unique_ptr<BrickServer> brick_;
};

inline pb::ReplicaView View(uint64_t epoch, const std::string& primary, std::vector<std::string> in_sync,
                            std::vector<std::string> out_of_sync = {}) {
  pb::ReplicaView view;
  view.set_epoch(epoch);
  view.set_primary(primary);
  for (auto& backup : in_sync) view.add_in_sync(backup);
  for (auto& member : out_of_sync) view.add_out_of_sync(member);
  return view;
}

// Everything a replica must agree on, per path below the root (metadata index included, temp
// area and times excluded): type, mode, owner, size, content or link target, the id xattr.
inline std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string path = it->path().string();
    std::string relative = path.substr(root.size());
    // Per-brick state, not replicated: creations in progress, the primary's change journal.
    if (relative.rfind("/.cairn/tmp", 0) == 0 || relative.rfind("/.cairn/journal", 0) == 0) continue;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) {
      std::ifstream file(path, std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      line << " size=" << content.size() << " hash=" << std::hash<std::string>()(content) << " nlink=" << st.st_nlink;
    } else if (S_ISLNK(st.st_mode)) {
      line << " -> " << fs::read_symlink(path).string();
    }
    char id[16];
    ssize_t n = lgetxattr(path.c_str(), kIdXattr, id, sizeof(id));
    if (n == 16) line << " id=" << IdToHexString(std::string(id, 16));
    out[relative] = line.str();
  }
  return out;
}

inline pb::CreateRequest CreateOf(pb::CreateRequest::Kind kind, const FileId& parent, const std::string& name,
                                  uint32_t mode, const std::string& target = "") {
  pb::CreateRequest request;
  request.set_kind(kind);
  request.set_parent(parent);
  request.set_name(name);
  request.set_mode(mode);
  request.set_target(target);
  request.set_exclusive(true);
  return request;
}

// Waits for `condition` with a deadline (no sleeps as synchronisation).
template <class Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

}  // namespace cairn::brick::testing
