#include "cairn/brickclient/brick_client.h"

#include <cerrno>
#include <condition_variable>
#include <mutex>

namespace cairn::brickclient {

const FileId kRootId(std::string(15, '\0') + '\x01');

namespace {
constexpr uint64_t kChunk = uint64_t{1} << 20;  // the brick's per-request limit
}  // namespace

int ErrnoFromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kDeadlineExceeded: return ETIMEDOUT;
    case StatusCode::kUnavailable:
    case StatusCode::kCancelled: return ENOTCONN;
    case StatusCode::kResourceExhausted: return ENOMEM;
    case StatusCode::kInvalidArgument: return EINVAL;
    case StatusCode::kUnimplemented: return ENOSYS;
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated: return EACCES;
    default: return EIO;
  }
}

BrickClient::BrickClient(boost::asio::io_context& io, std::string address, BrickClientOptions options)
    : options_(options), client_(io, net::ClientOptions{.address = std::move(address)}) {}

pb::LookupResponse BrickClient::Lookup(const FileId& parent, const std::string& name) {
  pb::LookupRequest request;
  request.set_parent(parent);
  request.set_name(name);
  return CallSync<pb::LookupResponse>("brick.Lookup", request);
}

pb::GetattrResponse BrickClient::Getattr(const FileId& id) {
  pb::GetattrRequest request;
  request.set_id(id);
  return CallSync<pb::GetattrResponse>("brick.Getattr", request);
}

pb::CreateResponse BrickClient::Create(pb::CreateRequest request) {
  request.mutable_header()->set_epoch(options_.epoch);
  return CallSync<pb::CreateResponse>("brick.Create", request);
}

pb::RemoveResponse BrickClient::Remove(const FileId& parent, const std::string& name, bool directory) {
  pb::RemoveRequest request;
  request.mutable_header()->set_epoch(options_.epoch);
  request.set_parent(parent);
  request.set_name(name);
  request.set_directory(directory);
  return CallSync<pb::RemoveResponse>("brick.Remove", request);
}

pb::RenameResponse BrickClient::Rename(const FileId& parent, const std::string& name, const FileId& new_parent,
                                       const std::string& new_name, uint32_t flags) {
  pb::RenameRequest request;
  request.mutable_header()->set_epoch(options_.epoch);
  request.set_parent(parent);
  request.set_name(name);
  request.set_new_parent(new_parent);
  request.set_new_name(new_name);
  request.set_flags(flags);
  return CallSync<pb::RenameResponse>("brick.Rename", request);
}

pb::FsyncResponse BrickClient::Fsync(const FileId& id, bool datasync) {
  pb::FsyncRequest request;
  request.mutable_header()->set_epoch(options_.epoch);
  request.set_id(id);
  request.set_datasync(datasync);
  return CallSync<pb::FsyncResponse>("brick.Fsync", request);
}

namespace {

// Collects the answers of N pipelined calls.
template <class Resp>
class Gather {
 public:
  explicit Gather(size_t count) : responses_(count), left_(count) {}
  std::function<void(Resp)> Slot(size_t index) {
    return [this, index](Resp response) {
      std::lock_guard lock(mu_);
      responses_[index] = std::move(response);
      if (--left_ == 0) done_.notify_all();
    };
  }
  std::vector<Resp> Wait() {
    std::unique_lock lock(mu_);
    done_.wait(lock, [this] { return left_ == 0; });
    return std::move(responses_);
  }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<Resp> responses_;
  size_t left_;
};

}  // namespace

pb::ReadResponse BrickClient::Read(const FileId& id, uint64_t offset, uint64_t size) {
  size_t chunks = std::max<uint64_t>(1, (size + kChunk - 1) / kChunk);
  Gather<pb::ReadResponse> gather(chunks);
  for (size_t i = 0; i < chunks; ++i) {
    pb::ReadRequest request;
    request.set_id(id);
    request.set_offset(offset + i * kChunk);
    request.set_size(static_cast<uint32_t>(std::min<uint64_t>(kChunk, size - std::min(size, i * kChunk))));
    Call<pb::ReadResponse>("brick.Read", request, gather.Slot(i));
  }
  pb::ReadResponse result;
  for (auto& part : gather.Wait()) {
    if (part.err() != 0) {
      if (result.data().empty()) result.set_err(part.err());
      break;
    }
    result.mutable_data()->append(part.data());
    if (part.data().size() < kChunk) break;  // end of file
  }
  return result;
}

pb::WriteResponse BrickClient::Write(const FileId& id, uint64_t offset, const std::string& data) {
  size_t chunks = std::max<uint64_t>(1, (data.size() + kChunk - 1) / kChunk);
  Gather<pb::WriteResponse> gather(chunks);
  for (size_t i = 0; i < chunks; ++i) {
    pb::WriteRequest request;
    request.mutable_header()->set_epoch(options_.epoch);
    request.set_id(id);
    request.set_offset(offset + i * kChunk);
    request.set_data(data.substr(std::min<size_t>(data.size(), i * kChunk), kChunk));
    Call<pb::WriteResponse>("brick.Write", request, gather.Slot(i));
  }
  pb::WriteResponse result;
  uint64_t written = 0;
  for (auto& part : gather.Wait()) {
    if (part.err() != 0) {
      result.set_err(part.err());
      break;
    }
    written += part.written();
    if (part.written() < kChunk) break;
  }
  result.set_written(static_cast<uint32_t>(written));
  return result;
}

pb::ReaddirResponse BrickClient::ReaddirAll(const FileId& id) {
  pb::ReaddirResponse all;
  pb::ReaddirRequest request;
  request.set_id(id);
  for (;;) {
    auto page = CallSync<pb::ReaddirResponse>("brick.Readdir", request);
    if (page.err() != 0) {
      all.set_err(page.err());
      return all;
    }
    for (auto& entry : *page.mutable_entries()) {
      request.set_cookie(entry.cookie());
      *all.add_entries() = std::move(entry);
    }
    if (page.eof() || page.entries_size() == 0) {
      all.set_eof(true);
      return all;
    }
  }
}

}  // namespace cairn::brickclient
