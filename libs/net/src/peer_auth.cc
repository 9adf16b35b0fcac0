#include "cairn/net/peer_auth.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "cairn/common/logging.h"

namespace cairn::net {
namespace {

constexpr char kVersion = 1;
constexpr std::string_view kClientLabel = "cairn-peer-client";
constexpr std::string_view kServerLabel = "cairn-peer-server";

struct ProcessKey {
  std::mutex mu;
  bool set = false;  // GUARDED_BY(mu): SetProcessClusterKey called or the environment was read
  std::string key;   // GUARDED_BY(mu)
};

ProcessKey& TheProcessKey() {
  static ProcessKey* key = new ProcessKey();  // never destroyed: used from threads at exit
  return *key;
}

std::string LoadFromEnvironment() {
  const char* path = std::getenv(kClusterKeyFileEnv);
  if (path == nullptr || *path == '\0') return {};
  auto key = ReadClusterKeyFile(path);
  if (!key.ok()) {
    log::Error("net.cluster_key_unreadable", "path", path, "error", key.status());
    return {};
  }
  log::Info("net.peer_auth_on", "key_file", path);
  return *key;
}

std::string Proof(std::string_view key, std::string_view label, std::string_view server_nonce,
                  std::string_view client_nonce) {
  std::string data;
  data.reserve(label.size() + server_nonce.size() + client_nonce.size());
  data.append(label).append(server_nonce).append(client_nonce);
  return HmacSha256(key, data);
}

}  // namespace

void SetProcessClusterKey(std::string key) {
  ProcessKey& process = TheProcessKey();
  std::lock_guard lock(process.mu);
  process.set = true;
  process.key = std::move(key);
}

std::string ProcessClusterKey() {
  ProcessKey& process = TheProcessKey();
  std::lock_guard lock(process.mu);
  if (!process.set) {
    process.set = true;
    process.key = LoadFromEnvironment();
  }
  return process.key;
}

std::string ResolveClusterKey(const std::optional<std::string>& option) {
  return option ? *option : ProcessClusterKey();
}

Result<std::string> ReadClusterKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    std::string what = "cannot open cluster key file " + path + ": " + std::strerror(error);
    if (error == ENOENT) return NotFoundError(what);
    if (error == EACCES) return PermissionDeniedError(what);
    return IoError(what);
  }
  std::string key(kClusterKeySize + 1, '\0');
  size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return IoError("cannot read cluster key file " + path + ": " + std::strerror(error));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got != kClusterKeySize) {
    return InvalidArgumentError("cluster key file " + path + " must hold exactly " + std::to_string(kClusterKeySize) +
                                " bytes");
  }
  key.resize(kClusterKeySize);
  return key;
}

std::string RandomBytes(size_t count) {
  std::string bytes(count, '\0');
  if (count > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    log::Error("net.random_failed", "error", "RAND_bytes failed");
    std::abort();
  }
  return bytes;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string MakeChallenge(std::string* server_nonce) {
  *server_nonce = RandomBytes(kNonceSize);
  return std::string(1, kVersion) + *server_nonce;
}

Result<std::string> AnswerChallenge(std::string_view key, std::string_view challenge,
                                    std::string* expected_server_proof) {
  if (challenge.size() != 1 + kNonceSize || challenge[0] != kVersion) {
    return UnauthenticatedError("the server's authentication challenge is not Cairn peer-auth version 1");
  }
  std::string_view server_nonce = challenge.substr(1);
  std::string client_nonce = RandomBytes(kNonceSize);
  *expected_server_proof = Proof(key, kServerLabel, server_nonce, client_nonce);
  return std::string(1, kVersion) + client_nonce + Proof(key, kClientLabel, server_nonce, client_nonce);
}

Result<std::string> VerifyClientResponse(std::string_view key, std::string_view server_nonce,
                                         std::string_view response) {
  if (response.size() != 1 + kNonceSize + kProofSize || response[0] != kVersion) {
    return UnauthenticatedError("malformed authentication response (not Cairn peer-auth version 1)");
  }
  std::string_view client_nonce = response.substr(1, kNonceSize);
  std::string_view proof = response.substr(1 + kNonceSize);
  if (!ConstantTimeEquals(proof, Proof(key, kClientLabel, server_nonce, client_nonce))) {
    return UnauthenticatedError("peer authentication failed: the peer does not hold this cluster's key");
  }
  return Proof(key, kServerLabel, server_nonce, client_nonce);
}

}  // namespace cairn::net
