#include "cairn/sim/disk.h"

#include "cairn/common/crc32c.h"

namespace cairn::sim {
namespace {

constexpr size_t kHeader = 8;

void PutU32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint32_t GetU32(const std::string& in, size_t at) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(in[at + i])) << (8 * i);
  return value;
}

}  // namespace

void Disk::Append(const std::string& record) {
  PutU32(file_, static_cast<uint32_t>(record.size()));
  PutU32(file_, crc32c::Mask(crc32c::Value(record)));
  file_ += record;
}

CrashReport Disk::Crash(Random& random) {
  CrashReport report;
  report.unsynced_bytes = file_.size() - synced_size_;
  report.kept_bytes = report.unsynced_bytes == 0 ? 0 : random.Uniform(report.unsynced_bytes + 1);
  file_.resize(synced_size_ + report.kept_bytes);
  synced_size_ = file_.size();  // what survived a crash is on the platter now
  return report;
}

Recovery Disk::Recover() {
  Recovery recovery;
  size_t at = 0;
  while (at + kHeader <= file_.size()) {
    uint32_t length = GetU32(file_, at);
    uint32_t crc = crc32c::Unmask(GetU32(file_, at + 4));
    if (length > file_.size() - at - kHeader) break;
    std::string payload = file_.substr(at + kHeader, length);
    if (crc32c::Value(payload) != crc) break;
    recovery.records.push_back(std::move(payload));
    at += kHeader + length;
  }
  if (at < file_.size()) {
    recovery.truncated_torn_tail = true;
    recovery.truncated_bytes = file_.size() - at;
    file_.resize(at);
  }
  synced_size_ = file_.size();
  return recovery;
}

void Disk::Rewrite(const std::vector<std::string>& records) {
  file_.clear();
  for (const std::string& record : records) Append(record);
  Sync();
}

}  // namespace cairn::sim
