#include "cairn/wal/group_commit.h"

namespace cairn::wal {

GroupCommitWal::GroupCommitWal(std::unique_ptr<Wal> wal)
    : wal_(std::move(wal)), next_index_(wal_->LastIndex() + 1) {
  writer_ = std::thread([this] { WriterLoop(); });
}

GroupCommitWal::~GroupCommitWal() { (void)Close(); }

Status GroupCommitWal::Append(const HardState& hard_state, std::vector<Entry> entries) {
  Request request{hard_state, std::move(entries)};
  return Submit(&request);
}

Result<uint64_t> GroupCommitWal::AppendNext(uint64_t term, uint32_t type, std::string data) {
  Request request;
  request.entries.push_back(Entry{0, term, type, std::move(data)});
  request.assign_index = true;
  CAIRN_RETURN_IF_ERROR(Submit(&request));
  return request.entries.front().index;
}

Status GroupCommitWal::Submit(Request* request) {
  std::unique_lock lock(mu_);
  if (closing_) return FailedPreconditionError("group commit wal is closed");
  if (request->assign_index) request->entries.front().index = next_index_;
  if (!request->entries.empty()) next_index_ = request->entries.back().index + 1;
  queue_.push_back(request);
  work_ready_.notify_one();
  work_done_.wait(lock, [&] { return request->done; });
  return request->status;
}

void GroupCommitWal::WriterLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_ready_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty()) return;  // closing and drained
    std::vector<Request*> group(queue_.begin(), queue_.end());
    queue_.clear();
    lock.unlock();
    WriteGroup(group);
    lock.lock();
    ++groups_;
    // After a failure later indices handed out may leave a gap; restart from what the log holds.
    for (Request* request : group) {
      if (!request->status.ok()) next_index_ = wal_->LastIndex() + 1;
      request->done = true;
    }
    work_done_.notify_all();
  }
}

// Runs on the writer thread without mu_: one Save per request, then one fsync for all.
void GroupCommitWal::WriteGroup(const std::vector<Request*>& group) {
  for (Request* request : group) {
    request->status = wal_->Save(request->hard_state, request->entries, /*sync=*/false);
  }
  Status synced = wal_->Sync();
  for (Request* request : group) {
    if (request->status.ok()) request->status = synced;
  }
}

Status GroupCommitWal::Close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return FailedPreconditionError("group commit wal is closed");
    closing_ = true;
    closed_ = true;
    work_ready_.notify_one();
  }
  writer_.join();
  return wal_->Close();
}

uint64_t GroupCommitWal::GroupCount() const {
  std::lock_guard lock(mu_);
  return groups_;
}

size_t GroupCommitWal::QueuedCount() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace cairn::wal
