#include "cairn/containers/images.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cairn/common/clock.h"
#include "cairn/containers/busybox.h"
#include "cairn/containers/tree.h"

namespace cairn::containers {
namespace {

namespace fs = std::filesystem;

class ImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-images-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    base_ = dir_ + "/base";
    fs::create_directories(base_ + "/etc");
    fs::create_directories(base_ + "/bin");
    std::ofstream(base_ + "/etc/hostname") << "base\n";
    std::ofstream(base_ + "/etc/motd") << "hello\n";
    changes_ = dir_ + "/changes";
    fs::create_directories(changes_ + "/etc");
    std::ofstream(changes_ + "/etc/hostname") << "child\n";
    std::ofstream(changes_ + "/etc/.wh.motd");
    store_ = std::make_unique<ImageStore>(registry_, dir_ + "/root", clock_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void AddContainer(const std::string& name, const std::string& image) {
    ContainerRecord record;
    record.set_name(name);
    record.set_image(image);
    ASSERT_TRUE(registry_.Put(kContainerPrefix + name, ToJson(record)).ok());
  }

  std::string dir_, base_, changes_;
  MemoryRegistry registry_;
  FakeClock clock_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImagesTest, ImportRegistersLayerAndRecord) {
  auto image = store_->ImportDirectory("base", base_);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->layer(), "layers/base");
  EXPECT_EQ(image->digest(), DigestTree(base_).value());
  EXPECT_EQ(image->entries(), 4u);
  EXPECT_EQ(image->size_bytes(), 11u);
  EXPECT_GT(image->created_unix(), 0);
  EXPECT_TRUE(fs::exists(dir_ + "/root/layers/base/etc/motd"));
  auto stored = store_->Get("base");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->digest(), image->digest());
  // No temporary directory is left behind.
  for (const auto& entry : fs::directory_iterator(dir_ + "/root/layers")) {
    EXPECT_EQ(entry.path().filename(), "base");
  }
  EXPECT_TRUE(store_->Verify("base").ok());
}

TEST_F(ImagesTest, ChildImageLayersOverParent) {
  ASSERT_TRUE(store_->ImportDirectory("base", base_).ok());
  auto child = store_->Build("child", "base", changes_);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->parent(), "base");
  auto dirs = store_->LayerDirectories("child");
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_EQ(dirs->size(), 2u);
  EXPECT_EQ((*dirs)[0], dir_ + "/root/layers/child");
  EXPECT_EQ((*dirs)[1], dir_ + "/root/layers/base");
  EXPECT_TRUE(fs::exists((*dirs)[0] + "/etc/.wh.motd")) << "whiteouts are kept in the layer";
  EXPECT_EQ(store_->Build("orphan", "nope", changes_).status().code(), StatusCode::kNotFound);
}

TEST_F(ImagesTest, BadInputIsRefusedAndNothingIsLeft) {
  ASSERT_TRUE(store_->ImportDirectory("base", base_).ok());
  EXPECT_EQ(store_->ImportDirectory("base", base_).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->ImportDirectory("bad/name", base_).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ImportDirectory("x", dir_ + "/missing").status().code(), StatusCode::kNotFound);
  std::ofstream(dir_ + "/not-a-tar") << "garbage";
  EXPECT_FALSE(store_->ImportTar("t", dir_ + "/not-a-tar").ok());
  EXPECT_FALSE(store_->Get("t").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/root/layers/t"));
  size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir_ + "/root/layers")) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "a failed import leaves no directory";
  EXPECT_EQ(store_->Get("missing").status().code(), StatusCode::kNotFound);
}

TEST_F(ImagesTest, ImportTarUnpacks) {
  std::string tar = dir_ + "/base.tar";
  std::string command = "tar -C " + base_ + " -cf " + tar + " .";
  ASSERT_EQ(system(command.c_str()), 0);
  auto image = store_->ImportTar("fromtar", tar);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->digest(), DigestTree(base_).value());
}

TEST_F(ImagesTest, RemoveRefusesWhileUsed) {
  ASSERT_TRUE(store_->ImportDirectory("base", base_).ok());
  ASSERT_TRUE(store_->Build("child", "base", changes_).ok());
  Status refused = store_->Remove("base");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("image child"), std::string::npos) << refused.message();
  AddContainer("c1", "child");
  refused = store_->Remove("child");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("container c1"), std::string::npos) << refused.message();
  ASSERT_TRUE(registry_.Delete(std::string(kContainerPrefix) + "c1").ok());
  EXPECT_TRUE(store_->Remove("child").ok());
  EXPECT_FALSE(fs::exists(dir_ + "/root/layers/child"));
  EXPECT_TRUE(store_->Remove("base").ok());
  EXPECT_EQ(store_->Remove("base").code(), StatusCode::kNotFound);
}

TEST_F(ImagesTest, UsageCountsContainersPerLayer) {
  ASSERT_TRUE(store_->ImportDirectory("base", base_).ok());
  ASSERT_TRUE(store_->Build("child", "base", changes_).ok());
  AddContainer("c1", "child");
  AddContainer("c2", "child");
  AddContainer("c3", "base");
  auto usage = store_->Usage("child");
  ASSERT_TRUE(usage.ok()) << usage.status();
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].image.name(), "child");
  EXPECT_EQ((*usage)[0].containers, 2u);
  EXPECT_EQ((*usage)[1].image.name(), "base");
  EXPECT_EQ((*usage)[1].containers, 3u);
  EXPECT_EQ((*usage)[1].bytes_saved, 3 * (*usage)[1].image.size_bytes());
}

TEST_F(ImagesTest, VerifyFindsChangedLayer) {
  ASSERT_TRUE(store_->ImportDirectory("base", base_).ok());
  std::ofstream(dir_ + "/root/layers/base/etc/motd") << "tampered\n";
  EXPECT_EQ(store_->Verify("base").code(), StatusCode::kCorruption);
}

TEST_F(ImagesTest, BusyboxImage) {
  if (access(kDefaultBusybox, X_OK) != 0) GTEST_SKIP() << "busybox-static is not installed";
  auto image = store_->BuildBusybox("busybox", kDefaultBusybox);
  ASSERT_TRUE(image.ok()) << image.status();
  std::string layer = dir_ + "/root/layers/busybox";
  EXPECT_TRUE(fs::is_regular_file(layer + "/bin/busybox"));
  EXPECT_EQ(fs::read_symlink(layer + "/bin/sh"), "/bin/busybox");
  EXPECT_TRUE(fs::is_symlink(layer + "/sbin/init"));
  EXPECT_TRUE(fs::is_regular_file(layer + "/etc/passwd"));
  EXPECT_TRUE(fs::is_regular_file(layer + "/etc/init.d/rcS"));
  for (const char* dir : {"dev", "proc", "sys", "tmp", "root"}) EXPECT_TRUE(fs::is_directory(layer + "/" + dir)) << dir;
  EXPECT_GT(image->entries(), 200u);
  // The same busybox gives the same digest (reproducible images).
  auto again = store_->BuildBusybox("busybox2", kDefaultBusybox);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest(), image->digest());
  EXPECT_FALSE(store_->BuildBusybox("nobox", dir_ + "/no-busybox").ok());
  EXPECT_FALSE(store_->Get("nobox").ok());
}

}  // namespace
}  // namespace cairn::containers
