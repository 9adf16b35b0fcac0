// clusterctl union ...: one-off union mounts outside containers and live branch changes.
//
//   clusterctl union mount --branch DIR=rw --branch DIR=ro ... MOUNTPOINT
//   clusterctl union umount MOUNTPOINT
//   clusterctl union branch add MOUNTPOINT DIR [--perm rw|ro|rr] [--position N]
//   clusterctl union branch del MOUNTPOINT DIR
//   clusterctl union branch mod MOUNTPOINT DIR --perm P
//   clusterctl union show MOUNTPOINT [-o json]
//
// mount runs build/bin/unionmount (the one next to clusterctl, or $CAIRN_UNIONMOUNT) as its own
// process and returns once the union is mounted. Everything else talks to a mounted union through
// its control channel, the user.unionmount.* extended attributes of the mount root
// (docs/union.md). Changes are checked here first (libs/union's rules) so a refusal names the
// reason; the union checks them again.
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <ostream>

#include "cairn/common/process.h"
#include "cairn/union/options.h"
#include "commands.h"

namespace cairn::clusterctl {
namespace {

using unionfs::BranchSpec;

constexpr const char* kControlPrefix = "user.unionmount.";

std::string ErrnoText(int error) { return std::strerror(error); }

// An absolute, canonical path of an existing directory. Errors name the argument.
Result<std::string> ExistingDirectory(const std::string& what, const std::string& path) {
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) == nullptr) return NotFoundError(what + " " + path + ": " + ErrnoText(errno));
  struct stat st;
  if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) return InvalidArgumentError(what + " " + path + " is not a directory");
  std::string result = real;
  if (result.find_first_of(":=,") != std::string::npos) {
    return InvalidArgumentError(what + " " + result + ": ':', '=' and ',' cannot appear in branch paths");
  }
  return result;
}

// The branch list of a mounted union, read through its control attribute.
Result<std::vector<BranchSpec>> ReadBranches(const std::string& mountpoint) {
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) return NotFoundError("mount point " + mountpoint + ": " + ErrnoText(errno));
  std::string name = std::string(kControlPrefix) + "branches";
  std::string value(4096, '\0');
  for (;;) {
    ssize_t n = getxattr(mountpoint.c_str(), name.c_str(), value.data(), value.size());
    if (n >= 0) {
      value.resize(static_cast<size_t>(n));
      break;
    }
    if (errno == ERANGE) {
      value.resize(value.size() * 4);
      continue;
    }
    if (errno == ENODATA || errno == ENOTSUP) {
      return FailedPreconditionError(mountpoint + " is not a unionmount mount point (no " + name + " attribute)");
    }
    return UnavailableError("reading " + name + " of " + mountpoint + ": " + ErrnoText(errno));
  }
  return unionfs::ParseBranchList(value);
}

// ---- union mount ---------------------------------------------------------------------------------

// Runs a helper program with our stdin, stdout and stderr, within --timeout. Returns its exit code.
Result<int> RunHelper(Context& context, const std::vector<std::string>& args) {
  auto result = RunProgram(args, RunOptions{.timeout = context.globals.TimeoutDuration(), .capture_output = false});
  if (result.status().code() == StatusCode::kDeadlineExceeded) {
    return DeadlineExceededError(result.status().message() + " (--timeout)");
  }
  if (!result.ok()) return result.status();
  return result->exit_code;
}

struct MountArgs {
  std::vector<std::string> branches;  // DIR=PERM as given
  std::string create;
  std::string whiteout;
  std::vector<std::string> options;
  std::string mountpoint;
};

// "DIR=PERM" (PERM optional) -> canonical "DIR=PERM".
Result<std::string> BranchArgument(const std::string& text) {
  size_t eq = text.rfind('=');
  std::string dir = text, perm;
  if (eq != std::string::npos) {
    dir = text.substr(0, eq);
    perm = text.substr(eq + 1);
    CAIRN_RETURN_IF_ERROR(unionfs::ParseBranchMode(perm).status());
  }
  CAIRN_ASSIGN_OR_RETURN(std::string real, ExistingDirectory("branch", dir));
  return perm.empty() ? real : real + "=" + perm;
}

