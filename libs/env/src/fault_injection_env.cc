#include "cairn/env/fault_injection_env.h"

#include <algorithm>
#include <cerrno>

namespace cairn::env {
namespace {

std::string Normalize(const std::string& path) {
  if (path.size() > 1 && path.back() == '/') return path.substr(0, path.size() - 1);
  return path;
}

bool IsDirectory(Env* env, const std::string& path) { return env->ListDir(path).ok(); }

}  // namespace

// A handle that reports appends and syncs to its FileState. Locks the Env's mutex for every call.
class FaultInjectionEnv::File final : public WritableFile {
 public:
  File(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base,
       std::shared_ptr<FileState> state, uint64_t generation)
      : env_(env), path_(std::move(path)), base_(std::move(base)), state_(std::move(state)), generation_(generation) {}

  Status Append(std::string_view data) override {
    std::lock_guard lock(env_->mu_);
    CAIRN_RETURN_IF_ERROR(CheckAlive());
    return env_->AppendLocked(*state_, *base_, data).WithContext(path_);
  }
  Status Sync() override {
    std::lock_guard lock(env_->mu_);
    CAIRN_RETURN_IF_ERROR(CheckAlive());
    return env_->SyncLocked(*state_, *base_).WithContext(path_);
  }
  Status Truncate(uint64_t size) override {
    std::lock_guard lock(env_->mu_);
    CAIRN_RETURN_IF_ERROR(CheckAlive());
    CAIRN_RETURN_IF_ERROR(base_->Truncate(size));
    state_->synced_size = std::min(state_->synced_size, size);
    return Status::Ok();
  }
  Status Close() override {
    std::lock_guard lock(env_->mu_);
    return base_->Close();
  }
  uint64_t Size() const override { return base_->Size(); }

 private:
  Status CheckAlive() const {
    if (generation_ != env_->generation_) return IoError("file handle from before a simulated crash: " + path_);
    return Status::Ok();
  }

  FaultInjectionEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
  std::shared_ptr<FileState> state_;
  uint64_t generation_;
};

FaultInjectionEnv::FaultInjectionEnv(Env* base) : base_(base) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::SetSyncFailure(bool fail) {
  std::lock_guard lock(mu_);
  fail_sync_ = fail;
}

void FaultInjectionEnv::SetNoSpaceAfter(uint64_t bytes) {
  std::lock_guard lock(mu_);
  no_space_armed_ = true;
  no_space_left_ = bytes;
}

void FaultInjectionEnv::FailNthAppend(uint64_t n) {
  std::lock_guard lock(mu_);
  appends_until_failure_ = n;
}

void FaultInjectionEnv::ClearFaults() {
  std::lock_guard lock(mu_);
  fail_sync_ = false;
  no_space_armed_ = false;
  appends_until_failure_ = 0;
}

uint64_t FaultInjectionEnv::BytesAppended() const {
  std::lock_guard lock(mu_);
  return bytes_appended_;
}

uint64_t FaultInjectionEnv::SyncCount() const {
  std::lock_guard lock(mu_);
  return sync_count_;
}

Status FaultInjectionEnv::AppendLocked(FileState& /*state*/, WritableFile& base, std::string_view data) {
  if (appends_until_failure_ > 0 && --appends_until_failure_ == 0) {
    return IoError("write: injected write failure");
  }
  if (no_space_armed_ && data.size() > no_space_left_) {
    std::string_view fits = data.substr(0, static_cast<size_t>(no_space_left_));
    CAIRN_RETURN_IF_ERROR(base.Append(fits));
    bytes_appended_ += fits.size();
    no_space_left_ = 0;
    return ErrnoError("write (injected)", ENOSPC);
  }
  CAIRN_RETURN_IF_ERROR(base.Append(data));
  if (no_space_armed_) no_space_left_ -= data.size();
  bytes_appended_ += data.size();
  return Status::Ok();
}

Status FaultInjectionEnv::SyncLocked(FileState& state, WritableFile& base) {
  if (fail_sync_) return ErrnoError("fdatasync (injected)", EIO);
  CAIRN_RETURN_IF_ERROR(base.Sync());
  state.synced_size = base.Size();
  ++sync_count_;
  return Status::Ok();
}

std::shared_ptr<FaultInjectionEnv::FileState> FaultInjectionEnv::StateFor(const std::string& path) {
  auto& state = files_[path];
  if (!state) {
    // Untouched since the last crash (or since we started): everything in it is durable.
    state = std::make_shared<FileState>();
    state->synced_size = base_->FileSize(path).value_or(0);
    state->entry_durable = true;
  }
  return state;
}

Status FaultInjectionEnv::SaveForUndo(const std::string& path) {
  if (!base_->FileExists(path) || IsDirectory(base_, path)) return Status::Ok();
  auto state = StateFor(path);
  // A file created since its directory's last sync already has a kRemoveFile pending.
  if (!state->entry_durable) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::string content, base_->ReadFile(path));
  if (content.size() > state->synced_size) content.resize(state->synced_size);
  undo_.push_back({Undo::Kind::kRestoreFile, path, std::move(content)});
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string path = Normalize(raw);
  bool existed = base_->FileExists(path);
  CAIRN_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(path));
  std::shared_ptr<FileState> state;
  if (existed) {
    state = StateFor(path);
    state->synced_size = 0;
  } else {
    state = std::make_shared<FileState>();
    files_[path] = state;
    undo_.push_back({Undo::Kind::kRemoveFile, path, {}});
  }
  return std::unique_ptr<WritableFile>(new File(this, path, std::move(file), state, generation_));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string path = Normalize(raw);
  bool existed = base_->FileExists(path);
  std::shared_ptr<FileState> state = existed ? StateFor(path) : nullptr;
  CAIRN_ASSIGN_OR_RETURN(auto file, base_->NewAppendableFile(path));
  if (!existed) {
    state = std::make_shared<FileState>();
    files_[path] = state;
    undo_.push_back({Undo::Kind::kRemoveFile, path, {}});
  }
  return std::unique_ptr<WritableFile>(new File(this, path, std::move(file), state, generation_));
}

