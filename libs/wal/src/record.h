// Record framing and payload codecs of the WAL (docs/wal-format.md). Internal to libs/wal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/wal/wal.h"

namespace cairn::wal::internal {

enum class RecordType : uint8_t {
  kSegmentHeader = 1,
  kEntry = 2,
  kHardState = 3,
};

// header_crc(4) length(4) type(1) payload_crc(4)
inline constexpr size_t kHeaderSize = 13;
// Larger lengths can only come from damage: no Save writes a record this big.
inline constexpr uint32_t kMaxPayload = 1u << 30;
inline constexpr std::string_view kSegmentMagic = "CAIRNWAL";
inline constexpr uint32_t kFormatVersion = 1;

void PutFixed32(std::string* out, uint32_t value);
void PutFixed64(std::string* out, uint64_t value);
uint32_t DecodeFixed32(const char* p);
uint64_t DecodeFixed64(const char* p);

// Appends one framed record to `out`.
void AppendRecord(RecordType type, std::string_view payload, std::string* out);

struct Record {
  RecordType type;
  std::string_view payload;
  uint64_t offset = 0;  // of the record's first byte
};

enum class ReadOutcome {
  kRecord,   // *record filled
  kEnd,      // clean end of data
  kTorn,     // an interrupted write: the bytes from offset() on were never acknowledged
  kCorrupt,  // damage that a crash cannot produce
};

// Reads records from a whole segment held in memory. `data` must outlive the reader.
class RecordReader {
 public:
  explicit RecordReader(std::string_view data) : data_(data) {}

  // Reads the record at offset() and advances past it. For kTorn and kCorrupt, offset() stays at
  // the damaged record and *problem says what is wrong.
  ReadOutcome Next(Record* record, std::string* problem);
  uint64_t offset() const { return offset_; }

 private:
  bool ZerosFrom(uint64_t from) const;

  std::string_view data_;
  uint64_t offset_ = 0;
};

struct SegmentHeader {
  uint64_t seq = 0;
  uint64_t first_index = 0;
};

std::string EncodeSegmentHeader(const SegmentHeader& header);
Result<SegmentHeader> DecodeSegmentHeader(std::string_view payload);
std::string EncodeEntry(const Entry& entry);
Result<Entry> DecodeEntry(std::string_view payload);
std::string EncodeHardState(const HardState& state);
Result<HardState> DecodeHardState(std::string_view payload);

// Snapshot files: a self-checking blob (magic, version, index, term, data, crc).
std::string EncodeSnapshotFile(const Snapshot& snapshot);
Result<Snapshot> DecodeSnapshotFile(std::string_view contents);

// File names: segments "SEQ-FIRSTINDEX.wal", snapshots "INDEX.snap", both as 16 hex digits.
std::string SegmentName(uint64_t seq, uint64_t first_index);
bool ParseSegmentName(std::string_view name, uint64_t* seq, uint64_t* first_index);
std::string SnapshotName(uint64_t index);
bool ParseSnapshotName(std::string_view name, uint64_t* index);

}  // namespace cairn::wal::internal