Result<std::string> MountOptionString(const MountArgs& args) {
  std::string dirs;
  for (const std::string& branch : args.branches) {
    CAIRN_ASSIGN_OR_RETURN(std::string canonical, BranchArgument(branch));
    dirs += (dirs.empty() ? "" : ":") + canonical;
  }
  std::string options = "dirs=" + dirs;
  if (!args.create.empty()) options += ",create=" + args.create;
  if (!args.whiteout.empty()) options += ",whiteout=" + args.whiteout;
  for (const std::string& option : args.options) options += "," + option;
  // The same checks unionmount makes, here first so the message comes straight back.
  unionfs::MountOptions parsed;
  CAIRN_RETURN_IF_ERROR(unionfs::ParseMountOptionString(options, &parsed, nullptr));
  CAIRN_RETURN_IF_ERROR(unionfs::ValidateMountOptions(parsed, args.mountpoint));
  return options;
}

int Fail(Context& context, const Status& status) {
  *context.err << "clusterctl union: " << status.message() << "\n";
  return kExitFailed;
}

int RunMount(Context& context, const MountArgs& args) {
  auto dir = ExistingDirectory("mount point", args.mountpoint);
  if (!dir.ok()) return Fail(context, dir.status());
  if (ReadBranches(*dir).ok()) return Fail(context, FailedPreconditionError(*dir + " is already a union mount"));
  auto options = MountOptionString(args);
  if (!options.ok()) return Fail(context, options.status());
  auto program = FindProgram("unionmount", "CAIRN_UNIONMOUNT");
  if (!program.ok()) return Fail(context, program.status());
  // unionmount returns once the mount is ready and serves it from a background process.
  auto code = RunHelper(context, {*program, "-o", *options, *dir});
  if (!code.ok()) return Fail(context, code.status());
  if (*code != 0) return Fail(context, InternalError("unionmount exited with status " + std::to_string(*code)));
  auto branches = ReadBranches(*dir);
  if (!branches.ok()) return Fail(context, branches.status());
  *context.out << "mounted " << *dir << ": " << unionfs::FormatBranchList(*branches) << "\n";
  return kExitOk;
}

// ---- union umount ---------------------------------------------------------------------------------

int RunUmount(Context& context, const std::string& mountpoint) {
  auto dir = ExistingDirectory("mount point", mountpoint);
  if (!dir.ok()) return Fail(context, dir.status());
  auto branches = ReadBranches(*dir);
  if (!branches.ok()) return Fail(context, branches.status());
  if (umount2(dir->c_str(), 0) != 0) {
    int error = errno;
    if (error == EBUSY) return Fail(context, FailedPreconditionError(*dir + " is busy (files open or a process inside it)"));
    if (error != EPERM) return Fail(context, UnavailableError("unmounting " + *dir + ": " + ErrnoText(error)));
    // Not root: the FUSE helper may unmount the user's own mounts.
    auto code = RunHelper(context, {"/bin/fusermount3", "-u", *dir});
    if (!code.ok()) return Fail(context, code.status());
    if (*code != 0) return Fail(context, InternalError("fusermount3 -u " + *dir + " failed"));
  }
  *context.out << "unmounted " << *dir << "\n";
  return kExitOk;
}

// ---- union show / branch ----------------------------------------------------------------------------

