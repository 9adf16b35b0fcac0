#include "volume_fs.h"

#include <fcntl.h>
#include <linux/fs.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <optional>
#include <set>
#include <thread>

#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/rebalance.h"
#include "cairn/volume/volume_store.h"

namespace cairn::volumemount {
namespace {

using namespace std::chrono_literals;
using brickclient::BrickClient;

bool IsTransportError(int err) { return err == ENOTCONN || err == ETIMEDOUT; }

// 16 random bytes shaped as a UUIDv4, the id a create asks every replica to use.
FileId NewFileId() {
  thread_local Random random(SystemRandom().Next());
  uint64_t high = random.Next(), low = random.Next();
  FileId id(16, '\0');
  for (int i = 0; i < 8; ++i) {
    id[i] = static_cast<char>(high >> (8 * i));
    id[8 + i] = static_cast<char>(low >> (8 * i));
  }
  id[6] = static_cast<char>((id[6] & 0x0f) | 0x40);
  id[8] = static_cast<char>((id[8] & 0x3f) | 0x80);
  return id;
}

timespec FromNs(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

int64_t ToNs(const timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }

}  // namespace

// One try of an operation on one brick. Call sends a request and waits for its answer; while it
// waits it looks at the view whenever the records changed (checked every 50 ms) and, once
// `still_valid` says the brick lost the role it was called for, gives up on the call: the answer
// is an empty response with err kRouteChanged and abandoned() is true (a late answer is dropped).
// Threading: one caller thread; the brick's callback only touches the shared Pending.
class Attempt {
 public:
  static constexpr int kRouteChanged = 1 << 20;  // not an errno

  Attempt(BrickClient& brick, uint64_t epoch, Duration timeout, const VolumeView& view,
          std::function<bool()> still_valid)
      : brick_(brick), epoch_(epoch), timeout_(timeout), view_(view), still_valid_(std::move(still_valid)) {}

  uint64_t epoch() const { return epoch_; }
  bool abandoned() const { return abandoned_; }

  template <class Resp>
  Resp Call(const std::string& method, const google::protobuf::Message& request) {
    struct Pending {
      std::mutex mu;
      std::condition_variable answered;
      std::optional<Resp> answer;  // GUARDED_BY mu
    };
    auto pending = std::make_shared<Pending>();
    uint64_t seen = view_.generation();
    brick_.Call<Resp>(
        method, request,
        [pending](Resp response) {
          std::lock_guard lock(pending->mu);
          pending->answer = std::move(response);
          pending->answered.notify_all();
        },
        timeout_);
    std::unique_lock lock(pending->mu);
    while (!pending->answered.wait_for(lock, 50ms, [&] { return pending->answer.has_value(); })) {
      if (view_.generation() == seen) continue;
      seen = view_.generation();
      lock.unlock();
      bool valid = still_valid_();
      lock.lock();
      if (!valid && !pending->answer) {
        abandoned_ = true;
        Resp gone;
        gone.set_err(kRouteChanged);
        return gone;
      }
    }
    return std::move(*pending->answer);
  }

