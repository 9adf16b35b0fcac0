// Branch lists and mount options of a union mount.
//
// A union is an ordered list of branches, top first. Each branch is a directory with a permission:
//   rw  read-write: creates, copy-ups and whiteouts go here;
//   ro  read-only through the union, but whiteouts stored in it (left by an earlier rw life) are obeyed;
//   rr  real read-only: never written, and names in it are never interpreted as whiteouts.
// Parsing returns Status/Result with messages that name the offending option.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn::unionfs {

enum class BranchMode { kReadWrite, kReadOnly, kRealReadOnly };

std::string_view BranchModeName(BranchMode mode);  // "rw", "ro", "rr"
Result<BranchMode> ParseBranchMode(std::string_view text);

struct BranchSpec {
  std::string path;  // absolute directory path
  BranchMode mode = BranchMode::kReadOnly;
};

// How deletions of lower names are recorded in a writable branch.
//   kAufs:    an empty file ".wh.NAME"; opaque directory marker ".wh..wh..opq".
//   kOverlay: a 0/0 character device named NAME; opaque directory xattr trusted.overlay.opaque="y".
// Lookups recognise both formats whatever is chosen; the option only picks what is written.
enum class WhiteoutFormat { kAufs, kOverlay };

struct MountOptions {
  std::vector<BranchSpec> branches;  // top first
  std::string create_policy = "tdp"; // tdp | rr | mfs (see policy.h)
  WhiteoutFormat whiteout = WhiteoutFormat::kAufs;
  // How long the kernel may cache names and attributes (timeout=SECONDS). Every change goes through
  // the mount and live branch changes invalidate explicitly, so only direct edits of a branch behind
  // the union's back can be seen late.
  double cache_timeout = 10.0;
  // The same for names and attributes served from ro/rr branches (rotimeout=SECONDS): image layers
  // are not edited, so the kernel may keep them much longer (a copy-up, a deletion or a live branch
  // change through the mount invalidates them at once).
  double lower_cache_timeout = 600.0;
  // How many plain files may keep an O_PATH descriptor open at once (0: a quarter of RLIMIT_NOFILE).
  // Beyond it the least recently used are closed and reopened by name on their next use, so the
  // kernel may hold more nodes than the process may hold descriptors. Not a mount option.
  size_t fd_budget = 0;
};

// Parses "/upper=rw:/b=ro:/c" (mode defaults to ro, the first branch defaults to rw when it has none).
Result<std::vector<BranchSpec>> ParseBranchList(std::string_view text);

// Parses a comma-separated FUSE-style option string: dirs=..., create=tdp|rr|mfs, whiteout=aufs|overlay,
// timeout=SECONDS,
// and fuse-overlayfs's lowerdir=A:B,upperdir=U,workdir=W. Options it does not know are appended to
// *passthrough (comma-separated) so the caller can hand them to FUSE; passthrough may be null.
Status ParseMountOptionString(std::string_view text, MountOptions* options, std::string* passthrough);

// Checks the branches exist and are directories, are pairwise distinct (also as (dev, ino)),
// and that mountpoint (if not empty) is not inside any branch nor a branch inside it.
Status ValidateMountOptions(const MountOptions& options, const std::string& mountpoint);

// Checks no branch lies inside real_mountpoint (an already canonical path) and real_mountpoint is not
// inside a branch. For live changes, where resolving the mount point itself would call into the mount.
Status CheckOutsideMount(const std::vector<BranchSpec>& branches, const std::string& real_mountpoint);

// "/a=rw:/b=ro", the inverse of ParseBranchList.
std::string FormatBranchList(const std::vector<BranchSpec>& branches);

// A live branch change, as sent through the control channel (docs/union.md):
//   add  "[INDEX:]/path[=mode]"  insert at INDEX (0 = top; default top), mode default ro
//   del  "/path"                 remove the branch with that path
//   mod  "/path=mode"            change a branch's permission
//   set  "/a=rw:/b=ro"           replace the whole list
// Returns the new list or an error naming what is wrong (unknown branch, bad index, ...).
Result<std::vector<BranchSpec>> ApplyBranchCommand(const std::vector<BranchSpec>& current, std::string_view command,
                                                   std::string_view argument);

}  // namespace cairn::unionfs
