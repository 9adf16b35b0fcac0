// The JSON encoding of the etcd messages matches etcd's v3 JSON gateway: field names as in the
// .proto (preserve_proto_field_names), bytes as base64, int64 as strings, enums by name, zero
// values omitted. Requests written for etcd (either field-name style) parse unchanged.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;
using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

std::string ToJson(const google::protobuf::Message& message) {
  JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json, options).ok());
  return json;
}

template <typename T>
T FromJson(const std::string& json) {
  T message;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message, JsonParseOptions());
  EXPECT_TRUE(status.ok()) << status.ToString() << " for " << json;
  return message;
}

TEST(KvJsonTest, ParsesEtcdPutRequest) {
  auto request = FromJson<etcd::PutRequest>(R"({"key":"Zm9v","value":"YmFy"})");
  EXPECT_EQ(request.key(), "foo");
  EXPECT_EQ(request.value(), "bar");
  auto with_lease = FromJson<etcd::PutRequest>(R"({"key":"Zm9v","value":"YmFy","lease":"7587862070244196609","prev_kv":true})");
  EXPECT_EQ(with_lease.lease(), 7587862070244196609);
  EXPECT_TRUE(with_lease.prev_kv());
}

TEST(KvJsonTest, PutRequestPrintsLikeEtcd) {
  etcd::PutRequest request = PutReq("foo", "bar", 5);
  EXPECT_EQ(ToJson(request), R"({"key":"Zm9v","value":"YmFy","lease":"5"})");
}

TEST(KvJsonTest, RangeResponsePrintsLikeEtcdGateway) {
  KvStateMachine machine(NoAutoCompaction());
  MustPut(machine, "foo", "bar");
  etcd::RangeResponse response = MustRange(machine, RangeReq("foo"));
  // The service fills the identity fields; these are the values etcd's docs show.
  response.mutable_header()->set_cluster_id(14841639068965178418ULL);
  response.mutable_header()->set_member_id(10276657743932975437ULL);
  response.mutable_header()->set_raft_term(2);
  EXPECT_EQ(ToJson(response),
            R"({"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437",)"
            R"("revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2",)"
            R"("mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})");
}

TEST(KvJsonTest, ParsesRangeWithAllKeysAndEnums) {
  auto request = FromJson<etcd::RangeRequest>(
      R"({"key":"AA==","range_end":"AA==","sort_order":"DESCEND","sort_target":"MOD","limit":"10"})");
  EXPECT_EQ(request.key(), std::string(1, '\0'));
  EXPECT_EQ(request.range_end(), std::string(1, '\0'));
  EXPECT_EQ(request.sort_order(), etcd::RangeRequest::DESCEND);
  EXPECT_EQ(request.sort_target(), etcd::RangeRequest::MOD);
  EXPECT_EQ(request.limit(), 10);
}

TEST(KvJsonTest, ParsesEtcdDocsTxnInBothNameStyles) {
  // From etcd's "Using gRPC gateway" docs (lowerCamelCase) and the same with proto names.
  for (const char* json :
       {R"({"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]})",
        R"({"compare":[{"target":"CREATE","key":"Zm9v","create_revision":"2"}],"success":[{"request_put":{"key":"Zm9v","value":"YmFy"}}]})"}) {
    auto txn = FromJson<etcd::TxnRequest>(json);
    ASSERT_EQ(txn.compare_size(), 1);
    EXPECT_EQ(txn.compare(0).target(), etcd::Compare::CREATE);
    EXPECT_EQ(txn.compare(0).create_revision(), 2);
    ASSERT_EQ(txn.success_size(), 1);
    EXPECT_EQ(txn.success(0).request_put().value(), "bar");
  }
}

TEST(KvJsonTest, TxnResponsePrintsLikeEtcd) {
  KvStateMachine machine(NoAutoCompaction());
  proto::KvCommand command;
  *command.mutable_txn()->add_success()->mutable_request_put() = PutReq("foo", "bar");
  proto::KvResponse applied = MustApply(machine, command);
  FillHeaderIdentity(&applied, 1, 2, 3);
  EXPECT_EQ(ToJson(applied.txn()),
            R"({"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"3"},)"
            R"("succeeded":true,"responses":[{"response_put":{"header":{"revision":"2"}}}]})");
}

TEST(KvJsonTest, LeaseMessagesUseEtcdsUpperCaseNames) {
  auto grant = FromJson<etcd::LeaseGrantRequest>(R"({"TTL":"60","ID":"0"})");
  EXPECT_EQ(grant.ttl(), 60);
  etcd::LeaseTimeToLiveResponse ttl;
  ttl.set_id(7);
  ttl.set_ttl(59);
  ttl.set_grantedttl(60);
  ttl.add_keys("foo");
  EXPECT_EQ(ToJson(ttl), R"({"ID":"7","TTL":"59","grantedTTL":"60","keys":["Zm9v"]})");
}

TEST(KvJsonTest, WatchMessages) {
  auto request = FromJson<etcd::WatchRequest>(R"({"create_request":{"key":"Zm9v","start_revision":"3","prev_kv":true}})");
  EXPECT_EQ(request.create_request().key(), "foo");
  EXPECT_EQ(request.create_request().start_revision(), 3);
  etcd::WatchResponse response;
  response.mutable_header()->set_revision(4);
  etcd::Event* event = response.add_events();
  event->set_type(etcd::Event::DELETE);
  event->mutable_kv()->set_key("foo");
  event->mutable_kv()->set_mod_revision(4);
  EXPECT_EQ(ToJson(response),
            R"({"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]})");
}

}  // namespace
}  // namespace cairn::kv
