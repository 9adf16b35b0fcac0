// The pure helpers: gateway JSON and error shapes, etcdctl's ids, prefix end, -w json and txn text.
#include "cairn/etcdclient/etcdctl.h"

#include <gtest/gtest.h>

#include "cairn/etcdclient/json.h"

namespace cairn::etcdclient {
namespace {

TEST(JsonTest, ErrorBodiesOfEveryShapeBecomeStatuses) {
  auto unary = ParseErrorBody(R"({"error":"etcdserver: key not found","code":5,"message":"etcdserver: key not found"})");
  ASSERT_TRUE(unary.has_value());
  EXPECT_EQ(unary->code(), StatusCode::kNotFound);
  EXPECT_EQ(unary->message(), "etcdserver: key not found");
  auto newer = ParseErrorBody(R"({"code":3,"message":"bad request"})");
  ASSERT_TRUE(newer.has_value());
  EXPECT_EQ(newer->code(), StatusCode::kInvalidArgument);
  auto streamed = ParseErrorBody(R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader"}})");
  ASSERT_TRUE(streamed.has_value());
  EXPECT_EQ(streamed->code(), StatusCode::kUnavailable);
  EXPECT_EQ(streamed->message(), "no leader");
  EXPECT_FALSE(ParseErrorBody(R"({"header":{}})").has_value());
  EXPECT_FALSE(ParseErrorBody("not json").has_value());
}

TEST(JsonTest, MessagesRoundTripInTheGatewayEncoding) {
  etcd::RangeRequest request;
  request.set_key(std::string("k\0\xff", 3));
  request.set_limit(5);
  std::string json = ToJson(request);
  EXPECT_EQ(json, R"({"key":"awD/","limit":"5"})");
  etcd::RangeRequest back;
  ASSERT_TRUE(FromJson(json, &back).ok());
  EXPECT_EQ(back.key(), request.key());
  EXPECT_TRUE(FromJson(R"({"key":"YQ==","a_future_field":1})", &back).ok());  // unknown fields ignored
  Status bad = FromJson(R"({"key":"not base64!"})", &back);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("RangeRequest"), std::string::npos) << bad.message();
}

TEST(EtcdctlTest, HexIds) {
  EXPECT_EQ(HexId(0x694d7ff5a2b4c10bULL), "694d7ff5a2b4c10b");
  EXPECT_EQ(ParseHexId("694d7ff5a2b4c10b", "lease id").value_or(0), 0x694d7ff5a2b4c10bULL);
  auto bad = ParseHexId("xyz", "lease id");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "lease id \"xyz\" is not a hexadecimal id (e.g. 694d7ff5a2b4c10b)");
  EXPECT_FALSE(ParseHexId("", "member id").ok());
  EXPECT_FALSE(ParseHexId("1ffffffffffffffff", "member id").ok());  // overflow
}

TEST(EtcdctlTest, PrefixRangeEndIsEtcds) {
  EXPECT_EQ(PrefixRangeEnd("app/"), "app0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

TEST(EtcdctlTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
}

TEST(EtcdctlTest, JsonIsWhatEtcdctlPrints) {
  etcd::RangeResponse response;
  response.mutable_header()->set_cluster_id(14841639068965178418ULL);
  response.mutable_header()->set_revision(7);
  etcd::KeyValue* kv = response.add_kvs();
  kv->set_key("foo");
  kv->set_value("bar");
  kv->set_version(1);
  response.set_count(1);
  EXPECT_EQ(EtcdctlJson(response),
            R"({"header":{"cluster_id":14841639068965178418,"revision":7},)"
            R"("kvs":[{"key":"Zm9v","version":1,"value":"YmFy"}],"count":1})");
}

TEST(EtcdctlTest, TxnTextInEtcdctlsFormat) {
  auto txn = ParseTxnText(
      "mod(\"key1\") > \"0\"\nvalue(\"key1\") = \"val 1\"\nversion(\"k\") != 3\n\n"
      "put key1 \"overwrote \\\"it\\\"\" --prev-kv\nget key1 --prefix --limit=2\n\n"
      "del key2 --from-key\nput k v --lease=1f\n");
  ASSERT_TRUE(txn.ok()) << txn.status().message();
  ASSERT_EQ(txn->compare_size(), 3);
  EXPECT_EQ(txn->compare(0).target(), etcd::Compare::MOD);
  EXPECT_EQ(txn->compare(0).result(), etcd::Compare::GREATER);
  EXPECT_EQ(txn->compare(0).mod_revision(), 0);
  EXPECT_EQ(txn->compare(1).value(), "val 1");
  EXPECT_EQ(txn->compare(2).result(), etcd::Compare::NOT_EQUAL);
  EXPECT_EQ(txn->compare(2).version(), 3);
  ASSERT_EQ(txn->success_size(), 2);
  EXPECT_EQ(txn->success(0).request_put().value(), "overwrote \"it\"");
  EXPECT_TRUE(txn->success(0).request_put().prev_kv());
  EXPECT_EQ(txn->success(1).request_range().range_end(), "key2");
  EXPECT_EQ(txn->success(1).request_range().limit(), 2);
  ASSERT_EQ(txn->failure_size(), 2);
  EXPECT_EQ(txn->failure(0).request_delete_range().range_end(), std::string(1, '\0'));
  EXPECT_EQ(txn->failure(1).request_put().lease(), 0x1f);
}

TEST(EtcdctlTest, TxnTextErrorsNameTheLine) {
  auto expect_error = [](const std::string& text, const std::string& message) {
    auto txn = ParseTxnText(text);
    ASSERT_FALSE(txn.ok()) << text;
    EXPECT_EQ(txn.status().message(), message) << text;
  };
  expect_error("mod(\"k\") ~ \"1\"\n", "txn line 1: expected one of = != < > after mod(\"k\")");
  expect_error("size(\"k\") = 1\n", "txn line 1: unknown compare target \"size\" (value, version, create, mod, lease)");
  expect_error("mod(\"k\") = x\n", "txn line 1: mod \"x\" is not a number");
  expect_error("\nfrobnicate k\n", "txn line 2: unknown request \"frobnicate\" (get, put, del)");
  expect_error("\nput k\n", "txn line 2: put needs KEY VALUE");
  expect_error("\nput \"k v\n", "txn line 2: unterminated quote");
  expect_error("\nget k --sideways\n", "txn line 2: get: unknown flag --sideways");
  expect_error("\n\n\nput k v\n", "txn line 4: text after the failure requests");
  EXPECT_TRUE(ParseTxnText("").ok());
}

}  // namespace
}  // namespace cairn::etcdclient
