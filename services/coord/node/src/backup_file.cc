#include "cairn/coord/node/backup_file.h"

#include <openssl/sha.h>

#include <array>

namespace cairn::coord {
namespace {

void PutFixed64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutFixed32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetFixed(std::string_view bytes, size_t offset, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  return value;
}

std::array<unsigned char, SHA256_DIGEST_LENGTH> Sha256(std::string_view data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  ::SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  auto digest = Sha256(data);
  return Hex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

std::string EncodeBackup(const BackupHeader& header, std::string_view image) {
  std::string out;
  out.reserve(kBackupHeaderBytes + image.size() + kBackupChecksumBytes);
  out.append(kBackupMagic);
  PutFixed32(&out, kBackupVersion);
  for (uint64_t field : {header.cluster_id, header.member_id, header.raft_index, header.raft_term,
                         static_cast<uint64_t>(header.revision), static_cast<uint64_t>(header.compact_revision),
                         header.key_count, header.member_count, static_cast<uint64_t>(header.created_unix_ms)}) {
    PutFixed64(&out, field);
  }
  PutFixed64(&out, image.size());
  out.append(image);
  auto digest = Sha256(out);
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

namespace {

// Parses the fixed header; *image_size gets the announced image length.
Result<BackupHeader> ParseHeader(std::string_view bytes, uint64_t* image_size) {
  if (bytes.size() < kBackupMagic.size() || bytes.substr(0, kBackupMagic.size()) != kBackupMagic) {
    return CorruptionError("not a Cairn store snapshot (it does not start with " + std::string(kBackupMagic) + ")");
  }
  if (bytes.size() < kBackupHeaderBytes) {
    return CorruptionError("truncated snapshot: " + std::to_string(bytes.size()) + " bytes, shorter than its header");
  }
  uint32_t version = static_cast<uint32_t>(GetFixed(bytes, 8, 4));
  if (version != kBackupVersion) {
    return CorruptionError("snapshot format version " + std::to_string(version) + " is not supported (this build reads " +
                           std::to_string(kBackupVersion) + ")");
  }
  size_t offset = 12;
  auto next = [&] {
    uint64_t value = GetFixed(bytes, offset, 8);
    offset += 8;
    return value;
  };
  BackupHeader header;
  header.cluster_id = next();
  header.member_id = next();
  header.raft_index = next();
  header.raft_term = next();
  header.revision = static_cast<int64_t>(next());
  header.compact_revision = static_cast<int64_t>(next());
  header.key_count = next();
  header.member_count = next();
  header.created_unix_ms = static_cast<int64_t>(next());
  *image_size = next();
  return header;
}

}  // namespace

Result<BackupHeader> PeekBackupHeader(std::string_view bytes) {
  uint64_t image_size = 0;
  return ParseHeader(bytes, &image_size);
}

Result<Backup> DecodeBackup(std::string_view bytes) {
  Backup backup;
  uint64_t image_size = 0;
  CAIRN_ASSIGN_OR_RETURN(backup.header, ParseHeader(bytes, &image_size));
  uint64_t expected = kBackupHeaderBytes + image_size + kBackupChecksumBytes;
  if (image_size > bytes.size() || bytes.size() < expected) {
    return CorruptionError("truncated snapshot: " + std::to_string(bytes.size()) + " bytes, its header announces " +
                           std::to_string(expected));
  }
  if (bytes.size() > expected) {
    return CorruptionError("snapshot has " + std::to_string(bytes.size() - expected) +
                           " unexpected bytes after its checksum");
  }
  std::string_view covered = bytes.substr(0, kBackupHeaderBytes + image_size);
  std::string_view trailer = bytes.substr(covered.size());
  auto digest = Sha256(covered);
  if (trailer != std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size())) {
    return CorruptionError("snapshot checksum mismatch (sha256 of the content is " + Hex(std::string_view(
                               reinterpret_cast<const char*>(digest.data()), digest.size())) +
                           ", the file records " + Hex(trailer) + "): the file is damaged");
  }
  if (!backup.image.ParseFromArray(bytes.data() + kBackupHeaderBytes, static_cast<int>(image_size))) {
    return CorruptionError("snapshot image does not parse although its checksum matches");
  }
  backup.size_bytes = bytes.size();
  backup.checksum_hex = Hex(trailer);
  return backup;
}

Result<Backup> ReadBackupFile(env::Env* env, const std::string& path) {
  if (!env->FileExists(path)) return NotFoundError("snapshot file " + path + " does not exist");
  CAIRN_ASSIGN_OR_RETURN(std::string bytes, env->ReadFile(path));
  auto backup = DecodeBackup(bytes);
  if (!backup.ok()) return backup.status().WithContext(path);
  return backup;
}

}  // namespace cairn::coord
