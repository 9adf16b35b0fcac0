// VolumeFs: the file system a cairn-mount serves, in terms of FUSE node ids and negative errno.
// It resolves node ids to brick file ids (InodeTable), picks the replica set of each object
// (libs/volume placement), and sends each operation to the right brick of that set (VolumeView
// routes), following failovers:
//
//   every brick call is an Attempt: it waits for the brick's answer, but is abandoned at once
//   when the store's record makes it pointless (the primary it went to is no longer the set's
//   primary, or the reader it went to is no longer a reader), e.g. when a silent (SIGSTOPped)
//   primary was replaced: the operation is retried on the new route without waiting for
//   call_timeout. An attempt to a primary that stays primary is never abandoned (a new epoch that
//   only dropped a backup is answered by that primary), so non-idempotent mutations are not
//   repeated without need.
//   mutations go to the set's primary stamped with its epoch. ESTALE (not applied) re-reads the
//   set record and retries as soon as the route changed (with a short backoff while it has not,
//   e.g. the primary has not installed the new view yet). A transport error (ENOTCONN,
//   ETIMEDOUT) waits for the route to change and retries there (the same brick is tried again
//   every half second, in case it only restarted). Both give up after failover_timeout: ESTALE
//   then, EIO for transport failures.
//   reads go to the set's readers in order (local in-sync brick, other in-sync bricks, primary),
//   moving to the next on a transport error, then waiting like mutations. A read attempt that has
//   another reader after it is bounded by read_attempt_timeout, so a silent reader costs that
//   long, not call_timeout.
//   NO_QUORUM_EIO sets fail everything with EIO; NO_QUORUM_READONLY read from read_source and
//   refuse mutations with EROFS.
//
// Every other errno is the brick's, unchanged. A retried mutation may have been applied by the
// old primary before it failed; creates carry their new id, so an EEXIST that names our own id
// counts as success; other non-idempotent retries (unlink, rename) may report ENOENT/EEXIST.
//
// Distribution over several replica sets: a non-directory lives on the set that owns the hash of
// (parent id, name) (volume::SetForName); a lookup that misses there tries the previous layout's
// set, then every other set (a renamed file stays on its set). Directories exist on every set
// with the same id: mkdir, rmdir, rename of a directory and directory attribute changes go to
// every set in ascending id order; readdir merges the sets' entries; statfs sums the sets.
//
// Threading: thread-safe; calls block (run them on FUSE worker threads, never on `io`'s threads).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "cairn/brickclient/brick_client.h"
#include "cairn/common/clock.h"
#include "inode_table.h"
#include "volume_view.h"

namespace cairn::volumemount {

namespace pb = ::cairn::proto::brick;

struct FsOptions {
  Duration call_timeout = std::chrono::seconds(10);      // one brick call
  Duration failover_timeout = std::chrono::seconds(10);  // waiting for a new route after a failure
  Duration read_attempt_timeout = std::chrono::seconds(2);  // a read while other readers remain
};

class Attempt;  // one try of an operation on one brick (volume_fs.cc)

struct Entry {
  fuse_ino_t ino = 0;  // with one lookup count added
  struct stat attr {};
};

struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct ListedEntry {
  std::string name;
  pb::Attr attr;
  uint32_t set = 0;
};

class VolumeFs {
 public:
  VolumeFs(VolumeView& view, boost::asio::io_context& io, FsOptions options = {});
  ~VolumeFs();

  int Lookup(fuse_ino_t parent, const std::string& name, Entry* out);
  void Forget(fuse_ino_t ino, uint64_t count);
  int Getattr(fuse_ino_t ino, struct stat* out);
  // to_set: FUSE_SET_ATTR_* bits (the brick protocol uses the same values).
  int Setattr(fuse_ino_t ino, const struct stat& attr, int to_set, struct stat* out);
  int Readlink(fuse_ino_t ino, std::string* target);

  int Mknod(fuse_ino_t parent, const std::string& name, mode_t mode, dev_t rdev, Caller caller, Entry* out);
  int Mkdir(fuse_ino_t parent, const std::string& name, mode_t mode, Caller caller, Entry* out);
  int Symlink(fuse_ino_t parent, const std::string& name, const std::string& target, Caller caller, Entry* out);
  int Link(fuse_ino_t ino, fuse_ino_t parent, const std::string& name, Entry* out);
  int Unlink(fuse_ino_t parent, const std::string& name);
  int Rmdir(fuse_ino_t parent, const std::string& name);
  int Rename(fuse_ino_t parent, const std::string& name, fuse_ino_t new_parent, const std::string& new_name,
             unsigned int flags);

  // Open/Create count the node as open until Release.
  int Open(fuse_ino_t ino, int flags);
  int Create(fuse_ino_t parent, const std::string& name, mode_t mode, int flags, Caller caller, Entry* out);
  void Release(fuse_ino_t ino);
  int Read(fuse_ino_t ino, uint64_t offset, size_t size, std::string* data);
  int Write(fuse_ino_t ino, uint64_t offset, const char* data, size_t size, size_t* written);
  int Fsync(fuse_ino_t ino, bool datasync);  // also fsyncdir
  int Fallocate(fuse_ino_t ino, int mode, uint64_t offset, uint64_t length);
  int Statfs(struct statvfs* out);

  int Getxattr(fuse_ino_t ino, const std::string& name, std::string* value);
  int Listxattr(fuse_ino_t ino, std::string* names);  // NUL-separated, as listxattr(2)
  int Setxattr(fuse_ino_t ino, const std::string& name, const std::string& value, int flags);
  int Removexattr(fuse_ino_t ino, const std::string& name);

  // The merged listing of a directory (names with attributes, no "." or "..").
  int Readdir(fuse_ino_t ino, std::vector<ListedEntry>* entries);
  // Adds one lookup count for a listed entry (readdirplus) and fills its entry.
  Entry Remember(const ListedEntry& listed);

  static void AttrToStat(const pb::Attr& attr, struct stat* st);

 private:
  // call returns the brick's errno (0 on success); Attempt::Call gives it the brick's answers.
  using CallFn = std::function<int(Attempt&)>;
  int Mutate(uint32_t set, const CallFn& call);
  int ReadFrom(uint32_t set, const CallFn& call);
  brickclient::BrickClient& Client(const std::string& address);

  std::vector<uint32_t> AllSets() const;
  // Sets an operation on `node` goes to: every set for a directory, else its own.
  std::vector<uint32_t> SetsOf(const Node& node) const;
  int Resolve(fuse_ino_t ino, Node* node) const;
  int LookupOn(uint32_t set, const FileId& parent, const std::string& name, pb::Attr* attr);
  // Finds (parent, name) on the sets lookups try; *set is where it was found.
  int FindEntry(const FileId& parent, const std::string& name, pb::Attr* attr, uint32_t* set);
  int CreateObject(pb::CreateRequest request, bool directory, Entry* out);
  Entry Register(const pb::Attr& attr, uint32_t set);
  void SendForget(const Dropped& dropped);

  VolumeView& view_;
  boost::asio::io_context& io_;
  FsOptions options_;
  InodeTable inodes_;
  std::mutex clients_mu_;
  std::map<std::string, std::unique_ptr<brickclient::BrickClient>> clients_;  // GUARDED_BY clients_mu_
};

}  // namespace cairn::volumemount
