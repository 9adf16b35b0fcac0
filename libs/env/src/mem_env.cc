// MemEnv: a file system in memory, after LevelDB's helpers/memenv. Errors use the errno the kernel
// would give for the same call, so the Env parity tests can compare codes.
//
// Locking: one mutex (mu_) guards the namespace (files_, dirs_, locked_). File contents are shared
// with open handles through shared_ptr, so a removed file stays writable through an open handle,
// as an unlinked inode does; contents are guarded by mu_ too.
#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>
#include <set>

#include "cairn/env/env.h"
#include "path_error.h"

namespace cairn::env {
namespace {

std::string Normalize(const std::string& path) {
  if (path.size() > 1 && path.back() == '/') return path.substr(0, path.size() - 1);
  return path;
}

struct MemFile {
  std::string data;
};

class MemEnv;

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(std::mutex* mu, std::string path, std::shared_ptr<MemFile> file)
      : mu_(mu), path_(std::move(path)), file_(std::move(file)) {}

  Status Append(std::string_view data) override {
    if (!file_) return Closed();
    std::lock_guard lock(*mu_);
    file_->data.append(data);
    return Status::Ok();
  }
  Status Sync() override { return file_ ? Status::Ok() : Closed(); }
  Status Truncate(uint64_t size) override {
    if (!file_) return Closed();
    std::lock_guard lock(*mu_);
    file_->data.resize(size, '\0');
    return Status::Ok();
  }
  Status Close() override {
    if (!file_) return Closed();
    file_.reset();
    return Status::Ok();
  }
  uint64_t Size() const override {
    if (!file_) return 0;
    std::lock_guard lock(*mu_);
    return file_->data.size();
  }

 private:
  Status Closed() const { return FailedPreconditionError("file already closed: " + path_); }

  std::mutex* mu_;
  std::string path_;
  std::shared_ptr<MemFile> file_;
};

class MemFileLock final : public FileLock {
 public:
  MemFileLock(std::mutex* mu, std::set<std::string>* locked, std::string path)
      : mu_(mu), locked_(locked), path_(std::move(path)) {}
  ~MemFileLock() override {
    std::lock_guard lock(*mu_);
    locked_->erase(path_);
  }

 private:
  std::mutex* mu_;
  std::set<std::string>* locked_;
  std::string path_;
};

class MemEnv final : public Env {
 public:
  MemEnv() { dirs_.insert("/"); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& raw) override {
    return Open(Normalize(raw), /*truncate=*/true);
  }
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& raw) override {
    return Open(Normalize(raw), /*truncate=*/false);
  }

  Result<std::string> ReadFile(const std::string& raw) override {
    std::lock_guard lock(mu_);
    CAIRN_ASSIGN_OR_RETURN(MemFile * file, Find(Normalize(raw), "open"));
    return file->data;
  }

  Result<std::string> ReadRange(const std::string& raw, uint64_t offset, size_t length) override {
    std::lock_guard lock(mu_);
    CAIRN_ASSIGN_OR_RETURN(MemFile * file, Find(Normalize(raw), "open"));
    if (offset >= file->data.size()) return std::string();
    return file->data.substr(static_cast<size_t>(offset), length);
  }

  Result<uint64_t> FileSize(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string path = Normalize(raw);
    if (dirs_.count(path)) return uint64_t{4096};
    CAIRN_ASSIGN_OR_RETURN(MemFile * file, Find(path, "stat"));
    return static_cast<uint64_t>(file->data.size());
  }

  bool FileExists(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string path = Normalize(raw);
    return files_.count(path) || dirs_.count(path);
  }

