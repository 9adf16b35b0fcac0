#include "cairn/brick/brick_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <atomic>
#include <mutex>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "cairn/common/logging.h"
#include "cairn/net/client.h"

namespace cairn::brick {

namespace {

// Every response message has `int32 err = 1`, so one encoding of "only err set" fits them all.
std::string ErrorPayload(int err) {
  pb::RemoveResponse response;
  response.set_err(err);
  return response.SerializeAsString();
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Walks the top-level fields of a protobuf message without copying anything:
// visit(field, wire_type, varint value or length, bytes of a length-delimited field).
// False for malformed input.
template <class Visit>
bool ScanFields(std::string_view data, Visit visit) {
  size_t pos = 0;
  auto varint = [&](uint64_t* out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= data.size()) return false;
      auto byte = static_cast<uint8_t>(data[pos++]);
      value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        *out = value;
        return true;
      }
    }
    return false;
  };
  while (pos < data.size()) {
    uint64_t key = 0, value = 0;
    if (!varint(&key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return false;
    std::string_view bytes;
    switch (key & 7) {
      case 0:
        if (!varint(&value)) return false;
        break;
      case 1:
      case 5: {
        size_t width = (key & 7) == 1 ? 8 : 4;
        if (data.size() - pos < width) return false;
        pos += width;
        break;
      }
      case 2:
        if (!varint(&value) || value > data.size() - pos) return false;
        bytes = data.substr(pos, value);
        pos += value;
        break;
      default:
        return false;
    }
    visit(static_cast<uint32_t>(key >> 3), static_cast<int>(key & 7), value, bytes);
  }
  return true;
}

void AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// A ReplicateRequest read in place: payload points into the received bytes (no copy of the data).
struct IncomingReplicate {
  uint64_t epoch = 0, sequence = 0;
  std::string primary, method;
  std::string_view payload;
  bool Parse(std::string_view data) {
    return ScanFields(data, [this](uint32_t field, int type, uint64_t value, std::string_view bytes) {
      if (type == 0 && field == 1) epoch = value;
      if (type == 0 && field == 2) sequence = value;
      if (type == 2 && field == 3) primary = bytes;
      if (type == 2 && field == 4) method = bytes;
      if (type == 2 && field == 5) payload = bytes;
    });
  }
};

// A mutation type: how to stamp a client request and how to apply it to the store.
//
// Large writes are not re-encoded: the primary makes a small *stamp* (the request's own type with
// header {epoch, sequence} and, for a create without one, new_id) and sends payload + stamp;
// protobuf merges a later occurrence of a field over an earlier one, so the receiver parses the
// pair as one stamped request.
struct MutationOp {
  // Reads the client's epoch from `payload` (without parsing the data) and returns the stamp.
  // Returns an errno for an unparsable request.
  std::function<int(std::string_view payload, uint64_t epoch, uint64_t sequence, uint64_t* client_epoch,
                    std::string* stamp)>
      stamp;
  // Applies payload + stamp; returns the serialized response and its err.
  std::function<std::string(std::string_view payload, const std::string& stamp, Touched* touched, int* err)> apply;
};

}  // namespace

class BrickServer::Impl : public std::enable_shared_from_this<BrickServer::Impl> {
 public:
  Impl(boost::asio::io_context& io, BrickStore& store, BrickServerOptions options)
      : io_(io), store_(store), options_(std::move(options)), pool_(std::max<size_t>(options_.threads, 1)),
        strand_(boost::asio::make_strand(pool_.get_executor())), watchdog_(io) {
    view_.set_self(options_.self_address);
    LoadJournal();
  }

  void Register(net::Server& server);
  Status SetView(const pb::ReplicaView& view);
  pb::ReplicaView view() const {
    std::lock_guard lock(view_mu_);
    return view_;
  }
  std::vector<FileId> JournalIds(const std::string& replica) const;
  void JournalState(const std::string& replica, pb::JournalListResponse* response) const;
  void TrackCompleteJournals(const pb::ReplicaView& before, const pb::ReplicaView& after);
  void ClearJournal(const std::string& replica, const std::vector<FileId>& ids);
  void SetWriteDeadline(std::optional<TimePoint> deadline) {
    std::lock_guard lock(view_mu_);
    write_deadline_ = deadline;
  }
  void HoldMutations() {
    std::lock_guard lock(view_mu_);
    held_ = true;
  }
  void ResumeMutations();
  BrickPosition Position() const {
    std::lock_guard lock(view_mu_);
    return position_;
  }
  size_t MutationsInFlight() const { return in_flight_.load(); }
  void Stop();

 private:
  // One client mutation on the primary, from stamping to the answer.
  struct Pending {
    std::mutex mu;
    net::Responder responder;
    uint64_t epoch = 0;
    size_t outstanding = 0;  // local apply + backups still to answer
    bool local_done = false;
    std::string local_response;
    int local_err = 0;
    Touched touched;
    std::vector<std::string> skipped;  // members that do not get this mutation: journal it for them
    std::unordered_map<std::string, int> backup_errs;  // backup -> the op's err there
    std::set<std::string> failed;      // backups that did not apply it
    std::chrono::steady_clock::time_point parked_at;  // when it started waiting for a view change
    explicit Pending(net::Responder r) : responder(std::move(r)) {}
  };

