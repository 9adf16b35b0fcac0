#include "cairn/auth/join_service.h"

#include <ctime>
#include <future>

#include "cairn/auth/join_token.h"
#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/common/strings.h"
#include "cairn/etcdclient/etcdctl.h"
#include "cairn/etcdclient/json.h"
#include "cairn/net/peer_auth.h"

namespace cairn::auth {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kDefaultTtlSeconds = 24 * 3600;
constexpr int64_t kMaxTtlSeconds = 365 * 24 * 3600;

template <typename Request, typename Response>
Result<Response> CallStore(coord::CoordApi& api,
                           void (coord::CoordApi::*method)(const Request&, const coord::CallOptions&,
                                                           coord::Done<Response>),
                           const Request& request, std::chrono::milliseconds deadline) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  auto future = promise->get_future();
  (api.*method)(request, coord::CallOptions{deadline},
                [promise](Result<Response> result) { promise->set_value(std::move(result)); });
  // The store answers by its deadline; the margin only guards against a stuck implementation.
  if (future.wait_for(deadline + 5s) != std::future_status::ready) {
    return DeadlineExceededError("the coordination store did not answer");
  }
  return future.get();
}

int64_t UnixSeconds(WallTime time) {
  return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

std::string UtcText(int64_t unix_seconds) {
  std::time_t time = static_cast<std::time_t>(unix_seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

Result<std::string> NormalRole(std::string role) {
  if (role.empty()) return std::string("voter");
  if (role != "voter" && role != "witness") {
    return InvalidArgumentError("role \"" + role + "\" is not voter or witness");
  }
  return role;
}

std::pair<int, int> HttpAndGrpc(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument: return {400, 3};
    case StatusCode::kDeadlineExceeded: return {504, 4};
    case StatusCode::kNotFound: return {404, 5};
    case StatusCode::kAlreadyExists: return {409, 6};
    case StatusCode::kPermissionDenied: return {403, 7};
    case StatusCode::kResourceExhausted: return {429, 8};
    case StatusCode::kFailedPrecondition: return {400, 9};
    case StatusCode::kUnimplemented: return {501, 12};
    case StatusCode::kUnavailable: return {503, 14};
    case StatusCode::kUnauthenticated: return {401, 16};
    default: return {500, 13};
  }
}

template <typename Message>
std::pair<int, std::string> Reply(const Result<Message>& result) {
  if (!result.ok()) return ErrorReply(result.status());
  return {200, etcdclient::ToJson(*result)};
}

template <typename Message>
Result<Message> Decode(const std::string& body) {
  Message message;
  Status status = etcdclient::FromJson(body.empty() ? "{}" : body, &message);
  if (!status.ok()) return InvalidArgumentError("bad request body: " + status.message());
  return message;
}

}  // namespace

std::pair<int, std::string> ErrorReply(const Status& status) {
  auto [http, grpc] = HttpAndGrpc(status.code());
  std::string message = log::JsonEscape(status.message());
  return {http, "{\"error\":\"" + message + "\",\"message\":\"" + message + "\",\"code\":" + std::to_string(grpc) + "}"};
}

JoinService::JoinService(coord::CoordApi& api, JoinServiceOptions options)
    : api_(api),
      options_(std::move(options)),
      clock_(options_.clock ? *options_.clock : RealClock::Instance()),
      thread_([this] { Run(); }) {}

JoinService::~JoinService() { Stop(); }

void JoinService::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JoinService::Run() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();  // after Stop() the queued tasks still run; each is bounded by the store deadline
  }
}

void JoinService::HandleHttp(std::string path, std::string body, std::string peer,
                             std::function<void(int, std::string)> done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back([this, path = std::move(path), body = std::move(body), peer = std::move(peer), done] {
        auto [status, reply] = Dispatch(path, body, peer);
        done(status, std::move(reply));
      });
      wake_.notify_one();
      return;
    }
  }
  auto [status, reply] = ErrorReply(UnavailableError("clusterd is stopping"));
  done(status, std::move(reply));
}

std::pair<int, std::string> JoinService::Dispatch(const std::string& path, const std::string& body,
                                                  const std::string& peer) {
  if (path == "/cairn/v1/token/create") {
    auto request = Decode<TokenCreateRequest>(body);
    return request.ok() ? Reply(CreateToken(*request)) : ErrorReply(request.status());
  }
  if (path == "/cairn/v1/token/list") return Reply(ListTokens());
  if (path == "/cairn/v1/token/revoke") {
    auto request = Decode<TokenRevokeRequest>(body);
    return request.ok() ? Reply(RevokeToken(*request)) : ErrorReply(request.status());
  }
  if (path == "/cairn/v1/join/challenge") {
    auto request = Decode<JoinChallengeRequest>(body);
    return request.ok() ? Reply(Challenge(*request, peer)) : ErrorReply(request.status());
  }
  if (path == "/cairn/v1/join/member") {
    auto request = Decode<JoinRequest>(body);
    return request.ok() ? Reply(Join(*request, peer)) : ErrorReply(request.status());
  }
  return ErrorReply(NotFoundError("no such endpoint: " + path));
}