  Result<std::vector<std::string>> ListDir(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string dir = Normalize(raw);
    if (!dirs_.count(dir)) return PathError("opendir", dir, files_.count(dir) ? ENOTDIR : ENOENT);
    std::vector<std::string> names;
    for (const auto& [path, file] : files_) {
      if (DirName(path) == dir) names.push_back(BaseName(path));
    }
    for (const auto& path : dirs_) {
      if (path != dir && DirName(path) == dir) names.push_back(BaseName(path));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  Status Rename(const std::string& raw_from, const std::string& raw_to) override {
    std::lock_guard lock(mu_);
    std::string from = Normalize(raw_from), to = Normalize(raw_to);
    std::string what = from + " -> " + to;
    if (!dirs_.count(DirName(to))) return PathError("rename", what, ENOENT);
    if (dirs_.count(from)) return RenameDir(from, to, what);
    auto it = files_.find(from);
    if (it == files_.end()) return PathError("rename", what, ENOENT);
    if (dirs_.count(to)) return PathError("rename", what, EISDIR);
    auto file = it->second;
    files_.erase(it);
    files_[to] = std::move(file);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string path = Normalize(raw);
    if (dirs_.count(path)) return PathError("unlink", path, EISDIR);
    if (files_.erase(path) == 0) return PathError("unlink", path, ENOENT);
    return Status::Ok();
  }

  Status Truncate(const std::string& raw, uint64_t size) override {
    std::lock_guard lock(mu_);
    std::string path = Normalize(raw);
    if (dirs_.count(path)) return PathError("truncate", path, EISDIR);
    CAIRN_ASSIGN_OR_RETURN(MemFile * file, Find(path, "truncate"));
    file->data.resize(size, '\0');
    return Status::Ok();
  }

  Status CreateDir(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string dir = Normalize(raw);
    if (dirs_.count(dir) || files_.count(dir)) return PathError("mkdir", dir, EEXIST);
    if (!dirs_.count(DirName(dir))) return PathError("mkdir", dir, ENOENT);
    dirs_.insert(dir);
    return Status::Ok();
  }

  Status RemoveDir(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string dir = Normalize(raw);
    if (!dirs_.count(dir)) return PathError("rmdir", dir, files_.count(dir) ? ENOTDIR : ENOENT);
    if (HasChildren(dir)) return PathError("rmdir", dir, ENOTEMPTY);
    dirs_.erase(dir);
    return Status::Ok();
  }

  Status SyncDir(const std::string& raw) override {
    std::lock_guard lock(mu_);
    std::string dir = Normalize(raw);
    if (!dirs_.count(dir)) return PathError("open directory", dir, ENOENT);
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& raw) override {
    std::string path = Normalize(raw);
    {
      std::lock_guard lock(mu_);
      if (!dirs_.count(DirName(path))) return PathError("open lock file", path, ENOENT);
      if (!files_.count(path)) files_[path] = std::make_shared<MemFile>();
      if (!locked_.insert(path).second) return UnavailableError("lock " + path + ": held by another user");
    }
    return std::unique_ptr<FileLock>(new MemFileLock(&mu_, &locked_, path));
  }

 private:
  Result<std::unique_ptr<WritableFile>> Open(const std::string& path, bool truncate) {
    std::lock_guard lock(mu_);
    if (dirs_.count(path)) return PathError("open", path, EISDIR);
    if (!dirs_.count(DirName(path))) return PathError("open", path, ENOENT);
    auto& file = files_[path];
    if (!file) file = std::make_shared<MemFile>();
    if (truncate) file->data.clear();
    return std::unique_ptr<WritableFile>(new MemWritableFile(&mu_, path, file));
  }

  // REQUIRES: mu_ held.
  Result<MemFile*> Find(const std::string& path, std::string_view op) {
    auto it = files_.find(path);
    if (it == files_.end()) return PathError(op, path, dirs_.count(path) ? EISDIR : ENOENT);
    return it->second.get();
  }

  // REQUIRES: mu_ held.
  bool HasChildren(const std::string& dir) const {
    std::string prefix = dir == "/" ? "/" : dir + "/";
    auto file = files_.lower_bound(prefix);
    if (file != files_.end() && file->first.compare(0, prefix.size(), prefix) == 0) return true;
    auto sub = dirs_.lower_bound(prefix);
    return sub != dirs_.end() && sub->compare(0, prefix.size(), prefix) == 0;
  }

  // REQUIRES: mu_ held. Moves a directory and everything below it.
  Status RenameDir(const std::string& from, const std::string& to, const std::string& what) {
    if (files_.count(to)) return PathError("rename", what, ENOTDIR);
    if (to.compare(0, from.size() + 1, from + "/") == 0) return PathError("rename", what, EINVAL);
    if (dirs_.count(to)) {
      if (HasChildren(to)) return PathError("rename", what, ENOTEMPTY);
      dirs_.erase(to);
    }
    std::string prefix = from + "/";
    auto moved = [&](const std::string& path) { return to + path.substr(from.size()); };
    std::map<std::string, std::shared_ptr<MemFile>> files;
    for (auto& [path, file] : files_) {
      files[path.compare(0, prefix.size(), prefix) == 0 ? moved(path) : path] = file;
    }
    std::set<std::string> dirs;
    for (const auto& path : dirs_) {
      bool inside = path == from || path.compare(0, prefix.size(), prefix) == 0;
      dirs.insert(inside ? moved(path) : path);
    }
    files_.swap(files);
    dirs_.swap(dirs);
    return Status::Ok();
  }

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<MemFile>> files_;
  std::set<std::string> dirs_;
  std::set<std::string> locked_;
};

}  // namespace

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

}  // namespace cairn::env
