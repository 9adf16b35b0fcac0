// Txn: compares on every target with every operator, one revision per txn, atomicity (a failing
// op rolls everything back), nested txns, and etcd's duplicate-key rule.
#include <gtest/gtest.h>

#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

etcd::Compare Cmp(const std::string& key, etcd::Compare::CompareTarget target,
                  etcd::Compare::CompareResult result) {
  etcd::Compare compare;
  compare.set_key(key);
  compare.set_target(target);
  compare.set_result(result);
  return compare;
}

etcd::Compare ValueIs(const std::string& key, const std::string& value,
                      etcd::Compare::CompareResult result = etcd::Compare::EQUAL) {
  etcd::Compare compare = Cmp(key, etcd::Compare::VALUE, result);
  compare.set_value(value);
  return compare;
}

etcd::RequestOp PutOp(const std::string& key, const std::string& value) {
  etcd::RequestOp op;
  *op.mutable_request_put() = PutReq(key, value);
  return op;
}

etcd::RequestOp GetOp(const std::string& key) {
  etcd::RequestOp op;
  *op.mutable_request_range() = RangeReq(key);
  return op;
}

etcd::RequestOp DeleteOp(const std::string& key, const std::string& range_end = "") {
  etcd::RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  op.mutable_request_delete_range()->set_range_end(range_end);
  return op;
}

class TxnTest : public ::testing::Test {
 protected:
  Result<etcd::TxnResponse> Txn(const etcd::TxnRequest& request) {
    proto::KvCommand command;
    *command.mutable_txn() = request;
    Result<proto::KvResponse> result = machine.Apply(command);
    if (!result.ok()) return result.status();
    return result->txn();
  }
  bool Succeeds(const etcd::Compare& compare) {
    etcd::TxnRequest request;
    *request.add_compare() = compare;
    Result<etcd::TxnResponse> response = Txn(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() && response->succeeded();
  }

  KvStateMachine machine{NoAutoCompaction()};
};

TEST_F(TxnTest, CompareValue) {
  MustPut(machine, "k", "b");
  EXPECT_TRUE(Succeeds(ValueIs("k", "b")));
  EXPECT_FALSE(Succeeds(ValueIs("k", "c")));
  EXPECT_TRUE(Succeeds(ValueIs("k", "c", etcd::Compare::NOT_EQUAL)));
  EXPECT_TRUE(Succeeds(ValueIs("k", "a", etcd::Compare::GREATER)));
  EXPECT_TRUE(Succeeds(ValueIs("k", "c", etcd::Compare::LESS)));
  // A missing key never matches a value compare, not even the empty value.
  EXPECT_FALSE(Succeeds(ValueIs("missing", "")));
  EXPECT_FALSE(Succeeds(ValueIs("missing", "", etcd::Compare::NOT_EQUAL)));
}

TEST_F(TxnTest, CompareVersionCreateModLease) {
  MustApply(machine, GrantCmd(5, 60));
  MustPut(machine, "k", "1");      // rev 2
  MustPut(machine, "k", "2", 5);  // rev 3
  etcd::Compare version = Cmp("k", etcd::Compare::VERSION, etcd::Compare::EQUAL);
  version.set_version(2);
  EXPECT_TRUE(Succeeds(version));
  etcd::Compare create = Cmp("k", etcd::Compare::CREATE, etcd::Compare::LESS);
  create.set_create_revision(3);
  EXPECT_TRUE(Succeeds(create));
  etcd::Compare mod = Cmp("k", etcd::Compare::MOD, etcd::Compare::GREATER);
  mod.set_mod_revision(3);
  EXPECT_FALSE(Succeeds(mod));
  etcd::Compare lease = Cmp("k", etcd::Compare::LEASE, etcd::Compare::EQUAL);
  lease.set_lease(5);
  EXPECT_TRUE(Succeeds(lease));
  // The classic "create if absent": a missing key has version 0 / create_revision 0.
  etcd::Compare absent = Cmp("missing", etcd::Compare::CREATE, etcd::Compare::EQUAL);
  absent.set_create_revision(0);
  EXPECT_TRUE(Succeeds(absent));
}

TEST_F(TxnTest, CompareOverARangeNeedsEveryKey) {
  MustPut(machine, "p/a", "x");
  MustPut(machine, "p/b", "x");
  etcd::Compare all = ValueIs("p/", "x");
  all.set_range_end(PrefixEnd("p/"));
  EXPECT_TRUE(Succeeds(all));
  MustPut(machine, "p/c", "y");
  EXPECT_FALSE(Succeeds(all));
}

TEST_F(TxnTest, WholeTxnGetsOneRevisionAndSeesItsOwnWrites) {
  MustPut(machine, "a", "0");  // rev 2
  etcd::TxnRequest request;
  *request.add_success() = PutOp("a", "1");
  *request.add_success() = PutOp("b", "1");
  *request.add_success() = GetOp("b");
  *request.add_success() = DeleteOp("c");
  Result<etcd::TxnResponse> response = Txn(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->succeeded());
  EXPECT_EQ(response->header().revision(), 3);
  ASSERT_EQ(response->responses_size(), 4);
  EXPECT_EQ(response->responses(0).response_put().header().revision(), 3);
  const etcd::RangeResponse& read = response->responses(2).response_range();
  ASSERT_EQ(read.kvs_size(), 1);
  EXPECT_EQ(read.kvs(0).mod_revision(), 3);
  EXPECT_EQ(MustRange(machine, RangeReq("a")).kvs(0).mod_revision(), 3);
  EXPECT_EQ(MustRange(machine, RangeReq("b")).kvs(0).mod_revision(), 3);
  EXPECT_EQ(machine.revision(), 3);
}

TEST_F(TxnTest, ReadOnlyTxnDoesNotAdvanceRevision) {
  MustPut(machine, "a", "0");
  etcd::TxnRequest request;
  *request.add_success() = GetOp("a");
  ASSERT_TRUE(Txn(request).ok());
  EXPECT_EQ(machine.revision(), 2);
}

TEST_F(TxnTest, FailureBranchRunsWhenCompareFails) {
  MustPut(machine, "k", "old");
  etcd::TxnRequest request;
  *request.add_compare() = ValueIs("k", "other");
  *request.add_success() = PutOp("k", "from-success");
  *request.add_failure() = PutOp("k", "from-failure");
  Result<etcd::TxnResponse> response = Txn(request);
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(response->succeeded());
  EXPECT_EQ(MustRange(machine, RangeReq("k")).kvs(0).value(), "from-failure");
}

TEST_F(TxnTest, FailingOpRollsBackTheWholeTxn) {
  MustPut(machine, "a", "0");  // rev 2
  MustPut(machine, "y", "0");  // rev 3
  etcd::TxnRequest request;
  *request.add_success() = PutOp("a", "1");
  *request.add_success() = DeleteOp("x", "z");
  etcd::RequestOp bad = PutOp("c", "1");
  bad.mutable_request_put()->set_lease(999);  // no such lease
  *request.add_success() = bad;
  Result<etcd::TxnResponse> response = Txn(request);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().message(), kErrLeaseNotFound);
  EXPECT_EQ(machine.revision(), 3);
  EXPECT_EQ(MustRange(machine, RangeReq("y")).kvs_size(), 1);
  EXPECT_EQ(MustRange(machine, RangeReq("a")).kvs(0).value(), "0");
  EXPECT_EQ(MustRange(machine, RangeReq("a")).kvs(0).version(), 1);
}

