// Identifiers: random 128-bit ids (cluster ids, file ids, tokens) and 64-bit ids (node ids, leases).
// Ids come from a Random passed in, so tests can seed it; production code uses SystemRandom().
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn {

// A source of random 64-bit values. Not thread-safe; give each thread its own.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  uint64_t Next() { return engine_(); }
  // Uniform in [0, bound). bound must be > 0.
  uint64_t Uniform(uint64_t bound) { return std::uniform_int_distribution<uint64_t>(0, bound - 1)(engine_); }
  // True with probability numerator/denominator.
  bool OneIn(uint64_t denominator) { return Uniform(denominator) == 0; }

 private:
  std::mt19937_64 engine_;
};

// A Random seeded from the OS (std::random_device), one per thread.
Random& SystemRandom();

// A random RFC 4122 version-4 UUID in its 36-character text form.
std::string NewUuid(Random& random);
// True when `text` is a 36-character UUID (any version, lower or upper case hex).
bool IsUuid(std::string_view text);

// A random non-zero 64-bit id.
uint64_t NewId64(Random& random);

// Hex text of 64-bit ids, 16 digits, as etcd prints member and lease ids.
std::string IdToHex(uint64_t id);
Result<uint64_t> IdFromHex(std::string_view text);

// `bytes` random bytes as lower-case hex (2*bytes characters); for tokens and secrets use
// SecureRandomHex, which reads the kernel's CSPRNG.
std::string RandomHex(Random& random, size_t bytes);
Result<std::string> SecureRandomHex(size_t bytes);

}  // namespace cairn
