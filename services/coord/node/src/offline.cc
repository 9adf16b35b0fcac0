// clusterd restore / clusterd recover: see offline.h and docs/coord.md.
#include "cairn/coord/node/offline.h"

#include <algorithm>
#include <chrono>

#include "cairn/common/ids.h"
#include "cairn/common/logging.h"
#include "cairn/coord/node/member_table.h"
#include "cairn/kv/state_machine.h"
#include "cairn/proto/coord.pb.h"
#include "cairn/wal/wal.h"

namespace cairn::coord {
namespace {

std::string StripScheme(std::string url) {
  for (const char* scheme : {"http://", "https://"}) {
    if (url.rfind(scheme, 0) == 0) url = url.substr(std::string(scheme).size());
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

env::Env* EnvOf(env::Env* env) { return env != nullptr ? env : env::DefaultEnv(); }

std::string CoordDir(const std::string& data_dir) { return env::JoinPath(data_dir, "coord"); }

// A 64-bit id from SHA-256 of `text` (never 0): the same on every host for the same text.
uint64_t HashId(const std::string& text) {
  auto id = IdFromHex(Sha256Hex(text).substr(0, 16));
  return id.ok() && *id != 0 ? *id : 1;
}

// Renames DATA_DIR/coord to DATA_DIR/coord.before-WHAT-SECONDS[-N]; returns the new path ("" when
// there was nothing to move).
Result<std::string> MoveAside(env::Env* env, const std::string& data_dir, const std::string& what) {
  std::string coord = CoordDir(data_dir);
  if (!env->FileExists(coord)) return std::string();
  int64_t seconds = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
  std::string base = coord + ".before-" + what + "-" + std::to_string(seconds);
  std::string target = base;
  for (int n = 2; env->FileExists(target); ++n) target = base + "-" + std::to_string(n);
  CAIRN_RETURN_IF_ERROR(env->Rename(coord, target));
  CAIRN_RETURN_IF_ERROR(env->SyncDir(data_dir));
  return target;
}

// A fresh DATA_DIR/coord: a WAL holding only `image` as its snapshot at (index, term) with the
// hard state {term, no vote, commit = index}, and the identity file.
Status WriteFreshState(env::Env* env, const std::string& data_dir, uint64_t index, uint64_t term,
                       const proto::CoordSnapshot& image, const Identity& identity) {
  std::string coord = CoordDir(data_dir);
  CAIRN_RETURN_IF_ERROR(env::CreateDirs(env, coord));
  CAIRN_ASSIGN_OR_RETURN(wal::Opened opened, wal::Wal::Open(env, env::JoinPath(coord, "wal")));
  CAIRN_RETURN_IF_ERROR(opened.wal->SaveSnapshot(wal::Snapshot{index, term, image.SerializeAsString()}));
  CAIRN_RETURN_IF_ERROR(opened.wal->Save(wal::HardState{term, 0, index}, {}, /*sync=*/true));
  CAIRN_RETURN_IF_ERROR(opened.wal->Close());
  CAIRN_RETURN_IF_ERROR(SaveIdentity(env, env::JoinPath(coord, "member"), identity));
  return env->SyncDir(data_dir);
}

uint64_t CountKeys(const kv::KvStateMachine& kv) {
  etcd::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  all.set_count_only(true);
  auto counted = kv.Range(all);
  return counted.ok() ? static_cast<uint64_t>(counted->count()) : 0;
}

proto::CoordMember NewMember(uint64_t id, const std::string& name, const std::string& peer_url) {
  proto::CoordMember member;
  member.set_id(id);
  member.set_name(name);
  member.add_peer_urls(peer_url);
  return member;
}

// The log replayed onto the snapshot's state, as the node would apply it.
struct Replayed {
  kv::KvStateMachine kv;
  MemberTable members;
};

Status Replay(wal::Recovered& recovered, Replayed* state) {
  if (recovered.snapshot) {
    proto::CoordSnapshot image;
    if (!image.ParseFromString(recovered.snapshot->data)) {
      return CorruptionError("the snapshot at index " + std::to_string(recovered.snapshot->index) + " does not parse");
    }
    CAIRN_RETURN_IF_ERROR(state->kv.Restore(image.kv()));
    state->members.RestoreFrom(image);
  }
  const std::map<uint64_t, proto::CoordMember> no_seeds;
  for (const wal::Entry& entry : recovered.entries) {
    if (entry.data.empty()) continue;  // a leader's no-op
    if (entry.type == static_cast<uint32_t>(raftpb::ENTRY_CONF_CHANGE)) {
      raftpb::ConfChange change;
      if (!change.ParseFromString(entry.data)) continue;
      proto::CoordConfChangeContext context;
      if (!change.context().empty()) (void)context.ParseFromString(change.context());
      state->members.ApplyConfChange(change, context.member(), no_seeds);
      continue;
    }
    proto::CoordEntry command;
    if (!command.ParseFromString(entry.data)) {
      log::Error("coord.recover.bad_entry", "index", entry.index, "reason", "does not parse as CoordEntry");
      continue;
    }
    if (command.has_publish()) state->members.ApplyPublish(command.publish());
    if (command.has_kv()) (void)state->kv.Apply(command.kv());  // a failed command changes nothing
  }
  return Status::Ok();
}

}  // namespace

bool HasCoordData(env::Env* env, const std::string& data_dir) {
  env = EnvOf(env);
  std::string coord = CoordDir(data_dir);
  if (env->FileExists(env::JoinPath(coord, "member"))) return true;
  auto names = env->ListDir(env::JoinPath(coord, "wal"));
  if (!names.ok()) return false;
  return std::any_of(names->begin(), names->end(), [](const std::string& name) { return name != "LOCK"; });
}

Result<RestoreReport> RestoreFromBackup(const RestoreOptions& options, const Backup& backup) {
  env::Env* env = EnvOf(options.env);
  if (options.data_dir.empty() || options.name.empty() || options.peer_url.empty()) {
    return InvalidArgumentError("restore: data dir, name and peer URL are required");
  }
  std::string self_url = StripScheme(options.peer_url);
  uint64_t self = DeriveMemberId(self_url);
  std::vector<MemberSeed> members = options.members;
  if (members.empty()) members.push_back({options.name, self_url});
  std::vector<std::string> sorted;
  proto::CoordSnapshot image;
  bool self_listed = false;
  for (MemberSeed& seed : members) {
    seed.peer_url = StripScheme(seed.peer_url);
    uint64_t id = DeriveMemberId(seed.peer_url);
    if (id == self) self_listed = true;
    *image.add_members() = NewMember(id, seed.name, seed.peer_url);
    image.mutable_conf_state()->add_voters(id);
    sorted.push_back(seed.name + "=" + seed.peer_url);
  }
  if (!self_listed) {
    return InvalidArgumentError("restore: the member list does not contain this member's peer URL " + self_url);
  }
  if (HasCoordData(env, options.data_dir) && !options.force) {
    return FailedPreconditionError("restore: " + CoordDir(options.data_dir) +
                                   " already holds coordination data; restore into an empty data dir, or "
                                   "pass --force to move the old data aside (it is kept, not deleted)");
  }
  std::sort(sorted.begin(), sorted.end());
  std::string cluster_text = "restored:" + backup.checksum_hex;
  for (const std::string& part : sorted) cluster_text += "," + part;

  RestoreReport report;
  report.cluster_id = HashId(cluster_text);
  report.member_id = self;
  report.raft_index = std::max<uint64_t>(backup.header.raft_index, 1);
  report.raft_term = std::max<uint64_t>(backup.header.raft_term, 1);
  report.revision = backup.header.revision;
  report.key_count = backup.header.key_count;
  report.voters.assign(image.conf_state().voters().begin(), image.conf_state().voters().end());
  image.set_format_version(1);
  image.set_kv(backup.image.kv());
  image.set_cluster_id(report.cluster_id);

  CAIRN_RETURN_IF_ERROR(env::CreateDirs(env, options.data_dir));
  CAIRN_ASSIGN_OR_RETURN(report.moved_aside, MoveAside(env, options.data_dir, "restore"));
  CAIRN_RETURN_IF_ERROR(WriteFreshState(env, options.data_dir, report.raft_index, report.raft_term, image,
                                        Identity{report.cluster_id, self, options.name}));
  log::Info("coord.restored", "name", options.name, "member_id", IdToHex(self), "cluster_id",
            IdToHex(report.cluster_id), "from_cluster", IdToHex(backup.header.cluster_id), "index", report.raft_index,
            "revision", report.revision, "keys", report.key_count, "voters", report.voters.size(), "moved_aside",
            report.moved_aside);
  return report;
}

Result<RecoverReport> ForceNewCluster(const RecoverOptions& options) {
  env::Env* env = EnvOf(options.env);
  if (options.data_dir.empty() || options.name.empty() || options.peer_url.empty()) {
    return InvalidArgumentError("recover: data dir, name and peer URL are required");
  }
  std::string coord = CoordDir(options.data_dir);
  if (!HasCoordData(env, options.data_dir)) {
    return NotFoundError("recover: " + coord + " holds no coordination data: nothing to recover from");
  }
  std::string self_url = StripScheme(options.peer_url);
  RecoverReport report;
  report.member_id = DeriveMemberId(self_url);
  std::string identity_path = env::JoinPath(coord, "member");
  CAIRN_ASSIGN_OR_RETURN(std::optional<Identity> stored, LoadIdentity(env, identity_path));
  if (stored) {
    CAIRN_RETURN_IF_ERROR(CheckIdentity(*stored, Identity{stored->cluster_id, report.member_id, options.name},
                                        identity_path));
    report.old_cluster_id = stored->cluster_id;
  }

  Replayed state;
  {
    CAIRN_ASSIGN_OR_RETURN(wal::Opened opened, wal::Wal::Open(env, env::JoinPath(coord, "wal")));
    wal::Recovered& recovered = opened.recovered;
    report.snapshot_index = recovered.snapshot ? recovered.snapshot->index : 0;
    report.commit_index = recovered.hard_state.commit;
    report.last_index = recovered.entries.empty() ? report.snapshot_index : recovered.entries.back().index;
    report.last_term = recovered.entries.empty() ? (recovered.snapshot ? recovered.snapshot->term : 0)
                                                 : recovered.entries.back().term;
    // The hard state's term is at least the last entry's; the new cluster continues from it.
    report.last_term = std::max(report.last_term, recovered.hard_state.term);
    CAIRN_RETURN_IF_ERROR(Replay(recovered, &state));
    CAIRN_RETURN_IF_ERROR(opened.wal->Close());
  }
  report.revision = state.kv.revision();
  report.key_count = CountKeys(state.kv);
  for (const auto& [id, member] : state.members.members()) {
    if (id != report.member_id) report.removed_members.push_back(member.name() + " (" + IdToHex(id) + ")");
  }
  if (options.dry_run) return report;

  // Random: only this member will ever hold it, and a second recovery must not reuse it.
  report.new_cluster_id = SystemRandom().Next() | 1;
  proto::CoordSnapshot image;
  image.set_format_version(1);
  image.set_kv(state.kv.Snapshot());
  *image.add_members() = NewMember(report.member_id, options.name, self_url);
  image.mutable_conf_state()->add_voters(report.member_id);
  image.set_cluster_id(report.new_cluster_id);
  uint64_t index = std::max<uint64_t>(report.last_index, 1);
  uint64_t term = std::max<uint64_t>(report.last_term, 1);
  CAIRN_ASSIGN_OR_RETURN(report.moved_aside, MoveAside(env, options.data_dir, "recover"));
  CAIRN_RETURN_IF_ERROR(WriteFreshState(env, options.data_dir, index, term, image,
                                        Identity{report.new_cluster_id, report.member_id, options.name}));
  std::string removed;
  for (const std::string& member : report.removed_members) removed += (removed.empty() ? "" : ",") + member;
  log::Info("coord.recovered", "name", options.name, "member_id", IdToHex(report.member_id), "old_cluster_id",
            IdToHex(report.old_cluster_id), "new_cluster_id", IdToHex(report.new_cluster_id), "commit_index",
            report.commit_index, "last_index", report.last_index, "revision", report.revision, "keys",
            report.key_count, "removed_members", removed, "moved_aside", report.moved_aside);
  return report;
}

}  // namespace cairn::coord