Status JoinService::CheckHasKey() const {
  if (!options_.cluster_key.empty()) return Status::Ok();
  return FailedPreconditionError(
      "this cluster runs without a cluster key (peer authentication off), so it has no join tokens: start its "
      "first host with auth.peer: required (docs/operations.md \"Security\"), or add hosts by hand with "
      "clusterctl member add");
}

Result<TokenRecord> JoinService::LoadToken(const std::string& id) {
  etcd::RangeRequest range;
  range.set_key(std::string(kTokenPrefixKey) + id);
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response,
                         CallStore(api_, &coord::CoordApi::Range, range, options_.store_deadline));
  if (response.kvs_size() == 0) return NotFoundError("no join token with id " + id);
  TokenRecord record;
  Status parsed = etcdclient::FromJson(response.kvs(0).value(), &record);
  if (!parsed.ok()) return CorruptionError("join token record " + id + " is damaged: " + parsed.message());
  return record;
}

Status JoinService::StoreToken(const TokenRecord& record) {
  etcd::PutRequest put;
  put.set_key(std::string(kTokenPrefixKey) + record.id());
  put.set_value(etcdclient::ToJson(record));
  return CallStore(api_, &coord::CoordApi::Put, put, options_.store_deadline).status();
}

Result<TokenCreateResponse> JoinService::CreateToken(const TokenCreateRequest& request) {
  CAIRN_RETURN_IF_ERROR(CheckHasKey());
  CAIRN_ASSIGN_OR_RETURN(std::string role, NormalRole(request.role()));
  int64_t ttl = request.ttl_seconds() == 0 ? kDefaultTtlSeconds : request.ttl_seconds();
  if (ttl < 0 || ttl > kMaxTtlSeconds) {
    return InvalidArgumentError("ttl must be between 1 second and 365 days, got " + std::to_string(ttl) + " s");
  }
  TokenRecord record;
  record.set_id(NewTokenId());
  record.set_role(role);
  record.set_created_unix(UnixSeconds(clock_.WallNow()));
  record.set_expires_unix(record.created_unix() + ttl);
  CAIRN_RETURN_IF_ERROR(StoreToken(record));
  log::Info("auth.token_created", "token", record.id(), "role", role, "expires", UtcText(record.expires_unix()));
  TokenCreateResponse response;
  response.set_token(JoinToken{record.id(), DeriveTokenSecret(options_.cluster_key, record.id())}.ToString());
  *response.mutable_record() = std::move(record);
  return response;
}

Result<TokenListResponse> JoinService::ListTokens() {
  CAIRN_RETURN_IF_ERROR(CheckHasKey());
  etcd::RangeRequest range;
  range.set_key(std::string(kTokenPrefixKey));
  range.set_range_end(etcdclient::PrefixRangeEnd(kTokenPrefixKey));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse stored,
                         CallStore(api_, &coord::CoordApi::Range, range, options_.store_deadline));
  TokenListResponse response;
  response.set_now_unix(UnixSeconds(clock_.WallNow()));
  for (const auto& kv : stored.kvs()) {
    TokenRecord record;
    if (etcdclient::FromJson(kv.value(), &record).ok()) *response.add_tokens() = std::move(record);
  }
  return response;
}

Result<TokenRecord> JoinService::RevokeToken(const TokenRevokeRequest& request) {
  CAIRN_RETURN_IF_ERROR(CheckHasKey());
  CAIRN_ASSIGN_OR_RETURN(TokenRecord record, LoadToken(request.id()));
  if (!record.revoked()) {
    record.set_revoked(true);
    record.set_revoked_unix(UnixSeconds(clock_.WallNow()));
    CAIRN_RETURN_IF_ERROR(StoreToken(record));
    log::Info("auth.token_revoked", "token", record.id());
  }
  return record;
}

Result<JoinChallengeResponse> JoinService::Challenge(const JoinChallengeRequest& request, const std::string& peer) {
  CAIRN_RETURN_IF_ERROR(CheckHasKey());
  if (request.token_id().empty()) return InvalidArgumentError("token_id is missing");
  JoinChallengeResponse response;
  response.set_challenge(net::RandomBytes(net::kNonceSize));
  TimePoint now = clock_.Now();
  std::lock_guard lock(mu_);
  std::erase_if(challenges_, [&](const auto& entry) { return entry.second.expires <= now; });
  while (challenges_.size() >= options_.max_challenges) {
    auto oldest = challenges_.begin();
    for (auto it = challenges_.begin(); it != challenges_.end(); ++it) {
      if (it->second.expires < oldest->second.expires) oldest = it;
    }
    challenges_.erase(oldest);
  }
  challenges_[response.challenge()] = PendingChallenge{request.token_id(), now + options_.challenge_ttl};
  log::Debug("auth.join_challenge", "token", request.token_id(), "caller", peer);
  return response;
}

