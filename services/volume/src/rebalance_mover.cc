#include "cairn/volume_service/rebalance_mover.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <set>

#include "cairn/brick/brick_store.h"
#include "cairn/brickclient/brick_client.h"
#include "cairn/common/logging.h"
#include "cairn/heal/object_copy.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/rebalance.h"

namespace cairn::volume_service {

namespace pb = ::cairn::proto::volume;
namespace bpb = ::cairn::proto::brick;
using brickclient::BrickClient;
using brick::FileId;

namespace {

constexpr int kMoveAttempts = 3;
constexpr uint64_t kProgressEvery = 64;
constexpr char kHealParkPrefix[] = ".cairn-heal-park-";

std::string Hex(const FileId& id) { return brick::IdToHexString(id); }

bool SameContent(const bpb::Attr& a, const bpb::Attr& b) {
  return a.size() == b.size() && a.mtime_ns() == b.mtime_ns() && a.ctime_ns() == b.ctime_ns();
}

template <class Request>
Request Stamped(Request request, uint64_t epoch) {
  request.mutable_header()->set_epoch(epoch);
  return request;
}

// One set's primary for the duration of a pass.
struct SetClient {
  std::unique_ptr<BrickClient> client;
  uint64_t epoch = 0;
  std::string label;
};

struct Temp {
  uint32_t set = 0;
  FileId parent;
  std::string name;
};

}  // namespace

class RebalanceMover::Impl {
 public:
  Impl(boost::asio::io_context& io, RebalanceMoverOptions options)
      : io_(io), options_(std::move(options)),
        clock_(options_.clock != nullptr ? *options_.clock : RealClock::Instance()) {
    if (options_.resume_from) {
      const auto& from = *options_.resume_from;
      base_files_ = from.files_total() - std::min(from.files_total(), from.files_left());
      base_bytes_ = from.bytes_total() - std::min(from.bytes_total(), from.bytes_left());
    }
  }

  Status Run();
  void Stop() { stop_ = true; }
  RebalanceMoverProgress progress() const {
    std::lock_guard lock(mu_);
    return progress_;
  }

 private:
  Status RunPasses();
  Status Pass(const volume::VolumeRecord& record, bool* finished);
  Result<SetClient*> ClientOf(uint32_t set);
  Status List(const pb::VolumeSpec& spec, std::vector<volume::ListedEntry>* listing, std::vector<Temp>* temps);
  // with_entries: also list the set's entries (else only its temps).
  Status ListSet(uint32_t set, bool with_entries, std::set<FileId>* directories_seen, std::vector<volume::ListedEntry>* listing,
                 std::vector<Temp>* temps);
  Status RemoveTemps(const std::vector<Temp>& temps);
  Status CreateDirectory(const volume::DirectoryCreate& create);
  Status Move(const volume::FileMove& move);
  Status MoveOnce(const volume::FileMove& move, bool* retry);
  Status CopyInto(SetClient& source, SetClient& target, const FileId& parent, const std::string& temp,
                  const bpb::Attr& attr);
  Status LinkOthers(SetClient& target, const volume::FileMove& move, const FileId& id);
  Status RemoveSource(SetClient& source, const volume::FileMove& move);
  Status Remove(SetClient& set, const FileId& parent, const std::string& name);
  Status SaveProgress(bool force);
  pb::HealCheckpoint Checkpoint() const;

  boost::asio::io_context& io_;
  RebalanceMoverOptions options_;
  const Clock& clock_;
  std::atomic<bool> stop_{false};
  std::map<uint32_t, SetClient> clients_;  // this pass's routes (Run's thread only)
  uint64_t to_epoch_ = 0;
  uint64_t base_files_ = 0, base_bytes_ = 0;  // moved by earlier runs
  TimePoint started_{};
  TimePoint last_saved_{};
  uint64_t moved_at_last_save_ = 0;