void PrintBranches(Context& context, const std::string& mountpoint, const std::vector<BranchSpec>& branches) {
  std::ostream& out = *context.out;
  switch (context.globals.output_format()) {
    case OutputFormat::kJson: {
      out << "{\"mountpoint\":" << JsonString(mountpoint) << ",\"branches\":[";
      for (size_t i = 0; i < branches.size(); ++i) {
        out << (i == 0 ? "" : ",") << "{\"index\":" << i << ",\"path\":" << JsonString(branches[i].path)
            << ",\"perm\":" << JsonString(unionfs::BranchModeName(branches[i].mode)) << "}";
      }
      out << "]}\n";
      break;
    }
    case OutputFormat::kYaml:
      out << "mountpoint: " << JsonString(mountpoint) << "\nbranches:\n";
      for (size_t i = 0; i < branches.size(); ++i) {
        out << "  - index: " << i << "\n    path: " << JsonString(branches[i].path)
            << "\n    perm: " << unionfs::BranchModeName(branches[i].mode) << "\n";
      }
      break;
    case OutputFormat::kTable:
      out << "INDEX  PERM  BRANCH\n";
      for (size_t i = 0; i < branches.size(); ++i) {
        out << i << std::string(i < 10 ? 6 : 5, ' ') << unionfs::BranchModeName(branches[i].mode) << "    "
            << branches[i].path << "\n";
      }
      break;
  }
}

int RunShow(Context& context, const std::string& mountpoint) {
  auto dir = ExistingDirectory("mount point", mountpoint);
  if (!dir.ok()) return Fail(context, dir.status());
  auto branches = ReadBranches(*dir);
  if (!branches.ok()) return Fail(context, branches.status());
  PrintBranches(context, *dir, *branches);
  return kExitOk;
}

// The path a branch was mounted with: canonical when it still exists (the CLI mounts canonical
// paths), else the absolute form of what was typed (a branch directory may be gone already).
std::string BranchPath(const std::string& path) {
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) != nullptr) return real;
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  return getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" + path : path;
}

// Checks a change against libs/union's rules, sends it, prints the resulting list.
int SendBranchCommand(Context& context, const std::string& mountpoint, const std::string& command,
                      const std::string& argument) {
  auto dir = ExistingDirectory("mount point", mountpoint);
  if (!dir.ok()) return Fail(context, dir.status());
  auto current = ReadBranches(*dir);
  if (!current.ok()) return Fail(context, current.status());
  auto next = unionfs::ApplyBranchCommand(*current, command, argument);
  Status valid = next.status();
  if (valid.ok()) valid = unionfs::CheckOutsideMount(*next, *dir);
  if (valid.ok()) {
    unionfs::MountOptions options;
    options.branches = *next;
    valid = unionfs::ValidateMountOptions(options, "");
  }
  if (!valid.ok()) return Fail(context, valid);
  std::string name = std::string(kControlPrefix) + command;
  if (setxattr(dir->c_str(), name.c_str(), argument.data(), argument.size(), 0) != 0) {
    int error = errno;
    return Fail(context, UnavailableError("the union at " + *dir + " refused \"" + command + " " + argument +
                                          "\": " + ErrnoText(error) + " (its log names the reason)"));
  }
  auto now = ReadBranches(*dir);
  if (!now.ok()) return Fail(context, now.status());
  PrintBranches(context, *dir, *now);
  return kExitOk;
}

int RunBranchAdd(Context& context, const std::string& mountpoint, const std::string& branch,
                 const std::string& perm, int position) {
  auto mode = unionfs::ParseBranchMode(perm);
  if (!mode.ok()) return Fail(context, mode.status());
  auto dir = ExistingDirectory("branch", branch);
  if (!dir.ok()) return Fail(context, dir.status());
  if (position < 0) return Fail(context, InvalidArgumentError("--position must be 0 (top) or more"));
  return SendBranchCommand(context, mountpoint, "add", std::to_string(position) + ":" + *dir + "=" + perm);
}

int RunBranchDel(Context& context, const std::string& mountpoint, const std::string& branch) {
  return SendBranchCommand(context, mountpoint, "del", BranchPath(branch));
}

int RunBranchMod(Context& context, const std::string& mountpoint, const std::string& branch, const std::string& perm) {
  auto mode = unionfs::ParseBranchMode(perm);
  if (!mode.ok()) return Fail(context, mode.status());
  return SendBranchCommand(context, mountpoint, "mod", BranchPath(branch) + "=" + perm);
}

// ---- registration -------------------------------------------------------------------------------------

