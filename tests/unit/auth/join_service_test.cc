// JoinService against the in-process store (LocalCoordApi) with a fake clock: tokens, the join
// exchange end to end with JoinCluster's proofs done by hand, and every refusal.
#include "cairn/auth/join_service.h"

#include <future>

#include <gtest/gtest.h>

#include "cairn/auth/join_token.h"
#include "cairn/coord/local_coord_api.h"
#include "cairn/net/peer_auth.h"

namespace cairn::auth {
namespace {

using namespace std::chrono_literals;

const std::string kKey(32, 'k');

class JoinServiceTest : public ::testing::Test {
 protected:
  JoinServiceTest() : store_(clock_), service_(store_, {.cluster_key = kKey, .clock = &clock_}) {}

  std::string NewToken(const std::string& role = "voter", int64_t ttl = 3600) {
    TokenCreateRequest create;
    create.set_role(role);
    create.set_ttl_seconds(ttl);
    auto created = service_.CreateToken(create);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->token() : "";
  }

  // What JoinCluster sends, with the given token text and role.
  Result<JoinResponse> TryJoin(const std::string& token_text, const std::string& name = "n4",
                               const std::string& role = "voter", std::string* nonce_out = nullptr,
                               std::string* challenge_out = nullptr) {
    auto token = ParseJoinToken(token_text);
    if (!token.ok()) return token.status();
    JoinChallengeRequest ask;
    ask.set_token_id(token->id);
    auto challenge = service_.Challenge(ask, "test");
    if (!challenge.ok()) return challenge.status();
    JoinRequest request;
    request.set_token_id(token->id);
    request.set_challenge(challenge->challenge());
    request.set_joiner_nonce(net::RandomBytes(32));
    request.set_name(name);
    request.set_peer_url("127.0.0.1:4380");
    request.set_role(role);
    request.set_proof(JoinClientProof(token->secret, request.challenge(), request.joiner_nonce(), name,
                                      request.peer_url(), role));
    if (nonce_out) *nonce_out = request.joiner_nonce();
    if (challenge_out) *challenge_out = request.challenge();
    return service_.Join(request, "test");
  }

  FakeClock clock_;
  coord::LocalCoordApi store_;
  JoinService service_;
};

TEST_F(JoinServiceTest, GoodTokenAddsALearnerAndHandsOverTheKey) {
  std::string text = NewToken();
  std::string nonce, challenge;
  auto joined = TryJoin(text, "n4", "voter", &nonce, &challenge);
  ASSERT_TRUE(joined.ok()) << joined.status();
  auto token = ParseJoinToken(text);
  EXPECT_EQ(joined->server_proof(), JoinServerProof(token->secret, challenge, nonce, joined->member_id()));
  EXPECT_EQ(WrapClusterKey(token->secret, challenge, nonce, joined->wrapped_key()), kKey);
  EXPECT_EQ(joined->role(), "voter");
  auto members = service_.ListTokens();
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->tokens_size(), 1);
  EXPECT_EQ(members->tokens(0).used_by(0), "n4");

  etcd::MemberListResponse list;
  store_.MemberList({}, {}, [&](Result<etcd::MemberListResponse> r) { list = *r; });
  bool found = false;
  for (const auto& member : list.members()) {
    if (member.id() == joined->member_id()) {
      found = true;
      EXPECT_TRUE(member.islearner());
    }
  }
  EXPECT_TRUE(found);
  // A retry with the same peer URL gets the same member, not a second one.
  auto again = TryJoin(text);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->member_id(), joined->member_id());
}

TEST_F(JoinServiceTest, WrongSecretIsRefused) {
  std::string text = NewToken();
  std::string forged = text.substr(0, text.size() - 4) + "0000";
  if (forged == text) forged = text.substr(0, text.size() - 4) + "1111";
  auto refused = TryJoin(forged);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("wrong secret"), std::string::npos) << refused.status();
}