  template <class Req, class Resp>
  void AddMutation(const std::string& method, Resp (BrickStore::*fn)(const Req&, Touched*));
  template <class Req, class Resp>
  void AddRead(net::Server& server, const std::string& method, Resp (BrickStore::*fn)(const Req&));

  // A client mutation waiting while mutations are held.
  struct HeldMutation {
    std::string method;
    std::string payload;
    net::Responder responder;
  };

  void OnClientMutation(const std::string& method, std::string payload, net::Responder responder);
  void AdmitMutation(const std::string& method, std::string payload, net::Responder responder);  // on the strand
  void RunMutation(const std::string& method, std::string payload, net::Responder responder);    // on the strand
  void DrainHeld();                                                                              // on the strand
  bool WriteDeadlinePassed() const;  // REQUIRES: view_mu_
  void OnReplicate(std::string payload, net::Responder responder);
  void Forward(const std::shared_ptr<Pending>& pending, const std::string& backup, const std::string& bytes);
  void OnBackupReply(const std::shared_ptr<Pending>& pending, const std::string& backup, Result<std::string> reply);
  void StartWatchdog();
  void CheckBackups();
  void FinishOne(const std::shared_ptr<Pending>& pending);
  void ReplicaFailed(const std::string& replica, uint64_t epoch, const Status& why);
  bool BlockedByView(const Pending& pending) const;  // REQUIRES: view_mu_
  void Journal(const std::vector<std::string>& replicas, const Touched& ids);
  void LoadJournal();
  void SyncJournal();
  std::string JournalPath(const std::string& replica) const;
  net::Client& ClientFor(const std::string& address);

  boost::asio::io_context& io_;
  BrickStore& store_;
  const BrickServerOptions options_;
  boost::asio::thread_pool pool_;
  boost::asio::strand<boost::asio::thread_pool::executor_type> strand_;
  std::unordered_map<std::string, MutationOp> mutations_;
  std::atomic<bool> stopped_{false};
  std::atomic<size_t> in_flight_{0};  // stamped client mutations not yet journaled and answered/parked

  // Liveness of backups. A deep pipeline of large writes can keep a healthy backup busy for longer
  // than replica_timeout, so a backup has failed when it has had mutations outstanding and
  // answered none of them for replica_timeout (not when one call took that long).
  struct BackupState {
    std::unordered_map<uint64_t, std::shared_ptr<Pending>> in_flight;  // by call key
    std::chrono::steady_clock::time_point last_progress;
  };
  std::mutex backups_mu_;
  std::unordered_map<std::string, BackupState> backups_;  // GUARDED_BY(backups_mu_)
  uint64_t next_call_key_ = 0;                           // GUARDED_BY(backups_mu_)
  boost::asio::steady_timer watchdog_;

  mutable std::mutex view_mu_;
  pb::ReplicaView view_;                      // GUARDED_BY(view_mu_)
  std::unordered_set<std::string> complete_journals_;  // GUARDED_BY(view_mu_): TrackCompleteJournals
  uint64_t next_sequence_ = 0;                // GUARDED_BY(view_mu_): primary side, restarts at 1 each epoch
  std::set<std::string> failed_;              // GUARDED_BY(view_mu_): in-sync backups that missed mutations
  std::vector<std::shared_ptr<Pending>> parked_;  // GUARDED_BY(view_mu_): waiting for a view change
  // Backup side: the stream (primary, epoch) we follow and the last sequence applied from it.
  std::string stream_primary_;                // GUARDED_BY(view_mu_)
  uint64_t stream_epoch_ = 0;                 // GUARDED_BY(view_mu_)
  uint64_t stream_sequence_ = 0;              // GUARDED_BY(view_mu_)
  uint64_t highest_epoch_seen_ = 0;           // GUARDED_BY(view_mu_)
  BrickPosition position_;                    // GUARDED_BY(view_mu_): the last mutation applied
  std::optional<TimePoint> write_deadline_;   // GUARDED_BY(view_mu_): the primary lease's end
  bool held_ = false;                         // GUARDED_BY(view_mu_)
  std::deque<HeldMutation> held_queue_;       // GUARDED_BY(view_mu_): arrival order

  mutable std::mutex journal_mu_;
  std::unordered_map<std::string, std::unordered_set<FileId>> journal_;  // GUARDED_BY(journal_mu_)
  std::unordered_map<std::string, std::unique_ptr<UniqueFd>> journal_files_;  // GUARDED_BY(journal_mu_): append fds

