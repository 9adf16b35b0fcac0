// EtcdClient against FakeGateway: encoding, etcd error JSON, keep-alive, failover, deadlines and
// the chunked watch stream.
#include "cairn/etcdclient/etcd_client.h"

#include <atomic>

#include <gtest/gtest.h>

#include "fake_server.h"

namespace cairn::etcdclient {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::DeadPort;
using testing::FakeGateway;
using testing::FakeReply;
using testing::SeenRequest;

ClientOptions Quick(milliseconds timeout = milliseconds(2000)) {
  return {.timeout = timeout, .connect_timeout = milliseconds(500)};
}

FakeReply Json(std::string body, unsigned status = 200) {
  FakeReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

TEST(EtcdClientTest, PutSendsTheGatewayEncodingAndParsesTheAnswer) {
  FakeGateway server([](const SeenRequest&) {
    return Json(R"({"header":{"revision":"5","raft_term":"2"},"prev_kv":{"key":"Zm9v","value":"YmFy","version":"1"}})");
  });
  EtcdClient client({server.endpoint()}, Quick());
  etcd::PutRequest put;
  put.set_key("foo");
  put.set_value("baz");
  put.set_prev_kv(true);
  auto response = client.Put(put);
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->header().revision(), 5);
  EXPECT_EQ(response->prev_kv().value(), "bar");
  auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v3/kv/put");
  EXPECT_EQ(seen[0].body, R"({"key":"Zm9v","value":"YmF6","prev_kv":true})");
}

TEST(EtcdClientTest, CallsReuseOneKeptAliveConnection) {
  FakeGateway server([](const SeenRequest&) { return Json(R"({"header":{}})"); });
  EtcdClient client({server.endpoint()}, Quick());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.Range(etcd::RangeRequest()).ok());
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.requests().size(), 5u);
}

TEST(EtcdClientTest, EtcdErrorJsonBecomesAStatusAndIsNotRetriedElsewhere) {
  FakeGateway failing([](const SeenRequest&) {
    return Json(R"({"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"})",
                404);
  });
  FakeGateway other([](const SeenRequest&) { return Json("{}"); });
  EtcdClient client({failing.endpoint(), other.endpoint()}, Quick());
  auto revoked = client.LeaseRevoke(etcd::LeaseRevokeRequest());
  ASSERT_FALSE(revoked.ok());
  EXPECT_EQ(revoked.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(revoked.status().message(), "etcdserver: requested lease not found");
  EXPECT_TRUE(other.requests().empty());
}

TEST(EtcdClientTest, ADeadEndpointIsSkippedAndTheLiveOneKept) {
  FakeGateway server([](const SeenRequest&) { return Json(R"({"count":"3"})"); });
  EtcdClient client({{"127.0.0.1", DeadPort()}, server.endpoint()}, Quick());
  auto first = client.Range(etcd::RangeRequest());
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->count(), 3);
  ASSERT_TRUE(client.Range(etcd::RangeRequest()).ok());
  EXPECT_EQ(server.connections(), 1);  // the second call went straight to the live endpoint
}

TEST(EtcdClientTest, WhenAllFailTheErrorNamesEachEndpointAndWhy) {
  HostPort dead1{"127.0.0.1", DeadPort()}, dead2{"127.0.0.1", DeadPort()};
  FakeGateway closer([](const SeenRequest&) {
    FakeReply reply;
    reply.close_without_reply = true;
    return reply;
  });
  EtcdClient client({dead1, dead2, closer.endpoint()}, Quick());
  auto response = client.Range(etcd::RangeRequest());
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message(), dead1.ToString() + ": connection refused; " + dead2.ToString() +
                                             ": connection refused; " + closer.endpoint().ToString() +
                                             ": connection closed by the server (waiting for the response)");
}

TEST(EtcdClientTest, AnUnavailableServerAnswerMovesToTheNextEndpoint) {
  FakeGateway no_leader([](const SeenRequest&) {
    return Json(R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})", 503);
  });
  FakeGateway good([](const SeenRequest&) { return Json(R"({"header":{"revision":"9"}})"); });
  EtcdClient client({no_leader.endpoint(), good.endpoint()}, Quick());
  auto response = client.Put(etcd::PutRequest());
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(response->header().revision(), 9);
}

TEST(EtcdClientTest, AnElectionIsWaitedOutWithinTheDeadline) {
  std::atomic<int> calls{0};
  FakeGateway electing([&calls](const SeenRequest&) {
    if (++calls <= 2) {
      return Json(R"({"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"})", 503);
    }
    return Json(R"({"header":{"revision":"3"}})");
  });
  EtcdClient client({electing.endpoint(), {"127.0.0.1", DeadPort()}}, Quick());
  auto response = client.Put(etcd::PutRequest());
  ASSERT_TRUE(response.ok()) << response.status().message();
  EXPECT_EQ(calls.load(), 3);

  FakeGateway never([](const SeenRequest&) {
    return Json(R"({"error":"etcdserver: no leader","code":14,"message":"etcdserver: no leader"})", 503);
  });
  EtcdClient impatient({never.endpoint()}, Quick(milliseconds(400)));
  auto start = std::chrono::steady_clock::now();
  auto failed = impatient.Put(etcd::PutRequest());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(4));  // loose: CI shares 2 cores
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), never.endpoint().ToString() + ": etcdserver: no leader");
}

