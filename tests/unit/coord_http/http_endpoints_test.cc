// Every endpoint of the gateway, round trip through a real socket, with etcd's JSON.
#include "gateway_test_fixture.h"

namespace cairn::coord::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(GatewayTest, EtcdDocumentationRequestsWorkUnchanged) {
  // Straight from etcd's "gRPC gateway" documentation page.
  TestClient client(port());
  Response put = client.Post("/v3/kv/put", R"({"key": "Zm9v", "value": "YmFy"})");
  ASSERT_EQ(put.result_int(), 200) << put.body();
  EXPECT_EQ(put[http::field::content_type], "application/json");
  EXPECT_EQ(put.body(), R"({"header":{"cluster_id":"4096","member_id":"8192","revision":"2","raft_term":"1"}})");

  Response range = client.Post("/v3/kv/range", R"({"key": "Zm9v"})");
  EXPECT_EQ(range.body(),
            R"({"header":{"cluster_id":"4096","member_id":"8192","revision":"2","raft_term":"1"},)"
            R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],)"
            R"("count":"1"})");

  // Prefix range with range_end, as the docs show for "foo" .. "fop".
  Response prefix = client.Post("/v3/kv/range", R"({"key": "Zm9v", "range_end": "Zm9w"})");
  EXPECT_EQ(ParseJson<etcd::RangeResponse>(prefix.body()).count(), 1);

  Response txn = client.Post(
      "/v3/kv/txn",
      R"({"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],)"
      R"("success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]})");
  ASSERT_EQ(txn.result_int(), 200) << txn.body();
  EXPECT_TRUE(ParseJson<etcd::TxnResponse>(txn.body()).succeeded());

  Response grant = client.Post("/v3/lease/grant", R"({"TTL": 30})");
  ASSERT_EQ(grant.result_int(), 200) << grant.body();
  EXPECT_THAT(grant.body(), HasSubstr(R"("TTL":"30")"));
  EXPECT_NE(ParseJson<etcd::LeaseGrantResponse>(grant.body()).id(), 0);

  // The v3beta prefix of etcd 3.4 and v3alpha of 3.3 reach the same endpoints.
  EXPECT_EQ(client.Post("/v3beta/kv/range", R"({"key": "Zm9v"})").result_int(), 200);
  EXPECT_EQ(client.Post("/v3alpha/kv/range", R"({"key": "Zm9v"})").result_int(), 200);
}

TEST_F(GatewayTest, KvRoundTrip) {
  TestClient client(port());
  ASSERT_EQ(client.Post("/v3/kv/put", R"({"key":"YQ==","value":"MQ=="})").result_int(), 200);
  Response put = client.Post("/v3/kv/put", R"({"key":"YQ==","value":"Mg==","prev_kv":true})");
  auto put_response = ParseJson<etcd::PutResponse>(put.body());
  EXPECT_EQ(put_response.prev_kv().value(), "1");
  EXPECT_EQ(put_response.header().revision(), 3);

  client.Post("/v3/kv/put", R"({"key":"Yg==","value":"Mw=="})");
  Response all = client.Post("/v3/kv/range", R"({"key":"AA==","range_end":"AA==","count_only":true})");
  EXPECT_EQ(ParseJson<etcd::RangeResponse>(all.body()).count(), 2);

  Response past = client.Post("/v3/kv/range", R"({"key":"YQ==","revision":"2"})");
  EXPECT_EQ(ParseJson<etcd::RangeResponse>(past.body()).kvs(0).value(), "1");

  Response deleted = client.Post("/v3/kv/deleterange", R"({"key":"YQ==","prev_kv":true})");
  auto delete_response = ParseJson<etcd::DeleteRangeResponse>(deleted.body());
  EXPECT_EQ(delete_response.deleted(), 1);
  EXPECT_EQ(delete_response.prev_kvs(0).value(), "2");

  Response compacted = client.Post("/v3/kv/compaction", R"({"revision":"3"})");
  ASSERT_EQ(compacted.result_int(), 200) << compacted.body();
  Response old = client.Post("/v3/kv/range", R"({"key":"YQ==","revision":"2"})");
  EXPECT_EQ(old.result_int(), 400);
  EXPECT_EQ(old.body(),
            R"({"error":"etcdserver: mvcc: required revision has been compacted",)"
            R"("message":"etcdserver: mvcc: required revision has been compacted","code":11})");
}