 private:
  BrickClient& brick_;
  const uint64_t epoch_;
  const Duration timeout_;
  const VolumeView& view_;
  const std::function<bool()> still_valid_;
  bool abandoned_ = false;
};

VolumeFs::VolumeFs(VolumeView& view, boost::asio::io_context& io, FsOptions options)
    : view_(view), io_(io), options_(options) {}

VolumeFs::~VolumeFs() {
  std::lock_guard lock(clients_mu_);
  clients_.clear();
}

BrickClient& VolumeFs::Client(const std::string& address) {
  std::lock_guard lock(clients_mu_);
  auto& client = clients_[address];
  if (!client) client = std::make_unique<BrickClient>(io_, address, brickclient::BrickClientOptions{.timeout = options_.call_timeout});
  return *client;
}

int VolumeFs::Mutate(uint32_t set, const CallFn& call) {
  std::optional<TimePoint> deadline;  // starts at the first failure
  auto give_up = [&] {
    if (!deadline) deadline = std::chrono::steady_clock::now() + options_.failover_timeout;
    return std::chrono::steady_clock::now() >= *deadline;
  };
  SetRoute route = view_.Route(set);
  Duration backoff = 10ms;
  for (;;) {
    if (route.mode == vpb::REPLICA_SET_NO_QUORUM_EIO) return -EIO;
    if (route.mode == vpb::REPLICA_SET_NO_QUORUM_READONLY) return -EROFS;
    int err = ENOTCONN;
    if (!route.primary.empty()) {
      // Abandoned only when this brick stopped being the primary: a new epoch that merely dropped
      // a backup is answered by this primary, and a needless retry of a non-idempotent call
      // (unlink, rename) would report ENOENT/EEXIST.
      Attempt at(Client(route.primary), route.epoch, options_.call_timeout, view_, [&] {
        SetRoute now = view_.Route(set);
        return now.mode == route.mode && now.primary == route.primary;
      });
      err = call(at);
      if (at.abandoned()) {
        log::Info("mount.primary_replaced", "set", set, "epoch", route.epoch, "primary", route.primary);
        route = view_.Route(set);
        continue;
      }
    }
    if (err == ESTALE) {
      (void)view_.Refresh();  // a store error leaves the watch to deliver the news
      SetRoute now = view_.Route(set);
      if (!(now == route)) {
        route = now;
        continue;
      }
      if (give_up()) return -ESTALE;
      log::Info("mount.estale_retry", "set", set, "epoch", route.epoch, "primary", route.primary);
      std::this_thread::sleep_for(backoff);  // the primary has not installed the new view yet
      backoff = std::min<Duration>(backoff * 2, 200ms);
      route = view_.Route(set);
      continue;
    }
    if (IsTransportError(err)) {
      if (give_up()) {
        log::Warn("mount.primary_unreachable", "set", set, "epoch", route.epoch, "primary", route.primary);
        return -EIO;
      }
      log::Info("mount.waiting_for_failover", "set", set, "epoch", route.epoch, "primary", route.primary, "errno", err);
      view_.WaitForChange(set, route, std::min(*deadline, std::chrono::steady_clock::now() + 500ms));
      route = view_.Route(set);
      continue;
    }
    return -err;
  }
}

int VolumeFs::ReadFrom(uint32_t set, const CallFn& call) {
  std::optional<TimePoint> deadline;
  SetRoute route = view_.Route(set);
  for (;;) {
    if (route.mode == vpb::REPLICA_SET_NO_QUORUM_EIO) return -EIO;
    bool abandoned = false;
    for (size_t i = 0; i < route.readers.size() && !abandoned; ++i) {
      const std::string& address = route.readers[i];
      // A silent reader costs read_attempt_timeout while another one can answer instead.
      Duration timeout = options_.call_timeout;
      if (i + 1 < route.readers.size()) timeout = std::min(timeout, options_.read_attempt_timeout);
      Attempt at(Client(address), route.epoch, timeout, view_, [&] {
        SetRoute now = view_.Route(set);
        return std::find(now.readers.begin(), now.readers.end(), address) != now.readers.end();
      });
      int err = call(at);
      abandoned = at.abandoned();
      if (!abandoned && !IsTransportError(err)) return -err;
    }
    if (abandoned) {
      log::Info("mount.reader_dropped", "set", set, "epoch", route.epoch);
      route = view_.Route(set);
      continue;
    }
    if (!deadline) deadline = std::chrono::steady_clock::now() + options_.failover_timeout;
    if (std::chrono::steady_clock::now() >= *deadline) return -EIO;
    view_.WaitForChange(set, route, std::min(*deadline, std::chrono::steady_clock::now() + 500ms));
    route = view_.Route(set);
  }
}

std::vector<uint32_t> VolumeFs::AllSets() const {
  vpb::VolumeSpec spec = view_.Spec();
  std::set<uint32_t> sets;
  for (const auto& set : spec.sets()) sets.insert(set.id());
  return {sets.begin(), sets.end()};
}

std::vector<uint32_t> VolumeFs::SetsOf(const Node& node) const {
  if (node.directory) return AllSets();
  return {node.set};
}

int VolumeFs::Resolve(fuse_ino_t ino, Node* node) const {
  auto found = inodes_.Get(ino);
  if (!found) return -ESTALE;
  *node = *found;
  if (node->directory && ino == FUSE_ROOT_ID) {
    auto sets = AllSets();
    if (!sets.empty()) node->set = sets.front();
  }
  return 0;
}

void VolumeFs::AttrToStat(const pb::Attr& attr, struct stat* st) {
  *st = {};
  st->st_ino = InodeNumberOf(attr.id());
  st->st_mode = attr.mode();
  st->st_uid = attr.uid();
  st->st_gid = attr.gid();
  st->st_size = static_cast<off_t>(attr.size());
  st->st_nlink = attr.nlink();
  st->st_blocks = static_cast<blkcnt_t>(attr.blocks());
  st->st_rdev = attr.rdev();
  st->st_blksize = 1 << 20;  // the largest write the mount passes in one request
  st->st_atim = FromNs(attr.atime_ns());
  st->st_mtim = FromNs(attr.mtime_ns());
  st->st_ctim = FromNs(attr.ctime_ns());
}

Entry VolumeFs::Register(const pb::Attr& attr, uint32_t set) {
  Entry entry;
  entry.ino = inodes_.Add(attr.id(), set, S_ISDIR(attr.mode()));
  AttrToStat(attr, &entry.attr);
  return entry;
}

Entry VolumeFs::Remember(const ListedEntry& listed) { return Register(listed.attr, listed.set); }

int VolumeFs::LookupOn(uint32_t set, const FileId& parent, const std::string& name, pb::Attr* attr) {
  pb::LookupRequest request;
  request.set_parent(parent);
  request.set_name(name);
  return ReadFrom(set, [&](Attempt& at) {
    auto response = at.Call<pb::LookupResponse>("brick.Lookup", request);
    if (response.err() == 0) *attr = response.attr();
    return response.err();
  });
}

int VolumeFs::FindEntry(const FileId& parent, const std::string& name, pb::Attr* attr, uint32_t* set) {
  vpb::VolumeSpec spec = view_.Spec();
  std::vector<uint32_t> order = volume::LookupSets(spec, parent, name);
  for (uint32_t id : AllSets()) {
    if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
  }
  int rc = -ENOENT;
  for (uint32_t id : order) {
    rc = LookupOn(id, parent, name, attr);
    if (rc != -ENOENT) {
      *set = id;
      return rc;
    }
  }
  return rc;
}

int VolumeFs::Lookup(fuse_ino_t parent, const std::string& name, Entry* out) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  pb::Attr attr;
  uint32_t set = 0;
  if (int rc = FindEntry(dir.id, name, &attr, &set); rc != 0) return rc;
  *out = Register(attr, set);
  return 0;
}

void VolumeFs::Forget(fuse_ino_t ino, uint64_t count) {
  if (auto dropped = inodes_.Forget(ino, count)) SendForget(*dropped);
}

void VolumeFs::SendForget(const Dropped& dropped) {
  pb::ForgetRequest request;
  request.set_id(dropped.id);
  int rc = Mutate(dropped.set, [&](Attempt& at) {
    request.mutable_header()->set_epoch(at.epoch());
    return at.Call<pb::ForgetResponse>("brick.Forget", request).err();
  });
  if (rc != 0) log::Warn("mount.forget_failed", "errno", -rc);
}

int VolumeFs::Getattr(fuse_ino_t ino, struct stat* out) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::GetattrRequest request;
  request.set_id(node.id);
  pb::Attr attr;
  int rc = ReadFrom(node.set, [&](Attempt& at) {
    auto response = at.Call<pb::GetattrResponse>("brick.Getattr", request);
    attr = response.attr();
    return response.err();
  });
  if (rc == 0) AttrToStat(attr, out);
  return rc;
}

