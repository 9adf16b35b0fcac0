// BrickStore against a temp dir, no network: ids, the index, confinement beneath the root.
#include "cairn/brick/brick_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace cairn::brick {
namespace {

namespace fs = std::filesystem;

class BrickStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/cairn-brick-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    base_ = pattern;
    root_ = base_ + "/brick";
    outside_ = base_ + "/outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
    std::ofstream(outside_ + "/secret") << "secret";
    auto store = BrickStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  pb::Attr Make(const FileId& parent, const std::string& name, pb::CreateRequest::Kind kind, uint32_t mode,
                const std::string& target = "") {
    pb::CreateRequest request;
    request.set_kind(kind);
    request.set_parent(parent);
    request.set_name(name);
    request.set_mode(mode);
    request.set_target(target);
    request.set_exclusive(true);
    auto response = store_->Create(request, nullptr);
    EXPECT_EQ(response.err(), 0) << name;
    return response.attr();
  }
  int LookupErr(const FileId& parent, const std::string& name) {
    pb::LookupRequest request;
    request.set_parent(parent);
    request.set_name(name);
    return store_->Lookup(request).err();
  }
  int CreateErr(const FileId& parent, const std::string& name) {
    pb::CreateRequest request;
    request.set_parent(parent);
    request.set_name(name);
    request.set_mode(0644);
    request.set_exclusive(true);
    return store_->Create(request, nullptr).err();
  }
  void Write(const FileId& id, const std::string& data) {
    pb::WriteRequest request;
    request.set_id(id);
    request.set_data(data);
    ASSERT_EQ(store_->Write(request, nullptr).err(), 0);
  }
  std::string Read(const FileId& id) {
    pb::ReadRequest request;
    request.set_id(id);
    request.set_size(4096);
    auto response = store_->Read(request);
    EXPECT_EQ(response.err(), 0);
    return response.data();
  }

  std::string base_, root_, outside_;
  std::unique_ptr<BrickStore> store_;
};

TEST_F(BrickStoreTest, CreatedObjectsCarryTheirIdInTheXattr) {
  auto file = Make(kRootId, "f", pb::CreateRequest::FILE, 0640);
  auto dir = Make(kRootId, "d", pb::CreateRequest::DIRECTORY, 0750);
  auto link = Make(dir.id(), "l", pb::CreateRequest::SYMLINK, 0, "../f");
  auto fifo = Make(dir.id(), "p", pb::CreateRequest::NODE, S_IFIFO | 0600);
  for (const auto& [path, attr] : {std::pair{root_ + "/f", file}, {root_ + "/d", dir}, {root_ + "/d/l", link},
                                   {root_ + "/d/p", fifo}}) {
    char value[16];
    ASSERT_EQ(lgetxattr(path.c_str(), kIdXattr, value, sizeof(value)), 16) << path;
    EXPECT_EQ(std::string(value, 16), attr.id()) << path;
  }
  EXPECT_EQ(file.mode(), S_IFREG | 0640u);
  EXPECT_EQ(dir.mode(), S_IFDIR | 0750u);
  EXPECT_EQ(file.nlink(), 1u);  // the index link is hidden
  EXPECT_TRUE(fs::is_empty(root_ + "/.cairn/tmp"));
}

TEST_F(BrickStoreTest, GivenIdIsUsedAndTheRootHasItsFixedId) {
  FileId id = store_->NewId();
  pb::CreateRequest request;
  request.set_parent(kRootId);
  request.set_name("x");
  request.set_mode(0600);
  request.set_new_id(id);
  ASSERT_EQ(store_->Create(request, nullptr).attr().id(), id);
  pb::GetattrRequest root;
  root.set_id(kRootId);
  auto attr = store_->Getattr(root);
  ASSERT_EQ(attr.err(), 0);
  EXPECT_TRUE(S_ISDIR(attr.attr().mode()));
  EXPECT_EQ(attr.attr().nlink(), 2u);  // .cairn is not counted
}