TEST_F(JoinServiceTest, UnknownTokenIsRefused) {
  JoinToken other{NewTokenId(), ""};
  other.secret = DeriveTokenSecret(kKey, other.id);
  auto refused = TryJoin(other.ToString());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("unknown join token"), std::string::npos) << refused.status();
}

TEST_F(JoinServiceTest, ExpiredTokenIsRefused) {
  std::string text = NewToken("voter", 60);
  clock_.Advance(61s);
  auto refused = TryJoin(text);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("expired"), std::string::npos) << refused.status();
}

TEST_F(JoinServiceTest, RevokedTokenIsRefused) {
  std::string text = NewToken();
  TokenRevokeRequest revoke;
  revoke.set_id(ParseJoinToken(text)->id);
  auto revoked = service_.RevokeToken(revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->revoked());
  auto refused = TryJoin(text);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("revoked"), std::string::npos) << refused.status();
  TokenRevokeRequest missing;
  missing.set_id("0000000000000000");
  EXPECT_EQ(service_.RevokeToken(missing).status().code(), StatusCode::kNotFound);
}

TEST_F(JoinServiceTest, RoleMustMatchTheToken) {
  std::string text = NewToken("witness");
  auto refused = TryJoin(text, "n4", "voter");
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied) << refused.status();
  auto joined = TryJoin(text, "n4", "witness");
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->role(), "witness");
}

TEST_F(JoinServiceTest, ChallengesAreSingleUseAndExpire) {
  std::string text = NewToken();
  auto token = ParseJoinToken(text);
  JoinChallengeRequest ask;
  ask.set_token_id(token->id);
  auto challenge = service_.Challenge(ask, "test");
  ASSERT_TRUE(challenge.ok());
  JoinRequest request;
  request.set_token_id(token->id);
  request.set_challenge(challenge->challenge());
  request.set_joiner_nonce("n");
  request.set_name("n4");
  request.set_peer_url("127.0.0.1:4380");
  request.set_role("voter");
  request.set_proof(JoinClientProof(token->secret, request.challenge(), "n", "n4", "127.0.0.1:4380", "voter"));
  ASSERT_TRUE(service_.Join(request, "test").ok());
  EXPECT_EQ(service_.Join(request, "test").status().code(), StatusCode::kUnauthenticated);  // replayed

  auto late = service_.Challenge(ask, "test");
  request.set_challenge(late->challenge());
  request.set_proof(JoinClientProof(token->secret, request.challenge(), "n", "n4", "127.0.0.1:4380", "voter"));
  clock_.Advance(61s);
  auto refused = service_.Join(request, "test");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("expired"), std::string::npos) << refused.status();
}

TEST_F(JoinServiceTest, TokensNeedAClusterKey) {
  JoinService keyless(store_, {.clock = &clock_});
  auto refused = keyless.CreateToken(TokenCreateRequest());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("auth.peer: required"), std::string::npos) << refused.status();
}

TEST_F(JoinServiceTest, HttpDispatchAnswersJsonAndErrors) {
  std::promise<std::pair<int, std::string>> created, bad, unknown;
  service_.HandleHttp("/cairn/v1/token/create", "{\"role\":\"witness\"}", "test",
                      [&](int status, std::string body) { created.set_value({status, body}); });
  service_.HandleHttp("/cairn/v1/token/create", "{\"role\":\"boss\"}", "test",
                      [&](int status, std::string body) { bad.set_value({status, body}); });
  service_.HandleHttp("/cairn/v1/nope", "", "test",
                      [&](int status, std::string body) { unknown.set_value({status, body}); });
  auto [status, body] = created.get_future().get();
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find("\"token\":\"cairn1."), std::string::npos) << body;
  auto [bad_status, bad_body] = bad.get_future().get();
  EXPECT_EQ(bad_status, 400);
  EXPECT_NE(bad_body.find("\"code\":3"), std::string::npos) << bad_body;
  EXPECT_EQ(unknown.get_future().get().first, 404);
}

}  // namespace
}  // namespace cairn::auth
