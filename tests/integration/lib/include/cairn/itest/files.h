// Small file and mount-table helpers for integration tests.
#pragma once

#include <cstddef>
#include <string>

namespace cairn::itest {

// The whole file, bytes as they are; "" when it cannot be read.
std::string ReadFile(const std::string& path);

// The last `size` bytes of text (all of it when shorter), for failure output.
std::string Tail(const std::string& text, size_t size);

// A new directory /tmp/PREFIX-XXXXXX (mkdtemp); "" when it could not be made.
std::string MakeTempDir(const std::string& prefix);

// True when something is mounted exactly at `path` (this process's /proc/self/mountinfo; the
// paths tests use have no characters mountinfo escapes).
bool IsMountPoint(const std::string& path);

}  // namespace cairn::itest
