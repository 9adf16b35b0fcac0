// BrickClient: typed calls of the brick protocol (docs/brick-protocol.md) to one brick.
//
//   cairn::brickclient::BrickClient brick(io, "10.0.0.2:7100");
//   auto looked = brick.Lookup(kRootId, "etc");          // blocking, for tools and tests
//   if (looked.err() != 0) return -looked.err();          // FUSE: negative errno, unchanged
//   brick.Call<pb::GetattrResponse>("brick.Getattr", request, [](pb::GetattrResponse r) { ... });
//
// Every answer is the operation's response message with `err` set: the brick's errno, or for a
// transport failure the errno ErrnoFromStatus gives (ETIMEDOUT after the deadline, ENOTCONN when
// the brick cannot be reached, EIO otherwise). So callers handle one kind of error.
//
// Connection: net::Client connects lazily and reconnects by itself; calls are never retried here
// (only the caller knows whether an operation may be repeated: mutations are not idempotent).
// Threading: thread-safe; async callbacks run on an io_context thread. The sync calls must not
// run on an io_context thread. Destroy before the io_context.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/net/client.h"
#include "cairn/proto/brick.pb.h"

namespace cairn::brickclient {

namespace pb = ::cairn::proto::brick;
using FileId = std::string;
extern const FileId kRootId;

// The errno a transport failure means to a file system caller.
int ErrnoFromStatus(const Status& status);

struct BrickClientOptions {
  Duration timeout = std::chrono::seconds(10);  // per call, unless a call says otherwise
  uint64_t epoch = 0;                            // stamped on every mutation (0: not checked)
};

class BrickClient {
 public:
  BrickClient(boost::asio::io_context& io, std::string address, BrickClientOptions options = {});

  // The generic call: `method` is "brick.<Op>", Resp its response type. `done` runs exactly once.
  template <class Resp>
  void Call(const std::string& method, const google::protobuf::Message& request, std::function<void(Resp)> done,
            Duration timeout = Duration::zero()) {
    client_.Call(method, request.SerializeAsString(), timeout > Duration::zero() ? timeout : options_.timeout,
                 [done = std::move(done)](Result<std::string> reply) { done(Decode<Resp>(reply)); });
  }
  template <class Resp>
  Resp CallSync(const std::string& method, const google::protobuf::Message& request,
                Duration timeout = Duration::zero()) {
    auto reply = client_.CallSync(method, request.SerializeAsString(),
                                  timeout > Duration::zero() ? timeout : options_.timeout);
    return Decode<Resp>(reply);
  }

  // Conveniences (blocking).
  pb::LookupResponse Lookup(const FileId& parent, const std::string& name);
  pb::GetattrResponse Getattr(const FileId& id);
  pb::CreateResponse Create(pb::CreateRequest request);
  pb::RemoveResponse Remove(const FileId& parent, const std::string& name, bool directory);
  pb::RenameResponse Rename(const FileId& parent, const std::string& name, const FileId& new_parent,
                            const std::string& new_name, uint32_t flags = 0);
  pb::FsyncResponse Fsync(const FileId& id, bool datasync = false);
  // Reads up to `size` bytes (any size: split into 1 MiB requests sent together).
  pb::ReadResponse Read(const FileId& id, uint64_t offset, uint64_t size);
  // Writes all of `data` (split into 1 MiB requests, pipelined). written: bytes acknowledged in
  // order from `offset`; err: the first failure.
  pb::WriteResponse Write(const FileId& id, uint64_t offset, const std::string& data);
  // Every entry of a directory, following cookies page by page.
  pb::ReaddirResponse ReaddirAll(const FileId& id);

  // The epoch stamped on mutations (change it when the replica-set view changes).
  void set_epoch(uint64_t epoch) { options_.epoch = epoch; }
  uint64_t epoch() const { return options_.epoch; }
  const std::string& address() const { return client_.address(); }
  net::Client& transport() { return client_; }

 private:
  template <class Resp>
  static Resp Decode(const Result<std::string>& reply) {
    Resp response;
    if (!reply.ok()) {
      response.set_err(ErrnoFromStatus(reply.status()));
    } else if (!response.ParseFromString(*reply)) {
      response.Clear();
      response.set_err(EPROTO);
    }
    return response;
  }

  BrickClientOptions options_;
  net::Client client_;
};

}  // namespace cairn::brickclient
