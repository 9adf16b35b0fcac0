// Bricks for the heal tests: the brick integration harness (io threads, temp dirs, views) plus a
// brick whose BrickStore the test can reach (the heal runner works on it directly), and a walk
// that describes a brick's whole tree for comparison.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../brick/brick_harness.h"
#include "cairn/common/crc32c.h"

namespace cairn::heal::testing {

namespace pb = ::cairn::proto::brick;
using brick::FileId;
using brick::kRootId;
using brick::testing::IoThreads;
using brick::testing::TempDir;
using brick::testing::View;

class HealBrick {
 public:
  HealBrick(boost::asio::io_context& io, const std::string& root) : root_(root) {
    std::filesystem::create_directories(root);
    store_ = std::move(brick::BrickStore::Open(root)).value();
    server_ = std::make_unique<net::Server>(io, net::ServerOptions{.address = "127.0.0.1:0"});
    EXPECT_TRUE(server_->Start().ok());
    address_ = "127.0.0.1:" + std::to_string(server_->port());
    brick_ = std::make_unique<brick::BrickServer>(io, *server_, *store_,
                                                  brick::BrickServerOptions{.self_address = address_});
  }
  ~HealBrick() { Kill(); }
  // As kill -9 of the brick's process: the port closes, nothing more is answered.
  void Kill() {
    if (server_) server_->Stop();
    if (brick_) brick_->Stop();
  }
  const std::string& address() const { return address_; }
  brick::BrickStore& store() { return *store_; }
  brick::BrickServer& server() { return *brick_; }

 private:
  std::string root_, address_;
  std::unique_ptr<brick::BrickStore> store_;
  std::unique_ptr<net::Server> server_;
  std::unique_ptr<brick::BrickServer> brick_;
};

// Every object of a brick by path: type and mode, owner, id, size, link count, content checksum
// or link target, device number, user xattrs. Read through the BrickStore (the brick's own view).
inline std::map<std::string, std::string> Walk(brick::BrickStore& store) {
  std::map<std::string, std::string> out;
  std::function<void(const FileId&, const std::string&)> walk = [&](const FileId& dir, const std::string& path) {
    pb::ReaddirRequest request;
    request.set_id(dir);
    request.set_max_entries(4096);
    for (;;) {
      auto page = store.Readdir(request);
      EXPECT_EQ(page.err(), 0) << path;
      if (page.err() != 0) return;
      for (const auto& entry : page.entries()) {
        request.set_cookie(entry.cookie());
        const pb::Attr& attr = entry.attr();
        std::string child = path + "/" + entry.name();
        std::string line = std::to_string(attr.mode()) + " " + std::to_string(attr.uid()) + ":" +
                           std::to_string(attr.gid()) + " id=" + brick::IdToHexString(attr.id());
        if (S_ISREG(attr.mode())) {
          uint32_t crc = 0;
          for (uint64_t at = 0; at < attr.size(); at += brick::kMaxIoSize) {
            pb::ReadRequest read;
            read.set_id(attr.id());
            read.set_offset(at);
            read.set_size(static_cast<uint32_t>(brick::kMaxIoSize));
            auto data = store.Read(read);
            crc = crc32c::Extend(crc, data.data().data(), data.data().size());
          }
          line += " size=" + std::to_string(attr.size()) + " crc=" + std::to_string(crc) +
                  " nlink=" + std::to_string(attr.nlink());
        } else if (S_ISLNK(attr.mode())) {
          pb::ReadlinkRequest readlink;
          readlink.set_id(attr.id());
          line += " -> " + store.Readlink(readlink).target();
        } else if (!S_ISDIR(attr.mode())) {
          line += " rdev=" + std::to_string(attr.rdev());
        }
        if (!S_ISLNK(attr.mode())) {
          pb::ListxattrRequest list;
          list.set_id(attr.id());
          auto names = store.Listxattr(list);
          std::vector<std::string> sorted(names.names().begin(), names.names().end());
          std::sort(sorted.begin(), sorted.end());
          for (const auto& name : sorted) {
            pb::GetxattrRequest get;
            get.set_id(attr.id());
            get.set_name(name);
            line += " " + name + "=" + store.Getxattr(get).value();
          }
        }
        out[child] = line;
        if (S_ISDIR(attr.mode())) walk(attr.id(), child);
      }
      if (page.eof() || page.entries_size() == 0) return;
    }
  };
  walk(kRootId, "");
  return out;
}

// The differences between two walks, readable in a failure message (at most `limit` lines).
inline std::string Diff(const std::map<std::string, std::string>& want, const std::map<std::string, std::string>& got,
                        size_t limit = 20) {
  std::string out;
  size_t lines = 0;
  auto add = [&](const std::string& line) {
    if (lines++ < limit) out += line + "\n";
  };
  for (const auto& [path, line] : want) {
    auto it = got.find(path);
    if (it == got.end()) add("missing " + path + " (" + line + ")");
    else if (it->second != line) add("differs " + path + ": want " + line + " got " + it->second);
  }
  for (const auto& [path, line] : got) {
    if (want.count(path) == 0) add("extra " + path + " (" + line + ")");
  }
  if (lines > limit) out += "... " + std::to_string(lines - limit) + " more\n";
  return out;
}

}  // namespace cairn::heal::testing
