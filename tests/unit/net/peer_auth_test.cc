// The cluster-key handshake as pure functions (the transport tests cover it over sockets).
#include "cairn/net/peer_auth.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace cairn::net {
namespace {

const std::string kKey(kClusterKeySize, 'k');

TEST(PeerAuthTest, HmacSha256MatchesRfc4231Case2) {
  std::string mac = HmacSha256("Jefe", "what do ya want for nothing?");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : mac) hex += std::string{kHex[c >> 4], kHex[c & 15]};
  EXPECT_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(PeerAuthTest, SameKeyAgreesBothWays) {
  std::string server_nonce;
  std::string challenge = MakeChallenge(&server_nonce);
  ASSERT_EQ(challenge.size(), 1 + kNonceSize);
  std::string expected_proof;
  auto response = AnswerChallenge(kKey, challenge, &expected_proof);
  ASSERT_TRUE(response.ok()) << response.status();
  auto proof = VerifyClientResponse(kKey, server_nonce, *response);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(ConstantTimeEquals(*proof, expected_proof));
}

TEST(PeerAuthTest, WrongKeyIsUnauthenticated) {
  std::string server_nonce;
  std::string challenge = MakeChallenge(&server_nonce);
  std::string expected_proof;
  auto response = AnswerChallenge(std::string(kClusterKeySize, 'x'), challenge, &expected_proof);
  ASSERT_TRUE(response.ok());
  auto proof = VerifyClientResponse(kKey, server_nonce, *response);
  EXPECT_EQ(proof.status().code(), StatusCode::kUnauthenticated);
}

TEST(PeerAuthTest, ResponseDoesNotReplayOnAnotherChallenge) {
  std::string first_nonce, second_nonce, expected_proof;
  std::string first = MakeChallenge(&first_nonce);
  MakeChallenge(&second_nonce);
  EXPECT_NE(first_nonce, second_nonce);
  auto response = AnswerChallenge(kKey, first, &expected_proof);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(VerifyClientResponse(kKey, second_nonce, *response).status().code(), StatusCode::kUnauthenticated);
}

TEST(PeerAuthTest, ServerProofDiffersFromClientProof) {
  // A reflected client proof must not pass as the server's.
  std::string server_nonce, expected_proof;
  std::string challenge = MakeChallenge(&server_nonce);
  auto response = AnswerChallenge(kKey, challenge, &expected_proof);
  ASSERT_TRUE(response.ok());
  EXPECT_NE(response->substr(1 + kNonceSize), expected_proof);
}

TEST(PeerAuthTest, MalformedMessagesAreRefused) {
  std::string expected_proof, server_nonce(kNonceSize, 'n');
  EXPECT_EQ(AnswerChallenge(kKey, "", &expected_proof).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(AnswerChallenge(kKey, std::string(1 + kNonceSize, '\2'), &expected_proof).status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyClientResponse(kKey, server_nonce, "").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyClientResponse(kKey, server_nonce, std::string(1 + kNonceSize + kProofSize, '\1')).status().code(),
            StatusCode::kUnauthenticated);
}

TEST(PeerAuthTest, KeyFileMustHoldExactly32Bytes) {
  char dir_template[] = "/tmp/cairn-peer-auth-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::string good = dir + "/good", bad = dir + "/bad";
  std::ofstream(good, std::ios::binary) << kKey;
  std::ofstream(bad, std::ios::binary) << "short";
  auto key = ReadClusterKeyFile(good);
  auto wrong = ReadClusterKeyFile(bad);
  auto missing = ReadClusterKeyFile(dir + "/missing");
  std::remove(good.c_str());
  std::remove(bad.c_str());
  rmdir(dir.c_str());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, kKey);
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(PeerAuthTest, ExplicitOptionOverridesProcessKey) {
  SetProcessClusterKey(kKey);
  EXPECT_EQ(ResolveClusterKey(std::nullopt), kKey);
  EXPECT_EQ(ResolveClusterKey(std::string()), "");
  SetProcessClusterKey(std::string());
  EXPECT_EQ(ResolveClusterKey(std::nullopt), "");
}

}  // namespace
}  // namespace cairn::net