TEST_F(BrickStoreTest, IdsSurviveRenamesOfAncestorsAndReopen) {
  auto a = Make(kRootId, "a", pb::CreateRequest::DIRECTORY, 0755);
  auto b = Make(a.id(), "b", pb::CreateRequest::DIRECTORY, 0755);
  auto f = Make(b.id(), "f", pb::CreateRequest::FILE, 0644);
  Write(f.id(), "hello");
  pb::RenameRequest rename;
  rename.set_parent(kRootId);
  rename.set_name("a");
  rename.set_new_parent(kRootId);
  rename.set_new_name("a2");
  ASSERT_EQ(store_->Rename(rename, nullptr).err(), 0);
  store_.reset();  // drop every cached descriptor
  store_ = std::move(BrickStore::Open(root_)).value();
  pb::GetattrRequest get;
  get.set_id(b.id());
  EXPECT_EQ(store_->Getattr(get).err(), 0);
  pb::LookupRequest lookup;
  lookup.set_parent(b.id());
  lookup.set_name("f");
  EXPECT_EQ(store_->Lookup(lookup).attr().id(), f.id());
  EXPECT_EQ(Read(f.id()), "hello");
}

TEST_F(BrickStoreTest, UnlinkOfLastNameDropsTheIndexAndHardLinksKeepIt) {
  auto f = Make(kRootId, "f", pb::CreateRequest::FILE, 0644);
  pb::LinkRequest link;
  link.set_id(f.id());
  link.set_new_parent(kRootId);
  link.set_new_name("g");
  auto linked = store_->Link(link, nullptr);
  ASSERT_EQ(linked.err(), 0);
  EXPECT_EQ(linked.attr().nlink(), 2u);
  pb::RemoveRequest remove;
  remove.set_parent(kRootId);
  remove.set_name("f");
  ASSERT_EQ(store_->Remove(remove, nullptr).err(), 0);
  pb::GetattrRequest get;
  get.set_id(f.id());
  EXPECT_EQ(store_->Getattr(get).err(), 0);
  remove.set_name("g");
  ASSERT_EQ(store_->Remove(remove, nullptr).err(), 0);
  EXPECT_EQ(store_->Getattr(get).err(), ESTALE);
}

TEST_F(BrickStoreTest, MetaDirectoryIsInvisibleAndUntouchable) {
  EXPECT_EQ(LookupErr(kRootId, ".cairn"), ENOENT);
  EXPECT_EQ(CreateErr(kRootId, ".cairn"), EPERM);
  pb::ReaddirRequest readdir;
  readdir.set_id(kRootId);
  Make(kRootId, "visible", pb::CreateRequest::FILE, 0644);
  auto listing = store_->Readdir(readdir);
  ASSERT_EQ(listing.err(), 0);
  ASSERT_EQ(listing.entries_size(), 1);
  EXPECT_EQ(listing.entries(0).name(), "visible");
  pb::SetxattrRequest set;
  set.set_id(listing.entries(0).attr().id());
  set.set_name("trusted.cairn.id");
  set.set_value("0123456789abcdef");
  EXPECT_EQ(store_->Setxattr(set, nullptr).err(), EPERM);
}

TEST_F(BrickStoreTest, NamesThatAreNotOneComponentAreRefused) {
  for (const std::string& name : std::vector<std::string>{"..", ".", "", "a/b", "../outside", "/etc/passwd", std::string(256, 'x')}) {
    EXPECT_NE(CreateErr(kRootId, name), 0) << name;
    EXPECT_NE(LookupErr(kRootId, name), 0) << name;
  }
  EXPECT_FALSE(fs::exists(base_ + "/outside/a"));
}

TEST_F(BrickStoreTest, SymlinksPointingOutAreNeverFollowed) {
  auto relative = Make(kRootId, "up", pb::CreateRequest::SYMLINK, 0, "../outside");
  auto absolute = Make(kRootId, "abs", pb::CreateRequest::SYMLINK, 0, outside_);
  auto file_link = Make(kRootId, "sec", pb::CreateRequest::SYMLINK, 0, outside_ + "/secret");
  // Used as a directory: not one.
  for (const auto& link : {relative, absolute}) {
    EXPECT_EQ(CreateErr(link.id(), "planted"), ENOTDIR);
    EXPECT_EQ(LookupErr(link.id(), "secret"), ENOTDIR);
    pb::RenameRequest rename;
    rename.set_parent(kRootId);
    rename.set_name("up");
    rename.set_new_parent(link.id());
    rename.set_new_name("moved");
    EXPECT_EQ(store_->Rename(rename, nullptr).err(), ENOTDIR);
  }
  // Opened or read: the link itself, never its target.
  pb::ReadRequest read;
  read.set_id(file_link.id());
  read.set_size(100);
  EXPECT_EQ(store_->Read(read).err(), EINVAL);
  pb::SetattrRequest chmod;
  chmod.set_id(file_link.id());
  chmod.set_valid(pb::SETATTR_MODE);
  chmod.set_mode(0777);
  EXPECT_NE(store_->Setattr(chmod, nullptr).err(), 0);
  pb::SetattrRequest truncate;
  truncate.set_id(file_link.id());
  truncate.set_valid(pb::SETATTR_SIZE);
  EXPECT_NE(store_->Setattr(truncate, nullptr).err(), 0);
  EXPECT_EQ(fs::file_size(outside_ + "/secret"), 6u);
  EXPECT_EQ(fs::status(outside_ + "/secret").permissions(), fs::status(outside_ + "/secret").permissions());
  pb::ReadlinkRequest readlink;
  readlink.set_id(absolute.id());
  EXPECT_EQ(store_->Readlink(readlink).target(), outside_);
}