Result<std::string> FaultInjectionEnv::ReadFile(const std::string& path) {
  std::lock_guard lock(mu_);
  return base_->ReadFile(path);
}

Result<std::string> FaultInjectionEnv::ReadRange(const std::string& path, uint64_t offset, size_t length) {
  std::lock_guard lock(mu_);
  return base_->ReadRange(path, offset, length);
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  std::lock_guard lock(mu_);
  return base_->FileSize(path);
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  std::lock_guard lock(mu_);
  return base_->FileExists(path);
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  return base_->ListDir(dir);
}

Status FaultInjectionEnv::Rename(const std::string& raw_from, const std::string& raw_to) {
  std::lock_guard lock(mu_);
  std::string from = Normalize(raw_from), to = Normalize(raw_to);
  if (IsDirectory(base_, from)) return base_->Rename(from, to);  // not modelled: durable at once
  size_t mark = undo_.size();
  Status status = SaveForUndo(to);
  if (status.ok()) status = SaveForUndo(from);
  if (status.ok()) status = base_->Rename(from, to);
  if (!status.ok()) {
    undo_.resize(mark);
    return status;
  }
  auto state = StateFor(from);
  files_.erase(from);
  state->entry_durable = false;
  files_[to] = state;
  undo_.push_back({Undo::Kind::kRemoveFile, to, {}});
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string path = Normalize(raw);
  size_t mark = undo_.size();
  CAIRN_RETURN_IF_ERROR(SaveForUndo(path));
  Status status = base_->RemoveFile(path);
  if (!status.ok()) {
    undo_.resize(mark);
    return status;
  }
  files_.erase(path);
  return Status::Ok();
}

Status FaultInjectionEnv::Truncate(const std::string& raw, uint64_t size) {
  std::lock_guard lock(mu_);
  std::string path = Normalize(raw);
  CAIRN_RETURN_IF_ERROR(base_->Truncate(path, size));
  auto state = StateFor(path);
  state->synced_size = std::min(state->synced_size, size);
  return Status::Ok();
}

Status FaultInjectionEnv::CreateDir(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string dir = Normalize(raw);
  CAIRN_RETURN_IF_ERROR(base_->CreateDir(dir));
  undo_.push_back({Undo::Kind::kRemoveDir, dir, {}});
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveDir(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string dir = Normalize(raw);
  CAIRN_RETURN_IF_ERROR(base_->RemoveDir(dir));
  undo_.push_back({Undo::Kind::kRestoreDir, dir, {}});
  return Status::Ok();
}

Status FaultInjectionEnv::SyncDir(const std::string& raw) {
  std::lock_guard lock(mu_);
  std::string dir = Normalize(raw);
  if (fail_sync_) return ErrnoError("fsync directory (injected) " + dir, EIO);
  CAIRN_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::erase_if(undo_, [&](const Undo& undo) { return DirName(undo.path) == dir; });
  for (auto& [path, state] : files_) {
    if (DirName(path) == dir) state->entry_durable = true;
  }
  return Status::Ok();
}

Result<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  std::lock_guard lock(mu_);
  return base_->LockFile(path);
}

Status FaultInjectionEnv::ApplyUndo(const Undo& undo) {
  switch (undo.kind) {
    case Undo::Kind::kRemoveFile: {
      Status status = base_->RemoveFile(undo.path);
      return status.code() == StatusCode::kNotFound ? Status::Ok() : status;
    }
    case Undo::Kind::kRestoreFile: {
      CAIRN_ASSIGN_OR_RETURN(auto file, base_->NewWritableFile(undo.path));
      CAIRN_RETURN_IF_ERROR(file->Append(undo.content));
      return file->Close();
    }
    case Undo::Kind::kRemoveDir:
      return RemoveDirRecursively(base_, undo.path);
    case Undo::Kind::kRestoreDir:
      return CreateDirs(base_, undo.path);
  }
  return InternalError("unknown undo kind");
}

Status FaultInjectionEnv::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  return Crash(nullptr);
}

Status FaultInjectionEnv::DropUnsyncedData(Random& random) {
  std::lock_guard lock(mu_);
  return Crash(&random);
}

Status FaultInjectionEnv::Crash(Random* random) {
  for (const auto& [path, state] : files_) {
    auto size = base_->FileSize(path);
    if (!size.ok() || *size <= state->synced_size) continue;
    uint64_t keep = state->synced_size;
    if (random != nullptr) keep += random->Uniform(*size - state->synced_size + 1);
    if (keep < *size) CAIRN_RETURN_IF_ERROR(base_->Truncate(path, keep));
  }
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    CAIRN_RETURN_IF_ERROR(ApplyUndo(*it).WithContext("undoing unsynced change to " + it->path));
  }
  files_.clear();
  undo_.clear();
  ++generation_;
  return Status::Ok();
}

}  // namespace cairn::env
