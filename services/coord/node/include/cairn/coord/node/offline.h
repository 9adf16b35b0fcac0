// Offline operations on a member's data dir, run while its clusterd is stopped (clusterd restore
// and clusterd recover; docs/coord.md "Backup and restore", "Recovering from quorum loss").
//
// Both end the same way: the member's coordination state (DATA_DIR/coord) is replaced by a fresh
// WAL holding one snapshot (the store's keys, revisions and leases, a member table and the Raft
// configuration of a NEW cluster with a new cluster id) and the matching identity file. The node
// then starts from that snapshot as usual. Whatever DATA_DIR/coord held before is never deleted:
// it is renamed to DATA_DIR/coord.before-<what>-<unix seconds>, so the step can be undone.
//
// The caller must hold the data dir lock (clusterd's DATA_DIR/LOCK), so no node runs meanwhile.
// Not thread-safe; one call at a time per data dir.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/coord/node/backup_file.h"
#include "cairn/coord/node/identity.h"
#include "cairn/env/env.h"

namespace cairn::coord {

struct RestoreOptions {
  std::string data_dir;
  std::string name;      // this member
  std::string peer_url;  // this member's advertised "host:port" (its id derives from it)
  // The new cluster's voters, this member included, the same list on every member restored from
  // the same file (etcdutl's --initial-cluster). Empty: a one-member cluster of this member.
  std::vector<MemberSeed> members;
  // Replace existing coordination data (moved aside, not deleted). Without it a data dir that
  // holds any is refused.
  bool force = false;
  env::Env* env = nullptr;  // default env::DefaultEnv()
};

struct RestoreReport {
  uint64_t cluster_id = 0;  // the new cluster's
  uint64_t member_id = 0;
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  int64_t revision = 0;
  uint64_t key_count = 0;
  std::vector<uint64_t> voters;
  std::string moved_aside;  // where the previous DATA_DIR/coord went ("" if there was none)
};

// Writes the backup's state into options.data_dir as a member of a new cluster of `members`.
// Every member restored from the same file with the same member list gets the same cluster id
// (it hashes the list and the backup's checksum), which differs from the original cluster's, so
// members of the old cluster cannot talk to the new one by accident.
// Errors: InvalidArgument (options; this member not in `members`), FailedPrecondition (the data
// dir holds coordination data and force is off), I/O.
Result<RestoreReport> RestoreFromBackup(const RestoreOptions& options, const Backup& backup);

struct RecoverOptions {
  std::string data_dir;
  std::string name;
  std::string peer_url;
  bool dry_run = false;  // only inspect and report; change nothing
  env::Env* env = nullptr;
};

struct RecoverReport {
  uint64_t old_cluster_id = 0;
  uint64_t new_cluster_id = 0;  // 0 in a dry run
  uint64_t member_id = 0;
  uint64_t snapshot_index = 0;  // of the snapshot the log replay started from
  uint64_t commit_index = 0;    // as the member last knew it
  uint64_t last_index = 0;      // of its log: everything up to here is kept
  uint64_t last_term = 0;
  int64_t revision = 0;
  uint64_t key_count = 0;
  std::vector<std::string> removed_members;  // "name (id)" of every other member
  std::string moved_aside;
};

// etcd's --force-new-cluster, offline: rebuilds the state machine from the member's snapshot and
// every entry of its log (also those past its commit index: a write the lost majority committed
// may only be in the log here, and etcd keeps them too), then rewrites the data dir so the member
// restarts as the only voter of a new cluster (new random cluster id) holding all of it.
// Errors: NotFound (no coordination data), FailedPrecondition (identity file of another member),
// Corruption from the WAL, I/O.
Result<RecoverReport> ForceNewCluster(const RecoverOptions& options);

// True when DATA_DIR/coord holds a WAL or an identity file.
bool HasCoordData(env::Env* env, const std::string& data_dir);

}  // namespace cairn::coord
