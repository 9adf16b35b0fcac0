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
#include "cairn/containers/registry.h"
#include "cairn/containers/runtime.h"
#include "store_client.h"

namespace cairn::clusterctl {

struct ContainerPaths {
  std::string layer_root = containers::DefaultLayerRoot();
  std::string container_root = containers::DefaultContainerRoot();
  std::string host = containers::DefaultHostName();
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
  world->images = std::make_unique<containers::ImageStore>(*world->registry, paths.layer_root, world->clock);
  if (with_runtime) {
    CAIRN_ASSIGN_OR_RETURN(std::string unionmount, containers::FindUnionmount());
    world->runtime = std::make_unique<containers::LxcRuntime>(paths.container_root, unionmount);
    world->service = std::make_unique<containers::ContainerService>(*world->registry, *world->images, *world->runtime,
                                                                    paths.host, world->clock);
  }
  return world;
}

inline void AddLayerRootOption(CLI::App& verb, ContainerPaths& paths) {
  verb.add_option("--layer-root", paths.layer_root, "directory holding image layers (default $CAIRN_IMAGE_ROOT or /var/lib/cairn/images)");
}

inline void AddContainerRootOption(CLI::App& verb, ContainerPaths& paths) {
  AddLayerRootOption(verb, paths);
  verb.add_option("--container-root", paths.container_root,
                  "LXC path of this host's containers (default $CAIRN_CONTAINER_ROOT or /var/lib/cairn/containers)");
  verb.add_option("--this-host", paths.host, "this host's name (default $CAIRN_HOST or the host name)");
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
