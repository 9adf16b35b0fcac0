#include "cairn/heal/heal_runner.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cairn/brickclient/brick_client.h"
#include "cairn/heal/object_copy.h"
#include "cairn/common/logging.h"

namespace cairn::heal {

namespace bpb = ::cairn::proto::brick;
namespace vpb = ::cairn::proto::volume;
using brick::FileId;
using brick::kRootId;

namespace {

constexpr char kParkPrefix[] = ".cairn-heal-park-";
constexpr char kPendingName[] = "heal-pending";  // in ROOT/.cairn
constexpr char kPendingHeader[] = "cairn-heal-pending v1";

// Work item keys sort directories first: "d" + hex id for a directory, "f" for anything else,
// "g" for an id the primary no longer has.
std::string KeyOf(char kind, const FileId& id) { return kind + brick::IdToHexString(id); }

bool ParseHex(std::string_view hex, FileId* id) {
  if (hex.size() != 32) return false;
  id->assign(16, '\0');
  for (size_t i = 0; i < 32; ++i) {
    char c = hex[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    (*id)[i / 2] = static_cast<char>((*id)[i / 2] | (i % 2 == 0 ? v << 4 : v));
  }
  return true;
}

std::string Hex(const FileId& id) { return brick::IdToHexString(id); }

// An error from the primary: unreachable ends the round (Unavailable), anything else fails the item.
Status PrimaryError(const std::string& what, const FileId& id, int err) {
  std::string message = "primary: " + what + " of " + Hex(id) + ": " + std::strerror(err);
  return Unreachable(err) ? UnavailableError(message) : InternalError(message);
}

// An error of the local brick: out of space or a failing disk ends the round (IoError); a race
// with a concurrent item (the entry moved meanwhile) fails the item, which is retried.
Status LocalError(const std::string& what, const FileId& id, int err) {
  std::string message = "local brick: " + what + " of " + Hex(id) + ": " + std::strerror(err);
  bool fatal = err == ENOSPC || err == EDQUOT || err == EROFS || err == EIO || err == EMFILE || err == ENFILE;
  return fatal ? IoError(message) : InternalError(message);
}

bool EndsRound(const Status& status) {
  return status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kIoError ||
         status.code() == StatusCode::kAborted;
}

}  // namespace

class HealRunner::Impl {
 public:
  Impl(boost::asio::io_context& io, brick::BrickStore& local, std::string primary_address, std::string self_address,
       HealRunnerOptions options)
      : local_(local),
        self_(std::move(self_address)),
        options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &RealClock::Instance()),
        primary_(io, std::move(primary_address), brickclient::BrickClientOptions{.timeout = options_.call_timeout}) {
    if (options_.window == 0) options_.window = 1;
    if (options_.batch == 0) options_.batch = 1;
    if (options_.brick_id.empty()) options_.brick_id = self_;
    full_scan_ = options_.full_scan;
  }

  Result<RoundResult> RunRound();
  Status HealUntilClean(int max_rounds);
  void Stop() { stop_ = true; }
  HealRunnerProgress progress() const;
  void set_epoch(uint64_t epoch) {
    std::lock_guard lock(mu_);
    options_.epoch = epoch;
  }
  void set_full_scan(bool full_scan) {
    std::lock_guard lock(mu_);
    full_scan_ = full_scan;
  }

 private:
  using Item = volume::HealJob::Item;

  // Building the work list.
  Result<std::vector<Item>> ListJournal(bool* complete, bool* journaling);
  Result<std::vector<Item>> WalkPrimary();
  Result<std::vector<Item>> Classify(const std::vector<FileId>& ids);
  std::string PendingPath() const { return local_.root() + "/" + brick::kMetaDirName + "/" + kPendingName; }
  Status WritePending(const std::vector<Item>& items, bool full_scan);
  bool LoadPending(std::vector<Item>* items, bool* full_scan);
  void RemovePending();

  // Running the list.
  Status RunJob(volume::HealJob& job);
  Status RunParallel(const std::vector<Item>& items, std::vector<Status>* results);
  Status SaveCheckpoint(const volume::HealJob& job);
  void Publish(const volume::HealJob* job);