  std::mutex clients_mu_;
  std::unordered_map<std::string, std::unique_ptr<net::Client>> clients_;  // GUARDED_BY(clients_mu_)
  std::vector<std::unique_ptr<net::Client>> retired_clients_;              // GUARDED_BY(clients_mu_): closed
};

template <class Req, class Resp>
void BrickServer::Impl::AddMutation(const std::string& method, Resp (BrickStore::*fn)(const Req&, Touched*)) {
  MutationOp op;
  BrickStore* store = &store_;
  op.stamp = [store](std::string_view payload, uint64_t epoch, uint64_t sequence, uint64_t* client_epoch,
                      std::string* stamp) {
    bool has_new_id = false, header_ok = true;
    bool ok = ScanFields(payload, [&](uint32_t field, int type, uint64_t, std::string_view bytes) {
      if (field == 1 && type == 2) {  // MutationHeader header = 1
        header_ok &= ScanFields(bytes, [&](uint32_t sub, int sub_type, uint64_t value, std::string_view) {
          if (sub == 1 && sub_type == 0) *client_epoch = value;
        });
      }
      if (field == 11) has_new_id = true;  // CreateRequest.new_id
    });
    if (!ok || !header_ok) return EINVAL;
    Req stamped;
    stamped.mutable_header()->set_epoch(epoch);
    stamped.mutable_header()->set_sequence(sequence);
    if constexpr (std::is_same_v<Req, pb::CreateRequest>) {
      if (!has_new_id) stamped.set_new_id(store->NewId());
    }
    *stamp = stamped.SerializeAsString();
    return 0;
  };
  op.apply = [store, fn](std::string_view payload, const std::string& stamp, Touched* touched, int* err) {
    Req request;
    if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
        !request.MergeFromString(stamp)) {
      *err = EINVAL;
      return ErrorPayload(EINVAL);
    }
    Resp response = (store->*fn)(request, touched);
    *err = response.err();
    return response.SerializeAsString();
  };
  mutations_[method] = std::move(op);
}

template <class Req, class Resp>
void BrickServer::Impl::AddRead(net::Server& server, const std::string& method, Resp (BrickStore::*fn)(const Req&)) {
  std::weak_ptr<Impl> weak = weak_from_this();
  server.Handle(method, [weak, fn](std::string payload, net::Responder responder) {
    auto self = weak.lock();
    if (!self || self->stopped_) return responder.Respond(UnavailableError("brick stopped"));
    boost::asio::post(self->pool_, [self, fn, payload = std::move(payload), responder]() mutable {
      Req request;
      if (!request.ParseFromString(payload)) return responder.Respond(ErrorPayload(EINVAL));
      responder.Respond((self->store_.*fn)(request).SerializeAsString());
    });
  });
}

void BrickServer::Impl::Register(net::Server& server) {
  AddRead(server, "brick.Lookup", &BrickStore::Lookup);
  AddRead(server, "brick.Getattr", &BrickStore::Getattr);
  AddRead(server, "brick.Readdir", &BrickStore::Readdir);
  AddRead(server, "brick.Readlink", &BrickStore::Readlink);
  AddRead(server, "brick.Open", &BrickStore::OpenFile);
  AddRead(server, "brick.Read", &BrickStore::Read);
  AddRead(server, "brick.Release", &BrickStore::Release);
  AddRead(server, "brick.Statfs", &BrickStore::Statfs);
  AddRead(server, "brick.Getxattr", &BrickStore::Getxattr);
  AddRead(server, "brick.Listxattr", &BrickStore::Listxattr);

  AddMutation("brick.Setattr", &BrickStore::Setattr);
  AddMutation("brick.Create", &BrickStore::Create);
  AddMutation("brick.Link", &BrickStore::Link);
  AddMutation("brick.Remove", &BrickStore::Remove);
  AddMutation("brick.Rename", &BrickStore::Rename);
  AddMutation("brick.Write", &BrickStore::Write);
  AddMutation("brick.Fsync", &BrickStore::Fsync);
  AddMutation("brick.Fallocate", &BrickStore::Fallocate);
  AddMutation("brick.Setxattr", &BrickStore::Setxattr);
  AddMutation("brick.Removexattr", &BrickStore::Removexattr);
  AddMutation("brick.Forget", &BrickStore::Forget);

  std::weak_ptr<Impl> weak = weak_from_this();
  for (const auto& [method, op] : mutations_) {
    std::string name = method;
    server.Handle(name, [weak, name](std::string payload, net::Responder responder) {
      auto self = weak.lock();
      if (!self || self->stopped_) return responder.Respond(UnavailableError("brick stopped"));
      self->OnClientMutation(name, std::move(payload), std::move(responder));
    });
  }
  StartWatchdog();
  server.Handle("brick.Replicate", [weak](std::string payload, net::Responder responder) {
    auto self = weak.lock();
    if (!self || self->stopped_) return responder.Respond(UnavailableError("brick stopped"));
    self->OnReplicate(std::move(payload), std::move(responder));
  });
  server.Handle("brick.SetView", [weak](std::string payload, net::Responder responder) {
    auto self = weak.lock();
    if (!self) return responder.Respond(UnavailableError("brick stopped"));
    pb::SetViewRequest request;
    pb::SetViewResponse response;
    if (!request.ParseFromString(payload)) {
      response.set_err(EINVAL);
    } else if (!self->SetView(request.view()).ok()) {
      response.set_err(ESTALE);
    }
    responder.Respond(response.SerializeAsString());
  });
  server.Handle("brick.Position", [weak](std::string, net::Responder responder) {
    auto self = weak.lock();
    if (!self) return responder.Respond(UnavailableError("brick stopped"));
    BrickPosition position = self->Position();
    pb::PositionResponse response;
    response.set_epoch(position.epoch);
    response.set_sequence(position.sequence);
    responder.Respond(response.SerializeAsString());
  });
  server.Handle("brick.JournalList", [weak](std::string payload, net::Responder responder) {
    auto self = weak.lock();
    if (!self) return responder.Respond(UnavailableError("brick stopped"));
    pb::JournalListRequest request;
    pb::JournalListResponse response;
    if (!request.ParseFromString(payload)) {
      response.set_err(EINVAL);
    } else {
      self->JournalState(request.replica(), &response);
      auto ids = self->JournalIds(request.replica());
      response.set_total(ids.size());
      size_t max = request.max_ids() == 0 ? ids.size() : request.max_ids();
      for (size_t i = 0; i < ids.size() && i < max; ++i) response.add_ids(ids[i]);
    }
    responder.Respond(response.SerializeAsString());
  });
  server.Handle("brick.JournalClear", [weak](std::string payload, net::Responder responder) {
    auto self = weak.lock();
    if (!self) return responder.Respond(UnavailableError("brick stopped"));
    pb::JournalClearRequest request;
    pb::JournalClearResponse response;
    if (!request.ParseFromString(payload)) {
      response.set_err(EINVAL);
    } else {
      self->ClearJournal(request.replica(), {request.ids().begin(), request.ids().end()});
    }
    responder.Respond(response.SerializeAsString());
  });
}

