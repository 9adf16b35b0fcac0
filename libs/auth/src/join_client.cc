#include "cairn/auth/join_client.h"

#include "cairn/auth/auth.pb.h"
#include "cairn/auth/join_token.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/net/peer_auth.h"

namespace cairn::auth {

Result<Joined> JoinCluster(const JoinParams& params) {
  CAIRN_ASSIGN_OR_RETURN(JoinToken token, ParseJoinToken(params.token));
  // The join endpoints need no API token: the join token is what authenticates this exchange.
  etcdclient::EtcdClient client({params.address}, {.timeout = params.timeout,
                                                   .connect_timeout = std::chrono::seconds(2),
                                                   .bearer_token = std::string()});
  JoinChallengeRequest ask;
  ask.set_token_id(token.id);
  JoinChallengeResponse challenge;
  CAIRN_RETURN_IF_ERROR(client.Call("/cairn/v1/join/challenge", ask, &challenge));

  JoinRequest request;
  request.set_token_id(token.id);
  request.set_challenge(challenge.challenge());
  request.set_joiner_nonce(net::RandomBytes(net::kNonceSize));
  request.set_name(params.name);
  request.set_peer_url(params.peer_url);
  request.set_role(params.role);
  request.set_proof(JoinClientProof(token.secret, request.challenge(), request.joiner_nonce(), params.name,
                                    params.peer_url, params.role));
  JoinResponse response;
  CAIRN_RETURN_IF_ERROR(client.Call("/cairn/v1/join/member", request, &response));

  std::string expected = JoinServerProof(token.secret, request.challenge(), request.joiner_nonce(), response.member_id());
  if (!net::ConstantTimeEquals(response.server_proof(), expected)) {
    return UnauthenticatedError("the member at " + params.address.ToString() +
                                " could not prove it knows this join token: it is not the token's cluster");
  }
  if (response.wrapped_key().size() != net::kClusterKeySize) {
    return UnauthenticatedError("the member at " + params.address.ToString() + " sent a cluster key of the wrong size");
  }
  Joined joined;
  joined.cluster_key = WrapClusterKey(token.secret, request.challenge(), request.joiner_nonce(), response.wrapped_key());
  joined.member_id = response.member_id();
  joined.role = response.role();
  joined.member_peer_urls.assign(response.member_peer_urls().begin(), response.member_peer_urls().end());
  return joined;
}

}  // namespace cairn::auth
