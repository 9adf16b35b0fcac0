// Copying one object's data and metadata from a brick (read over the brick protocol) to another
// brick: the code heal and rebalance share.
//
//   heal:      source = the set's primary (BrickClient), target = the healed brick's own
//              BrickStore (StoreTarget): only differing 1 MiB blocks are written.
//   rebalance: source = the primary of the set a file leaves, target = the primary of the set it
//              moves to (RemoteTarget, mutations stamped with that set's epoch, so they replicate).
//
//   heal::StoreTarget target(local_store, "local brick");
//   heal::CopyStats stats;
//   CAIRN_RETURN_IF_ERROR(heal::CopyData(source, target, id, source_attr, target_attr, stop, {}, &stats));
//   CAIRN_RETURN_IF_ERROR(heal::CopyMetadata(source, target, id, source_attr, target_attr, &stats));
//
// Errors name the side and the id: the source's "unreachable" errnos (ETIMEDOUT, ENOTCONN, ...)
// give Unavailable, its other errors Internal; the target's ENOSPC, EDQUOT, EROFS, EIO, EMFILE,
// ENFILE give IoError, its other errors Internal; a set stop flag gives Aborted. A source answer
// ENOENT/ESTALE (the object went meanwhile) ends the copy early with Ok: the caller decides
// (heal: the removal was journaled; rebalance: checks the source again before removing it).
// Threading: the functions block; call them from a worker thread, never an io_context thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "cairn/brick/brick_store.h"
#include "cairn/brickclient/brick_client.h"
#include "cairn/common/status.h"
#include "cairn/proto/brick.pb.h"

namespace cairn::heal {

namespace bpb = ::cairn::proto::brick;

// Where the copy writes. Requests carry no mutation header; RemoteTarget stamps its epoch.
class CopyTarget {
 public:
  virtual ~CopyTarget() = default;
  virtual bpb::GetattrResponse Getattr(const bpb::GetattrRequest& request) = 0;
  virtual bpb::SetattrResponse Setattr(bpb::SetattrRequest request) = 0;
  virtual bpb::ReadResponse Read(const bpb::ReadRequest& request) = 0;
  virtual bpb::WriteResponse Write(bpb::WriteRequest request) = 0;
  virtual bpb::ListxattrResponse Listxattr(const bpb::ListxattrRequest& request) = 0;
  virtual bpb::GetxattrResponse Getxattr(const bpb::GetxattrRequest& request) = 0;
  virtual bpb::SetxattrResponse Setxattr(bpb::SetxattrRequest request) = 0;
  virtual bpb::RemovexattrResponse Removexattr(bpb::RemovexattrRequest request) = 0;
  // For error messages: "local brick", "target set 3".
  virtual const std::string& label() const = 0;
};

// A brick of this process, written directly (the heal of a replica: no replication).
class StoreTarget : public CopyTarget {
 public:
  StoreTarget(brick::BrickStore& store, std::string label) : store_(store), label_(std::move(label)) {}
  bpb::GetattrResponse Getattr(const bpb::GetattrRequest& request) override { return store_.Getattr(request); }
  bpb::SetattrResponse Setattr(bpb::SetattrRequest request) override { return store_.Setattr(request, nullptr); }
  bpb::ReadResponse Read(const bpb::ReadRequest& request) override { return store_.Read(request); }
  bpb::WriteResponse Write(bpb::WriteRequest request) override { return store_.Write(request, nullptr); }
  bpb::ListxattrResponse Listxattr(const bpb::ListxattrRequest& request) override { return store_.Listxattr(request); }
  bpb::GetxattrResponse Getxattr(const bpb::GetxattrRequest& request) override { return store_.Getxattr(request); }
  bpb::SetxattrResponse Setxattr(bpb::SetxattrRequest request) override { return store_.Setxattr(request, nullptr); }
  bpb::RemovexattrResponse Removexattr(bpb::RemovexattrRequest request) override {
    return store_.Removexattr(request, nullptr);
  }
  const std::string& label() const override { return label_; }

 private:
  brick::BrickStore& store_;
  std::string label_;
};

// A set's primary over the brick protocol; every mutation carries `epoch` (a stale one is
// refused with ESTALE, which the copy reports as Internal: the caller refreshes its route).
class RemoteTarget : public CopyTarget {
 public:
  RemoteTarget(brickclient::BrickClient& client, uint64_t epoch, std::string label)
      : client_(client), epoch_(epoch), label_(std::move(label)) {}
  bpb::GetattrResponse Getattr(const bpb::GetattrRequest& request) override;
  bpb::SetattrResponse Setattr(bpb::SetattrRequest request) override;
  bpb::ReadResponse Read(const bpb::ReadRequest& request) override;
  bpb::WriteResponse Write(bpb::WriteRequest request) override;
  bpb::ListxattrResponse Listxattr(const bpb::ListxattrRequest& request) override;
  bpb::GetxattrResponse Getxattr(const bpb::GetxattrRequest& request) override;
  bpb::SetxattrResponse Setxattr(bpb::SetxattrRequest request) override;
  bpb::RemovexattrResponse Removexattr(bpb::RemovexattrRequest request) override;
  const std::string& label() const override { return label_; }

 private:
  brickclient::BrickClient& client_;
  uint64_t epoch_;
  std::string label_;
};

struct CopyOptions {
  std::string source_label = "primary";  // for error messages
  // The target file was just created (empty, then extended to the size): zero blocks are left
  // as holes without reading the target back.
  bool target_is_new = false;
};

struct CopyStats {
  uint64_t files_examined = 0;  // regular files whose data were compared or copied
  uint64_t files_copied = 0;    // ... of which some block was written
  uint64_t bytes_copied = 0;
  uint64_t metadata_fixed = 0;  // objects whose owner, mode, xattrs or times were set
};

// Size first (a file that grows gets holes), then every 1 MiB block of the source that differs
// from the target's (or, with target_is_new, that is not all zeros). Stats are added to.
Status CopyData(brickclient::BrickClient& source, CopyTarget& target, const brick::FileId& id,
                const bpb::Attr& source_attr, const bpb::Attr& target_attr, const std::atomic<bool>& stop,
                const CopyOptions& options, CopyStats* stats);
// Owner, mode (again after a chown, which clears set-id bits), user xattrs (set differing,
// remove extra; not for symlinks), then atime/mtime last.
Status CopyMetadata(brickclient::BrickClient& source, CopyTarget& target, const brick::FileId& id,
                    const bpb::Attr& source_attr, const bpb::Attr& target_attr, const CopyOptions& options,
                    CopyStats* stats);

// The error Statuses above, for callers that make their own calls on either side.
Status SourceError(const std::string& label, const std::string& what, const brick::FileId& id, int err);
Status TargetError(const std::string& label, const std::string& what, const brick::FileId& id, int err);
bool Unreachable(int err);  // ETIMEDOUT, ENOTCONN, ECONNREFUSED, ECONNRESET, EPIPE
bool Gone(int err);         // ENOENT, ESTALE

}  // namespace cairn::heal