int VolumeFs::Setattr(fuse_ino_t ino, const struct stat& attr, int to_set, struct stat* out) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::SetattrRequest request;
  request.set_id(node.id);
  request.set_valid(static_cast<uint32_t>(to_set));
  request.set_mode(attr.st_mode);
  request.set_uid(attr.st_uid);
  request.set_gid(attr.st_gid);
  request.set_size(static_cast<uint64_t>(attr.st_size));
  request.set_atime_ns(ToNs(attr.st_atim));
  request.set_mtime_ns(ToNs(attr.st_mtim));
  pb::Attr result;
  bool first = true;
  for (uint32_t set : SetsOf(node)) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      auto response = at.Call<pb::SetattrResponse>("brick.Setattr", request);
      if (first) result = response.attr();
      return response.err();
    });
    if (rc != 0) return rc;
    first = false;
  }
  AttrToStat(result, out);
  return 0;
}

int VolumeFs::Readlink(fuse_ino_t ino, std::string* target) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::ReadlinkRequest request;
  request.set_id(node.id);
  return ReadFrom(node.set, [&](Attempt& at) {
    auto response = at.Call<pb::ReadlinkResponse>("brick.Readlink", request);
    *target = response.target();
    return response.err();
  });
}

// Creates on the set owning the name, or for a directory on every set in ascending order, all
// with the same new id. A retry after a failover that finds our own id already there succeeded.
int VolumeFs::CreateObject(pb::CreateRequest request, bool directory, Entry* out) {
  request.set_new_id(NewFileId());
  std::vector<uint32_t> sets =
      directory ? AllSets() : std::vector<uint32_t>{volume::SetForName(view_.Spec().layout(), request.parent(), request.name())};
  pb::Attr attr;
  bool first = true;
  for (uint32_t set : sets) {
    int attempts = 0;
    pb::Attr here;
    int rc = Mutate(set, [&](Attempt& at) {
      ++attempts;
      request.mutable_header()->set_epoch(at.epoch());
      auto response = at.Call<pb::CreateResponse>("brick.Create", request);
      here = response.attr();
      return response.err();
    });
    if (rc == -EEXIST && attempts > 1 && LookupOn(set, request.parent(), request.name(), &here) == 0 &&
        here.id() == request.new_id()) {
      rc = 0;
    }
    if (rc != 0) return rc;
    if (first) attr = here;
    first = false;
  }
  *out = Register(attr, sets.front());
  return 0;
}

