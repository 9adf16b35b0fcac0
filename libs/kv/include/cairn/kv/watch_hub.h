// WatchHub: etcd's watch streams and watchers over an MvccStore.
//
// A stream is one client connection (etcd's /v3/watch); it owns watchers and a sink that receives
// every WatchResponse for them, in order. Creating a watcher sends a "created" response, then,
// if start_revision is in the past, the history from start_revision (catch-up), or, if that
// history is compacted, a response with compact_revision set and canceled=true (the watcher is
// gone). After that, every applied revision with events in the watcher's range is delivered as
// one response (Publish). Watch ids are per stream and start at 0, like etcd.
//
// Threading: not thread-safe; call from the thread that applies commands. Sinks are called
// synchronously from CreateWatch/CancelWatch/Publish/Resync and must not call back into the hub
// (queue the response and return).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/kv/key_range.h"
#include "cairn/kv/mvcc_store.h"
#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::kv {

class WatchHub {
 public:
  using Sink = std::function<void(const etcd::WatchResponse&)>;

  // `store` must outlive the hub.
  explicit WatchHub(const MvccStore* store) : store_(store) {}

  // Opens a stream; returns its id (> 0).
  int64_t OpenStream(Sink sink);
  // Closes a stream and drops its watchers, sending nothing.
  void CloseStream(int64_t stream_id);

  // Handles one WatchRequest from a stream (create, cancel or progress), as /v3/watch receives
  // them. Errors: those of CreateWatch/CancelWatch/RequestProgress; InvalidArgument if the
  // request names no operation.
  Status Handle(int64_t stream_id, const etcd::WatchRequest& request);

  // Creates a watcher on a stream (see the file comment for what the sink receives). Returns the
  // watch id. Errors: NotFound for an unknown stream; kErrDuplicateWatchId (InvalidArgument) if
  // request.watch_id is already used on the stream (the sink also gets created+canceled with
  // that reason, as etcd does).
  Result<int64_t> CreateWatch(int64_t stream_id, const etcd::WatchCreateRequest& request);
  // Cancels a watcher; the sink gets canceled=true. Errors: NotFound.
  Status CancelWatch(int64_t stream_id, int64_t watch_id);
  // etcd's WatchProgressRequest: one response with watch_id -1 and the current revision.
  Status RequestProgress(int64_t stream_id);
  // Sends an empty response to every watcher created with progress_notify (the service calls
  // this periodically, e.g. every 10 minutes as etcd does).
  void NotifyProgress();

  // Delivers the events of one applied revision (as returned by MvccStore::EndWrite).
  void Publish(int64_t revision, const std::vector<etcd::Event>& events);
  // After the store was replaced (snapshot restore), catches every watcher up from the revision
  // it has seen to the store's revision, or cancels it if that history is compacted.
  void Resync();

  size_t watcher_count() const;

 private:
  struct Watcher {
    KeyRange range;
    bool prev_kv = false;
    bool no_put = false;
    bool no_delete = false;
    bool progress_notify = false;
    int64_t next_revision = 0;  // the first revision this watcher has not been sent yet
  };
  struct Stream {
    Sink sink;
    int64_t next_watch_id = 0;
    std::map<int64_t, Watcher> watchers;
  };

  etcd::WatchResponse NewResponse(int64_t watch_id) const;
  // Converts events for `watcher`: keeps those in range and not filtered, strips prev_kv unless
  // asked. Returns false if none is left.
  static bool Select(const Watcher& watcher, const std::vector<etcd::Event>& events,
                     etcd::WatchResponse* response);
  // Sends history from watcher.next_revision to the store's revision; returns false (after
  // sending the compacted cancel) if that history is gone.
  bool CatchUp(Stream& stream, int64_t watch_id, Watcher& watcher);
  int64_t AllocateWatchId(Stream& stream);

  const MvccStore* store_;
  std::map<int64_t, Stream> streams_;
  int64_t next_stream_id_ = 1;
};

}  // namespace cairn::kv