  mutable std::mutex mu_;
  RebalanceMoverProgress progress_;  // GUARDED_BY(mu_)
};

Status RebalanceMover::Impl::Run() {
  started_ = clock_.Now();
  Status result = RunPasses();
  if (!result.ok() && result.code() != StatusCode::kAborted && to_epoch_ != 0) {
    pb::HealCheckpoint failed = Checkpoint();
    failed.set_failed(true);  // shown as "retrying" until the next run's first save
    (void)options_.save_progress(failed);
  }
  return result;
}

Status RebalanceMover::Impl::RunPasses() {
  for (int pass = 0; pass < options_.max_passes; ++pass) {
    if (stop_) return AbortedError("rebalance of " + options_.volume + " stopped");
    CAIRN_ASSIGN_OR_RETURN(volume::VolumeRecord record, options_.read_spec());
    if (!record.spec.has_previous_layout()) {
      std::lock_guard lock(mu_);
      progress_.finished = true;
      return Status::Ok();
    }
    bool finished = false;
    Status done = Pass(record, &finished);
    clients_.clear();
    CAIRN_RETURN_IF_ERROR(done);
    if (finished) return Status::Ok();
  }
  return ResourceExhaustedError("rebalance of " + options_.volume + ": files still to move after " +
                                std::to_string(options_.max_passes) + " passes");
}

Status RebalanceMover::Impl::Pass(const volume::VolumeRecord& record, bool* finished) {
  const pb::VolumeSpec& spec = record.spec;
  to_epoch_ = spec.layout().epoch();
  std::vector<volume::ListedEntry> listing;
  std::vector<Temp> temps;
  CAIRN_RETURN_IF_ERROR(List(spec, &listing, &temps));
  CAIRN_RETURN_IF_ERROR(RemoveTemps(temps));
  CAIRN_ASSIGN_OR_RETURN(volume::RebalancePlan plan, volume::PlanRebalance(spec, listing));
  {
    std::lock_guard lock(mu_);
    ++progress_.passes;
    progress_.files_left = plan.moves.size();
    progress_.bytes_left = plan.bytes_to_move;
    progress_.hard_links_kept = plan.hard_links_kept;
  }
  log::Info("rebalance.pass", "volume", options_.volume, "epoch", to_epoch_, "listed", plan.files_listed, "moves",
            plan.moves.size(), "bytes", plan.bytes_to_move, "directories", plan.directories.size());
  CAIRN_RETURN_IF_ERROR(SaveProgress(true));
  for (const auto& create : plan.directories) CAIRN_RETURN_IF_ERROR(CreateDirectory(create));
  for (const auto& move : plan.moves) {
    if (stop_) return AbortedError("rebalance of " + options_.volume + " stopped");
    CAIRN_RETURN_IF_ERROR(Move(move));
    {
      std::lock_guard lock(mu_);
      ++progress_.files_moved;
      progress_.bytes_moved += move.entry.bytes;
      --progress_.files_left;
      progress_.bytes_left -= std::min(progress_.bytes_left, move.entry.bytes);
    }
    CAIRN_RETURN_IF_ERROR(SaveProgress(false));
  }
  if (!plan.moves.empty()) return Status::Ok();  // another pass checks nothing was missed
  Status committed = options_.commit(*volume::FinishRebalanceTxn(record, Checkpoint()));
  if (committed.code() == StatusCode::kFailedPrecondition) return Status::Ok();  // changed: read again
  CAIRN_RETURN_IF_ERROR(committed);
  log::Info("rebalance.finished", "volume", options_.volume, "epoch", to_epoch_, "files_moved",
            base_files_ + progress().files_moved);
  std::lock_guard lock(mu_);
  progress_.finished = true;
  *finished = true;
  return Status::Ok();
}

Result<SetClient*> RebalanceMover::Impl::ClientOf(uint32_t set) {
  auto it = clients_.find(set);
  if (it != clients_.end()) return &it->second;
  CAIRN_ASSIGN_OR_RETURN(SetRoute route, options_.route(set));
  SetClient fresh;
  fresh.client = std::make_unique<BrickClient>(io_, route.address,
                                               brickclient::BrickClientOptions{.timeout = options_.call_timeout});
  fresh.epoch = route.epoch;
  fresh.label = "set " + std::to_string(set) + " (" + route.address + ")";
  return &(clients_[set] = std::move(fresh));
}

// ---- listing ----

Status RebalanceMover::Impl::List(const pb::VolumeSpec& spec, std::vector<volume::ListedEntry>* listing,
                                  std::vector<Temp>* temps) {
  std::set<FileId> directories_seen;
  const auto old_sets = volume::LayoutSets(spec.previous_layout());
  for (uint32_t set : old_sets) CAIRN_RETURN_IF_ERROR(ListSet(set, true, &directories_seen, listing, temps));
  // Added sets hold no file to move, but may hold temps of an interrupted move whose source went.
  for (uint32_t set : volume::LayoutSets(spec.layout())) {
    if (std::binary_search(old_sets.begin(), old_sets.end(), set)) continue;
    std::set<FileId> seen_here;
    std::vector<volume::ListedEntry> ignored;
    CAIRN_RETURN_IF_ERROR(ListSet(set, false, &seen_here, &ignored, temps));
  }
  return Status::Ok();
}

// Breadth first from the root, so a directory is listed before its children.
Status RebalanceMover::Impl::ListSet(uint32_t set, bool with_entries, std::set<FileId>* directories_seen,
                                     std::vector<volume::ListedEntry>* listing, std::vector<Temp>* temps) {
  CAIRN_ASSIGN_OR_RETURN(SetClient * source, ClientOf(set));
  std::deque<FileId> pending = {brickclient::kRootId};
  while (!pending.empty()) {
    if (stop_) return AbortedError("rebalance of " + options_.volume + " stopped");
    FileId dir = pending.front();
    pending.pop_front();
    auto entries = source->client->ReaddirAll(dir);
    if (heal::Gone(entries.err())) continue;  // removed meanwhile
    if (entries.err() != 0) return heal::SourceError(source->label, "readdir", dir, entries.err());
    for (const auto& entry : entries.entries()) {
      const std::string& name = entry.name();
      if (volume::IsRebalanceTempName(name)) {
        temps->push_back({set, dir, name});
        continue;
      }
      if (dir == brickclient::kRootId && name.rfind(kHealParkPrefix, 0) == 0) continue;
      volume::ListedEntry listed;
      listed.parent_id = dir;
      listed.name = name;
      listed.set_id = set;
      listed.id = entry.attr().id();
      listed.directory = S_ISDIR(entry.attr().mode());
      listed.bytes = entry.attr().size();
      listed.nlink = entry.attr().nlink();
      if (listed.directory) {
        pending.push_back(listed.id);
        if (!directories_seen->insert(listed.id).second) continue;
      }
      if (with_entries) listing->push_back(std::move(listed));
    }
  }
  return Status::Ok();
}

// A temp is a partial copy of a file whose source still has it (the source goes only after
// the rename), so removing it loses nothing.
Status RebalanceMover::Impl::RemoveTemps(const std::vector<Temp>& temps) {
  for (const auto& temp : temps) {
    CAIRN_ASSIGN_OR_RETURN(SetClient * set, ClientOf(temp.set));
    CAIRN_RETURN_IF_ERROR(Remove(*set, temp.parent, temp.name));
    log::Info("rebalance.temp_removed", "volume", options_.volume, "set", temp.set, "name", temp.name);
  }
  return Status::Ok();
}

// ---- directories ----

Status RebalanceMover::Impl::CreateDirectory(const volume::DirectoryCreate& create) {
  const auto& entry = create.entry;
  CAIRN_ASSIGN_OR_RETURN(SetClient * source, ClientOf(entry.set_id));
  CAIRN_ASSIGN_OR_RETURN(SetClient * target, ClientOf(create.set_id));
  auto attr = source->client->Getattr(entry.id);
  if (heal::Gone(attr.err())) return Status::Ok();  // removed meanwhile (rmdir goes to every set)
  if (attr.err() != 0) return heal::SourceError(source->label, "getattr", entry.id, attr.err());
  bpb::CreateRequest request;
  request.set_kind(bpb::CreateRequest::DIRECTORY);
  request.set_parent(entry.parent_id);
  request.set_name(entry.name);
  request.set_new_id(entry.id);
  request.set_mode(attr.attr().mode() & 07777);
  request.set_uid(attr.attr().uid());
  request.set_gid(attr.attr().gid());
  request.set_exclusive(true);
  auto created = target->client->CallSync<bpb::CreateResponse>("brick.Create", Stamped(request, target->epoch));
  bpb::Attr here = created.attr();
  if (created.err() == EEXIST) {
    auto found = target->client->Lookup(entry.parent_id, entry.name);
    if (found.err() != 0 || found.attr().id() != entry.id) {
      return InternalError("rebalance: " + target->label + " has another object named " + entry.name + " where directory " +
                           Hex(entry.id) + " belongs");
    }
    return Status::Ok();  // made by the mount's mkdir or an earlier pass
  } else if (created.err() != 0) {
    return heal::TargetError(target->label, "mkdir " + entry.name, entry.id, created.err());
  }
  {
    std::lock_guard lock(mu_);
    ++progress_.directories_created;
  }
  heal::RemoteTarget sink(*target->client, target->epoch, target->label);
  heal::CopyStats stats;
  return heal::CopyMetadata(*source->client, sink, entry.id, attr.attr(), here, {.source_label = source->label}, &stats);
}

// ---- files ----

Status RebalanceMover::Impl::Move(const volume::FileMove& move) {
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    bool retry = false;
    CAIRN_RETURN_IF_ERROR(MoveOnce(move, &retry));
    if (!retry) return Status::Ok();
    log::Info("rebalance.changed_during_copy", "volume", options_.volume, "name", move.entry.name);
  }
  return InternalError("rebalance: " + move.entry.name + " kept changing while it was copied; retried later");
}

