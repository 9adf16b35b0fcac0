#include "record.h"

#include <cstdio>

#include "cairn/common/crc32c.h"

namespace cairn::wal::internal {
namespace {

constexpr std::string_view kSnapshotMagic = "CAIRNSNP";
constexpr size_t kEntryFixedBytes = 8 + 8 + 4;
constexpr size_t kHardStateBytes = 8 + 8 + 8;
constexpr size_t kSegmentHeaderBytes = 8 + 4 + 8 + 8;
constexpr size_t kSnapshotFixedBytes = 8 + 4 + 8 + 8 + 8;  // magic version index term length

uint32_t PayloadCrc(RecordType type, std::string_view payload) {
  char type_byte = static_cast<char>(type);
  uint32_t crc = crc32c::Extend(0, &type_byte, 1);
  return crc32c::Mask(crc32c::Extend(crc, payload.data(), payload.size()));
}

bool KnownType(uint8_t type) { return type >= 1 && type <= 3; }

Status Malformed(std::string_view what, size_t size) {
  return CorruptionError(std::string(what) + " record has a bad size (" + std::to_string(size) + " bytes)");
}

bool ParseHex16(std::string_view text, uint64_t* value) {
  if (text.size() != 16) return false;
  uint64_t out = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else return false;
    out = (out << 4) | static_cast<uint64_t>(digit);
  }
  *value = out;
  return true;
}

std::string Hex16(uint64_t value) {
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(value));
  return buffer;
}

}  // namespace

void PutFixed32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutFixed64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

uint64_t DecodeFixed64(const char* p) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(p[i]);
  return value;
}

void AppendRecord(RecordType type, std::string_view payload, std::string* out) {
  std::string length_and_type;
  PutFixed32(&length_and_type, static_cast<uint32_t>(payload.size()));
  length_and_type.push_back(static_cast<char>(type));
  PutFixed32(out, crc32c::Mask(crc32c::Value(length_and_type)));
  out->append(length_and_type);
  PutFixed32(out, PayloadCrc(type, payload));
  out->append(payload);
}

bool RecordReader::ZerosFrom(uint64_t from) const {
  for (uint64_t i = from; i < data_.size(); ++i) {
    if (data_[i] != '\0') return false;
  }
  return true;
}

ReadOutcome RecordReader::Next(Record* record, std::string* problem) {
  uint64_t remaining = data_.size() - offset_;
  if (remaining == 0) return ReadOutcome::kEnd;
  if (remaining < kHeaderSize) {
    *problem = "short record header (" + std::to_string(remaining) + " bytes)";
    return ReadOutcome::kTorn;
  }
  const char* header = data_.data() + offset_;
  if (crc32c::Unmask(DecodeFixed32(header)) != crc32c::Value(header + 4, 5)) {
    // A torn header is a written prefix followed by zeros, so its last byte and all after it are 0.
    bool torn = ZerosFrom(offset_ + kHeaderSize - 1);
    *problem = torn ? "zero-filled tail" : "record header checksum mismatch";
    return torn ? ReadOutcome::kTorn : ReadOutcome::kCorrupt;
  }
  uint32_t length = DecodeFixed32(header + 4);
  uint8_t type = static_cast<uint8_t>(header[8]);
  if (!KnownType(type) || length > kMaxPayload) {
    *problem = "record header has unknown type " + std::to_string(type) + " or length " + std::to_string(length);
    return ReadOutcome::kCorrupt;
  }
  if (remaining - kHeaderSize < length) {
    *problem = "short record payload (" + std::to_string(remaining - kHeaderSize) + " of " +
               std::to_string(length) + " bytes)";
    return ReadOutcome::kTorn;
  }
  std::string_view payload(header + kHeaderSize, length);
  if (PayloadCrc(static_cast<RecordType>(type), payload) != DecodeFixed32(header + 9)) {
    // Torn only when the damage is the zero-filled end of an interrupted write.
    uint64_t end = offset_ + kHeaderSize + length;
    bool torn = length > 0 && ZerosFrom(end - 1);
    *problem = torn ? "zero-filled last record" : "record payload checksum mismatch";
    return torn ? ReadOutcome::kTorn : ReadOutcome::kCorrupt;
  }
  record->type = static_cast<RecordType>(type);
  record->payload = payload;
  record->offset = offset_;
  offset_ += kHeaderSize + length;
  return ReadOutcome::kRecord;
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  std::string out(kSegmentMagic);
  PutFixed32(&out, kFormatVersion);
  PutFixed64(&out, header.seq);
  PutFixed64(&out, header.first_index);
  return out;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view payload) {
  if (payload.size() != kSegmentHeaderBytes) return Malformed("segment header", payload.size());
  if (payload.substr(0, 8) != kSegmentMagic) return CorruptionError("segment header has a bad magic");
  uint32_t version = DecodeFixed32(payload.data() + 8);
  if (version != kFormatVersion) {
    return CorruptionError("segment format version " + std::to_string(version) + " is not supported");
  }
  return SegmentHeader{DecodeFixed64(payload.data() + 12), DecodeFixed64(payload.data() + 20)};
}

