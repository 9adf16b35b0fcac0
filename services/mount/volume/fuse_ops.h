// The cairn-mount FUSE low-level handlers: decode the request, call VolumeFs, reply (negative
// errno becomes fuse_reply_err). Node ids are InodeTable ids; every entry reply adds exactly one
// lookup count and FORGET removes them (libfuse passthrough_hp's discipline).
// Threading: handlers run on libfuse's worker threads; VolumeFs is thread-safe.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <memory>

#include "volume_fs.h"

namespace cairn::volumemount {

struct Context {
  VolumeFs* fs = nullptr;           // set before the session loop starts
  fuse_session* session = nullptr;  // for cache invalidation
  double timeout = 1.0;             // entry and attribute cache lifetime in seconds (timeout=)
  // The kernel's write-back cache (writeback=on): write(2) returns once the data is in the page
  // cache; the kernel sends it in parallel WRITEs, and close, fsync and truncate wait for them
  // (close then answers an error of the write-back). fsync keeps its meaning: every in-sync
  // replica has the data on disk.
  bool writeback = false;
};

// The operations table; userdata passed to fuse_session_new must be a Context*.
const fuse_lowlevel_ops& Operations();

}  // namespace cairn::volumemount
