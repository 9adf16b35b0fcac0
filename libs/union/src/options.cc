#include "cairn/union/options.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

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

}  // namespace cairn::unionfs