Status RebalanceMover::Impl::MoveOnce(const volume::FileMove& move, bool* retry) {
  CAIRN_ASSIGN_OR_RETURN(SetClient * source, ClientOf(move.from_set));
  CAIRN_ASSIGN_OR_RETURN(SetClient * target, ClientOf(move.to_set));
  const auto& entry = move.entry;
  auto before = source->client->Lookup(entry.parent_id, entry.name);
  if (heal::Gone(before.err())) return Status::Ok();  // removed or renamed meanwhile: the next pass sees it
  if (before.err() != 0) return heal::SourceError(source->label, "lookup " + entry.name, entry.parent_id, before.err());
  const bpb::Attr& attr = before.attr();
  if (S_ISDIR(attr.mode())) return Status::Ok();  // replaced by a directory: exists on every set
  const FileId& id = attr.id();
  auto existing = target->client->Lookup(entry.parent_id, entry.name);
  if (existing.err() == 0) {
    if (existing.attr().id() != id) {
      std::lock_guard lock(mu_);
      ++progress_.conflicts;
      log::Warn("rebalance.conflict", "volume", options_.volume, "name", entry.name, "kept", Hex(existing.attr().id()),
                "removed", Hex(id));
    }
    if (existing.attr().id() == id) CAIRN_RETURN_IF_ERROR(LinkOthers(*target, move, id));  // an earlier attempt
    return RemoveSource(*source, move);
  }
  if (!heal::Gone(existing.err())) return heal::TargetError(target->label, "lookup " + entry.name, id, existing.err());
  const std::string temp = volume::RebalanceTempName(id);
  CAIRN_RETURN_IF_ERROR(Remove(*target, entry.parent_id, temp));
  CAIRN_RETURN_IF_ERROR(CopyInto(*source, *target, entry.parent_id, temp, attr));
  auto after = source->client->Getattr(id);
  if (heal::Gone(after.err()) || (after.err() == 0 && !SameContent(attr, after.attr()))) {
    CAIRN_RETURN_IF_ERROR(Remove(*target, entry.parent_id, temp));
    *retry = after.err() == 0;
    return Status::Ok();
  }
  if (after.err() != 0) return heal::SourceError(source->label, "getattr", id, after.err());
  bpb::RenameRequest rename;
  rename.set_parent(entry.parent_id);
  rename.set_name(temp);
  rename.set_new_parent(entry.parent_id);
  rename.set_new_name(entry.name);
  rename.set_flags(RENAME_NOREPLACE);
  auto renamed = target->client->CallSync<bpb::RenameResponse>("brick.Rename", Stamped(rename, target->epoch));
  if (renamed.err() == EEXIST) {
    // A client created the name through the new layout meanwhile: the next attempt keeps it.
    CAIRN_RETURN_IF_ERROR(Remove(*target, entry.parent_id, temp));
    *retry = true;
    return Status::Ok();
  }
  if (renamed.err() != 0) return heal::TargetError(target->label, "rename to " + entry.name, id, renamed.err());
  CAIRN_RETURN_IF_ERROR(LinkOthers(*target, move, id));
  return RemoveSource(*source, move);
}

