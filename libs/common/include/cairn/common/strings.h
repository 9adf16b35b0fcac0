// Small string helpers shared by config, CLI and services.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/common/status.h"

namespace cairn {

std::vector<std::string> Split(std::string_view text, char separator);
std::string_view Trim(std::string_view text);
bool StartsWith(std::string_view text, std::string_view prefix);
bool EndsWith(std::string_view text, std::string_view suffix);

struct HostPort {
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;
  std::string ToString() const;  // brackets an IPv6 host
};

// Parses "host:port", "[v6addr]:port". The port must be 1..65535 (or 0 when allow_zero).
// Errors say what is wrong in words, e.g. `"10.0.0.2:foo" is not host:port (port "foo" is not a number)`.
Result<HostPort> ParseHostPort(std::string_view text, bool allow_zero = false);

// "1.5 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);

// Parses "30s", "500ms", "2m", "1h", "100us". Errors name the accepted units.
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

}  // namespace cairn
