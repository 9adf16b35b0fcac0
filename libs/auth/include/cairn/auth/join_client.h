// The joining host's side of the join exchange (JoinService is the member's side): proves it
// holds a join token, is added as a learner, and receives the cluster key.
//
//   auto joined = JoinCluster({.address = {"10.0.0.1", 2379}, .token = "cairn1.ID.SECRET",
//                              .name = "host-4", .peer_url = "10.0.0.4:2380", .role = "voter"});
//   // joined->cluster_key: write it to the key file, then start the node (it waits to be contacted)
//
// Blocking; thread-safe (no shared state).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"

namespace cairn::auth {

struct JoinParams {
  HostPort address;       // the HTTP API of a running member
  std::string token;      // cairn1.ID.SECRET
  std::string name;       // this host's node name
  std::string peer_url;   // this host's advertised peer address
  std::string role = "voter";
  std::chrono::nanoseconds timeout = std::chrono::seconds(10);  // per HTTP call
};

struct Joined {
  std::string cluster_key;
  uint64_t member_id = 0;
  std::string role;
  std::vector<std::string> member_peer_urls;
};

// Errors: InvalidArgument for a malformed token; the member's refusal as it said it
// (Unauthenticated: unknown, expired or revoked token, wrong secret; PermissionDenied: role
// mismatch; FailedPrecondition: the cluster has no key); Unauthenticated when the member's proof
// is wrong (it does not know the token's secret: not this token's cluster); Unavailable /
// DeadlineExceeded when the member cannot be reached (retry).
Result<Joined> JoinCluster(const JoinParams& params);

}  // namespace cairn::auth