// Creates `temp` on the target with the source's id and copies data and metadata, then fsyncs.
Status RebalanceMover::Impl::CopyInto(SetClient& source, SetClient& target, const FileId& parent,
                                      const std::string& temp, const bpb::Attr& attr) {
  const FileId& id = attr.id();
  bpb::CreateRequest create;
  create.set_parent(parent);
  create.set_name(temp);
  create.set_new_id(id);
  create.set_uid(attr.uid());
  create.set_gid(attr.gid());
  create.set_exclusive(true);
  if (S_ISREG(attr.mode())) {
    create.set_kind(bpb::CreateRequest::FILE);
    create.set_mode(attr.mode() & 07777);
  } else if (S_ISLNK(attr.mode())) {
    bpb::ReadlinkRequest readlink;
    readlink.set_id(id);
    auto target_text = source.client->CallSync<bpb::ReadlinkResponse>("brick.Readlink", readlink);
    if (target_text.err() != 0) return heal::SourceError(source.label, "readlink", id, target_text.err());
    create.set_kind(bpb::CreateRequest::SYMLINK);
    create.set_target(target_text.target());
  } else {
    create.set_kind(bpb::CreateRequest::NODE);
    create.set_mode(attr.mode());
    create.set_rdev(attr.rdev());
  }
  auto created = target.client->CallSync<bpb::CreateResponse>("brick.Create", Stamped(create, target.epoch));
  if (created.err() != 0) return heal::TargetError(target.label, "create " + temp, id, created.err());
  heal::RemoteTarget sink(*target.client, target.epoch, target.label);
  heal::CopyStats stats;
  heal::CopyOptions copy{.source_label = source.label, .target_is_new = true};
  if (S_ISREG(attr.mode())) {
    CAIRN_RETURN_IF_ERROR(heal::CopyData(*source.client, sink, id, attr, created.attr(), stop_, copy, &stats));
  }
  bpb::GetattrRequest getattr;
  getattr.set_id(id);
  auto now = sink.Getattr(getattr);
  if (now.err() != 0) return heal::TargetError(target.label, "getattr", id, now.err());
  CAIRN_RETURN_IF_ERROR(heal::CopyMetadata(*source.client, sink, id, attr, now.attr(), copy, &stats));
  if (!S_ISREG(attr.mode())) return Status::Ok();
  bpb::FsyncRequest fsync;
  fsync.set_id(id);
  auto synced = target.client->CallSync<bpb::FsyncResponse>("brick.Fsync", Stamped(fsync, target.epoch));
  if (synced.err() != 0) return heal::TargetError(target.label, "fsync", id, synced.err());
  return Status::Ok();
}

