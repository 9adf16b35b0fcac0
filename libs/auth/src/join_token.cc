#include "cairn/auth/join_token.h"

#include "cairn/net/peer_auth.h"

namespace cairn::auth {
namespace {

constexpr size_t kIdDigits = 16;
constexpr size_t kSecretDigits = 32;

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Field(std::string_view text) { return std::string(text) + '\0'; }

}  // namespace

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

std::string JoinToken::ToString() const { return std::string(kTokenPrefix) + "." + id + "." + secret; }

bool LooksLikeJoinToken(std::string_view text) {
  return text.substr(0, kTokenPrefix.size() + 1) == std::string(kTokenPrefix) + ".";
}

Result<JoinToken> ParseJoinToken(std::string_view text) {
  if (!LooksLikeJoinToken(text)) {
    return InvalidArgumentError("not a join token: it must read cairn1.ID.SECRET (print one with `clusterctl token create`)");
  }
  std::string_view rest = text.substr(kTokenPrefix.size() + 1);
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return InvalidArgumentError("join token has no SECRET part (cairn1.ID.SECRET)");
  std::string_view id = rest.substr(0, dot), secret = rest.substr(dot + 1);
  if (id.size() != kIdDigits || !IsLowerHex(id)) {
    return InvalidArgumentError("join token ID must be " + std::to_string(kIdDigits) + " lower-case hex digits");
  }
  if (secret.size() != kSecretDigits || !IsLowerHex(secret)) {
    return InvalidArgumentError("join token " + std::string(id) + ": SECRET must be " + std::to_string(kSecretDigits) +
                                " lower-case hex digits (was the token cut short when copied?)");
  }
  return JoinToken{std::string(id), std::string(secret)};
}

std::string NewTokenId() { return Hex(net::RandomBytes(kIdDigits / 2)); }

std::string DeriveTokenSecret(std::string_view cluster_key, std::string_view id) {
  return Hex(net::HmacSha256(cluster_key, "cairn-join-token" + std::string(id))).substr(0, kSecretDigits);
}

std::string JoinClientProof(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                            std::string_view name, std::string_view peer_url, std::string_view role) {
  std::string data = "cairn-join-client" + std::string(challenge) + std::string(joiner_nonce) + Field(name) +
                     Field(peer_url) + std::string(role);
  return net::HmacSha256(secret, data);
}

std::string JoinServerProof(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                            uint64_t member_id) {
  std::string data =
      "cairn-join-server" + std::string(challenge) + std::string(joiner_nonce) + std::to_string(member_id);
  return net::HmacSha256(secret, data);
}

std::string WrapClusterKey(std::string_view secret, std::string_view challenge, std::string_view joiner_nonce,
                           std::string_view key) {
  std::string pad = net::HmacSha256(secret, "cairn-join-key" + std::string(challenge) + std::string(joiner_nonce));
  std::string out(key);
  for (size_t i = 0; i < out.size() && i < pad.size(); ++i) out[i] = static_cast<char>(out[i] ^ pad[i]);
  return out;
}

}  // namespace cairn::auth
