// ScriptedApi: a CoordApi that forwards to a LocalCoordApi, but can fail the next call with a
// chosen Status, or hold Put callbacks until the test releases them (to have requests in flight).
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>

#include "cairn/coord/local_coord_api.h"

namespace cairn::coord::testing {

class ScriptedApi final : public CoordApi {
 public:
  explicit ScriptedApi(LocalCoordApi& inner) : inner_(inner) {}

  void FailNext(cairn::Status status) {
    std::lock_guard lock(mu_);
    fail_next_ = std::move(status);
  }
  void HoldPuts(bool hold) {
    std::lock_guard lock(mu_);
    hold_puts_ = hold;
  }
  // Waits (up to 5 s) until `count` puts are held; returns whether they are.
  bool WaitHeld(size_t count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return held_.size() >= count; });
  }
  void ReleaseHeld() {
    std::vector<std::function<void()>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& run : held) run();
  }

  void Range(const etcd::RangeRequest& r, const CallOptions& o, Done<etcd::RangeResponse> d) override {
    if (!Failed(d)) inner_.Range(r, o, std::move(d));
  }
  void Put(const etcd::PutRequest& r, const CallOptions& o, Done<etcd::PutResponse> d) override {
    if (Failed(d)) return;
    std::unique_lock lock(mu_);
    if (hold_puts_) {
      held_.push_back([this, r, o, d] { inner_.Put(r, o, d); });
      cv_.notify_all();
      return;
    }
    lock.unlock();
    inner_.Put(r, o, std::move(d));
  }
  void DeleteRange(const etcd::DeleteRangeRequest& r, const CallOptions& o, Done<etcd::DeleteRangeResponse> d) override {
    if (!Failed(d)) inner_.DeleteRange(r, o, std::move(d));
  }
  void Txn(const etcd::TxnRequest& r, const CallOptions& o, Done<etcd::TxnResponse> d) override {
    if (!Failed(d)) inner_.Txn(r, o, std::move(d));
  }
  void Compact(const etcd::CompactionRequest& r, const CallOptions& o, Done<etcd::CompactionResponse> d) override {
    if (!Failed(d)) inner_.Compact(r, o, std::move(d));
  }
  Result<std::unique_ptr<WatchStream>> OpenWatchStream(WatchSink sink) override {
    return inner_.OpenWatchStream(std::move(sink));
  }
  void LeaseGrant(const etcd::LeaseGrantRequest& r, const CallOptions& o, Done<etcd::LeaseGrantResponse> d) override {
    if (!Failed(d)) inner_.LeaseGrant(r, o, std::move(d));
  }
  void LeaseRevoke(const etcd::LeaseRevokeRequest& r, const CallOptions& o, Done<etcd::LeaseRevokeResponse> d) override {
    if (!Failed(d)) inner_.LeaseRevoke(r, o, std::move(d));
  }
  void LeaseKeepAlive(const etcd::LeaseKeepAliveRequest& r, const CallOptions& o,
                      Done<etcd::LeaseKeepAliveResponse> d) override {
    if (!Failed(d)) inner_.LeaseKeepAlive(r, o, std::move(d));
  }
  void LeaseTimeToLive(const etcd::LeaseTimeToLiveRequest& r, const CallOptions& o,
                       Done<etcd::LeaseTimeToLiveResponse> d) override {
    if (!Failed(d)) inner_.LeaseTimeToLive(r, o, std::move(d));
  }
  void LeaseLeases(const etcd::LeaseLeasesRequest& r, const CallOptions& o, Done<etcd::LeaseLeasesResponse> d) override {
    if (!Failed(d)) inner_.LeaseLeases(r, o, std::move(d));
  }
  void MemberList(const etcd::MemberListRequest& r, const CallOptions& o, Done<etcd::MemberListResponse> d) override {
    if (!Failed(d)) inner_.MemberList(r, o, std::move(d));
  }
  void MemberAdd(const etcd::MemberAddRequest& r, const CallOptions& o, Done<etcd::MemberAddResponse> d) override {
    if (!Failed(d)) inner_.MemberAdd(r, o, std::move(d));
  }
  void MemberRemove(const etcd::MemberRemoveRequest& r, const CallOptions& o, Done<etcd::MemberRemoveResponse> d) override {
    if (!Failed(d)) inner_.MemberRemove(r, o, std::move(d));
  }
  void MemberPromote(const etcd::MemberPromoteRequest& r, const CallOptions& o,
                     Done<etcd::MemberPromoteResponse> d) override {
    if (!Failed(d)) inner_.MemberPromote(r, o, std::move(d));
  }
  void Status(const etcd::StatusRequest& r, const CallOptions& o, Done<etcd::StatusResponse> d) override {
    if (!Failed(d)) inner_.Status(r, o, std::move(d));
  }
  Health GetHealth() override { return inner_.GetHealth(); }
  std::string Metrics() override { return inner_.Metrics(); }

 private:
  template <typename T>
  bool Failed(Done<T>& done) {
    std::optional<cairn::Status> failure;
    {
      std::lock_guard lock(mu_);
      failure.swap(fail_next_);
    }
    if (!failure) return false;
    done(*failure);
    return true;
  }

  LocalCoordApi& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<cairn::Status> fail_next_;
  bool hold_puts_ = false;
  std::vector<std::function<void()>> held_;
};

}  // namespace cairn::coord::testing