// ---- Primary side ----

void BrickServer::Impl::OnClientMutation(const std::string& method, std::string payload, net::Responder responder) {
  // The strand runs mutations one at a time in arrival order: stamping, forwarding and the local
  // apply happen in the same order here as on every backup.
  boost::asio::post(strand_, [self = shared_from_this(), method, payload = std::move(payload),
                              responder = std::move(responder)]() mutable {
    self->AdmitMutation(method, std::move(payload), std::move(responder));
  });
}

void BrickServer::Impl::AdmitMutation(const std::string& method, std::string payload, net::Responder responder) {
  {
    std::lock_guard lock(view_mu_);
    // Behind earlier held ones too, so a resume never reorders arrivals.
    if (held_ || !held_queue_.empty()) {
      held_queue_.push_back({method, std::move(payload), std::move(responder)});
      return;
    }
  }
  RunMutation(method, std::move(payload), std::move(responder));
}

void BrickServer::Impl::ResumeMutations() {
  {
    std::lock_guard lock(view_mu_);
    if (!held_) return;
    held_ = false;
  }
  boost::asio::post(strand_, [self = shared_from_this()] { self->DrainHeld(); });
}

void BrickServer::Impl::DrainHeld() {
  for (;;) {
    std::optional<HeldMutation> next;
    {
      std::lock_guard lock(view_mu_);
      if (held_ || held_queue_.empty() || stopped_) return;
      next.emplace(std::move(held_queue_.front()));
      held_queue_.pop_front();
    }
    RunMutation(next->method, std::move(next->payload), std::move(next->responder));
  }
}

bool BrickServer::Impl::WriteDeadlinePassed() const {
  if (!write_deadline_) return false;
  const Clock& clock = options_.clock != nullptr ? *options_.clock : RealClock::Instance();
  return clock.Now() >= *write_deadline_;
}

