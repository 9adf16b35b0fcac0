// A simulated disk file for crash testing: an append-only record log whose writes sit in a "page
// cache" until Sync(). Crash() keeps what was synced plus a random number of the unsynced bytes, so a
// crash can lose whole records and leave a torn one at the tail; Recover() reads records back,
// verifying length and CRC32C, and truncates at the first damaged one (what a real WAL does).
//
// Frame format: [u32 little-endian payload length][u32 masked crc32c of payload][payload].
// Threading: not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/common/ids.h"

namespace cairn::sim {

struct CrashReport {
  uint64_t unsynced_bytes = 0;  // bytes written but not synced before the crash
  uint64_t kept_bytes = 0;      // how many of those happened to reach the platter
};

struct Recovery {
  std::vector<std::string> records;
  bool truncated_torn_tail = false;  // a partial or corrupt record was cut off the end
  uint64_t truncated_bytes = 0;
};

class Disk {
 public:
  // Buffers one record; durable only after Sync().
  void Append(const std::string& record);
  void Sync() { synced_size_ = file_.size(); }
  bool HasUnsynced() const { return file_.size() > synced_size_; }

  // Power loss: keeps the synced bytes and a random prefix of the unsynced ones.
  CrashReport Crash(Random& random);
  // Reads every intact record and truncates the file after the last one.
  Recovery Recover();
  // Atomically replaces the file with `records`, synced (write temp, fsync, rename, fsync dir).
  void Rewrite(const std::vector<std::string>& records);

  uint64_t size() const { return file_.size(); }

 private:
  std::string file_;
  uint64_t synced_size_ = 0;
};

}  // namespace cairn::sim