// The further names of a hard-linked file, on the target.
Status RebalanceMover::Impl::LinkOthers(SetClient& target, const volume::FileMove& move, const FileId& id) {
  for (const auto& other : move.other_names) {
    bpb::LinkRequest link;
    link.set_id(id);
    link.set_new_parent(other.parent_id);
    link.set_new_name(other.name);
    auto linked = target.client->CallSync<bpb::LinkResponse>("brick.Link", Stamped(link, target.epoch));
    if (linked.err() != 0 && linked.err() != EEXIST) {
      return heal::TargetError(target.label, "link " + other.name, id, linked.err());
    }
  }
  return Status::Ok();
}

Status RebalanceMover::Impl::RemoveSource(SetClient& source, const volume::FileMove& move) {
  CAIRN_RETURN_IF_ERROR(Remove(source, move.entry.parent_id, move.entry.name));
  for (const auto& other : move.other_names) CAIRN_RETURN_IF_ERROR(Remove(source, other.parent_id, other.name));
  return Status::Ok();
}

// Unlink of a non-directory; a name already gone is fine.
Status RebalanceMover::Impl::Remove(SetClient& set, const FileId& parent, const std::string& name) {
  bpb::RemoveRequest request;
  request.set_parent(parent);
  request.set_name(name);
  auto removed = set.client->CallSync<bpb::RemoveResponse>("brick.Remove", Stamped(request, set.epoch));
  if (removed.err() == 0 || removed.err() == ENOENT) return Status::Ok();
  return heal::TargetError(set.label, "unlink " + name, parent, removed.err());
}

