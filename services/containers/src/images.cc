#include "cairn/containers/images.h"

#include <spawn.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "cairn/containers/busybox.h"
#include "cairn/containers/tree.h"

extern char** environ;

namespace cairn::containers {
namespace {

namespace fs = std::filesystem;

Status RunTar(const std::string& tar_file, const std::string& into) {
  std::vector<std::string> args = {"/bin/tar", "--extract", "--numeric-owner", "--same-permissions",
                                   "--file",   tar_file,    "--directory",     into};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (rc != 0) return IoError(std::string("running /bin/tar: ") + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InvalidArgumentError("tar could not unpack " + tar_file + " (see tar's message above)");
  }
  return Status::Ok();
}

Status CheckDirectory(const std::string& what, const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return NotFoundError(what + " " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(what + " " + dir + " is not a directory");
  return Status::Ok();
}

bool IsUnionPrivate(const std::string& name) {
  return name == ".wh..wh.index" || name.rfind(".wh..wh.tmp.", 0) == 0;
}

bool IsMetacopy(const std::string& path) {
  char value[8];
  return lgetxattr(path.c_str(), "trusted.cairn.metacopy", value, sizeof value) >= 0;
}

// Copies the content of source (a file in the union) over the existing file destination, whose
// mode and owner stay.
Status CopyContent(const std::string& source, const std::string& destination) {
  int in = open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return FailedPreconditionError("reading " + source + ": " + std::strerror(errno));
  int out = open(destination.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (out < 0) {
    close(in);
    return IoError("writing " + destination + ": " + std::strerror(errno));
  }
  char buffer[65536];
  Status status = Status::Ok();
  for (;;) {
    ssize_t n = read(in, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) status = IoError("reading " + source + ": " + std::strerror(errno));
      break;
    }
    if (write(out, buffer, static_cast<size_t>(n)) != n) {
      status = IoError("writing " + destination + ": " + std::strerror(errno));
      break;
    }
  }
  close(in);
  close(out);
  return status;
}

// Drops the union's private names from the staged copy and fills metadata-only copies from the
// union's view of the same path.
Status FinishCommit(const std::string& upper, const std::string& staged, const std::string& merged) {
  std::error_code error;
  std::vector<fs::path> private_names;
  for (auto it = fs::recursive_directory_iterator(staged, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (IsUnionPrivate(it->path().filename())) {
      private_names.push_back(it->path());
      if (it->is_directory(error)) it.disable_recursion_pending();
    }
  }
  if (error) return IoError("walking " + staged + ": " + error.message());
  for (const fs::path& path : private_names) CAIRN_RETURN_IF_ERROR(RemoveTree(path));
  for (auto it = fs::recursive_directory_iterator(upper, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (IsUnionPrivate(it->path().filename())) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(error) || it->is_symlink(error) || !IsMetacopy(it->path())) continue;
    std::string relative = fs::relative(it->path(), upper, error).string();
    CAIRN_RETURN_IF_ERROR(CopyContent(merged + "/" + relative, staged + "/" + relative));
  }
  if (error) return IoError("walking " + upper + ": " + error.message());
  return Status::Ok();
}

}  // namespace

std::string DefaultLayerRoot() {
  const char* env = std::getenv("CAIRN_IMAGE_ROOT");
  return env != nullptr && *env != '\0' ? env : "/var/lib/cairn/images";
}

ImageStore::ImageStore(Registry& registry, std::string layer_root, const Clock& clock)
    : registry_(registry), layer_root_(std::move(layer_root)), clock_(clock) {}

std::string ImageStore::LayerPath(const ImageRecord& image) const { return layer_root_ + "/" + image.layer(); }

Status ImageStore::CheckNameFree(const std::string& name) {
  CAIRN_RETURN_IF_ERROR(ValidateName("image", name));
  CAIRN_ASSIGN_OR_RETURN(std::optional<ImageRecord> existing, GetImage(registry_, name));
  if (existing) return AlreadyExistsError("image " + name + " already exists (clusterctl image rm " + name + " first)");
  return Status::Ok();
}

Result<std::string> ImageStore::TemporaryLayer(const std::string& name) {
  std::error_code error;
  fs::create_directories(layer_root_ + "/layers", error);
  if (error) return IoError("creating " + layer_root_ + "/layers: " + error.message());
  std::string pattern = layer_root_ + "/layers/.new-" + name + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp " + pattern + ": " + std::strerror(errno));
  // CopyTree wants a destination that does not exist: hand out a name inside the fresh directory.
  return pattern;
}

Result<ImageRecord> ImageStore::Make(const std::string& name, const std::string& parent, const std::string& source,
                                     const std::function<Status(const std::string&)>& fill) {
  CAIRN_RETURN_IF_ERROR(CheckNameFree(name));
  CAIRN_ASSIGN_OR_RETURN(std::string temporary, TemporaryLayer(name));
  std::string staged = temporary + "/layer";
  std::string final_path = layer_root_ + "/layers/" + name;
  auto cleanup = [&](Status status) {
    (void)RemoveTree(temporary);
    return status;
  };
  Status filled = fill(staged);
  if (!filled.ok()) return cleanup(filled);
  Result<std::string> digest = DigestTree(staged);
  if (!digest.ok()) return cleanup(digest.status());
  Result<TreeStats> stats = MeasureTree(staged);
  if (!stats.ok()) return cleanup(stats.status());
  // A directory left by a crash between rename and record creation has no record: replace it.
  (void)RemoveTree(final_path);
  if (rename(staged.c_str(), final_path.c_str()) != 0) {
    return cleanup(IoError("rename to " + final_path + ": " + std::strerror(errno)));
  }
  (void)RemoveTree(temporary);
  ImageRecord record;
  record.set_name(name);
  record.set_parent(parent);
  record.set_layer("layers/" + name);
  record.set_size_bytes(stats->size_bytes);
  record.set_disk_bytes(stats->disk_bytes);
  record.set_entries(stats->entries);
  record.set_created_unix(std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count());
  record.set_digest(*digest);
  record.set_source(source);
  Status created = registry_.Create(kImagePrefix + name, ToJson(record));
  if (!created.ok()) {
    (void)RemoveTree(final_path);
    return created;
  }
  return record;
}

Result<ImageRecord> ImageStore::BuildBusybox(const std::string& name, const std::string& busybox) {
  return Make(name, "", "busybox:" + busybox,
              [&](const std::string& staged) { return BuildBusyboxRootfs(staged, busybox); });
}

Result<ImageRecord> ImageStore::ImportDirectory(const std::string& name, const std::string& dir) {
  CAIRN_RETURN_IF_ERROR(CheckDirectory("--dir", dir));
  return Make(name, "", "dir:" + dir, [&](const std::string& staged) { return CopyTree(dir, staged); });
}

Result<ImageRecord> ImageStore::ImportTar(const std::string& name, const std::string& tar_file) {
  if (access(tar_file.c_str(), R_OK) != 0) return NotFoundError("--tar " + tar_file + ": " + std::strerror(errno));
  return Make(name, "", "tar:" + tar_file, [&](const std::string& staged) -> Status {
    if (mkdir(staged.c_str(), 0755) != 0) return IoError("mkdir " + staged + ": " + std::strerror(errno));
    return RunTar(tar_file, staged);
  });
}

Status ImageStore::VerifyBeforeUse(const std::string& name) {
  if (verified_cache_.empty()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::vector<ImageRecord> chain, Chain(name));
  std::error_code error;
  fs::create_directories(verified_cache_, error);
  for (const ImageRecord& image : chain) {
    std::string cached_file = verified_cache_ + "/" + image.name();
    std::string cached;
    std::ifstream(cached_file) >> cached;
    if (cached == image.digest()) continue;
    CAIRN_ASSIGN_OR_RETURN(std::string digest, DigestTree(LayerPath(image)));
    if (digest != image.digest()) {
      return CorruptionError("the layer of image " + image.name() + " (" + LayerPath(image) + ") has digest " + digest +
                             ", its record says " + image.digest() + "; it is not used (clusterctl image verify " +
                             image.name() + ")");
    }
    std::ofstream(cached_file + ".new") << digest << "\n";
    fs::rename(cached_file + ".new", cached_file, error);
  }
  return Status::Ok();
}

Result<ImageRecord> ImageStore::Commit(const std::string& name, const std::string& parent, const std::string& upper,
                                       const std::string& merged, const std::string& source) {
  CAIRN_RETURN_IF_ERROR(CheckDirectory("writable layer", upper));
  CAIRN_ASSIGN_OR_RETURN(std::optional<ImageRecord> parent_record, GetImage(registry_, parent));
  if (!parent_record) return NotFoundError("parent image " + parent + " does not exist (clusterctl image list)");
  return Make(name, parent, source, [&](const std::string& staged) -> Status {
    CAIRN_RETURN_IF_ERROR(CopyTree(upper, staged));
    return FinishCommit(upper, staged, merged);
  });
}

Result<ImageRecord> ImageStore::Build(const std::string& name, const std::string& parent, const std::string& changes) {
  CAIRN_RETURN_IF_ERROR(CheckDirectory("--dir", changes));
  CAIRN_ASSIGN_OR_RETURN(std::optional<ImageRecord> parent_record, GetImage(registry_, parent));
  if (!parent_record) return NotFoundError("parent image " + parent + " does not exist (clusterctl image list)");
  return Make(name, parent, "build:" + changes, [&](const std::string& staged) { return CopyTree(changes, staged); });
}

Result<ImageRecord> ImageStore::Get(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ImageRecord> record, GetImage(registry_, name));
  if (!record) return NotFoundError("image " + name + " does not exist (clusterctl image list)");
  return *record;
}

Result<std::vector<ImageRecord>> ImageStore::List() { return ListImages(registry_); }

Result<std::vector<ImageRecord>> ImageStore::Chain(const std::string& name) {
  std::vector<ImageRecord> chain;
  std::set<std::string> seen;
  std::string next = name;
  while (!next.empty()) {
    if (!seen.insert(next).second) return FailedPreconditionError("image " + name + " has a parent cycle at " + next);
    CAIRN_ASSIGN_OR_RETURN(ImageRecord record, Get(next));
    next = record.parent();
    chain.push_back(std::move(record));
  }
  return chain;
}

Result<std::vector<std::string>> ImageStore::LayerDirectories(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ImageRecord> chain, Chain(name));
  std::vector<std::string> dirs;
  for (const ImageRecord& image : chain) {
    std::string dir = LayerPath(image);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return NotFoundError("layer " + dir + " of image " + image.name() + " is missing on this host (layer root " +
                           layer_root_ + ", CAIRN_IMAGE_ROOT)");
    }
    dirs.push_back(dir);
  }
  return dirs;
}