pb::CreateRequest NewCreate(pb::CreateRequest::Kind kind, const FileId& parent, const std::string& name, uint32_t mode,
                            Caller caller) {
  pb::CreateRequest request;
  request.set_kind(kind);
  request.set_parent(parent);
  request.set_name(name);
  request.set_mode(mode);
  request.set_uid(caller.uid);
  request.set_gid(caller.gid);
  request.set_exclusive(true);
  return request;
}

int VolumeFs::Mknod(fuse_ino_t parent, const std::string& name, mode_t mode, dev_t rdev, Caller caller, Entry* out) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  auto request = NewCreate(S_ISREG(mode) ? pb::CreateRequest::FILE : pb::CreateRequest::NODE, dir.id, name,
                           S_ISREG(mode) ? (mode & 07777) : mode, caller);
  request.set_rdev(rdev);
  return CreateObject(std::move(request), false, out);
}

int VolumeFs::Mkdir(fuse_ino_t parent, const std::string& name, mode_t mode, Caller caller, Entry* out) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  return CreateObject(NewCreate(pb::CreateRequest::DIRECTORY, dir.id, name, mode & 07777, caller), true, out);
}

int VolumeFs::Symlink(fuse_ino_t parent, const std::string& name, const std::string& target, Caller caller,
                      Entry* out) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  auto request = NewCreate(pb::CreateRequest::SYMLINK, dir.id, name, 0777, caller);
  request.set_target(target);
  return CreateObject(std::move(request), false, out);
}

int VolumeFs::Create(fuse_ino_t parent, const std::string& name, mode_t mode, int flags, Caller caller, Entry* out) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  auto request = NewCreate(pb::CreateRequest::FILE, dir.id, name, mode & 07777, caller);
  request.set_exclusive((flags & O_EXCL) != 0);
  int rc = CreateObject(std::move(request), false, out);
  if (rc == 0) inodes_.Opened(out->ino);
  return rc;
}

