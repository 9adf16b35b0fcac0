// Join token format and the proofs of the join exchange.
#include "cairn/auth/join_token.h"

#include <gtest/gtest.h>

#include "cairn/net/peer_auth.h"

namespace cairn::auth {
namespace {

const std::string kKey(32, 'k');

TEST(JoinTokenTest, FormatRoundTrips) {
  JoinToken token{NewTokenId(), ""};
  token.secret = DeriveTokenSecret(kKey, token.id);
  std::string text = token.ToString();
  EXPECT_EQ(text.substr(0, 7), "cairn1.");
  EXPECT_EQ(text.size(), 7u + 16 + 1 + 32);
  auto parsed = ParseJoinToken(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->id, token.id);
  EXPECT_EQ(parsed->secret, token.secret);
}

TEST(JoinTokenTest, MalformedTokensSayWhatIsWrong) {
  struct Case {
    std::string text;
    std::string says;
  };
  std::string id(16, 'a'), secret(32, 'b');
  for (const Case& c : std::vector<Case>{
           {"test-token", "cairn1.ID.SECRET"},
           {"cairn1." + id, "no SECRET"},
           {"cairn1.xyz." + secret, "ID must be 16"},
           {"cairn1." + std::string(16, 'A') + "." + secret, "ID must be 16"},
           {"cairn1." + id + "." + secret.substr(1), "cut short"},
           {"cairn1." + id + "." + secret + "0", "cut short"},
       }) {
    auto parsed = ParseJoinToken(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.says), std::string::npos) << parsed.status();
    EXPECT_EQ(parsed.status().message().find(secret), std::string::npos) << "the secret must not be echoed";
  }
  EXPECT_TRUE(LooksLikeJoinToken("cairn1.x"));
  EXPECT_FALSE(LooksLikeJoinToken("test-token"));
}

TEST(JoinTokenTest, SecretDependsOnKeyAndId) {
  std::string id = NewTokenId();
  EXPECT_NE(NewTokenId(), id);
  EXPECT_EQ(DeriveTokenSecret(kKey, id), DeriveTokenSecret(kKey, id));
  EXPECT_NE(DeriveTokenSecret(kKey, id), DeriveTokenSecret(std::string(32, 'x'), id));
  EXPECT_NE(DeriveTokenSecret(kKey, id), DeriveTokenSecret(kKey, NewTokenId()));
}

TEST(JoinTokenTest, ClientProofBindsEveryField) {
  std::string secret = DeriveTokenSecret(kKey, "0123456789abcdef");
  std::string base = JoinClientProof(secret, "challenge", "nonce", "n4", "127.0.0.1:1", "voter");
  EXPECT_EQ(base, JoinClientProof(secret, "challenge", "nonce", "n4", "127.0.0.1:1", "voter"));
  EXPECT_NE(base, JoinClientProof(secret, "challengf", "nonce", "n4", "127.0.0.1:1", "voter"));
  EXPECT_NE(base, JoinClientProof(secret, "challenge", "noncf", "n4", "127.0.0.1:1", "voter"));
  EXPECT_NE(base, JoinClientProof(secret, "challenge", "nonce", "n5", "127.0.0.1:1", "voter"));
  EXPECT_NE(base, JoinClientProof(secret, "challenge", "nonce", "n4", "127.0.0.1:2", "voter"));
  EXPECT_NE(base, JoinClientProof(secret, "challenge", "nonce", "n4", "127.0.0.1:1", "witness"));
  // Field boundaries count: ("n4", "1...") differs from ("n41", "...").
  EXPECT_NE(JoinClientProof(secret, "c", "n", "ab", "c:1", "voter"), JoinClientProof(secret, "c", "n", "a", "bc:1", "voter"));
  EXPECT_NE(base, JoinServerProof(secret, "challenge", "nonce", 0));
}

TEST(JoinTokenTest, KeyWrapRoundTripsOnlyWithTheSecret) {
  std::string secret = DeriveTokenSecret(kKey, "0123456789abcdef");
  std::string wrapped = WrapClusterKey(secret, "challenge", "nonce", kKey);
  EXPECT_NE(wrapped, kKey);
  EXPECT_EQ(WrapClusterKey(secret, "challenge", "nonce", wrapped), kKey);
  EXPECT_NE(WrapClusterKey(DeriveTokenSecret(kKey, "fedcba9876543210"), "challenge", "nonce", wrapped), kKey);
  EXPECT_NE(WrapClusterKey(secret, "challenge", "other", wrapped), kKey);
}

}  // namespace
}  // namespace cairn::auth