void BrickServer::Impl::RunMutation(const std::string& method, std::string payload, net::Responder responder) {
  {
    auto self = shared_from_this();
    const MutationOp& op = self->mutations_.at(method);
    auto pending = std::make_shared<Pending>(std::move(responder));
    std::vector<std::string> targets;
    uint64_t sequence = 0;
    std::string stamp;
    {
      std::lock_guard lock(self->view_mu_);
      const pb::ReplicaView& view = self->view_;
      bool replicated = view.epoch() != 0;
      if (replicated && view.primary() != view.self()) return pending->responder.Respond(ErrorPayload(ESTALE));
      // The primary lease may have run out: the store may already have let another primary in.
      if (self->WriteDeadlinePassed()) return pending->responder.Respond(ErrorPayload(ESTALE));
      uint64_t client_epoch = 0;
      if (int err = op.stamp(payload, view.epoch(), self->next_sequence_ + 1, &client_epoch, &stamp); err != 0) {
        return pending->responder.Respond(ErrorPayload(err));
      }
      if (replicated && client_epoch != 0 && client_epoch != view.epoch()) {
        return pending->responder.Respond(ErrorPayload(ESTALE));
      }
      sequence = ++self->next_sequence_;
      pending->epoch = view.epoch();
      self->position_ = {view.epoch(), sequence};
      ++self->in_flight_;
      for (const auto& backup : view.in_sync()) {
        if (backup == view.self()) continue;
        // A backup already failed in this epoch gets nothing more, and the answer still waits
        // for the view that drops it (it is in pending->failed).
        if (self->failed_.count(backup)) {
          pending->failed.insert(backup);
        } else {
          targets.push_back(backup);
        }
      }
      for (const auto& member : view.out_of_sync()) pending->skipped.push_back(member);
    }
    pending->outstanding = targets.size() + 1;
    if (!targets.empty()) {
      // ReplicateRequest with payload = client payload + stamp, encoded by hand: one copy of the data.
      pb::ReplicateRequest forward;
      forward.set_epoch(pending->epoch);
      forward.set_sequence(sequence);
      forward.set_primary(self->view().self());
      forward.set_method(method);
      std::string forward_bytes = forward.SerializeAsString();
      forward_bytes.reserve(forward_bytes.size() + 16 + payload.size() + stamp.size());
      forward_bytes.push_back(static_cast<char>(5 << 3 | 2));  // field 5 (payload), length-delimited
      AppendVarint(&forward_bytes, payload.size() + stamp.size());
      forward_bytes.append(payload);
      forward_bytes.append(stamp);
      for (const auto& backup : targets) self->Forward(pending, backup, forward_bytes);
    }
    Touched touched;
    int err = 0;
    std::string response = op.apply(payload, stamp, &touched, &err);
    if (method == "brick.Fsync") self->SyncJournal();  // fsync makes the journal durable too
    {
      std::lock_guard lock(pending->mu);
      pending->local_done = true;
      pending->local_response = std::move(response);
      pending->local_err = err;
      pending->touched = std::move(touched);
    }
    self->FinishOne(pending);
  }
}

void BrickServer::Impl::Forward(const std::shared_ptr<Pending>& pending, const std::string& backup,
                                 const std::string& bytes) {
  uint64_t key;
  {
    std::lock_guard lock(backups_mu_);
    key = ++next_call_key_;
    BackupState& state = backups_[backup];
    if (state.in_flight.empty()) state.last_progress = std::chrono::steady_clock::now();
    state.in_flight[key] = pending;
  }
  // The call's own deadline is only a backstop; the watchdog decides failure much sooner.
  Duration backstop = std::max<Duration>(options_.replica_timeout * 20, std::chrono::seconds(30));
  std::weak_ptr<Impl> weak = weak_from_this();
  ClientFor(backup).Call("brick.Replicate", bytes, backstop, [weak, pending, backup, key](Result<std::string> reply) {
    auto self = weak.lock();
    if (!self) return;
    {
      std::lock_guard lock(self->backups_mu_);
      BackupState& state = self->backups_[backup];
      if (state.in_flight.erase(key) == 0) return;  // the watchdog already failed this call
      state.last_progress = std::chrono::steady_clock::now();
    }
    self->OnBackupReply(pending, backup, std::move(reply));
  });
}

void BrickServer::Impl::StartWatchdog() {
  auto period = std::max<Duration>(options_.replica_timeout / 4, std::chrono::milliseconds(5));
  watchdog_.expires_after(period);
  std::weak_ptr<Impl> weak = weak_from_this();
  watchdog_.async_wait([weak](const boost::system::error_code& error) {
    auto self = weak.lock();
    if (error || !self || self->stopped_) return;
    self->CheckBackups();
    self->StartWatchdog();
  });
}

void BrickServer::Impl::CheckBackups() {
  auto now = std::chrono::steady_clock::now();
  // Mutations that waited too long for the owner to drop a failed backup: the outcome is unknown
  // to the client (applied here, not on every in-sync replica), so EIO rather than a hang.
  std::vector<std::shared_ptr<Pending>> expired;
  {
    std::lock_guard lock(view_mu_);
    auto keep = std::partition(parked_.begin(), parked_.end(), [&](const std::shared_ptr<Pending>& pending) {
      return now - pending->parked_at < options_.view_change_timeout;
    });
    expired.assign(keep, parked_.end());
    parked_.erase(keep, parked_.end());
  }
  for (auto& pending : expired) pending->responder.Respond(ErrorPayload(EIO));
  std::vector<std::pair<std::string, std::unordered_map<uint64_t, std::shared_ptr<Pending>>>> silent;
  {
    std::lock_guard lock(backups_mu_);
    for (auto& [backup, state] : backups_) {
      if (!state.in_flight.empty() && now - state.last_progress > options_.replica_timeout) {
        silent.emplace_back(backup, std::move(state.in_flight));
        state.in_flight.clear();
      }
    }
  }
  for (auto& [backup, calls] : silent) {
    for (auto& [key, pending] : calls) {
      OnBackupReply(pending, backup, DeadlineExceededError("no answer from " + backup + " within the replica timeout"));
    }
  }
}