TEST(EtcdClientTest, AHangingServerHitsTheDeadline) {
  FakeGateway server([](const SeenRequest&) {
    FakeReply reply;
    reply.hang = true;
    return reply;
  });
  EtcdClient client({server.endpoint()}, Quick(milliseconds(300)));
  auto start = std::chrono::steady_clock::now();
  auto response = client.Range(etcd::RangeRequest());
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(response.status().message(), server.endpoint().ToString() + ": timed out (waiting for the response)");
  EXPECT_LT(elapsed, seconds(4));  // loose: CI shares 2 cores
}

TEST(EtcdClientTest, AnAnswerThatIsNotEtcdJsonIsReportedWithItsHttpStatus) {
  FakeGateway server([](const SeenRequest&) { return Json("404 page not found", 404); });
  EtcdClient client({server.endpoint()}, Quick());
  auto response = client.MemberList();
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(response.status().message().find("HTTP 404: 404 page not found"), std::string::npos);
  FakeGateway garbage([](const SeenRequest&) { return Json("{not json"); });
  EtcdClient garbage_client({garbage.endpoint()}, Quick());
  auto bad = garbage_client.MemberList();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(EtcdClientTest, KeepAliveUnwrapsTheStreamResultAndTtlZeroIsNotFound) {
  FakeGateway server([](const SeenRequest& request) {
    FakeReply reply;
    bool known = request.body.find("\"7\"") != std::string::npos;
    reply.chunks = {known ? "{\"result\":{\"header\":{},\"ID\":\"7\",\"TTL\":\"60\"}}\n"
                          : "{\"result\":{\"header\":{},\"ID\":\"8\"}}\n"};
    return reply;
  });
  EtcdClient client({server.endpoint()}, Quick());
  etcd::LeaseKeepAliveRequest request;
  request.set_id(7);
  auto alive = client.LeaseKeepAlive(request);
  ASSERT_TRUE(alive.ok()) << alive.status().message();
  EXPECT_EQ(alive->ttl(), 60);
  request.set_id(8);
  auto gone = client.LeaseKeepAlive(request);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("lease 8 not found"), std::string::npos);
  EXPECT_EQ(server.requests()[0].target, "/v3/lease/keepalive");
}

TEST(EtcdClientTest, WatchReadsTheChunkedStreamLineByLine) {
  FakeGateway server([](const SeenRequest&) {
    FakeReply reply;
    // Lines split across chunks and two in one chunk, as a real stream may deliver them.
    reply.chunks = {"{\"result\":{\"header\":{\"revision\":\"1\"},\"created\":true}}\n{\"result\":{\"events\":[{\"kv\":",
                    "{\"key\":\"YQ==\",\"value\":\"MQ==\"}}]}}\n",
                    "{\"result\":{\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\"}}]}}\n"};
    reply.hang_after_chunks = true;
    return reply;
  });
  EtcdClient client({server.endpoint()}, Quick());
  etcd::WatchCreateRequest request;
  request.set_key("a");
  std::vector<etcd::WatchResponse> seen;
  Status status = client.Watch(request, [&](const etcd::WatchResponse& response) {
    seen.push_back(response);
    return seen.size() < 3;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].created());
  EXPECT_EQ(seen[1].events(0).kv().value(), "1");
  EXPECT_EQ(seen[2].events(0).type(), etcd::Event::DELETE);
  EXPECT_EQ(server.requests()[0].target, "/v3/watch");
  EXPECT_EQ(server.requests()[0].body, R"({"create_request":{"key":"YQ=="}})");
}

TEST(EtcdClientTest, WatchEndsQuietlyAtItsDeadline) {
  FakeGateway server([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"result\":{\"created\":true}}\n"};
    reply.hang_after_chunks = true;
    return reply;
  });
  EtcdClient client({server.endpoint()}, Quick());
  int responses = 0;
  Status status = client.Watch(
      etcd::WatchCreateRequest(), [&](const etcd::WatchResponse&) { return ++responses > 0; },
      std::chrono::steady_clock::now() + milliseconds(200));
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(responses, 1);
}

