// LocalCoordApi: the single-process CoordApi the gateway and clusterctl tests run against.
#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/coord/local_coord_api.h"

namespace cairn::coord {
namespace {

// Calls are synchronous: `done` has run when the call returns.
template <typename Response, typename Request, typename Method>
Result<Response> CallSync(LocalCoordApi& api, Method method, const Request& request) {
  std::optional<Result<Response>> out;
  (api.*method)(request, CallOptions{}, [&](Result<Response> result) { out.emplace(std::move(result)); });
  EXPECT_TRUE(out.has_value());
  return std::move(*out);
}

etcd::PutRequest Put(std::string key, std::string value, int64_t lease = 0) {
  etcd::PutRequest request;
  request.set_key(std::move(key));
  request.set_value(std::move(value));
  request.set_lease(lease);
  return request;
}

TEST(LocalCoordApiTest, ResponsesCarryTheNodeIdentity) {
  FakeClock clock;
  LocalCoordOptions options;
  options.cluster_id = 11;
  options.member_id = 22;
  LocalCoordApi api(clock, options);
  auto put = CallSync<etcd::PutResponse>(api, &CoordApi::Put, Put("k", "v"));
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->header().cluster_id(), 11u);
  EXPECT_EQ(put->header().member_id(), 22u);
  EXPECT_EQ(put->header().revision(), 2);
  EXPECT_EQ(put->header().raft_term(), 1u);

  etcd::TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key("k");
  auto result = CallSync<etcd::TxnResponse>(api, &CoordApi::Txn, txn);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->header().member_id(), 22u);
  // Like etcd, nested responses carry only the revision.
  EXPECT_EQ(result->responses(0).response_range().header().member_id(), 0u);
}

TEST(LocalCoordApiTest, LeasesExpireByTheInjectedClock) {
  FakeClock clock;
  LocalCoordApi api(clock);
  etcd::LeaseGrantRequest grant;
  grant.set_ttl(5);
  auto granted = CallSync<etcd::LeaseGrantResponse>(api, &CoordApi::LeaseGrant, grant);
  ASSERT_TRUE(granted.ok());
  ASSERT_TRUE(CallSync<etcd::PutResponse>(api, &CoordApi::Put, Put("k", "v", granted->id())).ok());

  clock.Advance(std::chrono::seconds(4));
  etcd::LeaseKeepAliveRequest keepalive;
  keepalive.set_id(granted->id());
  ASSERT_TRUE(CallSync<etcd::LeaseKeepAliveResponse>(api, &CoordApi::LeaseKeepAlive, keepalive).ok());
  clock.Advance(std::chrono::seconds(4));
  api.ExpireLeases();
  EXPECT_EQ(api.revision(), 2);  // kept alive: nothing revoked yet

  clock.Advance(std::chrono::seconds(2));
  api.ExpireLeases();
  EXPECT_EQ(api.revision(), 3);  // revoked, the key deleted in one revision
  etcd::LeaseTimeToLiveRequest ttl;
  ttl.set_id(granted->id());
  auto gone = CallSync<etcd::LeaseTimeToLiveResponse>(api, &CoordApi::LeaseTimeToLive, ttl);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
}

TEST(LocalCoordApiTest, WatchStreamDeliversAndStopsAfterDestruction) {
  FakeClock clock;
  LocalCoordApi api(clock);
  std::vector<etcd::WatchResponse> seen;
  auto stream = api.OpenWatchStream([&](const etcd::WatchResponse& response) { seen.push_back(response); });
  ASSERT_TRUE(stream.ok());
  etcd::WatchRequest create;
  create.mutable_create_request()->set_key("k");
  bool handled = false;
  (*stream)->Handle(create, [&](Result<bool> result) { handled = result.ok(); });
  EXPECT_TRUE(handled);
  ASSERT_TRUE(CallSync<etcd::PutResponse>(api, &CoordApi::Put, Put("k", "v")).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].created());
  EXPECT_EQ(seen[1].events_size(), 1);
  EXPECT_EQ(seen[1].header().member_id(), 0x2000u);  // identity filled for watch responses too

  stream->reset();
  ASSERT_TRUE(CallSync<etcd::PutResponse>(api, &CoordApi::Put, Put("k", "w")).ok());
  EXPECT_EQ(seen.size(), 2u);
}

TEST(LocalCoordApiTest, MembershipEditsTheListInMemory) {
  FakeClock clock;
  LocalCoordApi api(clock);
  etcd::MemberAddRequest add;
  add.add_peerurls("http://10.0.0.2:2380");
  add.set_islearner(true);
  auto added = CallSync<etcd::MemberAddResponse>(api, &CoordApi::MemberAdd, add);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->members_size(), 2);
  EXPECT_EQ(CallSync<etcd::MemberAddResponse>(api, &CoordApi::MemberAdd, add).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(CallSync<etcd::MemberAddResponse>(api, &CoordApi::MemberAdd, etcd::MemberAddRequest{}).status().code(),
            StatusCode::kInvalidArgument);

  etcd::MemberPromoteRequest promote;
  promote.set_id(added->member().id());
  ASSERT_TRUE(CallSync<etcd::MemberPromoteResponse>(api, &CoordApi::MemberPromote, promote).ok());
  EXPECT_EQ(CallSync<etcd::MemberPromoteResponse>(api, &CoordApi::MemberPromote, promote).status().code(),
            StatusCode::kFailedPrecondition);

  etcd::MemberRemoveRequest remove;
  remove.set_id(0x2000);
  EXPECT_EQ(CallSync<etcd::MemberRemoveResponse>(api, &CoordApi::MemberRemove, remove).status().code(),
            StatusCode::kFailedPrecondition);
  remove.set_id(added->member().id());
  auto removed = CallSync<etcd::MemberRemoveResponse>(api, &CoordApi::MemberRemove, remove);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->members_size(), 1);
  EXPECT_EQ(CallSync<etcd::MemberRemoveResponse>(api, &CoordApi::MemberRemove, remove).status().code(),
            StatusCode::kNotFound);
}

TEST(LocalCoordApiTest, StatusAndHealth) {
  FakeClock clock;
  LocalCoordApi api(clock);
  ASSERT_TRUE(CallSync<etcd::PutResponse>(api, &CoordApi::Put, Put("k", "v")).ok());
  auto status = CallSync<etcd::StatusResponse>(api, &CoordApi::Status, etcd::StatusRequest{});
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->leader(), 0x2000u);
  EXPECT_EQ(status->raftindex(), 1u);
  EXPECT_EQ(status->raftappliedindex(), 1u);
  EXPECT_EQ(status->header().revision(), 2);
  EXPECT_TRUE(api.GetHealth().healthy);
  api.SetHealth({false, "no leader"});
  EXPECT_EQ(api.GetHealth().reason, "no leader");
  EXPECT_NE(api.Metrics().find("cairn_kv_revision 2\n"), std::string::npos);
}

}  // namespace
}  // namespace cairn::coord
