#include "cairn/coord/node/identity.h"

#include <algorithm>

#include "cairn/common/ids.h"
#include "cairn/common/strings.h"

namespace cairn::coord {
namespace {

uint64_t Fnv1a64(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash == 0 ? 1 : hash;
}

}  // namespace

uint64_t DeriveMemberId(std::string_view peer_url) { return Fnv1a64(std::string("member:") + std::string(peer_url)); }

uint64_t DeriveClusterId(std::vector<MemberSeed> initial_cluster) {
  std::vector<std::string> parts;
  for (const MemberSeed& seed : initial_cluster) parts.push_back(seed.name + "=" + seed.peer_url);
  std::sort(parts.begin(), parts.end());
  std::string text = "cluster:";
  for (const std::string& part : parts) text += part + ",";
  return Fnv1a64(text);
}

std::string FormatIdentity(const Identity& identity) {
  return "cluster_id=" + IdToHex(identity.cluster_id) + "\nmember_id=" + IdToHex(identity.member_id) +
         "\nname=" + identity.name + "\n";
}

Result<Identity> ParseIdentity(std::string_view text) {
  Identity identity;
  size_t line_number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ++line_number;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return CorruptionError("line " + std::to_string(line_number) + ": expected key=value");
    }
    std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "cluster_id" || key == "member_id") {
      auto id = IdFromHex(value);
      if (!id.ok()) return CorruptionError("line " + std::to_string(line_number) + ": bad " + std::string(key));
      (key == "cluster_id" ? identity.cluster_id : identity.member_id) = *id;
    } else if (key == "name") {
      identity.name = std::string(value);
    } else {
      return CorruptionError("line " + std::to_string(line_number) + ": unknown key " + std::string(key));
    }
  }
  if (identity.cluster_id == 0 || identity.member_id == 0) return CorruptionError("cluster_id or member_id missing");
  return identity;
}

Result<std::optional<Identity>> LoadIdentity(env::Env* env, const std::string& path) {
  if (!env->FileExists(path)) return std::optional<Identity>();
  CAIRN_ASSIGN_OR_RETURN(std::string text, env->ReadFile(path));
  auto parsed = ParseIdentity(text);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return std::optional<Identity>(*parsed);
}

Status SaveIdentity(env::Env* env, const std::string& path, const Identity& identity) {
  std::string temp = path + ".tmp";
  CAIRN_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(temp));
  CAIRN_RETURN_IF_ERROR(file->Append(FormatIdentity(identity)));
  CAIRN_RETURN_IF_ERROR(file->Sync());
  CAIRN_RETURN_IF_ERROR(file->Close());
  CAIRN_RETURN_IF_ERROR(env->Rename(temp, path));
  return env->SyncDir(env::DirName(path));
}

Status CheckIdentity(const Identity& stored, const Identity& configured, const std::string& path) {
  std::string what;
  if (stored.cluster_id != configured.cluster_id) {
    what = "cluster id " + IdToHex(stored.cluster_id) + " but the configuration gives " + IdToHex(configured.cluster_id);
  } else if (stored.member_id != configured.member_id) {
    what = "member id " + IdToHex(stored.member_id) + " but the configuration gives " + IdToHex(configured.member_id);
  } else if (stored.name != configured.name) {
    what = "name " + stored.name + " but the configuration gives " + configured.name;
  } else {
    return Status::Ok();
  }
  return FailedPreconditionError(path + " records " + what +
                                 ": this data dir belongs to another member or cluster; start with the data dir "
                                 "that belongs to this configuration, or replace the member with "
                                 "`clusterctl member replace`");
}

}  // namespace cairn::coord
