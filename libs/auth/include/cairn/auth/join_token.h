// Join tokens and the proofs of the join exchange: pure functions, thread-safe.
//
// A join token reads "cairn1.ID.SECRET": ID is 16 lower-case hex digits (public: it names the
// token in the store and in logs), SECRET is 32 hex digits. The secret is never stored: it is
// HMAC-SHA256(cluster key, "cairn-join-token" + ID), cut to 16 bytes, so any member holding the
// cluster key can check a token whose record (role, expiry, revoked) is in the store, and a
// reader of the store learns nothing that lets it join. docs/operations.md "Security" has the
// whole exchange.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn::auth {

inline constexpr std::string_view kTokenPrefix = "cairn1";

struct JoinToken {
  std::string id;      // 16 hex digits
  std::string secret;  // 32 hex digits
  std::string ToString() const;  // "cairn1.ID.SECRET"
};

// Parses "cairn1.ID.SECRET". Errors: InvalidArgument saying which part is wrong (never echoing
// the secret).
Result<JoinToken> ParseJoinToken(std::string_view text);
// True when text has the cairn1 prefix (then ParseJoinToken's verdict is final).
bool LooksLikeJoinToken(std::string_view text);

// A new random token id.
std::string NewTokenId();
// The token's secret for this cluster key.
std::string DeriveTokenSecret(std::string_view cluster_key, std::string_view id);

// The joiner's proof for a challenge (binds the name, peer URL and role it asks for).
std::string JoinClientProof(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                            std::string_view name, std::string_view peer_url, std::string_view role);
// The member's proof, which also binds the member id it answers with.
std::string JoinServerProof(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                            uint64_t member_id);
// Wraps (or unwraps: XOR is its own inverse) a 32-byte cluster key for the token holder.
std::string WrapClusterKey(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                           std::string_view key);

// Lower-case hex of bytes.
std::string Hex(std::string_view bytes);

}  // namespace cairn::auth
