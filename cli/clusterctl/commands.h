// One Add...Commands function per verb group, each defined in its own NAME_commands.cc.
// Add a group: write the file, declare its function here, call it in AddAllCommands (cli.cc).
#pragma once

#include "cli.h"

namespace cairn::clusterctl {

void AddConfigCommands(CLI::App& root, Context& context);  // config_commands.cc
void AddKvCommands(CLI::App& root, Context& context);      // kv_commands.cc
void AddLeaseCommands(CLI::App& root, Context& context);   // lease_commands.cc
void AddMemberCommands(CLI::App& root, Context& context);  // member_commands.cc (member)
void AddUnionCommands(CLI::App& root, Context& context);   // union_commands.cc
void AddVolumeCommands(CLI::App& root, Context& context);  // volume_commands.cc
void AddMountCommands(CLI::App& root, Context& context);   // mount_commands.cc (mount, umount)
void AddSnapshotCommands(CLI::App& root, Context& context);  // snapshot_commands.cc
void AddImageCommands(CLI::App& root, Context& context);      // image_commands.cc
void AddContainerCommands(CLI::App& root, Context& context);  // container_commands.cc
void AddTokenCommands(CLI::App& root, Context& context);      // token_commands.cc (token)
void AddApplyCommands(CLI::App& root, Context& context);      // apply_commands.cc (apply, get, describe, diff)
void AddStatusCommands(CLI::App& root, Context& context);     // status_commands.cc (status)

}  // namespace cairn::clusterctl