  // Healing one item.
  Status HealItem(const Item& item);
  Status HealDirectory(const FileId& id);
  Status HealEntries(const FileId& dir, const bpb::ReaddirResponse& primary_entries);
  Status RemoveLocalEntry(const FileId& dir, const std::string& name, const bpb::Attr& attr);
  Status RemoveTree(const FileId& parent, const std::string& name, const FileId& id);
  Status CreateEntry(const FileId& dir, const std::string& name, const bpb::Attr& attr);
  Status MoveDirectoryHere(const FileId& dir, const std::string& name, const FileId& id);
  Status HealObject(const FileId& id);
  Status CopyData(const FileId& id, const bpb::Attr& primary, const bpb::Attr& local);
  Status HealMetadata(const FileId& id, const bpb::Attr& primary, const bpb::Attr& local);
  void AddStats(const CopyStats& stats);
  Status SweepParked();
  Result<std::vector<bpb::DirEntry>> LocalEntries(const FileId& dir);

  brick::BrickStore& local_;
  const std::string self_;
  HealRunnerOptions options_;  // epoch under mu_
  const Clock* clock_;
  brickclient::BrickClient primary_;
  std::atomic<bool> stop_{false};

  std::mutex kept_mu_;
  std::unordered_set<FileId> kept_;  // GUARDED_BY(kept_mu_): ids removed here with keep_id this round

  std::atomic<uint64_t> files_examined_{0}, files_copied_{0}, bytes_copied_{0}, metadata_fixed_{0};
  std::atomic<uint64_t> entries_created_{0}, entries_removed_{0};