void AddMount(CLI::App& group, Context& context) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* mount = group.add_subcommand("mount", "mount a union of directories (runs unionmount; returns once mounted)");
  mount->add_option("--branch,-b", args->branches, "DIR=rw|ro|rr, top first; repeat for each branch")->required();
  mount->add_option("--create", args->create, "create policy with several rw branches: tdp (default), rr, mfs");
  mount->add_option("--whiteout", args->whiteout, "whiteout format written: aufs (default) or overlay");
  mount->add_option("--option,-O", args->options, "extra unionmount/FUSE option (e.g. timeout=5); repeatable");
  mount->add_option("MOUNTPOINT", args->mountpoint, "an existing directory")->required();
  mount->callback([&context, args] { context.action = [&context, args] { return RunMount(context, *args); }; });
}

void AddUmount(CLI::App& group, Context& context) {
  auto mountpoint = std::make_shared<std::string>();
  CLI::App* umount = group.add_subcommand("umount", "unmount a union mounted by unionmount");
  umount->add_option("MOUNTPOINT", *mountpoint, "the union's mount point")->required();
  umount->callback([&context, mountpoint] {
    context.action = [&context, mountpoint] { return RunUmount(context, *mountpoint); };
  });
}

void AddShow(CLI::App& group, Context& context) {
  auto mountpoint = std::make_shared<std::string>();
  CLI::App* show = group.add_subcommand("show", "list a mounted union's branches, top first (-o json|yaml)");
  show->add_option("MOUNTPOINT", *mountpoint, "the union's mount point")->required();
  show->callback([&context, mountpoint] {
    context.action = [&context, mountpoint] { return RunShow(context, *mountpoint); };
  });
}

struct BranchArgs {
  std::string mountpoint;
  std::string dir;
  std::string perm;
  int position = 0;
};

void AddBranch(CLI::App& group, Context& context) {
  CLI::App* branch = group.add_subcommand("branch", "change a mounted union's branches live");
  branch->require_subcommand(1);

  auto add = std::make_shared<BranchArgs>();
  add->perm = "ro";
  CLI::App* add_cmd = branch->add_subcommand("add", "insert a branch (default: at the top, read-only)");
  add_cmd->add_option("MOUNTPOINT", add->mountpoint, "the union's mount point")->required();
  add_cmd->add_option("DIR", add->dir, "the directory to add")->required();
  add_cmd->add_option("--perm", add->perm, "rw, ro (default) or rr");
  add_cmd->add_option("--position", add->position, "0 = top (default), N = below the first N branches");
  add_cmd->callback([&context, add] {
    context.action = [&context, add] { return RunBranchAdd(context, add->mountpoint, add->dir, add->perm, add->position); };
  });

  auto del = std::make_shared<BranchArgs>();
  CLI::App* del_cmd = branch->add_subcommand("del", "remove a branch");
  del_cmd->add_option("MOUNTPOINT", del->mountpoint, "the union's mount point")->required();
  del_cmd->add_option("DIR", del->dir, "the branch to remove")->required();
  del_cmd->callback([&context, del] {
    context.action = [&context, del] { return RunBranchDel(context, del->mountpoint, del->dir); };
  });

  auto mod = std::make_shared<BranchArgs>();
  CLI::App* mod_cmd = branch->add_subcommand("mod", "change a branch's permission");
  mod_cmd->add_option("MOUNTPOINT", mod->mountpoint, "the union's mount point")->required();
  mod_cmd->add_option("DIR", mod->dir, "the branch to change")->required();
  mod_cmd->add_option("--perm", mod->perm, "rw, ro or rr")->required();
  mod_cmd->callback([&context, mod] {
    context.action = [&context, mod] { return RunBranchMod(context, mod->mountpoint, mod->dir, mod->perm); };
  });
}

}  // namespace

void AddUnionCommands(CLI::App& root, Context& context) {
  CLI::App* group = root.add_subcommand("union", "union mounts: mount, umount, show, branch add|del|mod");
  group->require_subcommand(1);
  AddMount(*group, context);
  AddUmount(*group, context);
  AddShow(*group, context);
  AddBranch(*group, context);
}

}  // namespace cairn::clusterctl
