// clusterctl image ...: container images (read-only layers + records in the store).
//
//   clusterctl image build-busybox NAME [--busybox /bin/busybox]
//   clusterctl image import NAME --dir DIR | --tar FILE
//   clusterctl image build NAME --from PARENT --dir CHANGES
//   clusterctl image build NAME --from-container C     (C's writable layer over C's image; C stopped)
//   clusterctl image list | show NAME | verify NAME | rm NAME
//
// Every verb takes --layer-root (default $CAIRN_IMAGE_ROOT or /var/lib/cairn/images) and talks to
// the store given by --endpoints. The work is in services/containers (ImageStore); docs/containers.md.
#include <iomanip>
#include <memory>
#include <ostream>

#include "cairn/containers/busybox.h"
#include "commands.h"
#include "image_cli.h"

namespace cairn::clusterctl {
namespace {

using containers::ImageRecord;
using containers::LayerUsage;

struct ImageArgs {
  ContainerPaths paths;
  std::string name, dir, tar, from, from_container;
  std::string busybox = containers::kDefaultBusybox;
};

void PrintMade(const Context& context, const ImageRecord& image) {
  if (JsonOutput(context)) {
    *context.out << containers::ToJson(image) << "\n";
    return;
  }
  *context.out << "image " << image.name() << " created: " << image.entries() << " entries, "
               << HumanBytes(image.size_bytes()) << ", " << image.digest() << "\n";
}

// Runs make(world) and prints the new image.
template <typename Make>
int RunMake(Context& context, const std::string& verb, const ImageArgs& args, Make make) {
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, verb, world.status());
  Result<ImageRecord> image = make(*(*world)->images);
  if (!image.ok()) return Fail(context, verb, image.status());
  PrintMade(context, *image);
  return kExitOk;
}

int RunImport(Context& context, const ImageArgs& args) {
  if (args.dir.empty() == args.tar.empty()) {
    return Fail(context, "image import", InvalidArgumentError("give exactly one of --dir DIR and --tar FILE"));
  }
  return RunMake(context, "image import", args, [&](containers::ImageStore& images) {
    return args.dir.empty() ? images.ImportTar(args.name, args.tar) : images.ImportDirectory(args.name, args.dir);
  });
}

// image build NAME --from-container C: C's writable layer as one more layer over C's image. C must
// be on this host and not running; its union is mounted (again) to read metadata-only copy-ups.
Result<ImageRecord> CommitContainer(ContainerWorld& world, const ImageArgs& args) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<containers::ContainerRecord> record,
                         containers::GetContainer(*world.registry, args.from_container));
  if (!record) return NotFoundError("container " + args.from_container + " does not exist (clusterctl container list)");
  if (record->host() != args.paths.host) {
    return FailedPreconditionError("container " + record->name() + " is on host " + record->host() +
                                   "; build the image there (or --this-host " + record->host() + " on that machine)");
  }
  if (!record->rootfs_from().empty() || record->read_only()) {
    return FailedPreconditionError("container " + record->name() +
                                   " layers over another container's root; only a container made from an image can be committed");
  }
  if (record->container_dir().empty()) return FailedPreconditionError("container " + record->name() + " is not made yet");
  CAIRN_ASSIGN_OR_RETURN(std::string unionmount, containers::FindUnionmount());
  std::string dir = record->container_dir();
  containers::LxcRuntime runtime(dir.substr(0, dir.rfind('/')), unionmount);
  std::string state = runtime.State(record->name()).value_or("MISSING");
  if (state != "STOPPED") {
    return FailedPreconditionError("container " + record->name() + " is " + state +
                                   "; stop it first (a layer that changes while it is copied makes no consistent image)");
  }
  containers::ContainerSpec spec;
  spec.name = record->name();
  spec.layers.assign(record->layers().begin(), record->layers().end());
  CAIRN_RETURN_IF_ERROR(runtime.MountRootfs(spec, std::chrono::seconds(30)));
  return world.images->Commit(args.name, record->image(), runtime.UpperDir(record->name()),
                              runtime.RootfsDir(record->name()), "container:" + record->name());
}