  mutable std::mutex mu_;
  bool full_scan_ = false;        // GUARDED_BY(mu_)
  // A full scan that began while the primary journaled for this brick has completed: every change
  // since is in the journal, so the primary's "incomplete" flag no longer calls for another scan.
  // Touched on RunRound's thread only.
  bool scanned_ = false;
  HealRunnerProgress progress_;   // GUARDED_BY(mu_)
};

// ---- The work list ----

Result<std::vector<volume::HealJob::Item>> HealRunner::Impl::ListJournal(bool* complete, bool* journaling) {
  bpb::JournalListRequest request;
  request.set_replica(self_);
  auto response = primary_.CallSync<bpb::JournalListResponse>("brick.JournalList", request);
  if (response.err() != 0) return PrimaryError("journal list", kRootId, response.err());
  *complete = response.complete();
  *journaling = response.journaling();
  std::vector<FileId> ids(response.ids().begin(), response.ids().end());
  return Classify(ids);
}

// The primary's Getattr of every id, in parallel: directories, others, gone.
Result<std::vector<volume::HealJob::Item>> HealRunner::Impl::Classify(const std::vector<FileId>& ids) {
  std::vector<Item> items(ids.size());
  std::atomic<size_t> next{0};
  std::mutex error_mu;
  Status error;
  auto work = [&] {
    for (size_t i; (i = next++) < ids.size();) {
      if (ids[i].size() != 16) continue;
      auto attr = primary_.Getattr(ids[i]);
      if (attr.err() == 0) {
        bool dir = S_ISDIR(attr.attr().mode());
        bool regular = S_ISREG(attr.attr().mode());
        items[i] = {KeyOf(dir ? 'd' : 'f', ids[i]), regular ? attr.attr().size() : 0};
      } else if (Gone(attr.err())) {
        items[i] = {KeyOf('g', ids[i]), 0};
      } else {
        std::lock_guard lock(error_mu);
        if (error.ok()) error = PrimaryError("getattr", ids[i], attr.err());
        next = ids.size();
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min(options_.window, ids.size()); ++t) threads.emplace_back(work);
  for (auto& thread : threads) thread.join();
  if (!error.ok()) return error;
  std::erase_if(items, [](const Item& item) { return item.key.empty(); });
  return items;
}

// Every id of the primary's tree, breadth first from the root (hard links once).
Result<std::vector<volume::HealJob::Item>> HealRunner::Impl::WalkPrimary() {
  std::vector<Item> items{{KeyOf('d', kRootId), 0}};
  std::unordered_set<FileId> seen{kRootId};
  std::deque<FileId> dirs{kRootId};
  while (!dirs.empty()) {
    if (stop_) return AbortedError("heal stopped");
    FileId dir = dirs.front();
    dirs.pop_front();
    auto listing = primary_.ReaddirAll(dir);
    if (Gone(listing.err())) continue;  // removed while we walked: its parent's heal removes it here
    if (listing.err() != 0) return PrimaryError("readdir", dir, listing.err());
    for (const auto& entry : listing.entries()) {
      const auto& attr = entry.attr();
      if (attr.id().size() != 16 || !seen.insert(attr.id()).second) continue;
      bool is_dir = S_ISDIR(attr.mode());
      items.push_back({KeyOf(is_dir ? 'd' : 'f', attr.id()), S_ISREG(attr.mode()) ? attr.size() : 0});
      if (is_dir) dirs.push_back(attr.id());
    }
  }
  return items;
}

// ROOT/.cairn/heal-pending: the list of the round in progress, one "KEY BYTES" line per item
// after a header line, written to a temporary name, fsynced and renamed. It holds ids already
// cleared from the primary's journal, so it must survive until they are healed.
Status HealRunner::Impl::WritePending(const std::vector<Item>& items, bool full_scan) {
  std::string path = PendingPath(), staged = path + ".new";
  std::string text = std::string(kPendingHeader) + (full_scan ? " full\n" : " journal\n");
  for (const auto& item : items) text += item.key + " " + std::to_string(item.bytes) + "\n";
  int fd = ::open(staged.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("local brick: writing " + staged, errno);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return IoError("local brick: writing " + staged + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  int synced = ::fdatasync(fd) == 0 ? 0 : errno;
  ::close(fd);
  if (synced != 0) return IoError("local brick: fdatasync " + staged + ": " + std::strerror(synced));
  if (::rename(staged.c_str(), path.c_str()) != 0) return IoError("local brick: rename " + staged + ": " + std::strerror(errno));
  int dir = ::open((local_.root() + "/" + brick::kMetaDirName).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

// False when there is no pending list. A damaged one cannot be trusted to name every cleared id,
// so it turns the round into a full scan.
bool HealRunner::Impl::LoadPending(std::vector<Item>* items, bool* full_scan) {
  std::ifstream in(PendingPath());
  if (!in) return false;
  std::string header;
  std::getline(in, header);
  bool ok = header.rfind(kPendingHeader, 0) == 0;
  *full_scan = header.find(" full") != std::string::npos;
  std::string line;
  while (ok && std::getline(in, line)) {
    std::istringstream fields(line);
    Item item;
    FileId id;
    if (!(fields >> item.key >> item.bytes) || item.key.size() != 33 || !ParseHex(item.key.substr(1), &id)) {
      ok = false;
      break;
    }
    items->push_back(std::move(item));
  }
  if (!ok) {
    log::Warn("heal.pending_damaged", "path", PendingPath(), "action", "full scan");
    items->clear();
    *full_scan = true;
    std::lock_guard lock(mu_);
    full_scan_ = true;
    return false;
  }
  return true;
}

void HealRunner::Impl::RemovePending() { (void)::unlink(PendingPath().c_str()); }

// ---- Rounds ----

Result<RoundResult> HealRunner::Impl::RunRound() {
  stop_ = false;
  {
    std::lock_guard lock(mu_);
    progress_.running = true;
    progress_.last_error.clear();
  }
  std::vector<Item> items;
  bool full_scan = false, scan_covers_journal_gap = false;
  bool resumed = LoadPending(&items, &full_scan);
  Status status;
  if (!resumed) {
    {
      std::lock_guard lock(mu_);
      full_scan = full_scan_;
    }
    bool complete = true, journaling = false;
    auto listed = full_scan ? WalkPrimary() : ListJournal(&complete, &journaling);
    if (listed.ok() && !complete && !scanned_) {
      // The primary did not journal every change this brick missed (it took over after the brick
      // left, restarted, or learnt its address late): only a walk of the whole tree is safe. Once
      // a walk that began while the primary journals for us is done, journal rounds suffice.
      log::Info("heal.journal_incomplete", "brick", options_.brick_id, "action", "full scan", "journaling", journaling);
      full_scan = true;
      scan_covers_journal_gap = journaling;
      listed = WalkPrimary();
    }
    status = listed.status();
    if (status.ok()) items = std::move(listed).value();
    if (status.ok() && !items.empty()) status = WritePending(items, full_scan);
  }
  RoundResult result;
  result.items = items.size();
  result.full_scan = full_scan;
  result.clean = status.ok() && items.empty();
  if (status.ok()) {
    std::optional<vpb::HealCheckpoint> resume;
    {
      std::lock_guard lock(mu_);
      resume.swap(options_.resume_from);  // good for one round only
    }
    std::optional<volume::HealJob> job;
    bool cursor_known = resume && std::any_of(items.begin(), items.end(),
                                              [&](const Item& item) { return item.key == resume->cursor(); });
    if (resumed && resume && resume->brick() == options_.brick_id && resume->full_scan() == full_scan && cursor_known) {
      auto resumed_job = volume::HealJob::Resume(*clock_, *resume, items);
      if (resumed_job.ok()) job.emplace(std::move(resumed_job).value());
    }
    if (!job) {
      uint64_t epoch;
      {
        std::lock_guard lock(mu_);
        epoch = options_.epoch;
      }
      auto started = volume::HealJob::Start(*clock_, options_.brick_id, options_.set_id, epoch, full_scan, items);
      status = started.status();
      if (status.ok()) job.emplace(std::move(started).value());
    }
    if (job) {
      {
        std::lock_guard lock(mu_);
        progress_.full_scan = full_scan;
      }
      log::Info("heal.round_start", "brick", options_.brick_id, "items", items.size(), "full_scan", full_scan,
                "resumed", resumed);
      status = SaveCheckpoint(*job);  // before the first clear: see the header on readmission
      if (status.ok()) status = RunJob(*job);
      Publish(&*job);
    }
  }
  if (status.ok() && !items.empty()) {
    status = SweepParked();
    std::vector<FileId> kept;
    {
      std::lock_guard lock(kept_mu_);
      kept.assign(kept_.begin(), kept_.end());
      kept_.clear();
    }
    for (const auto& id : kept) {
      bpb::ForgetRequest forget;
      forget.set_id(id);
      local_.Forget(forget, nullptr);
    }
    if (status.ok()) RemovePending();
    if (status.ok() && full_scan) {
      std::lock_guard lock(mu_);
      full_scan_ = false;
      if (scan_covers_journal_gap) scanned_ = true;
    }
  }
  {
    std::lock_guard lock(mu_);
    progress_.running = false;
    if (status.ok()) {
      ++progress_.rounds;
      progress_.ready_for_readmission = result.clean;
    } else {
      progress_.ready_for_readmission = false;
      progress_.last_error = status.ToString();
    }
  }
  Publish(nullptr);
  if (!status.ok()) {
    log::Warn("heal.round_failed", "brick", options_.brick_id, "error", status.ToString());
    return status;
  }
  if (result.clean) {
    // Tell the owner (and through it `volume heal status`) that nothing is left.
    uint64_t epoch;
    {
      std::lock_guard lock(mu_);
      epoch = options_.epoch;
    }
    auto empty = volume::HealJob::Start(*clock_, options_.brick_id, options_.set_id, epoch, false, {});
    if (empty.ok()) CAIRN_RETURN_IF_ERROR(SaveCheckpoint(*empty));
  }
  log::Info("heal.round_done", "brick", options_.brick_id, "items", result.items, "clean", result.clean);
  return result;
}

Status HealRunner::Impl::HealUntilClean(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    CAIRN_ASSIGN_OR_RETURN(RoundResult result, RunRound());
    if (result.clean) return Status::Ok();
  }
  return ResourceExhaustedError("heal of " + options_.brick_id + ": files still changing after " +
                                std::to_string(max_rounds) + " rounds");
}

// Batches in key order (directories first): clear the batch's ids from the primary's journal,
// then heal them `window` at a time; failed items go back to the job and are retried.
Status HealRunner::Impl::RunJob(volume::HealJob& job) {
  for (;;) {
    if (stop_) return AbortedError("heal of " + options_.brick_id + " stopped");
    auto batch = job.NextBatch(options_.batch);
    if (batch.empty()) break;
    bpb::JournalClearRequest clear;
    clear.set_replica(self_);
    for (const auto& item : batch) {
      FileId id;
      if (ParseHex(item.key.substr(1), &id)) clear.add_ids(id);
    }
    auto cleared = primary_.CallSync<bpb::JournalClearResponse>("brick.JournalClear", clear);
    if (cleared.err() != 0) return PrimaryError("journal clear", kRootId, cleared.err());
    // Directories before the rest, so entries exist before their data is healed.
    auto split = std::partition_point(batch.begin(), batch.end(), [](const Item& item) { return item.key[0] == 'd'; });
    std::vector<Item> dirs(batch.begin(), split), others(split, batch.end());
    for (auto* part : {&dirs, &others}) {
      std::vector<Status> results;
      Status fatal = RunParallel(*part, &results);
      for (size_t i = 0; i < part->size(); ++i) {
        if (results[i].ok()) {
          CAIRN_RETURN_IF_ERROR(job.Completed((*part)[i].key));
        } else if (!EndsRound(results[i])) {
          log::Warn("heal.item_failed", "brick", options_.brick_id, "item", (*part)[i].key, "error",
                    results[i].ToString());
          (void)job.Failed((*part)[i].key);
        }
      }
      if (!fatal.ok()) {
        (void)SaveCheckpoint(job);
        return fatal;
      }
    }
    CAIRN_RETURN_IF_ERROR(SaveCheckpoint(job));
    Publish(&job);
  }
  auto progress = job.Progress();
  if (progress.state == volume::HealState::kFailed) {
    return InternalError("heal of " + options_.brick_id + ": " + std::to_string(progress.files_failed) +
                         " items could not be healed after retries (see heal.item_failed log lines)");
  }
  return Status::Ok();
}

// Heals `items` on up to `window` threads. Returns the first error that ends the round (the
// other threads finish their current item and stop); per-item results in `results`.
Status HealRunner::Impl::RunParallel(const std::vector<Item>& items, std::vector<Status>* results) {
  results->assign(items.size(), AbortedError("not started"));
  std::atomic<size_t> next{0};
  std::mutex fatal_mu;
  Status fatal;
  auto work = [&] {
    for (size_t i; (i = next++) < items.size();) {
      Status status = stop_ ? AbortedError("heal of " + options_.brick_id + " stopped") : HealItem(items[i]);
      (*results)[i] = status;
      if (EndsRound(status)) {
        std::lock_guard lock(fatal_mu);
        if (fatal.ok()) fatal = status;
        next = items.size();
      }
    }
  };
  size_t threads_wanted = std::min(options_.window, items.size());
  if (threads_wanted <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < threads_wanted; ++t) threads.emplace_back(work);
    for (auto& thread : threads) thread.join();
  }
  return fatal;
}

Status HealRunner::Impl::SaveCheckpoint(const volume::HealJob& job) {
  if (!options_.checkpoint) return Status::Ok();
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->WallNow().time_since_epoch()).count();
  Status status = options_.checkpoint(job.Checkpoint(now));
  if (!status.ok()) return Status(status.code(), "storing the heal checkpoint: " + status.message());
  return status;
}

void HealRunner::Impl::Publish(const volume::HealJob* job) {
  HealRunnerProgress snapshot;
  {
    std::lock_guard lock(mu_);
    if (job != nullptr) progress_.job = job->Progress();
    progress_.files_examined = files_examined_;
    progress_.files_copied = files_copied_;
    progress_.bytes_copied = bytes_copied_;
    progress_.metadata_fixed = metadata_fixed_;
    progress_.entries_created = entries_created_;
    progress_.entries_removed = entries_removed_;
    snapshot = progress_;
  }
  if (options_.on_progress) options_.on_progress(snapshot);
}

HealRunnerProgress HealRunner::Impl::progress() const {
  std::lock_guard lock(mu_);
  HealRunnerProgress snapshot = progress_;
  snapshot.files_examined = files_examined_;
  snapshot.files_copied = files_copied_;
  snapshot.bytes_copied = bytes_copied_;
  snapshot.metadata_fixed = metadata_fixed_;
  snapshot.entries_created = entries_created_;
  snapshot.entries_removed = entries_removed_;
  return snapshot;
}

// ---- One item ----

Status HealRunner::Impl::HealItem(const Item& item) {
  FileId id;
  if (!ParseHex(item.key.substr(1), &id)) return InternalError("bad heal item " + item.key);
  switch (item.key[0]) {
    case 'd':
      return HealDirectory(id);
    case 'f':
      return HealObject(id);
    default:
      // Gone on the primary: the names it had here go with its parents' entry heals (each
      // removal journaled the parent too). Nothing to copy.
      return Status::Ok();
  }
}

Result<std::vector<bpb::DirEntry>> HealRunner::Impl::LocalEntries(const FileId& dir) {
  std::vector<bpb::DirEntry> entries;
  bpb::ReaddirRequest request;
  request.set_id(dir);
  request.set_max_entries(4096);
  for (;;) {
    auto page = local_.Readdir(request);
    if (page.err() != 0) return LocalError("readdir", dir, page.err());
    for (auto& entry : *page.mutable_entries()) {
      request.set_cookie(entry.cookie());
      entries.push_back(std::move(entry));
    }
    if (page.eof() || page.entries_size() == 0) return entries;
  }
}

// Entry heal of one directory that exists here, then its own metadata.
Status HealRunner::Impl::HealDirectory(const FileId& id) {
  if (int err = local_.Exists(id); err != 0) {
    if (Gone(err)) return Status::Ok();  // not here yet: its parent's entry heal makes it, filled
    return LocalError("resolve", id, err);
  }
  auto listing = primary_.ReaddirAll(id);
  if (Gone(listing.err())) return Status::Ok();  // removed on the primary: the parent's heal removes it
  if (listing.err() != 0) return PrimaryError("readdir", id, listing.err());
  CAIRN_RETURN_IF_ERROR(HealEntries(id, listing));
  return HealObject(id);
}

// Makes this brick's entries of `dir` those of the primary's listing: removals (or parking) first,
// then creations; entries with the same name and id are left to their own items.
Status HealRunner::Impl::HealEntries(const FileId& dir, const bpb::ReaddirResponse& primary_entries) {
  CAIRN_ASSIGN_OR_RETURN(auto local_entries, LocalEntries(dir));
  std::map<std::string, const bpb::Attr*> wanted;
  for (const auto& entry : primary_entries.entries()) wanted[entry.name()] = &entry.attr();
  std::set<std::string> present;
  for (const auto& entry : local_entries) {
    auto it = wanted.find(entry.name());
    if (it != wanted.end() && it->second->id() == entry.attr().id()) {
      present.insert(entry.name());
      continue;
    }
    CAIRN_RETURN_IF_ERROR(RemoveLocalEntry(dir, entry.name(), entry.attr()));
  }
  for (const auto& [name, attr] : wanted) {
    if (present.count(name) == 0) CAIRN_RETURN_IF_ERROR(CreateEntry(dir, name, *attr));
  }
  return Status::Ok();
}

// The primary's listing says (dir, name) is not `attr.id` (any more). A file's name goes, its id
// kept until the round ends (it may be linked elsewhere). A directory the primary still has
// somewhere is parked in the root (its new parent's heal moves it); one the primary says is gone
// is removed with everything in it.
Status HealRunner::Impl::RemoveLocalEntry(const FileId& dir, const std::string& name, const bpb::Attr& attr) {
  const FileId& id = attr.id();
  if (!S_ISDIR(attr.mode())) {
    bpb::RemoveRequest remove;
    remove.set_parent(dir);
    remove.set_name(name);
    remove.set_keep_id(true);
    auto removed = local_.Remove(remove, nullptr);
    if (removed.err() != 0 && removed.err() != ENOENT) return LocalError("unlink " + name, dir, removed.err());
    {
      std::lock_guard lock(kept_mu_);
      kept_.insert(id);
    }
    ++entries_removed_;
    return Status::Ok();
  }
  if (dir == kRootId && name.rfind(kParkPrefix, 0) == 0) return Status::Ok();  // already parked
  auto elsewhere = primary_.Getattr(id);
  if (elsewhere.err() == 0) {
    bpb::RenameRequest park;
    park.set_parent(dir);
    park.set_name(name);
    park.set_new_parent(kRootId);
    park.set_new_name(kParkPrefix + Hex(id));
    park.set_flags(RENAME_NOREPLACE);
    auto parked = local_.Rename(park, nullptr);
    if (parked.err() != 0) return LocalError("park " + name, id, parked.err());
    ++entries_removed_;
    return Status::Ok();
  }
  if (!Gone(elsewhere.err())) return PrimaryError("getattr", id, elsewhere.err());
  return RemoveTree(dir, name, id);
}

Status HealRunner::Impl::RemoveTree(const FileId& parent, const std::string& name, const FileId& id) {
  CAIRN_ASSIGN_OR_RETURN(auto children, LocalEntries(id));
  for (const auto& child : children) CAIRN_RETURN_IF_ERROR(RemoveLocalEntry(id, child.name(), child.attr()));
  bpb::RemoveRequest remove;
  remove.set_parent(parent);
  remove.set_name(name);
  remove.set_directory(true);
  auto removed = local_.Remove(remove, nullptr);
  if (removed.err() != 0 && removed.err() != ENOENT) return LocalError("rmdir " + name, id, removed.err());
  ++entries_removed_;
  return Status::Ok();
}

// Makes (dir, name) the primary's object `attr.id`: an id this brick has is linked (files) or
// moved (directories); a new one is created with the primary's id and copied whole (directories
// recursively).
Status HealRunner::Impl::CreateEntry(const FileId& dir, const std::string& name, const bpb::Attr& attr) {
  const FileId& id = attr.id();
  const bool is_dir = S_ISDIR(attr.mode());
  int here = local_.Exists(id);
  if (here != 0 && !Gone(here)) return LocalError("resolve", id, here);
  if (here == 0 && is_dir) return MoveDirectoryHere(dir, name, id);
  if (here == 0) {
    bpb::LinkRequest link;
    link.set_id(id);
    link.set_new_parent(dir);
    link.set_new_name(name);
    auto linked = local_.Link(link, nullptr);
    if (linked.err() != 0) return LocalError("link " + name, id, linked.err());
    ++entries_created_;
    return Status::Ok();
  }
  bpb::CreateRequest create;
  create.set_parent(dir);
  create.set_name(name);
  create.set_new_id(id);
  create.set_uid(attr.uid());
  create.set_gid(attr.gid());
  create.set_exclusive(true);
  if (is_dir) {
    create.set_kind(bpb::CreateRequest::DIRECTORY);
    create.set_mode(attr.mode() & 07777);
  } else if (S_ISREG(attr.mode())) {
    create.set_kind(bpb::CreateRequest::FILE);
    create.set_mode(attr.mode() & 07777);
  } else if (S_ISLNK(attr.mode())) {
    bpb::ReadlinkRequest readlink;
    readlink.set_id(id);
    auto target = primary_.CallSync<bpb::ReadlinkResponse>("brick.Readlink", readlink);
    if (Gone(target.err())) return Status::Ok();  // removed meanwhile: journaled again
    if (target.err() != 0) return PrimaryError("readlink", id, target.err());
    create.set_kind(bpb::CreateRequest::SYMLINK);
    create.set_target(target.target());
  } else {
    create.set_kind(bpb::CreateRequest::NODE);
    create.set_mode(attr.mode());
    create.set_rdev(attr.rdev());
  }
  auto created = local_.Create(create, nullptr);
  if (created.err() == EEXIST) {
    // Another item made it at the same moment (a directory being filled and its own item).
    bpb::LookupRequest lookup;
    lookup.set_parent(dir);
    lookup.set_name(name);
    auto found = local_.Lookup(lookup);
    if (found.err() == 0 && found.attr().id() == id) return Status::Ok();
  }
  if (created.err() != 0) return LocalError("create " + name, id, created.err());
  ++entries_created_;
  if (is_dir) {
    auto listing = primary_.ReaddirAll(id);
    if (Gone(listing.err())) return Status::Ok();
    if (listing.err() != 0) return PrimaryError("readdir", id, listing.err());
    CAIRN_RETURN_IF_ERROR(HealEntries(id, listing));
  }
  return HealObject(id);
}

Status HealRunner::Impl::MoveDirectoryHere(const FileId& dir, const std::string& name, const FileId& id) {
  FileId from_parent;
  std::string from_name;
  if (int err = local_.DirLocation(id, &from_parent, &from_name); err != 0) return LocalError("locate", id, err);
  bpb::RenameRequest move;
  move.set_parent(from_parent);
  move.set_name(from_name);
  move.set_new_parent(dir);
  move.set_new_name(name);
  move.set_flags(RENAME_NOREPLACE);
  auto moved = local_.Rename(move, nullptr);
  if (moved.err() != 0) return LocalError("move " + from_name + " to " + name, id, moved.err());
  ++entries_created_;
  return Status::Ok();
}

// Data (regular files) and metadata of one object this brick has.
Status HealRunner::Impl::HealObject(const FileId& id) {
  bpb::GetattrRequest request;
  request.set_id(id);
  auto local = local_.Getattr(request);
  if (Gone(local.err())) return Status::Ok();  // not here: its parent's entry heal creates it whole
  if (local.err() != 0) return LocalError("getattr", id, local.err());
  auto primary = primary_.Getattr(id);
  if (Gone(primary.err())) return Status::Ok();  // gone there: parents' entry heals remove the names
  if (primary.err() != 0) return PrimaryError("getattr", id, primary.err());
  if ((primary.attr().mode() & S_IFMT) != (local.attr().mode() & S_IFMT)) {
    return InternalError("id " + Hex(id) + " has another type on the primary");
  }
  if (S_ISREG(primary.attr().mode())) {
    CAIRN_RETURN_IF_ERROR(CopyData(id, primary.attr(), local.attr()));
    local = local_.Getattr(request);
    if (local.err() != 0) return LocalError("getattr", id, local.err());
  }
  return HealMetadata(id, primary.attr(), local.attr());
}

// Data and metadata through the code rebalance shares (object_copy.h), into the local brick:
// size first, then only the 1 MiB blocks that differ (holes stay holes); owner, mode, user
// xattrs, times last.
Status HealRunner::Impl::CopyData(const FileId& id, const bpb::Attr& primary, const bpb::Attr& local) {
  StoreTarget target(local_, "local brick");
  CopyStats stats;
  Status copied = heal::CopyData(primary_, target, id, primary, local, stop_, {}, &stats);
  AddStats(stats);
  if (copied.code() == StatusCode::kAborted) return AbortedError("heal of " + options_.brick_id + " stopped");
  return copied;
}

Status HealRunner::Impl::HealMetadata(const FileId& id, const bpb::Attr& primary, const bpb::Attr& local) {
  StoreTarget target(local_, "local brick");
  CopyStats stats;
  Status copied = heal::CopyMetadata(primary_, target, id, primary, local, {}, &stats);
  AddStats(stats);
  return copied;
}

void HealRunner::Impl::AddStats(const CopyStats& stats) {
  files_examined_ += stats.files_examined;
  files_copied_ += stats.files_copied;
  bytes_copied_ += stats.bytes_copied;
  metadata_fixed_ += stats.metadata_fixed;
}

// Directories parked in the root whose new place no entry heal of this round reached: removed if
// the primary says they are gone; otherwise the next round scans everything.
Status HealRunner::Impl::SweepParked() {
  CAIRN_ASSIGN_OR_RETURN(auto entries, LocalEntries(kRootId));
  for (const auto& entry : entries) {
    if (entry.name().rfind(kParkPrefix, 0) != 0) continue;
    auto there = primary_.Getattr(entry.attr().id());
    if (Gone(there.err())) {
      CAIRN_RETURN_IF_ERROR(RemoveTree(kRootId, entry.name(), entry.attr().id()));
    } else if (there.err() != 0) {
      return PrimaryError("getattr", entry.attr().id(), there.err());
    } else {
      log::Warn("heal.parked_left", "brick", options_.brick_id, "dir", Hex(entry.attr().id()), "action",
                "full scan next round");
      std::lock_guard lock(mu_);
      full_scan_ = true;
    }
  }
  return Status::Ok();
}

// ---- HealRunner ----

HealRunner::HealRunner(boost::asio::io_context& io, brick::BrickStore& local, std::string primary_address,
                       std::string self_address, HealRunnerOptions options)
    : impl_(std::make_unique<Impl>(io, local, std::move(primary_address), std::move(self_address), std::move(options))) {}
HealRunner::~HealRunner() = default;
Result<RoundResult> HealRunner::RunRound() { return impl_->RunRound(); }
Status HealRunner::HealUntilClean(int max_rounds) { return impl_->HealUntilClean(max_rounds); }
void HealRunner::Stop() { impl_->Stop(); }
HealRunnerProgress HealRunner::progress() const { return impl_->progress(); }
void HealRunner::set_epoch(uint64_t epoch) { impl_->set_epoch(epoch); }
void HealRunner::set_full_scan(bool full_scan) { impl_->set_full_scan(full_scan); }

}  // namespace cairn::heal
