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
  unionfs::MountOptions options;
  double timeout = 1.0;  // entry and attribute cache lifetime in seconds
};

// The operations table; userdata passed to fuse_session_new must be a Context*.
const fuse_lowlevel_ops& Operations();

}  // namespace cairn::unionmount