int RunBuild(Context& context, const ImageArgs& args) {
  bool from_dir = !args.from.empty() && !args.dir.empty();
  bool from_container = !args.from_container.empty();
  if (from_dir == from_container || (from_container && (!args.from.empty() || !args.dir.empty()))) {
    return Fail(context, "image build",
                InvalidArgumentError("give either --from PARENT --dir CHANGES, or --from-container CONTAINER"));
  }
  if (from_dir) {
    return RunMake(context, "image build", args,
                   [&](containers::ImageStore& images) { return images.Build(args.name, args.from, args.dir); });
  }
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, "image build", world.status());
  Result<ImageRecord> image = CommitContainer(**world, args);
  if (!image.ok()) return Fail(context, "image build", image.status());
  PrintMade(context, *image);
  return kExitOk;
}

int RunList(Context& context, const ImageArgs& args) {
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, "image list", world.status());
  auto images = (*world)->images->List();
  if (!images.ok()) return Fail(context, "image list", images.status());
  if (JsonOutput(context)) {
    *context.out << "[";
    for (size_t i = 0; i < images->size(); ++i) *context.out << (i ? "," : "") << containers::ToJson((*images)[i]);
    *context.out << "]\n";
    return kExitOk;
  }
  std::ostream& out = *context.out;
  out << std::left << std::setw(20) << "NAME" << std::setw(16) << "PARENT" << std::setw(11) << "SIZE"
      << std::setw(21) << "CREATED" << "DIGEST\n";
  for (const ImageRecord& image : *images) {
    out << std::setw(20) << image.name() << std::setw(16) << (image.parent().empty() ? "-" : image.parent())
        << std::setw(11) << HumanBytes(image.size_bytes()) << std::setw(21) << FormatUnixTime(image.created_unix())
        << image.digest().substr(0, 19) << "\n";
  }
  return kExitOk;
}

void PrintUsageJson(std::ostream& out, const ImageRecord& image, const std::vector<LayerUsage>& layers) {
  out << "{\"image\":" << containers::ToJson(image) << ",\"layers\":[";
  uint64_t saved = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    saved += layers[i].bytes_saved;
    out << (i ? "," : "") << "{\"image\":" << JsonString(layers[i].image.name())
        << ",\"layer\":" << JsonString(layers[i].image.layer()) << ",\"size_bytes\":" << layers[i].image.size_bytes()
        << ",\"containers\":" << layers[i].containers << ",\"bytes_saved\":" << layers[i].bytes_saved << "}";
  }
  out << "],\"bytes_saved\":" << saved << "}\n";
}

int RunShow(Context& context, const ImageArgs& args) {
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, "image show", world.status());
  auto image = (*world)->images->Get(args.name);
  if (!image.ok()) return Fail(context, "image show", image.status());
  auto layers = (*world)->images->Usage(args.name);
  if (!layers.ok()) return Fail(context, "image show", layers.status());
  if (JsonOutput(context)) {
    PrintUsageJson(*context.out, *image, *layers);
    return kExitOk;
  }
  std::ostream& out = *context.out;
  out << "name:    " << image->name() << "\nparent:  " << (image->parent().empty() ? "-" : image->parent())
      << "\ncreated: " << FormatUnixTime(image->created_unix()) << "\ndigest:  " << image->digest()
      << "\nsize:    " << HumanBytes(image->size_bytes()) << " (" << image->entries() << " entries)"
      << "\nsource:  " << image->source() << "\nlayers (top first):\n";
  out << std::left << "  " << std::setw(20) << "IMAGE" << std::setw(11) << "SIZE" << std::setw(12) << "CONTAINERS"
      << "SAVED\n";
  uint64_t saved = 0;
  for (const LayerUsage& layer : *layers) {
    saved += layer.bytes_saved;
    out << "  " << std::setw(20) << layer.image.name() << std::setw(11) << HumanBytes(layer.image.size_bytes())
        << std::setw(12) << layer.containers << HumanBytes(layer.bytes_saved) << "\n";
  }
  out << "bytes saved against a full copy per container: " << saved << " (" << HumanBytes(saved) << ")\n";
  return kExitOk;
}