void BrickServer::Impl::OnBackupReply(const std::shared_ptr<Pending>& pending, const std::string& backup,
                                      Result<std::string> reply) {
  Status why;
  pb::ReplicateResponse response;
  if (!reply.ok()) {
    why = reply.status();
  } else if (!response.ParseFromString(*reply)) {
    why = InternalError("unparsable Replicate response");
  } else if (response.err() != 0) {
    why = UnavailableError("backup refused the mutation: errno " + std::to_string(response.err()));
  }
  if (why.ok()) {
    pb::RemoveResponse op_result;  // field 1 (err) of any response
    op_result.ParseFromString(response.payload());
    std::lock_guard lock(pending->mu);
    pending->backup_errs[backup] = op_result.err();
  } else {
    {
      std::lock_guard lock(pending->mu);
      pending->failed.insert(backup);
    }
    ReplicaFailed(backup, pending->epoch, why);
  }
  FinishOne(pending);
}

void BrickServer::Impl::FinishOne(const std::shared_ptr<Pending>& pending) {
  std::vector<std::string> diverged;
  {
    std::lock_guard lock(pending->mu);
    if (--pending->outstanding > 0) return;
    // Every answer is in. A backup whose result differs from ours (say ENOSPC there only) now
    // holds different data: it has failed just like a silent one.
    for (const auto& [backup, err] : pending->backup_errs) {
      if (err != pending->local_err) diverged.push_back(backup);
    }
    pending->failed.insert(diverged.begin(), diverged.end());
  }
  for (const auto& backup : diverged) {
    ReplicaFailed(backup, pending->epoch, InternalError("backup's result differs from the primary's"));
  }
  std::vector<std::string> journal_for = pending->skipped;
  journal_for.insert(journal_for.end(), pending->failed.begin(), pending->failed.end());
  Journal(journal_for, pending->touched);
  --in_flight_;  // journaled: from here on JournalIds shows what it touched
  {
    std::lock_guard lock(view_mu_);
    if (BlockedByView(*pending)) {
      pending->parked_at = std::chrono::steady_clock::now();
      parked_.push_back(pending);
      return;
    }
  }
  pending->responder.Respond(pending->local_response);
}

bool BrickServer::Impl::BlockedByView(const Pending& pending) const {
  for (const auto& backup : pending.failed) {
    if (Contains(view_.in_sync(), backup)) return true;
  }
  return false;
}

void BrickServer::Impl::ReplicaFailed(const std::string& replica, uint64_t epoch, const Status& why) {
  {
    std::lock_guard lock(view_mu_);
    if (epoch != view_.epoch() || !Contains(view_.in_sync(), replica)) return;  // already handled
    if (!failed_.insert(replica).second) return;
  }
  log::Warn("brick.replica_failed", "replica", replica, "epoch", epoch, "why", why.ToString());
  if (options_.on_replica_failed) options_.on_replica_failed(replica, why);
}

// ---- The change journal, on disk ----
//
// ROOT/.cairn/journal/HEX(replica address): the 16-byte ids touched while that replica did not
// get mutations, appended (each id once) before the mutation is answered, so a primary killed and
// restarted keeps them. Files are fsynced with every client fsync; a host crash can lose entries
// of operations no one fsynced (their data may be lost on the primary too).

std::string BrickServer::Impl::JournalPath(const std::string& replica) const {
  static const char kDigits[] = "0123456789abcdef";
  std::string name;
  for (unsigned char c : replica) {
    name.push_back(kDigits[c >> 4]);
    name.push_back(kDigits[c & 15]);
  }
  return store_.root() + "/" + kMetaDirName + "/journal/" + name;
}

void BrickServer::Impl::LoadJournal() {
  std::string dir = store_.root() + "/" + kMetaDirName + "/journal";
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    log::Error("brick.journal_unavailable", "dir", dir, "error", ErrnoError("mkdir", errno));
    return;
  }
  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) return;
  std::lock_guard lock(journal_mu_);
  while (struct dirent* entry = readdir(listing)) {
    std::string name = entry->d_name;
    if (name.size() < 2 || name.size() % 2 != 0 || name.find_first_not_of("0123456789abcdef") != std::string::npos) {
      continue;
    }
    std::string replica;
    for (size_t i = 0; i < name.size(); i += 2) replica.push_back(static_cast<char>(std::stoi(name.substr(i, 2), nullptr, 16)));
    std::ifstream file(dir + "/" + name, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    auto& ids = journal_[replica];
    for (size_t pos = 0; pos + 16 <= bytes.size(); pos += 16) ids.insert(bytes.substr(pos, 16));  // a torn tail is dropped
  }
  closedir(listing);
}

