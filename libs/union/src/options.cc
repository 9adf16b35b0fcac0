#include "cairn/union/options.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "cairn/common/strings.h"

namespace cairn::unionfs {
namespace {

// Canonical absolute path, or an error naming the branch.
Result<std::string> RealPath(const std::string& path) {
  char buffer[PATH_MAX];
  if (realpath(path.c_str(), buffer) == nullptr) return ErrnoError("branch " + path, errno);
  return std::string(buffer);
}

bool IsInside(const std::string& inner, const std::string& outer) {
  if (outer == "/") return true;
  return inner == outer || StartsWith(inner, outer + "/");
}

}  // namespace

std::string_view BranchModeName(BranchMode mode) {
  switch (mode) {
    case BranchMode::kReadWrite: return "rw";
    case BranchMode::kReadOnly: return "ro";
    case BranchMode::kRealReadOnly: return "rr";
  }
  return "?";
}

Result<BranchMode> ParseBranchMode(std::string_view text) {
  if (text == "rw") return BranchMode::kReadWrite;
  if (text == "ro") return BranchMode::kReadOnly;
  if (text == "rr") return BranchMode::kRealReadOnly;
  return InvalidArgumentError("unknown branch permission \"" + std::string(text) + "\" (use rw, ro or rr)");
}

Result<std::vector<BranchSpec>> ParseBranchList(std::string_view text) {
  std::vector<BranchSpec> branches;
  if (Trim(text).empty()) return InvalidArgumentError("empty branch list (expected dirs=/upper=rw:/lower=ro)");
  for (const std::string& item : Split(text, ':')) {
    if (item.empty()) return InvalidArgumentError("empty branch in \"" + std::string(text) + "\"");
    BranchSpec spec;
    size_t equals = item.rfind('=');
    bool has_mode = equals != std::string::npos;
    spec.path = has_mode ? item.substr(0, equals) : item;
    if (has_mode) {
      CAIRN_ASSIGN_OR_RETURN(spec.mode, ParseBranchMode(item.substr(equals + 1)));
    } else {
      spec.mode = branches.empty() ? BranchMode::kReadWrite : BranchMode::kReadOnly;
    }
    if (spec.path.empty() || spec.path[0] != '/') {
      return InvalidArgumentError("branch \"" + spec.path + "\" is not an absolute path");
    }
    branches.push_back(std::move(spec));
  }
  return branches;
}

Status ParseMountOptionString(std::string_view text, MountOptions* options, std::string* passthrough) {
  std::string upper;
  std::vector<std::string> lowers;
  for (const std::string& raw : Split(text, ',')) {
    std::string_view option = Trim(raw);
    if (option.empty()) continue;
    size_t equals = option.find('=');
    std::string key(option.substr(0, equals));
    std::string value = equals == std::string_view::npos ? "" : std::string(option.substr(equals + 1));
    if (key == "dirs" || key == "br") {
      CAIRN_ASSIGN_OR_RETURN(options->branches, ParseBranchList(value));
    } else if (key == "create") {
      if (value != "tdp" && value != "rr" && value != "mfs") {
        return InvalidArgumentError("create=" + value + ": unknown create policy (use tdp, rr or mfs)");
      }
      options->create_policy = value;
    } else if (key == "whiteout") {
      if (value == "aufs") {
        options->whiteout = WhiteoutFormat::kAufs;
      } else if (value == "overlay") {
        options->whiteout = WhiteoutFormat::kOverlay;
      } else {
        return InvalidArgumentError("whiteout=" + value + ": unknown format (use aufs or overlay)");
      }
    } else if (key == "timeout" || key == "rotimeout") {
      char* end = nullptr;
      double seconds = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || seconds < 0 || seconds > 86400) {
        return InvalidArgumentError(key + "=" + value + ": expected seconds between 0 and 86400");
      }
      (key == "timeout" ? options->cache_timeout : options->lower_cache_timeout) = seconds;
    } else if (key == "upperdir") {
      upper = value;
    } else if (key == "lowerdir") {
      lowers = Split(value, ':');
    } else if (key == "workdir") {
      // fuse-overlayfs needs a work directory; copy-up here uses temporary names in the upper branch.
    } else if (passthrough != nullptr) {
      if (!passthrough->empty()) passthrough->push_back(',');
      passthrough->append(option);
    }
  }
  if (!lowers.empty() || !upper.empty()) {
    if (!options->branches.empty()) return InvalidArgumentError("use either dirs= or lowerdir=/upperdir=, not both");
    if (!upper.empty()) options->branches.push_back({upper, BranchMode::kReadWrite});
    for (const std::string& lower : lowers) {
      if (lower.empty()) return InvalidArgumentError("empty directory in lowerdir=");
      options->branches.push_back({lower, BranchMode::kReadOnly});
    }
  }
  return Status::Ok();
}