Status JoinService::ConsumeChallenge(const std::string& challenge, const std::string& token_id) {
  std::lock_guard lock(mu_);
  auto it = challenges_.find(challenge);
  if (it == challenges_.end()) {
    return UnauthenticatedError("unknown or already used join challenge (ask for a new one)");
  }
  PendingChallenge pending = it->second;
  challenges_.erase(it);
  if (pending.expires <= clock_.Now()) return UnauthenticatedError("the join challenge expired (ask for a new one)");
  if (pending.token_id != token_id) return UnauthenticatedError("the join challenge was issued for another token");
  return Status::Ok();
}

Result<JoinResponse> JoinService::Join(const JoinRequest& request, const std::string& peer) {
  auto result = JoinChecked(request, peer);
  if (!result.ok()) {
    log::Warn("auth.join_refused", "token", request.token_id(), "name", request.name(), "peer_url", request.peer_url(),
              "caller", peer, "reason", result.status());
  } else {
    log::Info("auth.join_accepted", "token", request.token_id(), "name", request.name(), "peer_url",
              request.peer_url(), "caller", peer, "member_id", IdToHex(result->member_id()), "role",
              result->role());
  }
  return result;
}

Result<JoinResponse> JoinService::JoinChecked(const JoinRequest& request, const std::string& peer) {
  CAIRN_RETURN_IF_ERROR(CheckHasKey());
  const std::string& id = request.token_id();
  CAIRN_RETURN_IF_ERROR(ConsumeChallenge(request.challenge(), id));
  auto record = LoadToken(id);
  if (record.status().code() == StatusCode::kNotFound) {
    return UnauthenticatedError("unknown join token " + id + " (never created on this cluster)");
  }
  if (!record.ok()) return record.status();
  if (record->revoked()) return UnauthenticatedError("join token " + id + " was revoked");
  if (UnixSeconds(clock_.WallNow()) >= record->expires_unix()) {
    return UnauthenticatedError("join token " + id + " expired at " + UtcText(record->expires_unix()));
  }
  std::string secret = DeriveTokenSecret(options_.cluster_key, id);
  std::string expected =
      JoinClientProof(secret, request.challenge(), request.joiner_nonce(), request.name(), request.peer_url(),
                      request.role());
  if (!net::ConstantTimeEquals(request.proof(), expected)) {
    return UnauthenticatedError("wrong secret for join token " + id);
  }
  CAIRN_ASSIGN_OR_RETURN(std::string role, NormalRole(request.role()));
  if (role != record->role()) {
    return PermissionDeniedError("join token " + id + " is for role " + record->role() + ", but " + request.name() +
                                 " asks to join as " + role + " (its node.yaml role)");
  }
  auto peer_url = ParseHostPort(request.peer_url());
  if (request.name().empty() || !peer_url.ok() || peer_url->port == 0) {
    return InvalidArgumentError("name and a dialable peer_url (host:port) are required");
  }
  CAIRN_ASSIGN_OR_RETURN(JoinResponse response, AdmitMember(request, secret));
  record->add_used_by(request.name());
  Status noted = StoreToken(*record);
  if (!noted.ok()) log::Warn("auth.token_update_failed", "token", id, "error", noted);
  response.set_role(role);
  (void)peer;
  return response;
}

Result<JoinResponse> JoinService::AdmitMember(const JoinRequest& request, const std::string& secret) {
  CAIRN_ASSIGN_OR_RETURN(etcd::MemberListResponse list,
                         CallStore(api_, &coord::CoordApi::MemberList, etcd::MemberListRequest(), options_.store_deadline));
  uint64_t member_id = 0;
  JoinResponse response;
  for (const etcd::Member& member : list.members()) {
    for (const std::string& url : member.peerurls()) {
      response.add_member_peer_urls(url);
      if (url != request.peer_url()) continue;
      if (!member.name().empty() && member.name() != request.name()) {
        return AlreadyExistsError("peer URL " + url + " belongs to member " + member.name() + " already");
      }
      member_id = member.id();  // a retried join: the member was added before
    }
  }
  if (member_id == 0) {
    etcd::MemberAddRequest add;
    add.add_peerurls(request.peer_url());
    add.set_islearner(true);
    CAIRN_ASSIGN_OR_RETURN(etcd::MemberAddResponse added,
                           CallStore(api_, &coord::CoordApi::MemberAdd, add, options_.store_deadline));
    member_id = added.member().id();
  }
  response.set_member_id(member_id);
  response.set_server_proof(JoinServerProof(secret, request.challenge(), request.joiner_nonce(), member_id));
  response.set_wrapped_key(WrapClusterKey(secret, request.challenge(), request.joiner_nonce(), options_.cluster_key));
  return response;
}

}  // namespace cairn::auth
