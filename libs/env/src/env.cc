// Path helpers and recipes built on any Env.
#include "cairn/env/env.h"

namespace cairn::env {

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string DirName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string BaseName(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || path == "/") return std::string(path);
  return std::string(path.substr(slash + 1));
}

Status CreateDirs(Env* env, const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == "." || env->FileExists(dir)) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(CreateDirs(env, DirName(dir)));
  Status status = env->CreateDir(dir);
  if (status.code() == StatusCode::kAlreadyExists) return Status::Ok();  // raced with another creator
  return status;
}

Status RemoveDirRecursively(Env* env, const std::string& dir) {
  auto names = env->ListDir(dir);
  if (!names.ok()) {
    if (names.status().code() == StatusCode::kNotFound) return Status::Ok();
    return names.status();
  }
  for (const std::string& name : *names) {
    std::string path = JoinPath(dir, name);
    Status removed = env->RemoveFile(path);
    // unlink on a directory gives EISDIR (InvalidArgument) on Linux, EPERM on some systems.
    if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
      CAIRN_RETURN_IF_ERROR(RemoveDirRecursively(env, path));
    }
  }
  return env->RemoveDir(dir);
}

Status WriteFileAtomically(Env* env, const std::string& path, std::string_view data) {
  std::string temp = path + ".tmp";
  CAIRN_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(temp));
  Status status = file->Append(data);
  if (status.ok()) status = file->Sync();
  Status closed = file->Close();
  if (status.ok()) status = closed;
  if (status.ok()) status = env->Rename(temp, path);
  if (!status.ok()) {
    (void)env->RemoveFile(temp);  // best effort; the original is untouched
    return status;
  }
  return env->SyncDir(DirName(path));
}

}  // namespace cairn::env
