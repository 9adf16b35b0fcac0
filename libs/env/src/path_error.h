// Shared by the Env implementations: an errno Status whose message names the operation and the path,
// e.g. "open /data/wal/0001.log: No such file or directory".
#pragma once

#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn::env {

inline Status PathError(std::string_view op, const std::string& path, int err) {
  std::string what(op);
  what += " ";
  what += path;
  return ErrnoError(what, err);
}

}  // namespace cairn::env