int VolumeFs::Link(fuse_ino_t ino, fuse_ino_t parent, const std::string& name, Entry* out) {
  Node node, dir;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  if (node.directory) return -EPERM;
  pb::LinkRequest request;
  request.set_id(node.id);
  request.set_new_parent(dir.id);
  request.set_new_name(name);
  pb::Attr attr;
  // The new name stays on the file's set (a brick links only its own files); lookups find it there.
  int rc = Mutate(node.set, [&](Attempt& at) {
    request.mutable_header()->set_epoch(at.epoch());
    auto response = at.Call<pb::LinkResponse>("brick.Link", request);
    attr = response.attr();
    return response.err();
  });
  if (rc != 0) return rc;
  *out = Register(attr, node.set);
  return 0;
}

int VolumeFs::Unlink(fuse_ino_t parent, const std::string& name) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  pb::Attr attr;
  uint32_t set = 0;
  std::vector<uint32_t> sets = AllSets();
  if (sets.size() == 1 && !inodes_.AnyOpen()) {
    set = sets.front();  // nothing to find out first: the brick answers EISDIR/ENOENT itself
  } else {
    if (int rc = FindEntry(dir.id, name, &attr, &set); rc != 0) return rc;
    if (S_ISDIR(attr.mode())) return -EISDIR;
  }
  bool keep = !attr.id().empty() && inodes_.IsOpen(attr.id());
  pb::RemoveRequest request;
  request.set_parent(dir.id);
  request.set_name(name);
  request.set_keep_id(keep);
  int rc = Mutate(set, [&](Attempt& at) {
    request.mutable_header()->set_epoch(at.epoch());
    return at.Call<pb::RemoveResponse>("brick.Remove", request).err();
  });
  if (rc == 0 && keep && attr.nlink() <= 1) inodes_.MarkKept(attr.id());
  return rc;
}

int VolumeFs::Rmdir(fuse_ino_t parent, const std::string& name) {
  Node dir;
  if (int rc = Resolve(parent, &dir); rc != 0) return rc;
  std::vector<uint32_t> sets = AllSets();
  if (sets.size() > 1) {
    // Every set must agree the directory is empty before any set removes it.
    pb::Attr attr;
    if (int rc = LookupOn(sets.front(), dir.id, name, &attr); rc != 0) return rc;
    if (!S_ISDIR(attr.mode())) return -ENOTDIR;
    for (uint32_t set : sets) {
      pb::ReaddirRequest request;
      request.set_id(attr.id());
      request.set_max_entries(1);
      int rc = ReadFrom(set, [&](Attempt& at) {
        auto response = at.Call<pb::ReaddirResponse>("brick.Readdir", request);
        if (response.err() == 0 && response.entries_size() > 0) return ENOTEMPTY;
        return response.err();
      });
      if (rc != 0) return rc;
    }
  }
  pb::RemoveRequest request;
  request.set_parent(dir.id);
  request.set_name(name);
  request.set_directory(true);
  for (uint32_t set : sets) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      return at.Call<pb::RemoveResponse>("brick.Remove", request).err();
    });
    if (rc != 0) return rc;
  }
  return 0;
}

