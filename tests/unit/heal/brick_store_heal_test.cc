// The BrickStore calls the heal runner relies on, against a temp dir: DirLocation and Exists,
// creates with a given id, a kept id linked again (how heal moves a file between directories).
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cairn/brick/brick_store.h"

namespace cairn::brick {
namespace {

namespace fs = std::filesystem;

class BrickStoreHealTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-heal-unit-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    auto store = BrickStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  pb::CreateResponse Make(const FileId& parent, const std::string& name, pb::CreateRequest::Kind kind,
                          const FileId& id = "") {
    pb::CreateRequest request;
    request.set_kind(kind);
    request.set_parent(parent);
    request.set_name(name);
    request.set_mode(kind == pb::CreateRequest::DIRECTORY ? 0755 : 0644);
    request.set_exclusive(true);
    request.set_new_id(id);
    return store_->Create(request, nullptr);
  }
  int Rename(const FileId& parent, const std::string& name, const FileId& to, const std::string& new_name) {
    pb::RenameRequest request;
    request.set_parent(parent);
    request.set_name(name);
    request.set_new_parent(to);
    request.set_new_name(new_name);
    return store_->Rename(request, nullptr).err();
  }

  std::string root_;
  std::unique_ptr<BrickStore> store_;
};

TEST_F(BrickStoreHealTest, DirLocationFollowsRenames) {
  FileId a = Make(kRootId, "a", pb::CreateRequest::DIRECTORY).attr().id();
  FileId b = Make(a, "b", pb::CreateRequest::DIRECTORY).attr().id();
  FileId parent;
  std::string name;
  ASSERT_EQ(store_->DirLocation(b, &parent, &name), 0);
  EXPECT_EQ(parent, a);
  EXPECT_EQ(name, "b");
  ASSERT_EQ(Rename(a, "b", kRootId, "moved"), 0);
  ASSERT_EQ(store_->DirLocation(b, &parent, &name), 0);
  EXPECT_EQ(parent, kRootId);
  EXPECT_EQ(name, "moved");
}

TEST_F(BrickStoreHealTest, DirLocationErrors) {
  FileId file = Make(kRootId, "f", pb::CreateRequest::FILE).attr().id();
  FileId parent;
  std::string name;
  EXPECT_EQ(store_->DirLocation(kRootId, &parent, &name), EINVAL);
  EXPECT_EQ(store_->DirLocation("short", &parent, &name), EINVAL);
  EXPECT_EQ(store_->DirLocation(file, &parent, &name), ENOTDIR);
  EXPECT_EQ(store_->DirLocation(store_->NewId(), &parent, &name), ESTALE);
}

TEST_F(BrickStoreHealTest, ExistsForEveryKindAndAfterRemoval) {
  FileId dir = Make(kRootId, "d", pb::CreateRequest::DIRECTORY).attr().id();
  FileId file = Make(dir, "f", pb::CreateRequest::FILE).attr().id();
  EXPECT_EQ(store_->Exists(kRootId), 0);
  EXPECT_EQ(store_->Exists(dir), 0);
  EXPECT_EQ(store_->Exists(file), 0);
  EXPECT_EQ(store_->Exists(store_->NewId()), ESTALE);
  EXPECT_EQ(store_->Exists("bad"), EINVAL);
  pb::RemoveRequest remove;
  remove.set_parent(dir);
  remove.set_name("f");
  ASSERT_EQ(store_->Remove(remove, nullptr).err(), 0);
  EXPECT_EQ(store_->Exists(file), ESTALE);
}

TEST_F(BrickStoreHealTest, CreateWithAGivenIdAndRefuseATakenName) {
  FileId id = store_->NewId();
  auto created = Make(kRootId, "given", pb::CreateRequest::FILE, id);
  ASSERT_EQ(created.err(), 0);
  EXPECT_EQ(created.attr().id(), id);
  EXPECT_EQ(Make(kRootId, "given", pb::CreateRequest::FILE, store_->NewId()).err(), EEXIST);
  EXPECT_EQ(Make(kRootId, "again", pb::CreateRequest::FILE, id).err(), EEXIST);  // the id is taken
}

// Heal removes a file's name with keep_id and links the id elsewhere later: same inode, content
// kept; Forget afterwards keeps a file that has names.
TEST_F(BrickStoreHealTest, KeptIdCanBeLinkedAgain) {
  FileId dir = Make(kRootId, "d", pb::CreateRequest::DIRECTORY).attr().id();
  FileId file = Make(kRootId, "f", pb::CreateRequest::FILE).attr().id();
  pb::WriteRequest write;
  write.set_id(file);
  write.set_data("content");
  ASSERT_EQ(store_->Write(write, nullptr).err(), 0);
  pb::RemoveRequest remove;
  remove.set_parent(kRootId);
  remove.set_name("f");
  remove.set_keep_id(true);
  ASSERT_EQ(store_->Remove(remove, nullptr).err(), 0);
  EXPECT_EQ(store_->Exists(file), 0);
  pb::LinkRequest link;
  link.set_id(file);
  link.set_new_parent(dir);
  link.set_new_name("g");
  auto linked = store_->Link(link, nullptr);
  ASSERT_EQ(linked.err(), 0);
  EXPECT_EQ(linked.attr().nlink(), 1u);
  pb::ForgetRequest forget;
  forget.set_id(file);
  store_->Forget(forget, nullptr);
  pb::ReadRequest read;
  read.set_id(file);
  read.set_size(100);
  EXPECT_EQ(store_->Read(read).data(), "content");
}

}  // namespace
}  // namespace cairn::brick