Status ImageStore::Verify(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ImageRecord> chain, Chain(name));
  for (const ImageRecord& image : chain) {
    CAIRN_ASSIGN_OR_RETURN(std::string digest, DigestTree(LayerPath(image)));
    if (digest != image.digest()) {
      return CorruptionError("layer " + LayerPath(image) + " of image " + image.name() + " has digest " + digest +
                             ", the store says " + image.digest());
    }
  }
  return Status::Ok();
}

Result<std::vector<LayerUsage>> ImageStore::Usage(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<ImageRecord> chain, Chain(name));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ContainerRecord> containers, ListContainers(registry_));
  std::vector<LayerUsage> usage;
  for (const ImageRecord& image : chain) usage.push_back({image, 0, 0});
  for (const ContainerRecord& container : containers) {
    Result<std::vector<ImageRecord>> used = Chain(container.image());
    if (!used.ok()) continue;  // a container of a vanished image does not share these layers
    for (LayerUsage& layer : usage) {
      for (const ImageRecord& image : *used) {
        if (image.name() == layer.image.name()) ++layer.containers;
      }
    }
  }
  for (LayerUsage& layer : usage) layer.bytes_saved = layer.containers * layer.image.size_bytes();
  return usage;
}

Status ImageStore::Remove(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(ImageRecord record, Get(name));
  CAIRN_ASSIGN_OR_RETURN(std::vector<ImageRecord> images, List());
  std::string users;
  for (const ImageRecord& image : images) {
    if (image.parent() == name) users += (users.empty() ? "" : ", ") + ("image " + image.name());
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<ContainerRecord> containers, ListContainers(registry_));
  for (const ContainerRecord& container : containers) {
    if (container.image() == name) users += (users.empty() ? "" : ", ") + ("container " + container.name());
  }
  if (!users.empty()) return FailedPreconditionError("image " + name + " is in use by " + users + "; remove them first");
  CAIRN_RETURN_IF_ERROR(registry_.Delete(kImagePrefix + name));
  return RemoveTree(LayerPath(record));
}

}  // namespace cairn::containers
