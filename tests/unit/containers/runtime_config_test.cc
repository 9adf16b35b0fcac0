#include <stdlib.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cairn/containers/registry.h"
#include "cairn/containers/runtime.h"

namespace cairn::containers {
namespace {

TEST(ParseBindTest, AcceptsAndRefuses) {
  auto bind = ParseBind("/tmp:/data");
  ASSERT_TRUE(bind.ok()) << bind.status();
  EXPECT_EQ(bind->host_dir, std::filesystem::canonical("/tmp").string());
  EXPECT_EQ(bind->path, "/data");
  EXPECT_FALSE(bind->read_only);
  EXPECT_TRUE(ParseBind("/tmp:/data:ro")->read_only);
  EXPECT_EQ(BindText(*ParseBind("/tmp:/data:ro")), bind->host_dir + ":/data:ro");
  EXPECT_EQ(ParseBind("/tmp").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBind("/tmp:data").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBind("/tmp:/").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBind("/tmp:/a/../b").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBind("/tmp:/a:rx").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseBind("/no/such/dir:/a").status().code(), StatusCode::kNotFound);
}

TEST(LxcConfigTest, RootfsNetworkSignalsAndBinds) {
  ContainerSpec spec;
  spec.name = "c1";
  spec.binds.push_back({"/srv/data", "/data", false});
  spec.binds.push_back({"/srv/conf", "/etc/app", true});
  std::string config = LxcConfigText(spec, "/var/lib/cairn/containers/c1");
  EXPECT_NE(config.find("lxc.rootfs.path = dir:/var/lib/cairn/containers/c1/rootfs\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.net.0.type = empty\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.uts.name = c1\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.signal.halt = SIGUSR1\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.mount.entry = /srv/data data none bind,create=dir 0 0\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.mount.entry = /srv/conf etc/app none bind,create=dir,ro 0 0\n"), std::string::npos);
  spec.network = "veth:br0";
  config = LxcConfigText(spec, "/x");
  EXPECT_NE(config.find("lxc.net.0.type = veth\nlxc.net.0.link = br0\n"), std::string::npos);
  EXPECT_NE(config.find("lxc.init.cmd = /sbin/init\n"), std::string::npos) << "busybox's init by default";
}

// --init: a tree without /sbin/init (debootstrap minbase) runs another PID 1.
TEST(LxcConfigTest, InitCommand) {
  ContainerSpec spec;
  spec.name = "d1";
  spec.init = "/bin/sleep infinity";
  EXPECT_NE(LxcConfigText(spec, "/x").find("lxc.init.cmd = /bin/sleep infinity\n"), std::string::npos);
  EXPECT_TRUE(ValidateInit("/bin/sleep infinity").ok());
  EXPECT_EQ(ValidateInit("sleep infinity").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateInit("").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateInit("/bin/sh\nlxc.rootfs.path = /").code(), StatusCode::kInvalidArgument) << "no config injection";
}

TEST(RegistryTest, MemoryRegistryCreateListDelete) {
  MemoryRegistry registry;
  ASSERT_TRUE(registry.Create("/cairn/images/a", "1").ok());
  EXPECT_EQ(registry.Create("/cairn/images/a", "2").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.Put("/cairn/images/b", "3").ok());
  ASSERT_TRUE(registry.Put("/cairn/imagesX", "4").ok());
  auto list = registry.List("/cairn/images/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].second, "1");
  ASSERT_TRUE(registry.Delete("/cairn/images/a").ok());
  EXPECT_FALSE(registry.Get("/cairn/images/a")->has_value());
}

TEST(RegistryTest, RecordsRoundTripAndCorruptionIsReported) {
  MemoryRegistry registry;
  ImageRecord image;
  image.set_name("busybox");
  image.set_size_bytes(1234567890123ull);
  ASSERT_TRUE(registry.Put(std::string(kImagePrefix) + "busybox", ToJson(image)).ok());
  auto read = GetImage(registry, "busybox");
  ASSERT_TRUE(read.ok());
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->size_bytes(), 1234567890123ull);
  ASSERT_TRUE(registry.Put(std::string(kImagePrefix) + "bad", "{not json").ok());
  EXPECT_EQ(GetImage(registry, "bad").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ValidateName("image", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateName("image", "-x").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateName("image", "busybox-1.36_a.b").ok());
}

}  // namespace
}  // namespace cairn::containers