void BrickServer::Impl::Journal(const std::vector<std::string>& replicas, const Touched& ids) {
  if (replicas.empty() || ids.empty()) return;
  std::lock_guard lock(journal_mu_);
  for (const auto& replica : replicas) {
    auto& known = journal_[replica];
    std::string fresh;
    for (const auto& id : ids) {
      if (id.size() == 16 && known.insert(id).second) fresh += id;
    }
    if (fresh.empty()) continue;
    auto& fd = journal_files_[replica];
    if (!fd || fd->get() < 0) {
      fd = std::make_unique<UniqueFd>(::open(JournalPath(replica).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    }
    if (fd->get() < 0 || ::write(fd->get(), fresh.data(), fresh.size()) != static_cast<ssize_t>(fresh.size())) {
      log::Error("brick.journal_write_failed", "replica", replica, "error", ErrnoError("write", errno));
    }
  }
}

void BrickServer::Impl::SyncJournal() {
  std::lock_guard lock(journal_mu_);
  for (auto& [replica, fd] : journal_files_) {
    if (fd && fd->get() >= 0) (void)::fdatasync(fd->get());
  }
}

std::vector<FileId> BrickServer::Impl::JournalIds(const std::string& replica) const {
  std::lock_guard lock(journal_mu_);
  auto it = journal_.find(replica);
  if (it == journal_.end()) return {};
  std::vector<FileId> ids(it->second.begin(), it->second.end());
  std::sort(ids.begin(), ids.end());
  return ids;
}

void BrickServer::Impl::ClearJournal(const std::string& replica, const std::vector<FileId>& ids) {
  std::lock_guard lock(journal_mu_);
  journal_files_.erase(replica);
  auto it = journal_.find(replica);
  if (it != journal_.end() && !ids.empty()) {
    for (const auto& id : ids) it->second.erase(id);
  }
  if (it == journal_.end() || ids.empty() || it->second.empty()) {
    if (it != journal_.end()) journal_.erase(it);
    (void)::unlink(JournalPath(replica).c_str());
    return;
  }
  // Rewrite what is left: a new file renamed over the old one.
  std::string path = JournalPath(replica), staged = path + ".new";
  std::string bytes;
  for (const auto& id : it->second) bytes += id;
  UniqueFd fd(::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0 || ::write(fd.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
      ::fdatasync(fd.get()) != 0 || ::rename(staged.c_str(), path.c_str()) != 0) {
    log::Error("brick.journal_write_failed", "replica", replica, "error", ErrnoError("rewrite", errno));
  }
}

net::Client& BrickServer::Impl::ClientFor(const std::string& address) {
  std::lock_guard lock(clients_mu_);
  auto& client = clients_[address];
  if (!client) client = std::make_unique<net::Client>(io_, net::ClientOptions{.address = address});
  return *client;
}

// A journal covers everything a replica missed only if this brick was its primary when it left
// the in-sync set and has stayed primary, knowing its address, since. Called with view_mu_ held.
void BrickServer::Impl::TrackCompleteJournals(const pb::ReplicaView& before, const pb::ReplicaView& after) {
  const std::string& self = after.self();
  std::unordered_set<std::string> complete;
  if (after.primary() == self) {
    bool was_primary = before.primary() == self;
    for (const auto& member : after.out_of_sync()) {
      bool dropped_under_me = was_primary && Contains(before.in_sync(), member);
      if (dropped_under_me || (was_primary && complete_journals_.count(member))) complete.insert(member);
    }
  }
  complete_journals_ = std::move(complete);
}

void BrickServer::Impl::JournalState(const std::string& replica, pb::JournalListResponse* response) const {
  std::lock_guard lock(view_mu_);
  response->set_complete(complete_journals_.count(replica) > 0);
  response->set_journaling(view_.primary() == view_.self() && Contains(view_.out_of_sync(), replica));
}

Status BrickServer::Impl::SetView(const pb::ReplicaView& view) {
  std::vector<std::shared_ptr<Pending>> answer, refuse;
  std::vector<std::string> still_failed, rejoined;
  {
    std::lock_guard lock(view_mu_);
    if (view.epoch() < view_.epoch()) {
      return FailedPreconditionError("view epoch " + std::to_string(view.epoch()) + " is older than " +
                                     std::to_string(view_.epoch()));
    }
    pb::ReplicaView next = view;
    if (next.self().empty()) next.set_self(options_.self_address);
    if (next.epoch() != view_.epoch()) next_sequence_ = 0;
    // A failed backup stays failed (gets nothing, holds answers back) until a view leaves it out;
    // one the owner kept is reported again below.
    for (auto it = failed_.begin(); it != failed_.end();) {
      if (Contains(next.in_sync(), *it)) {
        still_failed.push_back(*it);
        ++it;
      } else {
        it = failed_.erase(it);
      }
    }
    for (const auto& member : next.in_sync()) {
      if (!Contains(view_.in_sync(), member)) rejoined.push_back(member);
    }
    TrackCompleteJournals(view_, next);
    view_ = std::move(next);
    highest_epoch_seen_ = std::max(highest_epoch_seen_, view_.epoch());
    bool primary = view_.primary() == view_.self();
    std::vector<std::shared_ptr<Pending>> still;
    for (auto& pending : parked_) {
      if (!primary) {
        refuse.push_back(pending);
      } else if (BlockedByView(*pending)) {
        still.push_back(pending);
      } else {
        answer.push_back(pending);
      }
    }
    parked_ = std::move(still);
  }
  log::Info("brick.view", "epoch", view.epoch(), "primary", view.primary(), "in_sync", view.in_sync_size());
  {
    // A member (re)joining the in-sync set gets a fresh connection: the old client may sit in a
    // reconnect backoff from when it was down, and would fail its first forwards at once.
    std::lock_guard lock(clients_mu_);
    for (const auto& member : rejoined) {
      auto it = clients_.find(member);
      if (it == clients_.end()) continue;
      it->second->Close();
      retired_clients_.push_back(std::move(it->second));
      clients_.erase(it);
    }
  }
  // Applied here but never acknowledged by every replica: the outcome is unknown to the client
  // (EIO), unlike ESTALE, which always means "not applied, retry with the new view".
  for (auto& pending : refuse) pending->responder.Respond(ErrorPayload(EIO));
  for (auto& pending : answer) pending->responder.Respond(pending->local_response);
  if (options_.on_replica_failed && view.epoch() != 0) {
    for (const auto& replica : still_failed) {
      options_.on_replica_failed(replica, UnavailableError("still failed: missed mutations, needs a heal"));
    }
  }
  return Status::Ok();
}

// ---- Backup side ----

void BrickServer::Impl::OnReplicate(std::string payload, net::Responder responder) {
  // Posted in arrival order onto the strand: frames of one connection arrive in order, so the
  // primary's sequence order is kept.
  boost::asio::post(strand_, [self = shared_from_this(), payload = std::move(payload), responder]() mutable {
    IncomingReplicate request;
    pb::ReplicateResponse response;
    auto refuse = [&](int err) {
      response.set_err(err);
      responder.Respond(response.SerializeAsString());
    };
    if (!request.Parse(payload)) return refuse(EINVAL);
    auto op = self->mutations_.find(request.method);
    if (op == self->mutations_.end()) return refuse(EINVAL);
    {
      std::lock_guard lock(self->view_mu_);
      const pb::ReplicaView& view = self->view_;
      // A newer epoch is news from a newer primary (its view reached it before us); an older epoch
      // is accepted only as the continuation of the stream of the primary we follow.
      bool same_stream = request.primary == self->stream_primary_ && request.epoch == self->stream_epoch_;
      bool newer = request.epoch > view.epoch();
      bool current = request.epoch == view.epoch() && request.primary == view.primary();
      bool continuation = request.epoch < view.epoch() && request.primary == view.primary() && same_stream;
      if (view.primary() == view.self() || (!newer && !current && !continuation)) return refuse(ESTALE);
      if (request.epoch < self->highest_epoch_seen_ && !continuation) return refuse(ESTALE);
      if (!same_stream && request.epoch < self->stream_epoch_) return refuse(ESTALE);
      // Sequences restart at 1 with each epoch; within one they have no gaps. A gap means this
      // backup missed a mutation: it must be healed, not patched up.
      uint64_t expected = same_stream ? self->stream_sequence_ + 1 : 1;
      if (request.sequence != expected) return refuse(EBADMSG);
      self->stream_primary_ = request.primary;
      self->stream_epoch_ = request.epoch;
      self->stream_sequence_ = request.sequence;
      self->position_ = {request.epoch, request.sequence};
      self->highest_epoch_seen_ = std::max(self->highest_epoch_seen_, request.epoch);
    }
    int err = 0;
    response.set_payload(op->second.apply(request.payload, std::string(), nullptr, &err));
    responder.Respond(response.SerializeAsString());
  });
}

void BrickServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  boost::asio::post(watchdog_.get_executor(), [self = shared_from_this()] { self->watchdog_.cancel(); });
  pool_.join();
  std::vector<std::shared_ptr<Pending>> parked;
  std::deque<HeldMutation> held;
  {
    std::lock_guard lock(view_mu_);
    parked.swap(parked_);
    held.swap(held_queue_);
  }
  for (auto& pending : parked) pending->responder.Respond(UnavailableError("brick stopped"));
  for (auto& mutation : held) mutation.responder.Respond(UnavailableError("brick stopped"));
  std::lock_guard lock(clients_mu_);
  for (auto& [address, client] : clients_) client->Close();
}

BrickServer::BrickServer(boost::asio::io_context& io, net::Server& server, BrickStore& store, BrickServerOptions options)
    : impl_(std::make_shared<Impl>(io, store, std::move(options))) {
  impl_->Register(server);
}

BrickServer::~BrickServer() { Stop(); }

Status BrickServer::SetView(const pb::ReplicaView& view) { return impl_->SetView(view); }
pb::ReplicaView BrickServer::view() const { return impl_->view(); }
std::vector<FileId> BrickServer::JournalIds(const std::string& replica) const { return impl_->JournalIds(replica); }
void BrickServer::ClearJournal(const std::string& replica, const std::vector<FileId>& ids) {
  impl_->ClearJournal(replica, ids);
}
void BrickServer::Stop() { impl_->Stop(); }
void BrickServer::SetWriteDeadline(std::optional<TimePoint> deadline) { impl_->SetWriteDeadline(deadline); }
void BrickServer::HoldMutations() { impl_->HoldMutations(); }
void BrickServer::ResumeMutations() { impl_->ResumeMutations(); }
BrickPosition BrickServer::Position() const { return impl_->Position(); }
size_t BrickServer::MutationsInFlight() const { return impl_->MutationsInFlight(); }

}  // namespace cairn::brick
