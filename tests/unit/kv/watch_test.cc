// Watch: created response, catch-up from start_revision, live events per revision, prev_kv,
// filters, compacted start (compact_revision + canceled), cancel, ids, resync after restore.
#include <gtest/gtest.h>

#include "cairn/kv/errors.h"
#include "kv_test_util.h"

namespace cairn::kv {
namespace {

using namespace cairn::kv::testing;

etcd::WatchCreateRequest WatchReq(const std::string& key, const std::string& range_end = "",
                                  int64_t start_revision = 0, bool prev_kv = false) {
  etcd::WatchCreateRequest request;
  request.set_key(key);
  request.set_range_end(range_end);
  request.set_start_revision(start_revision);
  request.set_prev_kv(prev_kv);
  return request;
}

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stream = machine.watch_hub().OpenStream(
        [this](const etcd::WatchResponse& response) { responses.push_back(response); });
  }
  int64_t Watch(const etcd::WatchCreateRequest& request) {
    Result<int64_t> id = machine.watch_hub().CreateWatch(stream, request);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : -1;
  }

  KvStateMachine machine{NoAutoCompaction()};
  int64_t stream = 0;
  std::vector<etcd::WatchResponse> responses;
};

TEST_F(WatchTest, LiveEventsForTheWatchedKeyOnly) {
  int64_t id = Watch(WatchReq("foo"));
  EXPECT_EQ(id, 0);  // ids start at 0 on each stream, like etcd
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0].created());
  EXPECT_EQ(responses[0].header().revision(), 1);

  MustPut(machine, "foo", "1");  // 2
  MustPut(machine, "bar", "1");  // 3
  MustApply(machine, DeleteCmd("foo"));  // 4
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].header().revision(), 2);
  ASSERT_EQ(responses[1].events_size(), 1);
  EXPECT_EQ(responses[1].events(0).type(), etcd::Event::PUT);
  EXPECT_EQ(responses[1].events(0).kv().value(), "1");
  EXPECT_EQ(responses[1].events(0).kv().version(), 1);
  EXPECT_FALSE(responses[1].events(0).has_prev_kv());
  const etcd::Event& deleted = responses[2].events(0);
  EXPECT_EQ(deleted.type(), etcd::Event::DELETE);
  EXPECT_EQ(deleted.kv().key(), "foo");
  EXPECT_EQ(deleted.kv().mod_revision(), 4);
  EXPECT_EQ(deleted.kv().version(), 0);
}

TEST_F(WatchTest, CatchUpFromStartRevisionThenLiveWithPrevKv) {
  MustPut(machine, "foo", "v1");  // 2
  MustPut(machine, "foo", "v2");  // 3
  MustPut(machine, "fox", "v1");  // 4
  Watch(WatchReq("fo", PrefixEnd("fo"), /*start_revision=*/3, /*prev_kv=*/true));
  ASSERT_EQ(responses.size(), 2u);
  const etcd::WatchResponse& catch_up = responses[1];
  ASSERT_EQ(catch_up.events_size(), 2);
  EXPECT_EQ(catch_up.events(0).kv().mod_revision(), 3);
  EXPECT_EQ(catch_up.events(0).prev_kv().value(), "v1");
  EXPECT_EQ(catch_up.events(1).kv().key(), "fox");
  EXPECT_FALSE(catch_up.events(1).has_prev_kv());

  MustPut(machine, "foo", "v3");  // 5
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[2].events(0).prev_kv().value(), "v2");
  EXPECT_EQ(responses[2].events(0).kv().version(), 3);
}

TEST_F(WatchTest, TxnAndLeaseRevokeEventsComeAsOneResponse) {
  MustApply(machine, GrantCmd(9, 60));
  Watch(WatchReq("a", "z"));
  proto::KvCommand txn;
  *txn.mutable_txn()->add_success()->mutable_request_put() = PutReq("b", "1", 9);
  *txn.mutable_txn()->add_success()->mutable_request_put() = PutReq("a", "1", 9);
  MustApply(machine, txn);  // 2
  MustApply(machine, RevokeCmd(9));  // 3
  ASSERT_EQ(responses.size(), 3u);
  ASSERT_EQ(responses[1].events_size(), 2);
  EXPECT_EQ(responses[1].events(0).kv().key(), "b");  // txn order, not key order
  EXPECT_EQ(responses[1].events(1).kv().key(), "a");
  ASSERT_EQ(responses[2].events_size(), 2);
  EXPECT_EQ(responses[2].header().revision(), 3);
  EXPECT_EQ(responses[2].events(0).type(), etcd::Event::DELETE);
  EXPECT_EQ(responses[2].events(0).kv().key(), "a");  // revoke deletes in key order
}

TEST_F(WatchTest, Filters) {
  etcd::WatchCreateRequest request = WatchReq("k");
  request.add_filters(etcd::WatchCreateRequest::NOPUT);
  Watch(request);
  MustPut(machine, "k", "1");
  MustApply(machine, DeleteCmd("k"));
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].events(0).type(), etcd::Event::DELETE);
}