TEST_F(TxnTest, NestedTxn) {
  MustPut(machine, "k", "v");
  etcd::TxnRequest inner;
  *inner.add_compare() = ValueIs("k", "v");
  *inner.add_success() = PutOp("inner", "yes");
  etcd::TxnRequest outer;
  *outer.add_success() = PutOp("outer", "yes");
  *outer.add_success()->mutable_request_txn() = inner;
  Result<etcd::TxnResponse> response = Txn(outer);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->responses_size(), 2);
  EXPECT_TRUE(response->responses(1).response_txn().succeeded());
  EXPECT_EQ(MustRange(machine, RangeReq("inner")).kvs(0).mod_revision(), 3);
  EXPECT_EQ(MustRange(machine, RangeReq("outer")).kvs(0).mod_revision(), 3);
}

TEST_F(TxnTest, DuplicateKeysAreRejected) {
  etcd::TxnRequest twice;
  *twice.add_success() = PutOp("k", "1");
  *twice.add_success() = PutOp("k", "2");
  EXPECT_EQ(Txn(twice).status().message(), "etcdserver: duplicate key given in txn request");
  etcd::TxnRequest put_in_delete;
  *put_in_delete.add_success() = DeleteOp("a", "z");
  *put_in_delete.add_success() = PutOp("k", "1");
  EXPECT_EQ(Txn(put_in_delete).status().message(), kErrDuplicateKey);
  // The same key in success and failure is fine: only one branch runs.
  etcd::TxnRequest branches;
  *branches.add_success() = PutOp("k", "1");
  *branches.add_failure() = PutOp("k", "2");
  EXPECT_TRUE(Txn(branches).ok());
  EXPECT_EQ(machine.revision(), 2);
}

TEST_F(TxnTest, TooManyOps) {
  etcd::TxnRequest request;
  for (int i = 0; i < 129; ++i) *request.add_success() = GetOp("k" + std::to_string(i));
  EXPECT_EQ(Txn(request).status().message(), kErrTooManyOps);
}

}  // namespace
}  // namespace cairn::kv