int RunVerify(Context& context, const ImageArgs& args) {
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, "image verify", world.status());
  Status status = (*world)->images->Verify(args.name);
  if (!status.ok()) return Fail(context, "image verify", status);
  *context.out << "image " << args.name << ": every layer matches its digest\n";
  return kExitOk;
}

int RunRemove(Context& context, const ImageArgs& args) {
  auto world = OpenWorld(context, args.paths, false);
  if (!world.ok()) return Fail(context, "image rm", world.status());
  Status status = (*world)->images->Remove(args.name);
  if (!status.ok()) return Fail(context, "image rm", status);
  *context.out << "image " << args.name << " removed\n";
  return kExitOk;
}

using Runner = int (*)(Context&, const ImageArgs&);

CLI::App* AddVerb(CLI::App& group, Context& context, const std::string& name, const std::string& help,
                  std::shared_ptr<ImageArgs> args, Runner run) {
  CLI::App* verb = group.add_subcommand(name, help);
  AddLayerRootOption(*verb, args->paths);
  verb->callback([&context, args, run] { context.action = [&context, args, run] { return run(context, *args); }; });
  return verb;
}

}  // namespace

void AddImageCommands(CLI::App& root, Context& context) {
  CLI::App* group = root.add_subcommand("image", "container images: build-busybox, import, build, list, show, verify, rm");
  group->require_subcommand(1);

  auto busybox = std::make_shared<ImageArgs>();
  CLI::App* verb = AddVerb(*group, context, "build-busybox", "a small base image from Debian's busybox-static", busybox,
                           [](Context& c, const ImageArgs& a) {
                             return RunMake(c, "image build-busybox", a, [&](containers::ImageStore& images) {
                               return images.BuildBusybox(a.name, a.busybox);
                             });
                           });
  verb->add_option("NAME", busybox->name, "image name")->required();
  verb->add_option("--busybox", busybox->busybox, "a statically linked busybox (default /bin/busybox)");

  auto import = std::make_shared<ImageArgs>();
  verb = AddVerb(*group, context, "import", "a base image from a directory tree or a tar file", import, RunImport);
  verb->add_option("NAME", import->name, "image name")->required();
  verb->add_option("--dir", import->dir, "copy this directory tree");
  verb->add_option("--tar", import->tar, "unpack this tar file");

  auto build = std::make_shared<ImageArgs>();
  verb = AddVerb(*group, context, "build", "a child image: one layer of changes over PARENT, or a container's changes",
                 build, RunBuild);
  verb->add_option("NAME", build->name, "image name")->required();
  verb->add_option("--from", build->from, "parent image");
  verb->add_option("--dir", build->dir, "the changes: files, .wh.NAME whiteouts, .wh..wh..opq markers");
  verb->add_option("--from-container", build->from_container,
                   "commit this stopped container's writable layer as a layer over its image");
  verb->add_option("--this-host", build->paths.host, "this host's name (default $CAIRN_HOST or the host name)");

  AddVerb(*group, context, "list", "every image", std::make_shared<ImageArgs>(), RunList);
  auto show = std::make_shared<ImageArgs>();
  AddVerb(*group, context, "show", "an image, its layers, containers per layer and bytes saved", show, RunShow)
      ->add_option("NAME", show->name, "image name")->required();
  auto verify = std::make_shared<ImageArgs>();
  AddVerb(*group, context, "verify", "recompute every layer's digest and compare with the store", verify, RunVerify)
      ->add_option("NAME", verify->name, "image name")->required();
  auto remove = std::make_shared<ImageArgs>();
  AddVerb(*group, context, "rm", "remove an image no container or child image uses", remove, RunRemove)
      ->add_option("NAME", remove->name, "image name")->required();
}

}  // namespace cairn::clusterctl
