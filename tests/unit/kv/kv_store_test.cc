// Put / range / delete-range / compaction with etcd's observable results (revisions, versions,
// errors), checked against what etcd v3.5 returns for the same sequence.
#include <gtest/gtest.h>

#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

class KvStoreTest : public ::testing::Test {
 protected:
  KvStateMachine machine{NoAutoCompaction()};
};

TEST_F(KvStoreTest, EmptyStoreStartsAtRevisionOne) {
  EXPECT_EQ(machine.revision(), 1);
  etcd::RangeResponse response = MustRange(machine, RangeReq("foo"));
  EXPECT_EQ(response.header().revision(), 1);
  EXPECT_EQ(response.kvs_size(), 0);
  EXPECT_EQ(response.count(), 0);
}

TEST_F(KvStoreTest, PutAssignsRevisionsAndVersions) {
  EXPECT_EQ(MustPut(machine, "foo", "bar").header().revision(), 2);
  EXPECT_EQ(MustPut(machine, "foo", "baz").header().revision(), 3);
  etcd::RangeResponse response = MustRange(machine, RangeReq("foo"));
  ASSERT_EQ(response.kvs_size(), 1);
  const etcd::KeyValue& kv = response.kvs(0);
  EXPECT_EQ(kv.value(), "baz");
  EXPECT_EQ(kv.create_revision(), 2);
  EXPECT_EQ(kv.mod_revision(), 3);
  EXPECT_EQ(kv.version(), 2);
  EXPECT_EQ(response.header().revision(), 3);
}

TEST_F(KvStoreTest, DeleteThenRecreateRestartsVersionAndCreateRevision) {
  MustPut(machine, "foo", "1");                                     // rev 2
  MustPut(machine, "foo", "2");                                     // rev 3
  proto::KvResponse deleted = MustApply(machine, DeleteCmd("foo"));  // rev 4
  EXPECT_EQ(deleted.delete_range().deleted(), 1);
  EXPECT_EQ(deleted.delete_range().header().revision(), 4);
  MustPut(machine, "foo", "3");  // rev 5
  etcd::RangeResponse response = MustRange(machine, RangeReq("foo"));
  ASSERT_EQ(response.kvs_size(), 1);
  EXPECT_EQ(response.kvs(0).create_revision(), 5);
  EXPECT_EQ(response.kvs(0).mod_revision(), 5);
  EXPECT_EQ(response.kvs(0).version(), 1);
}

TEST_F(KvStoreTest, DeleteOfMissingKeyDoesNotAdvanceRevision) {
  MustPut(machine, "foo", "bar");
  proto::KvResponse response = MustApply(machine, DeleteCmd("nothing"));
  EXPECT_EQ(response.delete_range().deleted(), 0);
  EXPECT_EQ(response.delete_range().header().revision(), 2);
  EXPECT_EQ(machine.revision(), 2);
}

TEST_F(KvStoreTest, DeleteRangeUsesOneRevisionAndReturnsPrevKvs) {
  MustPut(machine, "a", "1");
  MustPut(machine, "b", "2");
  MustPut(machine, "c", "3");
  proto::KvResponse response = MustApply(machine, DeleteCmd("a", "c", /*prev_kv=*/true));
  EXPECT_EQ(response.delete_range().deleted(), 2);
  EXPECT_EQ(response.delete_range().header().revision(), 5);
  ASSERT_EQ(response.delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(response.delete_range().prev_kvs(0).key(), "a");
  EXPECT_EQ(response.delete_range().prev_kvs(1).value(), "2");
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("a", std::string(1, '\0')))), std::vector<std::string>{"c"});
}

TEST_F(KvStoreTest, PutReturnsPrevKvOnlyWhenAsked) {
  MustPut(machine, "foo", "old");
  proto::KvCommand command = PutCmd("foo", "new");
  EXPECT_FALSE(MustApply(machine, command).put().has_prev_kv());
  command.mutable_put()->set_prev_kv(true);
  etcd::PutResponse response = MustApply(machine, command).put();
  ASSERT_TRUE(response.has_prev_kv());
  EXPECT_EQ(response.prev_kv().value(), "new");
  EXPECT_EQ(response.prev_kv().version(), 2);
}

TEST_F(KvStoreTest, RangeForms) {
  for (const char* key : {"a", "foo", "foo/1", "foo/2", "fop", "z"}) MustPut(machine, key, "v");
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("foo"))), std::vector<std::string>{"foo"});
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("foo/", PrefixEnd("foo/")))),
            (std::vector<std::string>{"foo/1", "foo/2"}));
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("foo", "fop"))),
            (std::vector<std::string>{"foo", "foo/1", "foo/2"}));
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("fop", std::string(1, '\0')))),
            (std::vector<std::string>{"fop", "z"}));
  std::string zero(1, '\0');
  EXPECT_EQ(MustRange(machine, RangeReq(zero, zero)).count(), 6);
  // range_end <= key is an empty range, not an error.
  EXPECT_EQ(MustRange(machine, RangeReq("z", "a")).kvs_size(), 0);
}

