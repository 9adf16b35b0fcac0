#include "cairn/kv/watch_hub.h"

#include <algorithm>

#include "cairn/kv/errors.h"

namespace cairn::kv {

int64_t WatchHub::OpenStream(Sink sink) {
  int64_t id = next_stream_id_++;
  streams_[id].sink = std::move(sink);
  return id;
}

void WatchHub::CloseStream(int64_t stream_id) { streams_.erase(stream_id); }

size_t WatchHub::watcher_count() const {
  size_t count = 0;
  for (const auto& [id, stream] : streams_) count += stream.watchers.size();
  return count;
}

etcd::WatchResponse WatchHub::NewResponse(int64_t watch_id) const {
  etcd::WatchResponse response;
  response.mutable_header()->set_revision(store_->revision());
  response.set_watch_id(watch_id);
  return response;
}

int64_t WatchHub::AllocateWatchId(Stream& stream) {
  while (stream.watchers.count(stream.next_watch_id) != 0) ++stream.next_watch_id;
  return stream.next_watch_id++;
}

Status WatchHub::Handle(int64_t stream_id, const etcd::WatchRequest& request) {
  switch (request.request_union_case()) {
    case etcd::WatchRequest::kCreateRequest:
      return CreateWatch(stream_id, request.create_request()).status();
    case etcd::WatchRequest::kCancelRequest:
      return CancelWatch(stream_id, request.cancel_request().watch_id());
    case etcd::WatchRequest::kProgressRequest:
      return RequestProgress(stream_id);
    case etcd::WatchRequest::REQUEST_UNION_NOT_SET:
      break;
  }
  return InvalidArgumentError("watch request names no operation (create_request, cancel_request or progress_request)");
}

Result<int64_t> WatchHub::CreateWatch(int64_t stream_id, const etcd::WatchCreateRequest& request) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return NotFoundError("watch stream " + std::to_string(stream_id) + " not found");
  Stream& stream = it->second;
  int64_t watch_id = request.watch_id();
  if (watch_id != 0 && stream.watchers.count(watch_id) != 0) {
    etcd::WatchResponse response = NewResponse(watch_id);
    response.set_created(true);
    response.set_canceled(true);
    response.set_cancel_reason(std::string(kErrDuplicateWatchId));
    stream.sink(response);
    return InvalidArgumentError(std::string(kErrDuplicateWatchId));
  }
  if (watch_id == 0) watch_id = AllocateWatchId(stream);

  Watcher watcher;
  watcher.range = KeyRange::From(request.key(), request.range_end());
  watcher.prev_kv = request.prev_kv();
  watcher.progress_notify = request.progress_notify();
  for (int filter : request.filters()) {
    if (filter == etcd::WatchCreateRequest::NOPUT) watcher.no_put = true;
    if (filter == etcd::WatchCreateRequest::NODELETE) watcher.no_delete = true;
  }
  watcher.next_revision = request.start_revision() > 0 ? request.start_revision() : store_->revision() + 1;

  etcd::WatchResponse created = NewResponse(watch_id);
  created.set_created(true);
  stream.sink(created);
  if (CatchUp(stream, watch_id, watcher)) stream.watchers[watch_id] = std::move(watcher);
  return watch_id;
}

bool WatchHub::CatchUp(Stream& stream, int64_t watch_id, Watcher& watcher) {
  if (watcher.next_revision > store_->revision()) return true;
  if (watcher.next_revision < store_->compact_revision()) {
    etcd::WatchResponse response = NewResponse(watch_id);
    response.set_compact_revision(store_->compact_revision());
    response.set_canceled(true);
    response.set_cancel_reason(std::string(kErrCompacted));
    stream.sink(response);
    return false;
  }
  std::vector<etcd::Event> events = store_->EventsSince(watcher.range, watcher.next_revision);
  watcher.next_revision = store_->revision() + 1;
  etcd::WatchResponse response = NewResponse(watch_id);
  if (Select(watcher, events, &response)) stream.sink(response);
  return true;
}

Status WatchHub::CancelWatch(int64_t stream_id, int64_t watch_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end() || it->second.watchers.erase(watch_id) == 0) {
    return NotFoundError("watch " + std::to_string(watch_id) + " not found on stream " +
                         std::to_string(stream_id));
  }
  etcd::WatchResponse response = NewResponse(watch_id);
  response.set_canceled(true);
  it->second.sink(response);
  return Status::Ok();
}

Status WatchHub::RequestProgress(int64_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return NotFoundError("watch stream " + std::to_string(stream_id) + " not found");
  it->second.sink(NewResponse(-1));
  return Status::Ok();
}

void WatchHub::NotifyProgress() {
  for (auto& [stream_id, stream] : streams_) {
    for (const auto& [watch_id, watcher] : stream.watchers) {
      if (watcher.progress_notify) stream.sink(NewResponse(watch_id));
    }
  }
}

bool WatchHub::Select(const Watcher& watcher, const std::vector<etcd::Event>& events,
                      etcd::WatchResponse* response) {
  for (const etcd::Event& event : events) {
    bool is_put = event.type() == etcd::Event::PUT;
    if ((is_put && watcher.no_put) || (!is_put && watcher.no_delete)) continue;
    if (!watcher.range.Contains(event.kv().key())) continue;
    etcd::Event* out = response->add_events();
    *out = event;
    if (!watcher.prev_kv) out->clear_prev_kv();
  }
  return response->events_size() > 0;
}

void WatchHub::Publish(int64_t revision, const std::vector<etcd::Event>& events) {
  for (auto& [stream_id, stream] : streams_) {
    for (auto& [watch_id, watcher] : stream.watchers) {
      // A watcher created with a future start_revision waits until the store gets there.
      if (revision < watcher.next_revision) continue;
      watcher.next_revision = revision + 1;
      etcd::WatchResponse response = NewResponse(watch_id);
      response.mutable_header()->set_revision(revision);
      if (Select(watcher, events, &response)) stream.sink(response);
    }
  }
}

void WatchHub::Resync() {
  for (auto& [stream_id, stream] : streams_) {
    for (auto it = stream.watchers.begin(); it != stream.watchers.end();) {
      it = CatchUp(stream, it->first, it->second) ? std::next(it) : stream.watchers.erase(it);
    }
  }
}

}  // namespace cairn::kv