int VolumeFs::Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t new_parent, const std::string& new_name,
                     unsigned int flags) {
  Node from, to;
  if (int rc = Resolve(parent, &from); rc != 0) return rc;
  if (int rc = Resolve(new_parent, &to); rc != 0) return rc;
  pb::Attr source;
  uint32_t source_set = 0;
  if (int rc = FindEntry(from.id, name, &source, &source_set); rc != 0) return rc;
  bool directory = S_ISDIR(source.mode());
  pb::RenameRequest request;
  request.set_parent(from.id);
  request.set_name(name);
  request.set_new_parent(to.id);
  request.set_new_name(new_name);
  request.set_flags(flags);
  std::vector<uint32_t> sets = directory ? AllSets() : std::vector<uint32_t>{source_set};
  // A target we replace that is still open keeps its id; a target on another set goes first.
  pb::Attr target;
  uint32_t target_set = 0;
  bool target_exists = false;
  if ((flags & RENAME_EXCHANGE) != 0 || inodes_.AnyOpen() || sets.size() > 1 || AllSets().size() > 1) {
    int rc = FindEntry(to.id, new_name, &target, &target_set);
    if (rc != 0 && rc != -ENOENT) return rc;
    target_exists = rc == 0;
  }
  if (target_exists && !directory && !S_ISDIR(target.mode()) && target_set != source_set) {
    if ((flags & RENAME_EXCHANGE) != 0) return -EXDEV;
    if ((flags & RENAME_NOREPLACE) != 0) return -EEXIST;
    if (int rc = Unlink(new_parent, new_name); rc != 0) return rc;
    target_exists = false;
  }
  bool keep = target_exists && (flags & RENAME_EXCHANGE) == 0 && !S_ISDIR(target.mode()) && inodes_.IsOpen(target.id());
  request.set_keep_replaced_id(keep);
  for (uint32_t set : sets) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      return at.Call<pb::RenameResponse>("brick.Rename", request).err();
    });
    if (rc != 0) return rc;
  }
  if (keep && target.nlink() <= 1) inodes_.MarkKept(target.id());
  return 0;
}

int VolumeFs::Open(fuse_ino_t ino, int flags) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::OpenRequest request;
  request.set_id(node.id);
  request.set_flags(static_cast<uint32_t>(flags));
  int rc = ReadFrom(node.set, [&](Attempt& at) {
    return at.Call<pb::OpenResponse>("brick.Open", request).err();
  });
  if (rc == 0) inodes_.Opened(ino);
  return rc;
}

void VolumeFs::Release(fuse_ino_t ino) {
  if (auto dropped = inodes_.Released(ino)) SendForget(*dropped);
}

int VolumeFs::Read(fuse_ino_t ino, uint64_t offset, size_t size, std::string* data) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::ReadRequest request;
  request.set_id(node.id);
  request.set_offset(offset);
  request.set_size(static_cast<uint32_t>(std::min<size_t>(size, 1u << 20)));
  return ReadFrom(node.set, [&](Attempt& at) {
    auto response = at.Call<pb::ReadResponse>("brick.Read", request);
    *data = std::move(*response.mutable_data());
    return response.err();
  });
}

int VolumeFs::Write(fuse_ino_t ino, uint64_t offset, const char* data, size_t size, size_t* written) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::WriteRequest request;
  request.set_id(node.id);
  request.set_offset(offset);
  request.set_data(data, size);
  return Mutate(node.set, [&](Attempt& at) {
    request.mutable_header()->set_epoch(at.epoch());
    auto response = at.Call<pb::WriteResponse>("brick.Write", request);
    *written = response.written();
    return response.err();
  });
}

int VolumeFs::Fsync(fuse_ino_t ino, bool datasync) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::FsyncRequest request;
  request.set_id(node.id);
  request.set_datasync(datasync);
  for (uint32_t set : SetsOf(node)) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      return at.Call<pb::FsyncResponse>("brick.Fsync", request).err();
    });
    if (rc != 0) return rc;
  }
  return 0;
}

int VolumeFs::Fallocate(fuse_ino_t ino, int mode, uint64_t offset, uint64_t length) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::FallocateRequest request;
  request.set_id(node.id);
  request.set_mode(static_cast<uint32_t>(mode));
  request.set_offset(offset);
  request.set_length(length);
  return Mutate(node.set, [&](Attempt& at) {
    request.mutable_header()->set_epoch(at.epoch());
    return at.Call<pb::FallocateResponse>("brick.Fallocate", request).err();
  });
}

