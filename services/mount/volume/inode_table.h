// InodeTable: FUSE node ids <-> 16-byte brick file ids, with the kernel's lookup counts and our
// open counts (libfuse passthrough_hp's discipline: every entry reply adds exactly one lookup,
// FORGET removes them, a node is dropped only when both counts are zero).
//
// A file unlinked (or replaced by a rename) while open is removed with keep_id, so its id stays
// addressable on the bricks; MarkKept records that, and when such a node is finally dropped the
// caller must send brick.Forget for it (Forget/Release return it).
//
// Threading: thread-safe (one mutex).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace cairn::volumemount {

using FileId = std::string;

struct Node {
  FileId id;
  uint32_t set = 0;        // the replica set holding a non-directory (directories are on every set)
  bool directory = false;
  uint64_t lookups = 0;
  uint32_t opens = 0;
  bool kept = false;       // removed with keep_id: needs brick.Forget when dropped
};

// An id whose last name is gone and that nobody holds any more: send brick.Forget for it.
struct Dropped {
  FileId id;
  uint32_t set = 0;
};

class InodeTable {
 public:
  InodeTable();  // the root (FUSE_ROOT_ID) is the brick root id, a directory, never dropped

  // Adds one lookup of `id` and returns its node id (a new one for an unknown id). `set` and
  // `directory` update what is known about where the object lives.
  fuse_ino_t Add(const FileId& id, uint32_t set, bool directory);
  std::optional<Node> Get(fuse_ino_t ino) const;
  std::optional<fuse_ino_t> Find(const FileId& id) const;

  std::optional<Dropped> Forget(fuse_ino_t ino, uint64_t count);
  void Opened(fuse_ino_t ino);
  std::optional<Dropped> Released(fuse_ino_t ino);

  // True when the kernel has `id` open (so removing its last name needs keep_id).
  bool IsOpen(const FileId& id) const;
  bool AnyOpen() const { return open_files_.load() > 0; }
  void MarkKept(const FileId& id);
  size_t size() const;

 private:
  std::optional<Dropped> DropIfUnused(std::unordered_map<fuse_ino_t, Node>::iterator it);  // REQUIRES: mu_

  mutable std::mutex mu_;
  std::unordered_map<fuse_ino_t, Node> nodes_;
  std::unordered_map<FileId, fuse_ino_t> by_id_;
  fuse_ino_t next_ = FUSE_ROOT_ID + 1;
  std::atomic<uint64_t> open_files_{0};  // sum of opens
};

// The st_ino shown for an id: stable across mounts and hosts (a fold of the id); the root is 1.
uint64_t InodeNumberOf(const FileId& id);

}  // namespace cairn::volumemount
