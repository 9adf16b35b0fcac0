// Peer authentication with the cluster key: the HMAC-SHA256 challenge-response that every
// net::Server and net::Client run in the HELLO exchange when a cluster key is configured.
// The wire format and the threat model are written down in libs/net/README.md ("Peer
// authentication").
//
// Which key a Server or Client uses: ServerOptions/ClientOptions::cluster_key when set (an empty
// string there means "no authentication"), otherwise the process-wide key below. clusterd sets the
// process-wide key at start from DATA_DIR/cluster.key, so every server and client it creates
// (Raft, bricks, volume and heal traffic) authenticates without any code of theirs knowing.
// Child processes (cairn-mount) find the key through $CAIRN_CLUSTER_KEY_FILE.
//
// Threading: every function is thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/common/status.h"

namespace cairn::net {

inline constexpr size_t kClusterKeySize = 32;
inline constexpr size_t kNonceSize = 32;
inline constexpr size_t kProofSize = 32;  // HMAC-SHA256
// The environment variable naming a key file, read once when the process key was never set.
inline constexpr const char* kClusterKeyFileEnv = "CAIRN_CLUSTER_KEY_FILE";

// Sets the key every Server and Client created from now on uses when its options do not name
// one. Empty turns authentication off. Existing servers and clients keep the key they started with.
void SetProcessClusterKey(std::string key);
// The process-wide key; empty when authentication is off. When SetProcessClusterKey was never
// called, the first call reads the file named by $CAIRN_CLUSTER_KEY_FILE (if set); a file that
// cannot be read or has the wrong size is logged as an error and leaves authentication off.
std::string ProcessClusterKey();
// The key an object with this option uses: the option when set, else ProcessClusterKey().
std::string ResolveClusterKey(const std::optional<std::string>& option);

// Reads a key file: exactly kClusterKeySize bytes. Errors: NotFound/IoError/PermissionDenied when
// unreadable, InvalidArgument for a wrong size.
Result<std::string> ReadClusterKeyFile(const std::string& path);

// Primitives (OpenSSL). RandomBytes never fails (aborts if the system RNG does).
std::string RandomBytes(size_t count);
std::string HmacSha256(std::string_view key, std::string_view data);
// Compares in time independent of where the inputs differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ---- the HELLO exchange (pure; the transport calls these) ----
//
//   server -> client  HELLO{payload = Challenge}                 right after accept
//   client -> server  HELLO{payload = ClientResponse}            first frame from the client
//   server -> client  HELLO{status, payload = ServerProof}       then calls flow
//
// Challenge:      version byte 1, server nonce (32 bytes)
// ClientResponse: version byte 1, client nonce (32 bytes), HMAC(key, "cairn-peer-client" + sn + cn)
// ServerProof:    HMAC(key, "cairn-peer-server" + sn + cn)
// The client holds its calls until the server's proof checks out, so both sides prove they hold
// the key before any request travels, and neither proof can be replayed on another connection.

// A challenge payload with a fresh nonce; *server_nonce receives the nonce.
std::string MakeChallenge(std::string* server_nonce);
// Client side: answers a challenge. *expected_server_proof receives what the server must send
// back. Errors: Unauthenticated when the payload is not a version-1 challenge.
Result<std::string> AnswerChallenge(std::string_view key, std::string_view challenge,
                                    std::string* expected_server_proof);
// Server side: checks a client response to the challenge with server_nonce; returns the proof to
// send back. Errors: Unauthenticated ("wrong cluster key" or a malformed response).
Result<std::string> VerifyClientResponse(std::string_view key, std::string_view server_nonce,
                                         std::string_view response);

}  // namespace cairn::net