// ---- progress ----

pb::HealCheckpoint RebalanceMover::Impl::Checkpoint() const {
  RebalanceMoverProgress now = progress();
  pb::HealCheckpoint checkpoint;
  checkpoint.set_brick(options_.node_name);
  checkpoint.set_epoch(to_epoch_);
  const uint64_t files_moved = base_files_ + now.files_moved;
  const uint64_t bytes_moved = base_bytes_ + now.bytes_moved;
  checkpoint.set_files_total(files_moved + now.files_left);
  checkpoint.set_bytes_total(bytes_moved + now.bytes_left);
  checkpoint.set_files_left(now.files_left);
  checkpoint.set_bytes_left(now.bytes_left);
  checkpoint.set_updated_unix_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  const double seconds = std::chrono::duration<double>(clock_.Now() - started_).count();
  checkpoint.set_eta_ms(-1);
  if (seconds > 0 && now.files_moved > 0) {
    checkpoint.set_files_per_second(static_cast<double>(now.files_moved) / seconds);
    checkpoint.set_bytes_per_second(static_cast<double>(now.bytes_moved) / seconds);
    checkpoint.set_eta_ms(static_cast<int64_t>(static_cast<double>(now.files_left) / checkpoint.files_per_second() * 1000));
  }
  return checkpoint;
}

Status RebalanceMover::Impl::SaveProgress(bool force) {
  const uint64_t moved = progress().files_moved;
  const TimePoint now = clock_.Now();
  if (!force && moved - moved_at_last_save_ < kProgressEvery && now - last_saved_ < std::chrono::seconds(1)) {
    return Status::Ok();
  }
  moved_at_last_save_ = moved;
  last_saved_ = now;
  Status saved = options_.save_progress(Checkpoint());
  if (!saved.ok()) return Status(saved.code(), "storing the rebalance progress: " + saved.message());
  return Status::Ok();
}

RebalanceMover::RebalanceMover(boost::asio::io_context& io, RebalanceMoverOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(options))) {}
RebalanceMover::~RebalanceMover() = default;
Status RebalanceMover::Run() { return impl_->Run(); }
void RebalanceMover::Stop() { impl_->Stop(); }
RebalanceMoverProgress RebalanceMover::progress() const { return impl_->progress(); }

}  // namespace cairn::volume_service
