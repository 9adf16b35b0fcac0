// Images: a read-only layer directory under the layer root plus an ImageRecord in the store.
// A child image is one more layer over its parent's chain, so images share their bases.
//
//   LAYER_ROOT/layers/NAME/        the layer (never written after it is registered)
//   LAYER_ROOT/layers/.new-NAME-*  a layer being made (removed on failure)
//
// Making an image: copy (or unpack) into a temporary directory, digest and measure it, rename it
// to layers/NAME, then create the record with a create-if-absent transaction; when that fails the
// layer is removed again, so nothing half-made stays. Removing: refuse while a child image or a
// container uses the image, delete the record, then the layer.
//
// Threading: one thread at a time (the Registry's rule). Errors are Status values that say what to
// do; see each method.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cairn/common/clock.h"
#include "cairn/common/status.h"
#include "cairn/containers/registry.h"

namespace cairn::containers {

// $CAIRN_IMAGE_ROOT, else /var/lib/cairn/images.
std::string DefaultLayerRoot();

// One layer of an image as `image show` reports it.
struct LayerUsage {
  ImageRecord image;          // the image that owns the layer
  uint64_t containers = 0;    // containers whose image chain includes this layer
  uint64_t bytes_saved = 0;   // containers * size_bytes: what a full copy per container would write
};

class ImageStore {
 public:
  // registry and clock must outlive the store. layer_root need not exist yet.
  ImageStore(Registry& registry, std::string layer_root, const Clock& clock);

  const std::string& layer_root() const { return layer_root_; }

  // Layers on a shared image volume: before a host first uses an image's layers it recomputes
  // their digests and remembers each verified one as a file cache_dir/IMAGE (holding the
  // digest), so it uses nothing it has not checked. Empty (the default): no check before use.
  void set_verified_cache(std::string cache_dir) { verified_cache_ = std::move(cache_dir); }
  // With a cache set: every layer of name's chain not yet verified here is digested and compared
  // with its record. Errors: Corruption naming the image whose layer differs, NotFound.
  Status VerifyBeforeUse(const std::string& name);

  // Builds a busybox rootfs (busybox.h) as a new base image.
  Result<ImageRecord> BuildBusybox(const std::string& name, const std::string& busybox);
  // A base image from a copy of directory dir.
  Result<ImageRecord> ImportDirectory(const std::string& name, const std::string& dir);
  // A base image from a tar file (unpacked by /bin/tar, owners numeric, any compression tar knows).
  Result<ImageRecord> ImportTar(const std::string& name, const std::string& tar_file);
  // A child image of parent whose layer is a copy of changes (may hold .wh.NAME whiteouts and
  // .wh..wh..opq opaque markers, docs/union.md).
  Result<ImageRecord> Build(const std::string& name, const std::string& parent, const std::string& changes);

  // A child image of parent from a container's writable layer (`image build --from-container`):
  // a copy of upper without the union's private names (.wh..wh.index, .wh..wh.tmp.*), where every
  // metadata-only copy-up (a sparse upper file marked trusted.cairn.metacopy, docs/union.md) gets
  // its data from merged, the container's mounted union root. The caller makes sure the
  // container does not run (a changing layer would not give a consistent image).
  // Errors: as Build; FailedPrecondition when a metacopy file cannot be read through merged.
  Result<ImageRecord> Commit(const std::string& name, const std::string& parent, const std::string& upper,
                             const std::string& merged, const std::string& source);

  // NotFound when the image does not exist.
  Result<ImageRecord> Get(const std::string& name);
  Result<std::vector<ImageRecord>> List();
  // The image and its ancestors, the image first. Errors: NotFound (also for a missing parent:
  // the store is inconsistent), FailedPrecondition for a parent cycle.
  Result<std::vector<ImageRecord>> Chain(const std::string& name);
  // Absolute layer directories of Chain(name), top first (the union branch order).
  Result<std::vector<std::string>> LayerDirectories(const std::string& name);
  std::string LayerPath(const ImageRecord& image) const;

  // Recomputes every layer's digest in the chain and compares with the records.
  // Errors: Corruption naming the layer whose digest differs, NotFound for a missing layer.
  Status Verify(const std::string& name);

  // Per layer of the chain (image first): how many containers use it and bytes saved.
  Result<std::vector<LayerUsage>> Usage(const std::string& name);

  // Errors: NotFound; FailedPrecondition naming the child images or containers that use it.
  Status Remove(const std::string& name);

 private:
  // Copies/unpacks with fill(temporary dir), then registers. parent may be empty.
  Result<ImageRecord> Make(const std::string& name, const std::string& parent, const std::string& source,
                           const std::function<Status(const std::string&)>& fill);
  Status CheckNameFree(const std::string& name);
  Result<std::string> TemporaryLayer(const std::string& name);

  Registry& registry_;
  std::string layer_root_;
  const Clock& clock_;
  std::string verified_cache_;
};

}  // namespace cairn::containers
