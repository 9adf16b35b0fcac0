#include "cairn/heal/object_copy.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace cairn::heal {
namespace {

constexpr size_t kBlock = brick::kMaxIoSize;  // compare and copy unit
constexpr size_t kReadChunk = 2 * kBlock;      // read from the source at once (pipelined by the client)

bool AllZero(const char* data, size_t length) {
  return std::all_of(data, data + length, [](char c) { return c == 0; });
}

template <class Request>
Request Stamped(Request request, uint64_t epoch) {
  request.mutable_header()->set_epoch(epoch);
  return request;
}

// Writes the blocks of one chunk read from the source that the target lacks.
Status WriteChunk(CopyTarget& target, const brick::FileId& id, uint64_t offset, const std::string& data,
                  const CopyOptions& options, CopyStats* stats, bool* wrote) {
  for (size_t at = 0; at < data.size(); at += kBlock) {
    size_t length = std::min(kBlock, data.size() - at);
    if (options.target_is_new) {
      if (AllZero(data.data() + at, length)) continue;
    } else {
      bpb::ReadRequest read;
      read.set_id(id);
      read.set_offset(offset + at);
      read.set_size(static_cast<uint32_t>(length));
      auto mine = target.Read(read);
      if (mine.err() != 0) return TargetError(target.label(), "read", id, mine.err());
      if (mine.data().size() == length && std::memcmp(mine.data().data(), data.data() + at, length) == 0) continue;
    }
    bpb::WriteRequest write;
    write.set_id(id);
    write.set_offset(offset + at);
    write.set_data(data.substr(at, length));
    auto written = target.Write(std::move(write));
    if (written.err() != 0) return TargetError(target.label(), "write", id, written.err());
    if (written.written() != length) return TargetError(target.label(), "write", id, ENOSPC);
    stats->bytes_copied += length;
    *wrote = true;
  }
  return Status::Ok();
}

// User xattrs. Sets *changed when something was set or removed.
Status CopyXattrs(brickclient::BrickClient& source, CopyTarget& target, const brick::FileId& id,
                  const CopyOptions& options, bool* changed) {
  bpb::ListxattrRequest list;
  list.set_id(id);
  auto theirs = source.CallSync<bpb::ListxattrResponse>("brick.Listxattr", list);
  if (Gone(theirs.err())) return Status::Ok();
  if (theirs.err() != 0) return SourceError(options.source_label, "listxattr", id, theirs.err());
  auto mine = target.Listxattr(list);
  if (mine.err() != 0) return TargetError(target.label(), "listxattr", id, mine.err());
  if (theirs.names_size() == 0 && mine.names_size() == 0) return Status::Ok();
  std::set<std::string> wanted(theirs.names().begin(), theirs.names().end());
  for (const auto& name : mine.names()) {
    if (wanted.count(name) != 0) continue;
    bpb::RemovexattrRequest remove;
    remove.set_id(id);
    remove.set_name(name);
    auto done = target.Removexattr(std::move(remove));
    if (done.err() != 0 && done.err() != ENODATA) return TargetError(target.label(), "removexattr " + name, id, done.err());
    *changed = true;
  }
  for (const auto& name : wanted) {
    bpb::GetxattrRequest get;
    get.set_id(id);
    get.set_name(name);
    auto value = source.CallSync<bpb::GetxattrResponse>("brick.Getxattr", get);
    if (value.err() == ENODATA || Gone(value.err())) continue;  // removed meanwhile
    if (value.err() != 0) return SourceError(options.source_label, "getxattr " + name, id, value.err());
    auto current = target.Getxattr(get);
    if (current.err() == 0 && current.value() == value.value()) continue;
    bpb::SetxattrRequest set;
    set.set_id(id);
    set.set_name(name);
    set.set_value(value.value());
    auto done = target.Setxattr(std::move(set));
    if (done.err() != 0) return TargetError(target.label(), "setxattr " + name, id, done.err());
    *changed = true;
  }
  return Status::Ok();
}

}  // namespace

bool Unreachable(int err) {
  return err == ETIMEDOUT || err == ENOTCONN || err == ECONNREFUSED || err == ECONNRESET || err == EPIPE;
}
bool Gone(int err) { return err == ENOENT || err == ESTALE; }

Status SourceError(const std::string& label, const std::string& what, const brick::FileId& id, int err) {
  std::string message = label + ": " + what + " of " + brick::IdToHexString(id) + ": " + std::strerror(err);
  return Unreachable(err) ? UnavailableError(message) : InternalError(message);
}

Status TargetError(const std::string& label, const std::string& what, const brick::FileId& id, int err) {
  std::string message = label + ": " + what + " of " + brick::IdToHexString(id) + ": " + std::strerror(err);
  bool fatal = err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO || err == EMFILE || err == ENFILE;
  if (Unreachable(err)) return UnavailableError(message);
  return fatal ? IoError(message) : InternalError(message);
}