TEST_F(GatewayTest, LeaseEndpoints) {
  TestClient client(port());
  ASSERT_EQ(client.Post("/v3/lease/grant", R"({"TTL":10,"ID":77})").result_int(), 200);
  client.Post("/v3/kv/put", R"({"key":"bA==","value":"dg==","lease":"77"})");

  Response keepalive = client.Post("/v3/lease/keepalive", R"({"ID":77})");
  EXPECT_EQ(keepalive.body(),
            R"({"result":{"header":{"cluster_id":"4096","member_id":"8192","revision":"2","raft_term":"1"},)"
            R"("ID":"77","TTL":"10"}})"
            "\n");
  // etcd answers a keepalive of an unknown lease with TTL 0, not an error.
  EXPECT_EQ(client.Post("/v3/lease/keepalive", R"({"ID":5})").body(), "{\"result\":{\"ID\":\"5\"}}\n");

  clock_.Advance(std::chrono::seconds(3));
  auto ttl = ParseJson<etcd::LeaseTimeToLiveResponse>(
      client.Post("/v3/lease/timetolive", R"({"ID":77,"keys":true})").body());
  EXPECT_EQ(ttl.ttl(), 7);
  EXPECT_EQ(ttl.grantedttl(), 10);
  ASSERT_EQ(ttl.keys_size(), 1);
  EXPECT_EQ(ttl.keys(0), "l");
  // etcd's older path; and an unknown lease has TTL -1.
  EXPECT_EQ(client.Post("/v3/kv/lease/timetolive", R"({"ID":5})").body(), R"({"ID":"5","TTL":"-1"})");

  auto leases = ParseJson<etcd::LeaseLeasesResponse>(client.Post("/v3/lease/leases", "{}").body());
  ASSERT_EQ(leases.leases_size(), 1);
  EXPECT_EQ(leases.leases(0).id(), 77);

  ASSERT_EQ(client.Post("/v3/kv/lease/revoke", R"({"ID":77})").result_int(), 200);
  Response again = client.Post("/v3/lease/revoke", R"({"ID":77})");
  EXPECT_EQ(again.result_int(), 404);
  EXPECT_EQ(again.body(),
            R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  EXPECT_EQ(ParseJson<etcd::RangeResponse>(client.Post("/v3/kv/range", R"({"key":"bA=="})").body()).count(), 0);
}

TEST_F(GatewayTest, LeaseExpiresByTheClock) {
  TestClient client(port());
  client.Post("/v3/lease/grant", R"({"TTL":5,"ID":9})");
  client.Post("/v3/kv/put", R"({"key":"eA==","value":"dg==","lease":"9"})");
  clock_.Advance(std::chrono::seconds(6));
  auto range = ParseJson<etcd::RangeResponse>(client.Post("/v3/kv/range", R"({"key":"eA=="})").body());
  EXPECT_EQ(range.count(), 0);
}

TEST_F(GatewayTest, ClusterAndMaintenance) {
  TestClient client(port());
  Response list = client.Post("/v3/cluster/member/list", "{}");
  EXPECT_EQ(list.body(),
            R"({"header":{"cluster_id":"4096","member_id":"8192","raft_term":"1"},)"
            R"("members":[{"ID":"8192","name":"local","peerURLs":["http://127.0.0.1:2380"]}]})");

  auto added = ParseJson<etcd::MemberAddResponse>(
      client.Post("/v3/cluster/member/add", R"({"peerURLs":["http://10.0.0.2:2380"],"isLearner":true})").body());
  ASSERT_TRUE(added.member().islearner());
  EXPECT_EQ(added.members_size(), 2);
  std::string id = std::to_string(added.member().id());

  Response promoted = client.Post("/v3/cluster/member/promote", R"({"ID":")" + id + R"("})");
  ASSERT_EQ(promoted.result_int(), 200) << promoted.body();
  Response twice = client.Post("/v3/cluster/member/promote", R"({"ID":")" + id + R"("})");
  EXPECT_EQ(twice.result_int(), 400);
  EXPECT_THAT(twice.body(), HasSubstr(R"("code":9)"));

  Response removed = client.Post("/v3/cluster/member/remove", R"({"ID":")" + id + R"("})");
  EXPECT_EQ(ParseJson<etcd::MemberRemoveResponse>(removed.body()).members_size(), 1);
  EXPECT_EQ(client.Post("/v3/cluster/member/remove", R"({"ID":"1"})").result_int(), 404);

  Response update = client.Post("/v3/cluster/member/update", R"({"ID":"1","peerURLs":["http://x:1"]})");
  EXPECT_EQ(update.result_int(), 501);
  EXPECT_THAT(update.body(), HasSubstr(R"("code":12)"));

  auto status = ParseJson<etcd::StatusResponse>(client.Post("/v3/maintenance/status", "").body());
  EXPECT_EQ(status.leader(), 8192u);
  EXPECT_EQ(status.version(), "3.4.0");
  EXPECT_GT(status.dbsize(), 0);
}

TEST_F(GatewayTest, HealthMetricsVersion) {
  TestClient client(port());
  Response health = client.Get("/health");
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_EQ(health.body(), R"({"health":"true","reason":""})");
  local_.SetHealth({false, "no leader"});
  health = client.Get("/health");
  EXPECT_EQ(health.result_int(), 503);
  EXPECT_EQ(health.body(), R"({"health":"false","reason":"no leader"})");

  client.Post("/v3/kv/put", R"({"key":"YQ==","value":"MQ=="})");
  Response metrics = client.Get("/metrics");
  EXPECT_EQ(metrics.result_int(), 200);
  EXPECT_THAT(metrics[http::field::content_type], HasSubstr("text/plain"));
  EXPECT_THAT(metrics.body(), HasSubstr("cairn_kv_revision 2\n"));
  EXPECT_THAT(metrics.body(), HasSubstr(R"(cairn_http_requests_total{endpoint="/v3/kv/put",code="2xx"} 1)"));
  EXPECT_THAT(metrics.body(), HasSubstr(R"(cairn_http_request_duration_seconds_count{endpoint="/v3/kv/put"} 1)"));
  EXPECT_THAT(metrics.body(), HasSubstr(R"(cairn_http_requests_total{endpoint="/health",code="5xx"} 1)"));
  EXPECT_THAT(metrics.body(), HasSubstr("cairn_http_requests_in_flight 1\n"));  // this request

  Response version = client.Get("/version");
  EXPECT_THAT(version.body(), HasSubstr(R"({"etcdserver":"3.4.0","etcdcluster":"3.4.0","cairn":")"));
}

TEST_F(GatewayTest, ErrorsMapLikeGrpcGateway) {
  struct Case {
    cairn::Status status;
    int http;
    int code;
  };
  std::vector<Case> cases = {
      {InvalidArgumentError("bad"), 400, 3},       {OutOfRangeError("range"), 400, 11},
      {NotFoundError("gone"), 404, 5},             {FailedPreconditionError("no"), 400, 9},
      {UnavailableError("no leader"), 503, 14},    {DeadlineExceededError("slow"), 504, 4},
      {ResourceExhaustedError("busy"), 429, 8},    {UnimplementedError("nope"), 501, 12},
      {InternalError("bug"), 500, 13},             {AlreadyExistsError("dup"), 400, 9},
  };
  TestClient client(port());
  for (const Case& c : cases) {
    scripted_.FailNext(c.status);
    Response response = client.Post("/v3/kv/range", R"({"key":"YQ=="})");
    EXPECT_EQ(response.result_int(), c.http) << c.status;
    EXPECT_EQ(response.body(), R"({"error":")" + c.status.message() + R"(","message":")" + c.status.message() +
                                   R"(","code":)" + std::to_string(c.code) + "}");
  }
}

}  // namespace
}  // namespace cairn::coord::testing

namespace cairn::coord::testing {
namespace {

// The local CoordApi cannot produce backups (CoordNode can; tests/integration/coord_recover):
// the endpoint exists and says so with etcd's error JSON, and refuses a body that is not {}.
TEST_F(GatewayTest, SnapshotWithoutASnapshotSourceIsUnimplemented) {
  TestClient client(port());
  Response snapshot = client.Post("/v3/maintenance/snapshot", "{}");
  EXPECT_EQ(snapshot.result_int(), 501) << snapshot.body();
  EXPECT_THAT(snapshot.body(), ::testing::HasSubstr("cannot produce snapshots"));
  Response bad = client.Post("/v3/maintenance/snapshot", R"({"nonsense":1})");
  EXPECT_EQ(bad.result_int(), 400) << bad.body();
}

}  // namespace
}  // namespace cairn::coord::testing
