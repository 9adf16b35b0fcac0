// File-tree helpers for image layers: a content digest, sizes, a faithful copy, removal.
//
// Trees are walked without following symbolic links. Every function is synchronous, touches only
// the paths it is given and is safe to call from several threads on different trees.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/common/status.h"

namespace cairn::containers {

struct TreeStats {
  uint64_t size_bytes = 0;  // apparent sizes of regular files and symlink targets
  uint64_t disk_bytes = 0;  // st_blocks * 512 of every entry, each hard-linked inode once
  uint64_t entries = 0;     // every name below the root (not the root itself)
};

// "sha256:HEX" of the tree's canonical stream (docs/containers.md "Digest"): entries in byte order
// of their relative paths, each with type, path, mode bits, owner, group and, for a regular file,
// its size and content hash, for a symlink its target, for a device its number. Times are left
// out, so copying or re-importing the same files gives the same digest.
// Errors: NotFound when root does not exist, IoError naming the path that could not be read.
Result<std::string> DigestTree(const std::string& root);

// Sizes of the tree under root. Errors as DigestTree.
Result<TreeStats> MeasureTree(const std::string& root);

// Copies source to destination (which must not exist): directories, regular files (holes kept
// where the file system reports them), symlinks, devices, fifos, hard links (as links), owners,
// modes and times. Extended attributes other than trusted.overlay.opaque are not copied.
// Errors: AlreadyExists for an existing destination, NotFound for a missing source, IoError
// naming the entry. On error the partial destination is left for the caller to remove.
Status CopyTree(const std::string& source, const std::string& destination);

// Removes path and everything below it (no symlink is followed). A missing path is OK.
Status RemoveTree(const std::string& path);

}  // namespace cairn::containers