int VolumeFs::Statfs(struct statvfs* out) {
  *out = {};
  bool first = true;
  for (uint32_t set : AllSets()) {
    pb::StatfsResponse answer;
    int rc = ReadFrom(set, [&](Attempt& at) {
      answer = at.Call<pb::StatfsResponse>("brick.Statfs", pb::StatfsRequest());
      return answer.err();
    });
    if (rc != 0) return rc;
    if (first) {
      out->f_bsize = out->f_frsize = answer.block_size();
      out->f_namemax = answer.name_max();
      first = false;
    }
    // Sum in the first set's block size.
    auto scale = [&](uint64_t blocks) {
      return out->f_frsize == 0 ? blocks : blocks * answer.block_size() / out->f_frsize;
    };
    out->f_blocks += scale(answer.blocks());
    out->f_bfree += scale(answer.blocks_free());
    out->f_bavail += scale(answer.blocks_available());
    out->f_files += answer.files();
    out->f_ffree += answer.files_free();
    out->f_favail += answer.files_free();
  }
  return first ? -EIO : 0;
}

int VolumeFs::Getxattr(fuse_ino_t ino, const std::string& name, std::string* value) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::GetxattrRequest request;
  request.set_id(node.id);
  request.set_name(name);
  return ReadFrom(node.set, [&](Attempt& at) {
    auto response = at.Call<pb::GetxattrResponse>("brick.Getxattr", request);
    *value = response.value();
    return response.err();
  });
}

int VolumeFs::Listxattr(fuse_ino_t ino, std::string* names) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::ListxattrRequest request;
  request.set_id(node.id);
  return ReadFrom(node.set, [&](Attempt& at) {
    auto response = at.Call<pb::ListxattrResponse>("brick.Listxattr", request);
    names->clear();
    for (const auto& name : response.names()) names->append(name).push_back('\0');
    return response.err();
  });
}

int VolumeFs::Setxattr(fuse_ino_t ino, const std::string& name, const std::string& value, int flags) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::SetxattrRequest request;
  request.set_id(node.id);
  request.set_name(name);
  request.set_value(value);
  request.set_flags(static_cast<uint32_t>(flags));
  for (uint32_t set : SetsOf(node)) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      return at.Call<pb::SetxattrResponse>("brick.Setxattr", request).err();
    });
    if (rc != 0) return rc;
  }
  return 0;
}

int VolumeFs::Removexattr(fuse_ino_t ino, const std::string& name) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  pb::RemovexattrRequest request;
  request.set_id(node.id);
  request.set_name(name);
  for (uint32_t set : SetsOf(node)) {
    int rc = Mutate(set, [&](Attempt& at) {
      request.mutable_header()->set_epoch(at.epoch());
      return at.Call<pb::RemovexattrResponse>("brick.Removexattr", request).err();
    });
    if (rc != 0) return rc;
  }
  return 0;
}

// One set's listing, page by page from one brick: cookies are that brick's directory offsets, so
// a listing that loses its brick starts again on the next one.
int VolumeFs::Readdir(fuse_ino_t ino, std::vector<ListedEntry>* entries) {
  Node node;
  if (int rc = Resolve(ino, &node); rc != 0) return rc;
  if (!node.directory) return -ENOTDIR;
  std::set<std::string> seen;
  entries->clear();
  for (uint32_t set : AllSets()) {
    pb::ReaddirResponse all;
    int rc = ReadFrom(set, [&](Attempt& at) {
      all.Clear();
      pb::ReaddirRequest request;
      request.set_id(node.id);
      for (;;) {
        auto page = at.Call<pb::ReaddirResponse>("brick.Readdir", request);
        if (page.err() != 0) return page.err();
        for (auto& entry : *page.mutable_entries()) {
          request.set_cookie(entry.cookie());
          *all.add_entries() = std::move(entry);
        }
        if (page.eof() || page.entries_size() == 0) return 0;
      }
    });
    if (rc != 0) return rc;
    for (auto& entry : *all.mutable_entries()) {
      if (!seen.insert(entry.name()).second) continue;  // a directory, listed by every set
      // A file the rebalance mover is copying is listed under its real name from its source set
      // until the move ends; its temp name on the target set is internal.
      if (volume::IsRebalanceTempName(entry.name())) continue;
      entries->push_back(ListedEntry{entry.name(), entry.attr(), set});
    }
  }
  return 0;
}

}  // namespace cairn::volumemount
