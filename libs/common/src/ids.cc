#include "cairn/common/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <vector>

namespace cairn {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string ToHex(const uint8_t* bytes, size_t size) {
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

Random& SystemRandom() {
  thread_local Random random([] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }());
  return random;
}

std::string NewUuid(Random& random) {
  uint8_t bytes[16];
  uint64_t high = random.Next();
  uint64_t low = random.Next();
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<uint8_t>(high >> (56 - 8 * i));
    bytes[8 + i] = static_cast<uint8_t>(low >> (56 - 8 * i));
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant
  std::string hex = ToHex(bytes, 16);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

bool IsUuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? text[i] != '-' : !IsHexDigit(text[i])) return false;
  }
  return true;
}

uint64_t NewId64(Random& random) {
  uint64_t id = 0;
  while (id == 0) id = random.Next();
  return id;
}

std::string IdToHex(uint64_t id) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(id));
  return buffer;
}

Result<uint64_t> IdFromHex(std::string_view text) {
  if (text.empty() || text.size() > 16) {
    return InvalidArgumentError("id \"" + std::string(text) + "\" is not 1 to 16 hex digits");
  }
  uint64_t id = 0;
  for (char c : text) {
    if (!IsHexDigit(c)) return InvalidArgumentError("id \"" + std::string(text) + "\" is not hex");
    int digit = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    id = (id << 4) | static_cast<uint64_t>(digit);
  }
  return id;
}

std::string RandomHex(Random& random, size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  for (size_t i = 0; i < bytes; ++i) buffer[i] = static_cast<uint8_t>(random.Next());
  return ToHex(buffer.data(), bytes);
}

Result<std::string> SecureRandomHex(size_t bytes) {
  std::vector<uint8_t> buffer(bytes);
  size_t filled = 0;
  while (filled < bytes) {
    ssize_t n = getrandom(buffer.data() + filled, bytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("getrandom", errno);
    }
    filled += static_cast<size_t>(n);
  }
  return ToHex(buffer.data(), bytes);
}

}  // namespace cairn