Status CopyData(brickclient::BrickClient& source, CopyTarget& target, const brick::FileId& id,
                const bpb::Attr& source_attr, const bpb::Attr& target_attr, const std::atomic<bool>& stop,
                const CopyOptions& options, CopyStats* stats) {
  ++stats->files_examined;
  bool wrote = false;
  const uint64_t size = source_attr.size();
  if (target_attr.size() != size) {
    bpb::SetattrRequest truncate;
    truncate.set_id(id);
    truncate.set_valid(bpb::SETATTR_SIZE);
    truncate.set_size(size);
    auto done = target.Setattr(std::move(truncate));
    if (done.err() != 0) return TargetError(target.label(), "truncate", id, done.err());
    wrote = true;
  }
  for (uint64_t offset = 0; offset < size; offset += kReadChunk) {
    if (stop) return AbortedError("copy of " + brick::IdToHexString(id) + " stopped");
    const uint64_t want = std::min<uint64_t>(kReadChunk, size - offset);
    auto chunk = source.Read(id, offset, want);
    if (Gone(chunk.err())) return Status::Ok();
    if (chunk.err() != 0) return SourceError(options.source_label, "read", id, chunk.err());
    CAIRN_RETURN_IF_ERROR(WriteChunk(target, id, offset, chunk.data(), options, stats, &wrote));
    if (chunk.data().size() < want) break;  // shrank meanwhile: the caller sees the change
  }
  if (wrote) ++stats->files_copied;
  return Status::Ok();
}

Status CopyMetadata(brickclient::BrickClient& source, CopyTarget& target, const brick::FileId& id,
                    const bpb::Attr& source_attr, const bpb::Attr& target_attr, const CopyOptions& options,
                    CopyStats* stats) {
  const bool is_link = S_ISLNK(source_attr.mode());
  uint32_t valid = 0;
  bpb::SetattrRequest set;
  set.set_id(id);
  if (source_attr.uid() != target_attr.uid()) valid |= bpb::SETATTR_UID;
  if (source_attr.gid() != target_attr.gid()) valid |= bpb::SETATTR_GID;
  // chown clears set-id bits, so the mode is applied again after an owner change.
  if (!is_link && ((source_attr.mode() & 07777) != (target_attr.mode() & 07777) || valid != 0)) valid |= bpb::SETATTR_MODE;
  set.set_uid(source_attr.uid());
  set.set_gid(source_attr.gid());
  set.set_mode(source_attr.mode() & 07777);
  if (valid != 0) {
    set.set_valid(valid);
    auto done = target.Setattr(std::move(set));
    if (done.err() != 0) return TargetError(target.label(), "setattr", id, done.err());
  }
  bool fixed = valid != 0;
  if (!is_link) CAIRN_RETURN_IF_ERROR(CopyXattrs(source, target, id, options, &fixed));
  if (source_attr.mtime_ns() != target_attr.mtime_ns() || source_attr.atime_ns() != target_attr.atime_ns() || fixed) {
    bpb::SetattrRequest times;
    times.set_id(id);
    times.set_valid(bpb::SETATTR_ATIME | bpb::SETATTR_MTIME);
    times.set_atime_ns(source_attr.atime_ns());
    times.set_mtime_ns(source_attr.mtime_ns());
    auto done = target.Setattr(std::move(times));
    if (done.err() != 0) return TargetError(target.label(), "utimens", id, done.err());
    fixed = true;
  }
  if (fixed) ++stats->metadata_fixed;
  return Status::Ok();
}

// ---- RemoteTarget ----

bpb::GetattrResponse RemoteTarget::Getattr(const bpb::GetattrRequest& request) {
  return client_.CallSync<bpb::GetattrResponse>("brick.Getattr", request);
}
bpb::SetattrResponse RemoteTarget::Setattr(bpb::SetattrRequest request) {
  return client_.CallSync<bpb::SetattrResponse>("brick.Setattr", Stamped(std::move(request), epoch_));
}
bpb::ReadResponse RemoteTarget::Read(const bpb::ReadRequest& request) {
  return client_.CallSync<bpb::ReadResponse>("brick.Read", request);
}
bpb::WriteResponse RemoteTarget::Write(bpb::WriteRequest request) {
  return client_.CallSync<bpb::WriteResponse>("brick.Write", Stamped(std::move(request), epoch_));
}
bpb::ListxattrResponse RemoteTarget::Listxattr(const bpb::ListxattrRequest& request) {
  return client_.CallSync<bpb::ListxattrResponse>("brick.Listxattr", request);
}
bpb::GetxattrResponse RemoteTarget::Getxattr(const bpb::GetxattrRequest& request) {
  return client_.CallSync<bpb::GetxattrResponse>("brick.Getxattr", request);
}
bpb::SetxattrResponse RemoteTarget::Setxattr(bpb::SetxattrRequest request) {
  return client_.CallSync<bpb::SetxattrResponse>("brick.Setxattr", Stamped(std::move(request), epoch_));
}
bpb::RemovexattrResponse RemoteTarget::Removexattr(bpb::RemovexattrRequest request) {
  return client_.CallSync<bpb::RemovexattrResponse>("brick.Removexattr", Stamped(std::move(request), epoch_));
}

}  // namespace cairn::heal