TEST_F(WatchTest, CompactedStartIsCanceledWithCompactRevision) {
  MustPut(machine, "k", "1");  // 2
  MustPut(machine, "k", "2");  // 3
  MustPut(machine, "k", "3");  // 4
  MustApply(machine, CompactCmd(3));
  Watch(WatchReq("k", "", /*start_revision=*/2));
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_TRUE(responses[0].created());
  EXPECT_TRUE(responses[1].canceled());
  EXPECT_EQ(responses[1].compact_revision(), 3);
  EXPECT_EQ(responses[1].cancel_reason(), kErrCompacted);
  EXPECT_EQ(machine.watch_hub().watcher_count(), 0u);
  // Starting at the compaction revision still works: it is the oldest readable one.
  responses.clear();
  Watch(WatchReq("k", "", 3));
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].events_size(), 2);
}

TEST_F(WatchTest, CancelStopsEvents) {
  int64_t id = Watch(WatchReq("k"));
  ASSERT_TRUE(machine.watch_hub().CancelWatch(stream, id).ok());
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_TRUE(responses[1].canceled());
  MustPut(machine, "k", "1");
  EXPECT_EQ(responses.size(), 2u);
  EXPECT_EQ(machine.watch_hub().CancelWatch(stream, id).code(), StatusCode::kNotFound);
}

TEST_F(WatchTest, RequestedIdsAndDuplicates) {
  etcd::WatchCreateRequest request = WatchReq("k");
  request.set_watch_id(5);
  EXPECT_EQ(Watch(request), 5);
  Result<int64_t> duplicate = machine.watch_hub().CreateWatch(stream, request);
  EXPECT_FALSE(duplicate.ok());
  EXPECT_TRUE(responses.back().canceled());
  EXPECT_EQ(responses.back().cancel_reason(), kErrDuplicateWatchId);
  EXPECT_EQ(Watch(WatchReq("k")), 0);
  EXPECT_EQ(Watch(WatchReq("k")), 1);
}

TEST_F(WatchTest, FutureStartRevisionWaits) {
  Watch(WatchReq("k", "", /*start_revision=*/4));
  MustPut(machine, "k", "1");  // 2
  MustPut(machine, "k", "2");  // 3
  MustPut(machine, "k", "3");  // 4
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].header().revision(), 4);
}

TEST_F(WatchTest, ProgressResponses) {
  etcd::WatchCreateRequest request = WatchReq("k");
  request.set_progress_notify(true);
  int64_t id = Watch(request);
  machine.watch_hub().NotifyProgress();
  ASSERT_TRUE(machine.watch_hub().RequestProgress(stream).ok());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].watch_id(), id);
  EXPECT_EQ(responses[1].events_size(), 0);
  EXPECT_EQ(responses[2].watch_id(), -1);
}

TEST_F(WatchTest, ClosedStreamGetsNothing) {
  Watch(WatchReq("k"));
  machine.watch_hub().CloseStream(stream);
  MustPut(machine, "k", "1");
  EXPECT_EQ(responses.size(), 1u);
  EXPECT_EQ(machine.watch_hub().CreateWatch(stream, WatchReq("k")).status().code(), StatusCode::kNotFound);
}

TEST_F(WatchTest, HandlesWatchRequests) {
  etcd::WatchRequest create;
  *create.mutable_create_request() = WatchReq("k");
  ASSERT_TRUE(machine.watch_hub().Handle(stream, create).ok());
  etcd::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(machine.watch_hub().Handle(stream, progress).ok());
  etcd::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(0);
  ASSERT_TRUE(machine.watch_hub().Handle(stream, cancel).ok());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_TRUE(responses[0].created());
  EXPECT_EQ(responses[1].watch_id(), -1);
  EXPECT_TRUE(responses[2].canceled());
  EXPECT_EQ(machine.watch_hub().Handle(stream, etcd::WatchRequest()).code(), StatusCode::kInvalidArgument);
}

TEST_F(WatchTest, RestoreCatchesWatchersUp) {
  Watch(WatchReq("k"));
  KvStateMachine ahead(NoAutoCompaction());
  MustPut(ahead, "k", "1");  // 2
  MustPut(ahead, "x", "1");  // 3
  MustPut(ahead, "k", "2");  // 4
  ASSERT_TRUE(machine.Restore(ahead.Snapshot()).ok());
  ASSERT_EQ(responses.size(), 2u);
  ASSERT_EQ(responses[1].events_size(), 2);
  EXPECT_EQ(responses[1].events(1).kv().mod_revision(), 4);
  MustPut(machine, "k", "3");
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[2].header().revision(), 5);
}

TEST_F(WatchTest, RestorePastCompactionCancelsWatchers) {
  Watch(WatchReq("k"));
  KvStateMachine ahead(NoAutoCompaction());
  MustPut(ahead, "k", "1");
  MustPut(ahead, "k", "2");
  MustApply(ahead, CompactCmd(3));
  ASSERT_TRUE(machine.Restore(ahead.Snapshot()).ok());
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_TRUE(responses[1].canceled());
  EXPECT_EQ(responses[1].compact_revision(), 3);
  EXPECT_EQ(machine.watch_hub().watcher_count(), 0u);
}

}  // namespace
}  // namespace cairn::kv