std::string EncodeEntry(const Entry& entry) {
  std::string out;
  out.reserve(kEntryFixedBytes + entry.data.size());
  PutFixed64(&out, entry.index);
  PutFixed64(&out, entry.term);
  PutFixed32(&out, entry.type);
  out.append(entry.data);
  return out;
}

Result<Entry> DecodeEntry(std::string_view payload) {
  if (payload.size() < kEntryFixedBytes) return Malformed("entry", payload.size());
  Entry entry;
  entry.index = DecodeFixed64(payload.data());
  entry.term = DecodeFixed64(payload.data() + 8);
  entry.type = DecodeFixed32(payload.data() + 16);
  entry.data.assign(payload.substr(kEntryFixedBytes));
  return entry;
}

std::string EncodeHardState(const HardState& state) {
  std::string out;
  PutFixed64(&out, state.term);
  PutFixed64(&out, state.vote);
  PutFixed64(&out, state.commit);
  return out;
}

Result<HardState> DecodeHardState(std::string_view payload) {
  if (payload.size() != kHardStateBytes) return Malformed("hard state", payload.size());
  return HardState{DecodeFixed64(payload.data()), DecodeFixed64(payload.data() + 8),
                   DecodeFixed64(payload.data() + 16)};
}

std::string EncodeSnapshotFile(const Snapshot& snapshot) {
  std::string out(kSnapshotMagic);
  PutFixed32(&out, kFormatVersion);
  PutFixed64(&out, snapshot.index);
  PutFixed64(&out, snapshot.term);
  PutFixed64(&out, snapshot.data.size());
  out.append(snapshot.data);
  PutFixed32(&out, crc32c::Mask(crc32c::Value(out)));
  return out;
}

Result<Snapshot> DecodeSnapshotFile(std::string_view contents) {
  if (contents.size() < kSnapshotFixedBytes + 4) return CorruptionError("snapshot file too short");
  std::string_view body = contents.substr(0, contents.size() - 4);
  if (crc32c::Unmask(DecodeFixed32(contents.data() + body.size())) != crc32c::Value(body)) {
    return CorruptionError("snapshot file checksum mismatch");
  }
  if (body.substr(0, 8) != kSnapshotMagic) return CorruptionError("snapshot file has a bad magic");
  uint32_t version = DecodeFixed32(body.data() + 8);
  if (version != kFormatVersion) {
    return CorruptionError("snapshot format version " + std::to_string(version) + " is not supported");
  }
  Snapshot snapshot;
  snapshot.index = DecodeFixed64(body.data() + 12);
  snapshot.term = DecodeFixed64(body.data() + 20);
  uint64_t length = DecodeFixed64(body.data() + 28);
  if (length != body.size() - kSnapshotFixedBytes) return CorruptionError("snapshot data length mismatch");
  snapshot.data.assign(body.substr(kSnapshotFixedBytes));
  return snapshot;
}

std::string SegmentName(uint64_t seq, uint64_t first_index) {
  return Hex16(seq) + "-" + Hex16(first_index) + ".wal";
}

bool ParseSegmentName(std::string_view name, uint64_t* seq, uint64_t* first_index) {
  if (name.size() != 16 + 1 + 16 + 4 || name[16] != '-' || name.substr(33) != ".wal") return false;
  return ParseHex16(name.substr(0, 16), seq) && ParseHex16(name.substr(17, 16), first_index);
}

std::string SnapshotName(uint64_t index) { return Hex16(index) + ".snap"; }

bool ParseSnapshotName(std::string_view name, uint64_t* index) {
  if (name.size() != 16 + 5 || name.substr(16) != ".snap") return false;
  return ParseHex16(name.substr(0, 16), index);
}

}  // namespace cairn::wal::internal
