// CRC32C (Castagnoli), as used by the WAL and frame checksums. Uses the SSE4.2 crc32 instruction
// when the CPU has it, a table otherwise; both give the same result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cairn::crc32c {

// Extends `crc` (the value returned for the bytes before) over data[0, size).
uint32_t Extend(uint32_t crc, const void* data, size_t size);

inline uint32_t Value(const void* data, size_t size) { return Extend(0, data, size); }
inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// Masked CRC for storing a CRC next to data that may itself contain CRCs (LevelDB's trick).
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

// For tests: the portable implementation, always.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t size);

}  // namespace cairn::crc32c