Status ValidateMountOptions(const MountOptions& options, const std::string& mountpoint) {
  if (options.branches.empty()) return InvalidArgumentError("no branches given (use -o dirs=/upper=rw:/lower=ro)");
  std::vector<std::string> real_paths;
  std::vector<std::pair<dev_t, ino_t>> identities;
  for (const BranchSpec& branch : options.branches) {
    struct stat st;
    if (stat(branch.path.c_str(), &st) != 0) return ErrnoError("branch " + branch.path, errno);
    if (!S_ISDIR(st.st_mode)) return InvalidArgumentError("branch " + branch.path + " is not a directory");
    CAIRN_ASSIGN_OR_RETURN(std::string real, RealPath(branch.path));
    for (size_t i = 0; i < real_paths.size(); ++i) {
      if ((identities[i].first == st.st_dev && identities[i].second == st.st_ino) || real_paths[i] == real) {
        return InvalidArgumentError("branch " + branch.path + " is given twice (same directory as " +
                                    options.branches[i].path + ")");
      }
    }
    real_paths.push_back(real);
    identities.emplace_back(st.st_dev, st.st_ino);
  }
  if (mountpoint.empty()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::string real_mount, RealPath(mountpoint));
  for (size_t i = 0; i < real_paths.size(); ++i) {
    if (IsInside(real_mount, real_paths[i]) || IsInside(real_paths[i], real_mount)) {
      return InvalidArgumentError("mount point " + mountpoint + " overlaps branch " + options.branches[i].path +
                                  " (a mount point must not be inside a branch or contain one)");
    }
  }
  return Status::Ok();
}

Status CheckOutsideMount(const std::vector<BranchSpec>& branches, const std::string& real_mountpoint) {
  for (const BranchSpec& branch : branches) {
    // Lexically first: resolving a path inside the mount from within the mount's own request
    // handler would wait on the kernel lock that request holds.
    std::string lexical = std::filesystem::path(branch.path).lexically_normal().string();
    if (lexical.size() > 1 && lexical.back() == '/') lexical.pop_back();
    if (IsInside(lexical, real_mountpoint)) {
      return InvalidArgumentError("branch " + branch.path + " is inside the mount point " + real_mountpoint);
    }
    CAIRN_ASSIGN_OR_RETURN(std::string real, RealPath(branch.path));
    if (IsInside(real, real_mountpoint) || IsInside(real_mountpoint, real)) {
      return InvalidArgumentError("branch " + branch.path + " overlaps the mount point " + real_mountpoint);
    }
  }
  return Status::Ok();
}

std::string FormatBranchList(const std::vector<BranchSpec>& branches) {
  std::string text;
  for (const BranchSpec& branch : branches) {
    if (!text.empty()) text.push_back(':');
    text += branch.path + "=" + std::string(BranchModeName(branch.mode));
  }
  return text;
}

namespace {

Result<size_t> FindBranch(const std::vector<BranchSpec>& branches, std::string_view path) {
  for (size_t i = 0; i < branches.size(); ++i) {
    if (branches[i].path == path) return i;
  }
  return NotFoundError("no branch " + std::string(path) + " in " + FormatBranchList(branches));
}

Result<BranchSpec> ParseOneBranch(std::string_view text, BranchMode default_mode) {
  size_t equals = text.rfind('=');
  BranchSpec spec{std::string(text.substr(0, equals)), default_mode};
  if (equals != std::string_view::npos) {
    CAIRN_ASSIGN_OR_RETURN(spec.mode, ParseBranchMode(text.substr(equals + 1)));
  }
  if (spec.path.empty() || spec.path[0] != '/') {
    return InvalidArgumentError("branch \"" + spec.path + "\" is not an absolute path");
  }
  return spec;
}

}  // namespace

Result<std::vector<BranchSpec>> ApplyBranchCommand(const std::vector<BranchSpec>& current, std::string_view command,
                                                   std::string_view argument) {
  std::vector<BranchSpec> next = current;
  if (command == "set") return ParseBranchList(argument);
  if (command == "add") {
    size_t index = 0;
    if (!argument.empty() && argument[0] != '/') {
      size_t colon = argument.find(':');
      std::string number(argument.substr(0, colon));
      if (colon == std::string_view::npos || number.find_first_not_of("0123456789") != std::string::npos) {
        return InvalidArgumentError("add expects [INDEX:]/path[=mode], got \"" + std::string(argument) + "\"");
      }
      index = static_cast<size_t>(std::stoul(number));
      argument = argument.substr(colon + 1);
    }
    if (index > next.size()) {
      return OutOfRangeError("index " + std::to_string(index) + " is past the " + std::to_string(next.size()) +
                             " branches");
    }
    CAIRN_ASSIGN_OR_RETURN(BranchSpec spec, ParseOneBranch(argument, BranchMode::kReadOnly));
    if (FindBranch(next, spec.path).ok()) return AlreadyExistsError("branch " + spec.path + " is already in the union");
    next.insert(next.begin() + static_cast<std::ptrdiff_t>(index), spec);
    return next;
  }
  if (command == "del") {
    CAIRN_ASSIGN_OR_RETURN(size_t index, FindBranch(next, argument));
    if (next.size() == 1) return FailedPreconditionError("cannot remove the last branch");
    next.erase(next.begin() + static_cast<std::ptrdiff_t>(index));
    return next;
  }
  if (command == "mod") {
    CAIRN_ASSIGN_OR_RETURN(BranchSpec spec, ParseOneBranch(argument, BranchMode::kReadOnly));
    if (argument.find('=') == std::string_view::npos) return InvalidArgumentError("mod expects /path=rw|ro|rr");
    CAIRN_ASSIGN_OR_RETURN(size_t index, FindBranch(next, spec.path));
    next[index].mode = spec.mode;
    return next;
  }
  return InvalidArgumentError("unknown branch command \"" + std::string(command) + "\" (use add, del, mod or set)");
}

}  // namespace cairn::unionfs
