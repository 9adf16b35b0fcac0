// JoinService: the member side of join tokens and of the join exchange, on the coordination store
// (a CoordApi). The HTTP gateway hands it every POST under /cairn/v1/ (GatewayOptions::extension):
//
//   /cairn/v1/token/create   TokenCreateRequest  -> TokenCreateResponse   (needs the API token)
//   /cairn/v1/token/list     TokenListRequest    -> TokenListResponse
//   /cairn/v1/token/revoke   TokenRevokeRequest  -> TokenRecord
//   /cairn/v1/join/challenge JoinChallengeRequest -> JoinChallengeResponse (authenticated by the join token)
//   /cairn/v1/join/member    JoinRequest         -> JoinResponse
//
// Bodies are protobuf JSON of cairn/auth/auth.proto; errors are the gateway's error JSON
// ({"error":MSG,"message":MSG,"code":GRPC_CODE}) with 400/401/403/404/412/503.
//
// Token records live in the store under /cairn/auth/tokens/ID (JSON TokenRecord). A join is
// refused (Unauthenticated, logged as auth.join_refused with the token id, name and caller) for
// an unknown, expired or revoked token, a wrong proof, or an unknown/expired challenge; a role
// that differs from the token's is PermissionDenied. An accepted join adds the host as a learner
// (MemberAdd; a retry with the same peer URL gets the same member) and records its name.
//
// Threading: HandleHttp may be called from any thread and returns at once; the work runs on the
// service's own thread (store calls block there, never on the gateway's), which answers through
// `done`. The sync methods block and must not run on a CoordApi callback thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "cairn/auth/auth.pb.h"
#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/coord/api.h"

namespace cairn::auth {

inline constexpr std::string_view kTokenPrefixKey = "/cairn/auth/tokens/";

struct JoinServiceOptions {
  // Empty: this cluster runs without peer authentication; every token and join call then fails
  // with FailedPrecondition saying so.
  std::string cluster_key;
  const Clock* clock = nullptr;  // default RealClock::Instance(); WallNow() for expiry
  Duration challenge_ttl = std::chrono::seconds(60);
  size_t max_challenges = 1024;  // outstanding; the oldest is dropped beyond
  std::chrono::milliseconds store_deadline{5000};
};

class JoinService {
 public:
  JoinService(coord::CoordApi& api, JoinServiceOptions options);
  ~JoinService();  // Stop()
  JoinService(const JoinService&) = delete;
  JoinService& operator=(const JoinService&) = delete;

  // Lets requests already queued finish (each bounded by the store deadline), answers later ones
  // with 503, and joins the thread. Idempotent.
  void Stop();

  // Dispatches one /cairn/v1/ request (see the header comment); `done(http_status, json_body)`
  // runs once, on the service's thread (or inline after Stop).
  void HandleHttp(std::string path, std::string body, std::string peer, std::function<void(int, std::string)> done);

  // The operations, synchronous. `peer` is the caller's address, for logs.
  Result<TokenCreateResponse> CreateToken(const TokenCreateRequest& request);
  Result<TokenListResponse> ListTokens();
  Result<TokenRecord> RevokeToken(const TokenRevokeRequest& request);
  Result<JoinChallengeResponse> Challenge(const JoinChallengeRequest& request, const std::string& peer);
  Result<JoinResponse> Join(const JoinRequest& request, const std::string& peer);

 private:
  struct PendingChallenge {
    std::string token_id;
    TimePoint expires;
  };

  Status CheckHasKey() const;
  Result<TokenRecord> LoadToken(const std::string& id);
  Status StoreToken(const TokenRecord& record);
  // Removes and returns the challenge if it is known, unexpired and for this token.
  Status ConsumeChallenge(const std::string& challenge, const std::string& token_id);
  Result<JoinResponse> AdmitMember(const JoinRequest& request, const std::string& secret);
  Result<JoinResponse> JoinChecked(const JoinRequest& request, const std::string& peer);
  std::pair<int, std::string> Dispatch(const std::string& path, const std::string& body, const std::string& peer);
  void Run();

  coord::CoordApi& api_;
  const JoinServiceOptions options_;
  const Clock& clock_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                                        // GUARDED_BY(mu_)
  std::deque<std::function<void()>> queue_;                      // GUARDED_BY(mu_)
  std::map<std::string, PendingChallenge> challenges_;          // GUARDED_BY(mu_)
  std::thread thread_;
};

// The gateway's error JSON for a status, with its HTTP status.
std::pair<int, std::string> ErrorReply(const Status& status);

}  // namespace cairn::auth