TEST_F(BrickStoreTest, SymlinkPlantedBehindTheBricksBackCannotRedirectADirectory) {
  // An attacker with access to the brick directory swaps a directory for a symlink pointing out:
  // resolution by id must not follow it.
  auto d = Make(kRootId, "d", pb::CreateRequest::DIRECTORY, 0755);
  store_.reset();
  fs::rename(root_ + "/d", base_ + "/d-moved");
  fs::create_directory_symlink(outside_, root_ + "/d");
  store_ = std::move(BrickStore::Open(root_)).value();
  EXPECT_EQ(LookupErr(d.id(), "secret"), ESTALE);
  EXPECT_EQ(LookupErr(kRootId, "d"), EIO);  // an object without an id: not ours
  EXPECT_EQ(CreateErr(d.id(), "planted"), ESTALE);
  EXPECT_FALSE(fs::exists(outside_ + "/planted"));
}

TEST_F(BrickStoreTest, RenameExchangeAndNoReplaceKeepTheIndexRight) {
  auto a = Make(kRootId, "a", pb::CreateRequest::DIRECTORY, 0755);
  auto b = Make(kRootId, "b", pb::CreateRequest::FILE, 0644);
  pb::RenameRequest rename;
  rename.set_parent(kRootId);
  rename.set_name("a");
  rename.set_new_parent(kRootId);
  rename.set_new_name("b");
  rename.set_flags(RENAME_NOREPLACE);
  EXPECT_EQ(store_->Rename(rename, nullptr).err(), EEXIST);
  rename.set_flags(RENAME_EXCHANGE);
  ASSERT_EQ(store_->Rename(rename, nullptr).err(), 0);
  Make(a.id(), "inside", pb::CreateRequest::FILE, 0644);
  EXPECT_TRUE(fs::exists(root_ + "/b/inside"));
  // Moving a directory into itself is refused by the kernel, as on a plain file system.
  rename.set_flags(0);
  rename.set_name("b");
  rename.set_new_parent(a.id());
  rename.set_new_name("self");
  EXPECT_EQ(store_->Rename(rename, nullptr).err(), EINVAL);
}

TEST_F(BrickStoreTest, BadIdsAreErrorsNotCrashes) {
  pb::GetattrRequest get;
  get.set_id("short");
  EXPECT_EQ(store_->Getattr(get).err(), EINVAL);
  get.set_id(std::string(16, 'z'));
  EXPECT_EQ(store_->Getattr(get).err(), ESTALE);
  pb::ReadRequest read;
  read.set_id(std::string(16, 'z'));
  read.set_size(kMaxIoSize + 1);
  EXPECT_EQ(store_->Read(read).err(), EINVAL);
}

TEST_F(BrickStoreTest, ReaddirPagesByCookie) {
  for (int i = 0; i < 50; ++i) Make(kRootId, "f" + std::to_string(i), pb::CreateRequest::FILE, 0644);
  std::set<std::string> seen;
  pb::ReaddirRequest request;
  request.set_id(kRootId);
  request.set_max_entries(7);
  for (int pages = 0; pages < 100; ++pages) {
    auto response = store_->Readdir(request);
    ASSERT_EQ(response.err(), 0);
    for (const auto& entry : response.entries()) {
      EXPECT_TRUE(seen.insert(entry.name()).second) << entry.name();
      EXPECT_EQ(entry.attr().id().size(), 16u);
      request.set_cookie(entry.cookie());
    }
    if (response.eof()) break;
  }
  EXPECT_EQ(seen.size(), 50u);
}

}  // namespace
}  // namespace cairn::brick
