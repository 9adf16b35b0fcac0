// clusterctl snapshot save|status: backups of the coordination store, as etcdctl snapshot save and
// etcdutl snapshot status do them. save streams POST /v3/maintenance/snapshot from one member
// (libs/etcdclient SnapshotSave: FILE.part, fsync, checksum check, rename); status checks a file
// offline. Restoring is offline too: `clusterd restore --snapshot FILE --config node.yaml`
// (docs/coord.md "Backup and restore").
#include <memory>
#include <ostream>

#include "cairn/common/ids.h"
#include "cairn/coord/node/backup_file.h"
#include "cairn/etcdclient/etcd_client.h"
#include "commands.h"
#include "store_client.h"

namespace cairn::clusterctl {
namespace {

std::string HeaderJson(const coord::BackupHeader& header, uint64_t size, const std::string& checksum) {
  return "{\"hash\":" + JsonString(checksum) + ",\"revision\":" + std::to_string(header.revision) +
         ",\"totalKey\":" + std::to_string(header.key_count) + ",\"totalSize\":" + std::to_string(size) +
         ",\"raftIndex\":" + std::to_string(header.raft_index) + ",\"raftTerm\":" + std::to_string(header.raft_term) +
         ",\"members\":" + std::to_string(header.member_count) + ",\"clusterId\":" +
         JsonString(IdToHex(header.cluster_id)) + ",\"memberId\":" + JsonString(IdToHex(header.member_id)) +
         ",\"compactRevision\":" + std::to_string(header.compact_revision) + "}";
}

int RunSave(Context& context, const std::string& path) {
  auto client = MakeClient(context);
  if (!client.ok()) return Fail(context, "snapshot save", client.status());
  auto saved = (*client)->SnapshotSave(path);
  if (!saved.ok()) return Fail(context, "snapshot save", saved.status());
  if (!saved->cairn) {
    *context.out << "Snapshot saved at " << path << " (" << saved->size_bytes << " bytes from "
                 << saved->endpoint.ToString() << ", not a Cairn store snapshot: unchecked)\n";
    return kExitOk;
  }
  if (JsonOutput(context)) {
    *context.out << HeaderJson(*saved->cairn, saved->size_bytes, saved->checksum) << "\n";
    return kExitOk;
  }
  const coord::BackupHeader& header = *saved->cairn;
  *context.out << "Snapshot saved at " << path << "\n"
               << "revision " << header.revision << ", " << header.key_count << " keys, "
               << HumanBytes(saved->size_bytes) << " (" << saved->size_bytes << " bytes), sha256 " << saved->checksum
               << "\nfrom member " << IdToHex(header.member_id) << " at " << saved->endpoint.ToString()
               << " (raft index " << header.raft_index << ")\n";
  return kExitOk;
}

int RunStatus(Context& context, const std::string& path) {
  auto backup = coord::ReadBackupFile(env::DefaultEnv(), path);
  if (!backup.ok()) return Fail(context, "snapshot status", backup.status());
  const coord::BackupHeader& header = backup->header;
  if (JsonOutput(context)) {
    *context.out << HeaderJson(header, backup->size_bytes, backup->checksum_hex) << "\n";
    return kExitOk;
  }
  *context.out << "HASH: " << backup->checksum_hex << " (checked)\n"
               << "REVISION: " << header.revision << "\n"
               << "COMPACT REVISION: " << header.compact_revision << "\n"
               << "TOTAL KEYS: " << header.key_count << "\n"
               << "TOTAL SIZE: " << HumanBytes(backup->size_bytes) << " (" << backup->size_bytes << " bytes)\n"
               << "RAFT INDEX: " << header.raft_index << " (term " << header.raft_term << ")\n"
               << "MEMBERS: " << header.member_count << "\n"
               << "CLUSTER ID: " << IdToHex(header.cluster_id) << "\n"
               << "TAKEN FROM MEMBER: " << IdToHex(header.member_id) << "\n";
  return kExitOk;
}

}  // namespace

void AddSnapshotCommands(CLI::App& root, Context& context) {
  CLI::App* snapshot = root.add_subcommand("snapshot", "save and check backups of the coordination store");
  snapshot->require_subcommand(1);

  auto save_path = std::make_shared<std::string>();
  CLI::App* save = snapshot->add_subcommand(
      "save", "stream a consistent snapshot from a member to FILE (FILE.part, fsync, check, rename)");
  save->add_option("FILE", *save_path, "where to write it")->required();
  save->callback([&context, save_path] { context.action = [&context, save_path] { return RunSave(context, *save_path); }; });

  auto status_path = std::make_shared<std::string>();
  CLI::App* status = snapshot->add_subcommand("status", "check a snapshot file: checksum, revision, keys, size");
  status->add_option("FILE", *status_path, "the snapshot file")->required();
  status->callback([&context, status_path] {
    context.action = [&context, status_path] { return RunStatus(context, *status_path); };
  });
}

}  // namespace cairn::clusterctl