TEST_F(KvStoreTest, PrefixEndMatchesEtcd) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

TEST_F(KvStoreTest, LimitSetsMoreAndCountIsTheTotal) {
  for (const char* key : {"a", "b", "c", "d"}) MustPut(machine, key, "v");
  etcd::RangeRequest request = RangeReq("a", "e");
  request.set_limit(2);
  etcd::RangeResponse response = MustRange(machine, request);
  EXPECT_EQ(Keys(response), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(response.more());
  EXPECT_EQ(response.count(), 4);
  request.set_limit(4);
  response = MustRange(machine, request);
  EXPECT_FALSE(response.more());
  EXPECT_EQ(response.kvs_size(), 4);
}

TEST_F(KvStoreTest, CountOnlyAndKeysOnly) {
  MustPut(machine, "a", "1");
  MustPut(machine, "b", "2");
  etcd::RangeRequest request = RangeReq("a", "c");
  request.set_count_only(true);
  etcd::RangeResponse response = MustRange(machine, request);
  EXPECT_EQ(response.count(), 2);
  EXPECT_EQ(response.kvs_size(), 0);
  request.set_count_only(false);
  request.set_keys_only(true);
  response = MustRange(machine, request);
  ASSERT_EQ(response.kvs_size(), 2);
  EXPECT_EQ(response.kvs(0).key(), "a");
  EXPECT_EQ(response.kvs(0).value(), "");
  EXPECT_EQ(response.kvs(0).mod_revision(), 2);
}

TEST_F(KvStoreTest, SortByTargetsAndOrders) {
  MustPut(machine, "a", "3");
  MustPut(machine, "b", "1");
  MustPut(machine, "c", "2");
  MustPut(machine, "b", "4");  // b: mod 5, version 2
  etcd::RangeRequest request = RangeReq("a", "d");
  request.set_sort_order(etcd::RangeRequest::DESCEND);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"c", "b", "a"}));
  request.set_sort_target(etcd::RangeRequest::MOD);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"b", "c", "a"}));
  request.set_sort_target(etcd::RangeRequest::VALUE);
  request.set_sort_order(etcd::RangeRequest::ASCEND);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"c", "a", "b"}));
  // A non-key target without an order sorts ascending, like etcd.
  request.set_sort_target(etcd::RangeRequest::CREATE);
  request.set_sort_order(etcd::RangeRequest::NONE);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"a", "b", "c"}));
  // Sorting happens before the limit.
  request.set_sort_target(etcd::RangeRequest::VERSION);
  request.set_sort_order(etcd::RangeRequest::DESCEND);
  request.set_limit(1);
  etcd::RangeResponse response = MustRange(machine, request);
  EXPECT_EQ(Keys(response), std::vector<std::string>{"b"});
  EXPECT_TRUE(response.more());
}

TEST_F(KvStoreTest, RevisionFilters) {
  MustPut(machine, "a", "1");  // 2
  MustPut(machine, "b", "1");  // 3
  MustPut(machine, "c", "1");  // 4
  MustPut(machine, "a", "2");  // 5
  etcd::RangeRequest request = RangeReq("a", "d");
  request.set_min_mod_revision(4);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"a", "c"}));
  request.set_min_mod_revision(0);
  request.set_max_create_revision(3);
  EXPECT_EQ(Keys(MustRange(machine, request)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(MustRange(machine, request).count(), 3);  // count ignores filters, like etcd
}

TEST_F(KvStoreTest, RangeAtPastRevision) {
  MustPut(machine, "foo", "v1");         // 2
  MustPut(machine, "foo", "v2");         // 3
  MustApply(machine, DeleteCmd("foo"));  // 4
  etcd::RangeResponse at3 = MustRange(machine, RangeReq("foo", "", 3));
  ASSERT_EQ(at3.kvs_size(), 1);
  EXPECT_EQ(at3.kvs(0).value(), "v2");
  EXPECT_EQ(at3.kvs(0).version(), 2);
  EXPECT_EQ(at3.header().revision(), 4);  // the header carries the current revision, like etcd
  EXPECT_EQ(MustRange(machine, RangeReq("foo", "", 2)).kvs(0).value(), "v1");
  EXPECT_EQ(MustRange(machine, RangeReq("foo", "", 1)).kvs_size(), 0);
  EXPECT_EQ(MustRange(machine, RangeReq("foo", "", 4)).kvs_size(), 0);
}

TEST_F(KvStoreTest, FutureRevisionIsAnError) {
  MustPut(machine, "foo", "v1");
  Result<etcd::RangeResponse> result = machine.Range(RangeReq("foo", "", 3));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "mvcc: required revision is a future revision");
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
}

