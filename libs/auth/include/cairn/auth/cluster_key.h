// The cluster key file: 32 random bytes, mode 0600, created once when a cluster is initialised
// (or written when a host joins). Reading is net::ReadClusterKeyFile.
#pragma once

#include <string>

#include "cairn/common/status.h"

namespace cairn::auth {

// Writes key to path atomically (PATH.tmp, fsync, rename, fsync of the directory) with mode 0600.
// Errors: IoError / PermissionDenied naming the path.
Status WriteClusterKeyFile(const std::string& path, const std::string& key);

// Creates a new random key at path. Errors: AlreadyExists when the file exists (a key is never
// replaced: that would lock this host out of its cluster), and those of WriteClusterKeyFile.
Result<std::string> CreateClusterKeyFile(const std::string& path);

// Reads the first line of an API token file (trailing spaces and CR dropped).
// Errors: NotFound / IoError; InvalidArgument when the line is empty.
Result<std::string> ReadApiTokenFile(const std::string& path);

}  // namespace cairn::auth
