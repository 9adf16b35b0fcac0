// What the image and container verbs share: opening the store, the image store and (for
// containers) the LXC runtime of this host, from the global options and the --layer-root /
// --container-root options (defaults: $CAIRN_IMAGE_ROOT, $CAIRN_CONTAINER_ROOT, /var/lib/cairn/...).
// Header-only so the verb files stay the only sources in CMake.
#pragma once

#include <ctime>
#include <memory>
#include <string>

#include "cairn/common/clock.h"
#include "cairn/containers/containers.h"
#include "cairn/containers/images.h"
#include "cairn/containers/placement.h"
#include "cairn/containers/volumes.h"
#include "cairn/containers/registry.h"
#include "cairn/containers/runtime.h"
#include "store_client.h"

namespace cairn::clusterctl {

struct ContainerPaths {
  std::string layer_root = containers::DefaultLayerRoot();
  std::string container_root = containers::DefaultContainerRoot();
  std::string host = containers::DefaultHostName();
  std::string volume_root = containers::DefaultVolumeRoot();
  std::string image_volume = containers::DefaultImageVolume();
};

// Everything a verb needs, owned together (the members refer to each other).
struct ContainerWorld {
  std::unique_ptr<etcdclient::EtcdClient> client;
  std::unique_ptr<containers::EtcdRegistry> registry;
  RealClock clock;
  std::unique_ptr<containers::ImageStore> images;
  std::unique_ptr<containers::LxcRuntime> runtime;       // only with with_runtime
  std::unique_ptr<containers::ContainerService> service;  // only with with_runtime
};

// Opens the store (global --endpoints) and the image store; with_runtime also the LXC runtime and
// the container service (needs unionmount). Errors: a bad endpoint list, unionmount missing.
inline Result<std::unique_ptr<ContainerWorld>> OpenWorld(const Context& context, const ContainerPaths& paths,
                                                         bool with_runtime) {
  auto world = std::make_unique<ContainerWorld>();
  CAIRN_ASSIGN_OR_RETURN(world->client, MakeClient(context));
  world->registry = std::make_unique<containers::EtcdRegistry>(*world->client);
  containers::VolumeMounting mounting;
  mounting.volume_root = paths.volume_root;
  for (const HostPort& endpoint : context.globals.EndpointList().value_or(std::vector<HostPort>{})) {
    mounting.endpoints.push_back(endpoint.ToString());
  }
  std::string layer_root = paths.layer_root;
  if (!paths.image_volume.empty()) {
    // The layers are on a replicated volume: this host's mount of it is the layer root.
    CAIRN_RETURN_IF_ERROR(containers::CheckVolumeStarted(*world->registry, paths.image_volume));
    CAIRN_ASSIGN_OR_RETURN(layer_root,
                           containers::EnsureVolumeMounted(mounting, paths.image_volume, std::chrono::seconds(30)));
  }
  world->images = std::make_unique<containers::ImageStore>(*world->registry, layer_root, world->clock);
  if (with_runtime) {
    CAIRN_ASSIGN_OR_RETURN(std::string unionmount, containers::FindUnionmount());
    world->runtime = std::make_unique<containers::LxcRuntime>(paths.container_root, unionmount);
    world->service = std::make_unique<containers::ContainerService>(*world->registry, *world->images, *world->runtime,
                                                                    paths.host, world->clock);
    world->service->set_volume_mounting(mounting);
    if (!paths.image_volume.empty()) {
      world->images->set_verified_cache(paths.container_root + "/.verified");
      world->service->set_image_volume(paths.image_volume);
    }
  }
  return world;
}

inline void AddLayerRootOption(CLI::App& verb, ContainerPaths& paths) {
  verb.add_option("--layer-root", paths.layer_root, "directory holding image layers (default $CAIRN_IMAGE_ROOT or /var/lib/cairn/images)");
  verb.add_option("--image-volume", paths.image_volume,
                  "keep image layers on this replicated volume (mounted here under the volume root; default $CAIRN_IMAGE_VOLUME)");
}

inline void AddContainerRootOption(CLI::App& verb, ContainerPaths& paths) {
  AddLayerRootOption(verb, paths);
  verb.add_option("--container-root", paths.container_root,
                  "LXC path of this host's containers (default $CAIRN_CONTAINER_ROOT or /var/lib/cairn/containers)");
  verb.add_option("--this-host", paths.host, "this host's name (default $CAIRN_HOST or the host name)");
  verb.add_option("--volume-root", paths.volume_root,
                  "where this host mounts volumes for --volume (default $CAIRN_VOLUME_ROOT or /run/cairn/volumes)");
}

// "2026-11-27 05:40:00" (UTC) for a record's created time.
inline std::string FormatUnixTime(int64_t seconds) {
  std::time_t time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts);
  return text;
}

}  // namespace cairn::clusterctl
