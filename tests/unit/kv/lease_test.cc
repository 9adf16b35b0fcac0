// Leases: grant (given or automatic id, minimum TTL), keys attached by put, revoke deleting every
// attached key in one revision, keepalive, time-to-live, expiry reported for the leader.
#include <gtest/gtest.h>

#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

class LeaseTest : public ::testing::Test {
 protected:
  etcd::LeaseTimeToLiveResponse TimeToLive(int64_t id, int64_t now_ms) {
    etcd::LeaseTimeToLiveRequest request;
    request.set_id(id);
    request.set_keys(true);
    Result<etcd::LeaseTimeToLiveResponse> result = machine.LeaseTimeToLive(request, now_ms);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : etcd::LeaseTimeToLiveResponse();
  }

  KvStateMachine machine{NoAutoCompaction()};
};

TEST_F(LeaseTest, GrantWithIdAndTtl) {
  etcd::LeaseGrantResponse grant = MustApply(machine, GrantCmd(100, 30, 5000)).lease_grant();
  EXPECT_EQ(grant.id(), 100);
  EXPECT_EQ(grant.ttl(), 30);
  EXPECT_EQ(grant.header().revision(), 1);  // leases do not create revisions
  Result<proto::KvResponse> again = machine.Apply(GrantCmd(100, 30));
  EXPECT_EQ(again.status().message(), "etcdserver: lease already exists");
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
}

TEST_F(LeaseTest, AutomaticIdsAreDistinctPositiveAndDeterministic) {
  KvStateMachine other(NoAutoCompaction());
  for (int i = 0; i < 5; ++i) {
    int64_t id = MustApply(machine, GrantCmd(0, 10)).lease_grant().id();
    EXPECT_GT(id, 0);
    EXPECT_EQ(MustApply(other, GrantCmd(0, 10)).lease_grant().id(), id);
  }
  EXPECT_EQ(machine.LeaseLeases().leases_size(), 5);
}

TEST_F(LeaseTest, ShortTtlIsRaisedToMinimum) {
  EXPECT_EQ(MustApply(machine, GrantCmd(1, 1)).lease_grant().ttl(), 2);
}

TEST_F(LeaseTest, RevokeDeletesAttachedKeysInOneRevision) {
  MustApply(machine, GrantCmd(7, 60));
  MustPut(machine, "a", "1", 7);  // 2
  MustPut(machine, "b", "1", 7);  // 3
  MustPut(machine, "c", "1");     // 4
  MustPut(machine, "d", "1", 7);  // 5
  MustPut(machine, "d", "2");     // 6: d moves off the lease
  EXPECT_EQ(TimeToLive(7, 0).keys_size(), 2);
  proto::KvResponse revoked = MustApply(machine, RevokeCmd(7));
  EXPECT_EQ(revoked.lease_revoke().header().revision(), 7);
  EXPECT_EQ(machine.revision(), 7);
  EXPECT_EQ(Keys(MustRange(machine, RangeReq("a", "z"))), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(MustRange(machine, RangeReq("a", "", 6)).kvs_size(), 1);  // history still there
  EXPECT_EQ(machine.Apply(RevokeCmd(7)).status().message(), "etcdserver: requested lease not found");
  EXPECT_EQ(machine.Apply(PutCmd("e", "1", 7)).status().message(), kErrLeaseNotFound);
}

TEST_F(LeaseTest, RevokeWithoutKeysDoesNotAdvanceRevision) {
  MustApply(machine, GrantCmd(7, 60));
  MustApply(machine, RevokeCmd(7));
  EXPECT_EQ(machine.revision(), 1);
}

TEST_F(LeaseTest, DeleteDetachesKeyFromLease) {
  MustApply(machine, GrantCmd(7, 60));
  MustPut(machine, "a", "1", 7);
  MustApply(machine, DeleteCmd("a"));
  EXPECT_EQ(TimeToLive(7, 0).keys_size(), 0);
}

TEST_F(LeaseTest, ExpiryKeepAliveAndTimeToLive) {
  MustApply(machine, GrantCmd(1, 10, /*now_ms=*/1000));  // expires at 11000
  MustApply(machine, GrantCmd(2, 20, /*now_ms=*/1000));  // expires at 21000
  EXPECT_TRUE(machine.ExpiredLeases(10999).empty());
  EXPECT_EQ(machine.ExpiredLeases(11000), std::vector<int64_t>{1});
  EXPECT_EQ(machine.ExpiredLeases(30000), (std::vector<int64_t>{1, 2}));

  etcd::LeaseTimeToLiveResponse ttl = TimeToLive(1, 4500);
  EXPECT_EQ(ttl.id(), 1);
  EXPECT_EQ(ttl.ttl(), 6);  // 6.5 s left, rounded down like etcd
  EXPECT_EQ(ttl.grantedttl(), 10);

  proto::KvCommand keepalive;
  keepalive.set_now_ms(9000);
  keepalive.mutable_lease_keepalive()->set_id(1);
  etcd::LeaseKeepAliveResponse kept = MustApply(machine, keepalive).lease_keepalive();
  EXPECT_EQ(kept.id(), 1);
  EXPECT_EQ(kept.ttl(), 10);
  EXPECT_TRUE(machine.ExpiredLeases(18999).empty());
  EXPECT_EQ(machine.ExpiredLeases(19000), std::vector<int64_t>{1});
  EXPECT_EQ(TimeToLive(1, 25000).ttl(), 0);

  keepalive.mutable_lease_keepalive()->set_id(3);
  EXPECT_EQ(machine.Apply(keepalive).status().message(), kErrLeaseNotFound);
  etcd::LeaseTimeToLiveRequest unknown;
  unknown.set_id(3);
  EXPECT_EQ(machine.LeaseTimeToLive(unknown, 0).status().message(), kErrLeaseNotFound);
}

TEST_F(LeaseTest, PromoteAndCheckpointMoveExpiry) {
  MustApply(machine, GrantCmd(1, 10, 0));
  proto::KvCommand promote;
  promote.set_now_ms(100000);
  promote.mutable_lease_promote();
  MustApply(machine, promote);
  EXPECT_TRUE(machine.ExpiredLeases(109999).empty());
  EXPECT_EQ(machine.ExpiredLeases(110000), std::vector<int64_t>{1});

  proto::KvCommand checkpoint;
  checkpoint.set_now_ms(100000);
  auto* entry = checkpoint.mutable_lease_checkpoint()->add_checkpoints();
  entry->set_id(1);
  entry->set_remaining_ttl(3);
  MustApply(machine, checkpoint);
  EXPECT_EQ(machine.ExpiredLeases(103000), std::vector<int64_t>{1});
}

}  // namespace
}  // namespace cairn::kv
