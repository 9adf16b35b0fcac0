#include "cairn/common/strings.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace cairn {

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.emplace_back(text.substr(start));
      return parts;
    }
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string_view Trim(std::string_view text) {
  const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view text, bool allow_zero) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("\"" + std::string(text) + "\" is not host:port (" + std::string(why) + ")");
  };
  HostPort result;
  std::string_view port_text;
  if (StartsWith(text, "[")) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after IPv6 address");
    result.host = std::string(text.substr(1, close - 1));
    if (text.substr(close + 1, 1) != ":") return fail("missing ':' before the port");
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("missing ':port'");
    result.host = std::string(text.substr(0, colon));
    if (result.host.find(':') != std::string::npos) return fail("put an IPv6 address in brackets");
    port_text = text.substr(colon + 1);
  }
  if (result.host.empty()) return fail("the host is empty");
  for (char c : result.host) {
    bool allowed = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' || c == ':' || c == '%';
    if (!allowed) return fail("the host has a character that is not allowed");
  }
  if (port_text.empty()) return fail("the port is empty");
  unsigned port = 0;
  auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size()) {
    return fail("port \"" + std::string(port_text) + "\" is not a number");
  }
  if (port > 65535 || (port == 0 && !allow_zero)) return fail("the port must be 1 to 65535");
  result.port = static_cast<uint16_t>(port);
  return result;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  if (unit == 0) {
    std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f %s", value, kUnits[unit]);
  }
  return buffer;
}

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  auto fail = [&] {
    return InvalidArgumentError("\"" + std::string(text) +
                                "\" is not a duration (use a number and a unit: ns, us, ms, s, m, h; e.g. 500ms)");
  };
  uint64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end == text.data()) return fail();
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  using namespace std::chrono;
  if (unit == "ns") return nanoseconds(number);
  if (unit == "us") return duration_cast<nanoseconds>(microseconds(number));
  if (unit == "ms") return duration_cast<nanoseconds>(milliseconds(number));
  if (unit == "s") return duration_cast<nanoseconds>(seconds(number));
  if (unit == "m") return duration_cast<nanoseconds>(minutes(number));
  if (unit == "h") return duration_cast<nanoseconds>(hours(number));
  return fail();
}

}  // namespace cairn
