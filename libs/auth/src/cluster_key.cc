#include "cairn/auth/cluster_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "cairn/net/peer_auth.h"

namespace cairn::auth {
namespace {

Status ErrnoError(const std::string& what, int error) {
  std::string message = what + ": " + std::strerror(error);
  if (error == EACCES || error == EPERM) return PermissionDeniedError(message);
  if (error == ENOENT) return NotFoundError(message);
  return IoError(message);
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status WriteClusterKeyFile(const std::string& path, const std::string& key) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("cannot create " + temporary, errno);
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
            ::fsync(fd) == 0;
  int error = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(temporary.c_str());
    return ErrnoError("cannot write " + temporary, error);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    error = errno;
    ::unlink(temporary.c_str());
    return ErrnoError("cannot rename " + temporary + " to " + path, error);
  }
  int dir = ::open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

Result<std::string> CreateClusterKeyFile(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) == 0) {
    return AlreadyExistsError("cluster key file " + path + " exists already; it is never replaced");
  }
  std::string key = net::RandomBytes(net::kClusterKeySize);
  CAIRN_RETURN_IF_ERROR(WriteClusterKeyFile(path, key));
  return key;
}

Result<std::string> ReadApiTokenFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return ErrnoError("cannot read API token file " + path, errno == 0 ? ENOENT : errno);
  std::string line;
  std::getline(file, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.empty()) return InvalidArgumentError("API token file " + path + " is empty (its first line is the token)");
  return line;
}

}  // namespace cairn::auth