TEST_F(KvStoreTest, CompactionRemovesOldRevisionsAndKeepsLatest) {
  MustPut(machine, "foo", "v1");         // 2
  MustPut(machine, "foo", "v2");         // 3
  MustPut(machine, "gone", "x");         // 4
  MustApply(machine, DeleteCmd("gone"));  // 5
  MustPut(machine, "foo", "v3");         // 6
  proto::KvResponse response = MustApply(machine, CompactCmd(5));
  EXPECT_EQ(response.compaction().header().revision(), 6);
  EXPECT_EQ(machine.compact_revision(), 5);
  EXPECT_EQ(machine.revision(), 6);  // compaction does not create a revision

  Result<etcd::RangeResponse> old = machine.Range(RangeReq("foo", "", 4));
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().message(), "mvcc: required revision has been compacted");
  EXPECT_TRUE(IsCompacted(old.status()));
  // The compaction revision itself stays readable.
  etcd::RangeResponse at5 = MustRange(machine, RangeReq("foo", "", 5));
  ASSERT_EQ(at5.kvs_size(), 1);
  EXPECT_EQ(at5.kvs(0).value(), "v2");
  EXPECT_EQ(MustRange(machine, RangeReq("foo")).kvs(0).version(), 3);

  // Physical removal: only foo@3 and foo@6 remain in the snapshot.
  proto::KvSnapshot snapshot;
  ASSERT_TRUE(snapshot.ParseFromString(machine.Snapshot()));
  ASSERT_EQ(snapshot.keys_size(), 1);
  EXPECT_EQ(snapshot.keys(0).key(), "foo");
  EXPECT_EQ(snapshot.keys(0).records_size(), 2);
  EXPECT_EQ(machine.store().record_count(), 2);
  EXPECT_EQ(machine.store().key_count(), 1);
  EXPECT_GT(machine.store().approximate_bytes(), 0);
}

TEST_F(KvStoreTest, CompactionErrors) {
  MustPut(machine, "foo", "v1");
  MustPut(machine, "foo", "v2");
  MustApply(machine, CompactCmd(2));
  Result<proto::KvResponse> again = machine.Apply(CompactCmd(2));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), kErrCompacted);
  Result<proto::KvResponse> future = machine.Apply(CompactCmd(10));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().message(), kErrFutureRevision);
}

TEST_F(KvStoreTest, IgnoreValueAndIgnoreLease) {
  MustApply(machine, GrantCmd(7, 60));
  MustPut(machine, "foo", "keep", 7);
  proto::KvCommand command = PutCmd("foo", "");
  command.mutable_put()->set_ignore_value(true);
  command.mutable_put()->set_ignore_lease(true);
  MustApply(machine, command);
  etcd::KeyValue kv = MustRange(machine, RangeReq("foo")).kvs(0);
  EXPECT_EQ(kv.value(), "keep");
  EXPECT_EQ(kv.lease(), 7);
  EXPECT_EQ(kv.version(), 2);

  command.mutable_put()->set_key("missing");
  Result<proto::KvResponse> missing = machine.Apply(command);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "etcdserver: key not found");

  proto::KvCommand with_value = PutCmd("foo", "x");
  with_value.mutable_put()->set_ignore_value(true);
  EXPECT_EQ(machine.Apply(with_value).status().message(), "etcdserver: value is provided");
}

TEST_F(KvStoreTest, BadRequestsGiveEtcdErrorsAndChangeNothing) {
  Result<proto::KvResponse> empty = machine.Apply(PutCmd("", "v"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "etcdserver: key is not provided");
  Result<proto::KvResponse> no_lease = machine.Apply(PutCmd("foo", "v", 12345));
  ASSERT_FALSE(no_lease.ok());
  EXPECT_EQ(no_lease.status().message(), "etcdserver: requested lease not found");
  EXPECT_EQ(no_lease.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(machine.revision(), 1);
  EXPECT_FALSE(machine.Range(RangeReq("")).ok());

  Result<proto::KvResponse> garbage = machine.Apply(std::string_view("\xff\xff\xff", 3));
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument);
  Result<proto::KvResponse> nothing = machine.Apply(proto::KvCommand());
  EXPECT_EQ(nothing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(machine.revision(), 1);
}

TEST_F(KvStoreTest, RangeThroughTheLog) {
  MustPut(machine, "foo", "bar");
  proto::KvCommand command;
  *command.mutable_range() = RangeReq("foo");
  proto::KvResponse response = MustApply(machine, command);
  ASSERT_EQ(response.range().kvs_size(), 1);
  EXPECT_EQ(response.range().kvs(0).value(), "bar");
  EXPECT_EQ(machine.revision(), 2);
}

}  // namespace
}  // namespace cairn::kv
