// The unionmount FUSE low-level handlers: decode the request, call libs/union, reply (negative errno
// from the library becomes fuse_reply_err). No union decisions are made here.
//
// Inode discipline follows libfuse's passthrough_hp: FUSE node ids are UnionFs node ids (the root is
// 1 in both), every entry reply adds exactly one lookup count, forget removes them.
// Threading: handlers run on libfuse's worker threads; UnionFs is thread-safe.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <memory>

#include "cairn/union/union_fs.h"

namespace cairn::unionmount {

struct Context {
  std::unique_ptr<unionfs::UnionFs> fs;
  fuse_session* session = nullptr;  // set before the loop starts; used for cache invalidation
  double timeout = 10.0;            // entry and attribute cache lifetime in seconds (timeout=)
  double lower_timeout = 600.0;     // the same for files served from ro/rr branches (rotimeout=)
  std::string real_mountpoint;      // canonical, resolved before mounting
};

// The control channel: extended attributes of the mount's root directory.
//   getfattr -n user.unionmount.branches MNT          -> "/a=rw:/b=ro"
//   setfattr -n user.unionmount.add -v "1:/c=ro" MNT   (also .del, .mod, .set; see ApplyBranchCommand)
constexpr const char* kControlPrefix = "user.unionmount.";

// The operations table; userdata passed to fuse_session_new must be a Context*.
const fuse_lowlevel_ops& Operations();

}  // namespace cairn::unionmount