TEST(EtcdClientTest, WatchReportsACompactedStartAndStreamErrors) {
  FakeGateway compacted([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"result\":{\"created\":true}}\n",
                    "{\"result\":{\"canceled\":true,\"compact_revision\":\"40\",\"cancel_reason\":\"mvcc: required "
                    "revision has been compacted\"}}\n"};
    return reply;
  });
  EtcdClient client({compacted.endpoint()}, Quick());
  Status status = client.Watch(etcd::WatchCreateRequest(), [](const etcd::WatchResponse&) { return true; });
  EXPECT_EQ(status.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(status.message(), "mvcc: required revision has been compacted (compacted up to revision 40)");

  FakeGateway failing([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"error\":{\"grpc_code\":3,\"http_code\":400,\"message\":\"bad key\",\"http_status\":\"Bad Request\"}}\n"};
    return reply;
  });
  EtcdClient failing_client({failing.endpoint()}, Quick());
  Status error = failing_client.Watch(etcd::WatchCreateRequest(), [](const etcd::WatchResponse&) { return true; });
  EXPECT_EQ(error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error.message(), "bad key");

  FakeGateway ending([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"result\":{\"created\":true}}\n"};
    return reply;
  });
  EtcdClient ending_client({ending.endpoint()}, Quick());
  Status ended = ending_client.Watch(etcd::WatchCreateRequest(), [](const etcd::WatchResponse&) { return true; });
  EXPECT_EQ(ended.code(), StatusCode::kAborted);
}

TEST(EtcdClientTest, WatchFailsOverUntilTheStreamStarts) {
  FakeGateway server([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"result\":{\"created\":true}}\n"};
    reply.hang_after_chunks = true;
    return reply;
  });
  EtcdClient client({{"127.0.0.1", DeadPort()}, server.endpoint()}, Quick());
  bool created = false;
  Status status = client.Watch(etcd::WatchCreateRequest(), [&](const etcd::WatchResponse& response) {
    created = response.created();
    return false;
  });
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(created);
}

TEST(EtcdClientTest, ABrokenWatchStreamResumesAfterTheLastEventOnTheNextEndpoint) {
  std::atomic<int> dying_calls{0};
  FakeGateway dying([&dying_calls](const SeenRequest&) {
    FakeReply reply;  // created at revision 5, one event at 6, then the stream ends (member died)
    if (++dying_calls > 1) {
      reply.close_without_reply = true;  // and stays dead
      return reply;
    }
    reply.chunks = {"{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n",
                    "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"6\"}}]}}\n"};
    return reply;
  });
  FakeGateway healthy([](const SeenRequest&) {
    FakeReply reply;
    reply.chunks = {"{\"result\":{\"created\":true}}\n",
                    "{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"7\"}}]}}\n"};
    reply.hang_after_chunks = true;
    return reply;
  });
  EtcdClient client({dying.endpoint(), healthy.endpoint()}, Quick());
  std::vector<int64_t> revisions;
  Status status = client.Watch(etcd::WatchCreateRequest(), [&](const etcd::WatchResponse& response) {
    for (const auto& event : response.events()) revisions.push_back(event.kv().mod_revision());
    return revisions.size() < 2;
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(revisions, (std::vector<int64_t>{6, 7}));
  ASSERT_EQ(healthy.requests().size(), 1u);
  EXPECT_EQ(healthy.requests()[0].body, R"({"create_request":{"start_revision":"7"}})");
}

TEST(EtcdClientTest, AWatchThatNeverGetsAnAnswerHitsTheTimeout) {
  FakeGateway server([](const SeenRequest&) {
    FakeReply reply;
    reply.hang = true;
    return reply;
  });
  EtcdClient client({server.endpoint()}, Quick(milliseconds(300)));
  Status status = client.Watch(etcd::WatchCreateRequest(), [](const etcd::WatchResponse&) { return true; });
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(status.message(), server.endpoint().ToString() + ": timed out (waiting for the response)");
}

TEST(EtcdClientTest, StatusOfAndHealthOfAskOneEndpointOnly) {
  FakeGateway server([](const SeenRequest& request) {
    if (request.target == "/health") return Json(R"({"health":"true"})");
    return Json(R"({"header":{"member_id":"10"},"leader":"10","raftIndex":"42","dbSize":"20480"})");
  });
  EtcdClient client({server.endpoint()}, Quick());
  auto status = client.StatusOf(server.endpoint());
  ASSERT_TRUE(status.ok()) << status.status().message();
  EXPECT_EQ(status->raftindex(), 42u);
  EXPECT_EQ(status->leader(), 10u);
  auto health = client.HealthOf(server.endpoint());
  ASSERT_TRUE(health.ok());
  EXPECT_TRUE(health->healthy);
  EXPECT_EQ(server.requests().back().method, "GET");

  HostPort dead{"127.0.0.1", DeadPort()};
  auto down = client.StatusOf(dead);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().message(), dead.ToString() + ": connection refused");
}

TEST(EtcdClientTest, NoEndpointsIsAnError) {
  EtcdClient client({}, Quick());
  EXPECT_EQ(client.Range(etcd::RangeRequest()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::etcdclient
