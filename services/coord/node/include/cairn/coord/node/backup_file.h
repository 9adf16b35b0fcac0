// The store's backup file: what `/v3/maintenance/snapshot` streams, `clusterctl snapshot save`
// writes and `clusterd restore` reads. One consistent image of one member's applied state (every
// key with its history, revisions, leases, the member table) plus the Raft position it was taken
// at, closed by a SHA-256 of everything before it, so a truncated or damaged file is refused.
// The byte layout is specified in docs/coord.md ("Backup file format").
//
//   std::string bytes = EncodeBackup(header, image);   // producer (CoordNode)
//   auto backup = DecodeBackup(bytes);                 // Corruption with the reason on damage
//
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/common/status.h"
#include "cairn/env/env.h"
#include "cairn/proto/coord.pb.h"

namespace cairn::coord {

inline constexpr std::string_view kBackupMagic = "CAIRNBAK";
inline constexpr uint32_t kBackupVersion = 1;
// magic, version, 9 fixed 8-byte fields, the image length (see docs/coord.md).
inline constexpr size_t kBackupHeaderBytes = 8 + 4 + 9 * 8 + 8;
inline constexpr size_t kBackupChecksumBytes = 32;  // SHA-256

// What the header of a backup says about its image.
struct BackupHeader {
  uint64_t cluster_id = 0;   // of the cluster it was taken from
  uint64_t member_id = 0;    // the member that produced it
  uint64_t raft_index = 0;   // the image holds every entry up to and including this index
  uint64_t raft_term = 0;    // term of that entry
  int64_t revision = 0;      // the store's revision
  int64_t compact_revision = 0;
  uint64_t key_count = 0;    // live keys at `revision`
  uint64_t member_count = 0;
  int64_t created_unix_ms = 0;
};

struct Backup {
  BackupHeader header;
  proto::CoordSnapshot image;
  uint64_t size_bytes = 0;
  std::string checksum_hex;  // the SHA-256 trailer, lower-case hex
};

// The file bytes for `image` (a serialized proto::CoordSnapshot) under `header`.
std::string EncodeBackup(const BackupHeader& header, std::string_view image);

// Checks and parses a whole backup file. Errors (Corruption, each saying what is wrong):
// not a backup (magic), unknown version, truncated (fewer bytes than the header announces),
// trailing bytes, checksum mismatch, an image that does not parse.
Result<Backup> DecodeBackup(std::string_view bytes);

// Only the header of a backup (cheap: no checksum, no parsing of the image). Errors as above for
// the magic, the version and a header that is cut short.
Result<BackupHeader> PeekBackupHeader(std::string_view bytes);

// Reads `path` and decodes it; errors name the file. NotFound when it does not exist.
Result<Backup> ReadBackupFile(env::Env* env, const std::string& path);

// Lower-case hex of SHA-256(data).
std::string Sha256Hex(std::string_view data);

}  // namespace cairn::coord
