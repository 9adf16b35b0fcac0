// Every brick operation over the network (BrickServer on 127.0.0.1, BrickClient), compared with
// the same operation on a plain directory: results, errno and side effects.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <set>

#include "brick_harness.h"

namespace cairn::brick::testing {
namespace {

using brickclient::BrickClient;

class RoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plain_ = dir_.path() + "/plain";
    fs::create_directories(plain_);
    brick_ = std::make_unique<TestBrick>(io_.io(), dir_.path() + "/brick");
    client_ = std::make_unique<BrickClient>(io_.io(), brick_->address());
  }
  void TearDown() override {
    client_.reset();
    brick_.reset();
  }
  std::string P(const std::string& relative) { return plain_ + "/" + relative; }
  static int Err(int rc) { return rc < 0 ? errno : 0; }
  // Brick attributes against lstat of the plain twin.
  void ExpectSameAttr(const pb::Attr& attr, const std::string& relative) {
    struct stat st;
    ASSERT_EQ(lstat(P(relative).c_str(), &st), 0) << relative;
    EXPECT_EQ(attr.mode(), st.st_mode) << relative;
    EXPECT_EQ(attr.size(), static_cast<uint64_t>(st.st_size)) << relative;
    EXPECT_EQ(attr.nlink(), st.st_nlink) << relative;
    EXPECT_EQ(attr.uid(), st.st_uid) << relative;
    EXPECT_EQ(attr.gid(), st.st_gid) << relative;
  }
  FileId Id(const FileId& parent, const std::string& name) {
    auto looked = client_->Lookup(parent, name);
    EXPECT_EQ(looked.err(), 0) << name;
    return looked.attr().id();
  }

  IoThreads io_;
  TempDir dir_;
  std::string plain_;
  std::unique_ptr<TestBrick> brick_;
  std::unique_ptr<BrickClient> client_;
};

TEST_F(RoundTripTest, CreateKindsAndTheirErrors) {
  umask(0);
  auto file = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0640));
  int plain_fd = open(P("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0640);
  ASSERT_GE(plain_fd, 0);
  close(plain_fd);
  ASSERT_EQ(file.err(), 0);
  ExpectSameAttr(file.attr(), "f");
  EXPECT_EQ(client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0640)).err(),
            Err(open(P("f").c_str(), O_CREAT | O_EXCL | O_RDWR, 0640)));

  auto dir = client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "d", 0751));
  ASSERT_EQ(dir.err(), Err(mkdir(P("d").c_str(), 0751)));
  ExpectSameAttr(dir.attr(), "d");
  EXPECT_EQ(client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "d", 0751)).err(),
            Err(mkdir(P("d").c_str(), 0751)));
  // Non-exclusive create of a directory name: EISDIR, as open(O_CREAT) says.
  auto reuse = CreateOf(pb::CreateRequest::FILE, kRootId, "d", 0644);
  reuse.set_exclusive(false);
  EXPECT_EQ(client_->Create(reuse).err(), Err(open(P("d").c_str(), O_CREAT | O_RDWR, 0644)));

  auto fifo = client_->Create(CreateOf(pb::CreateRequest::NODE, dir.attr().id(), "p", S_IFIFO | 0600));
  ASSERT_EQ(fifo.err(), Err(mknod(P("d/p").c_str(), S_IFIFO | 0600, 0)));
  ExpectSameAttr(fifo.attr(), "d/p");

  auto link = client_->Create(CreateOf(pb::CreateRequest::SYMLINK, dir.attr().id(), "s", 0, "../f"));
  ASSERT_EQ(link.err(), Err(symlink("../f", P("d/s").c_str())));
  ExpectSameAttr(link.attr(), "d/s");
  pb::ReadlinkRequest readlink;
  readlink.set_id(link.attr().id());
  EXPECT_EQ(client_->CallSync<pb::ReadlinkResponse>("brick.Readlink", readlink).target(), fs::read_symlink(P("d/s")));
  readlink.set_id(file.attr().id());
  char buffer[64];
  EXPECT_EQ(client_->CallSync<pb::ReadlinkResponse>("brick.Readlink", readlink).err(),
            Err(static_cast<int>(::readlink(P("f").c_str(), buffer, sizeof(buffer)))));

  EXPECT_EQ(client_->Lookup(kRootId, "missing").err(), Err(access(P("missing").c_str(), F_OK)));
  EXPECT_EQ(client_->Lookup(file.attr().id(), "x").err(), Err(access(P("f/x").c_str(), F_OK)));
}

TEST_F(RoundTripTest, ReadWriteTruncateFallocateFsync) {
  auto file = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0644));
  ASSERT_EQ(file.err(), 0);
  int fd = open(P("f").c_str(), O_CREAT | O_RDWR, 0644);
  std::string big(3 * 1024 * 1024 + 17, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  auto wrote = client_->Write(file.attr().id(), 5, big);
  ASSERT_EQ(wrote.err(), 0);
  EXPECT_EQ(wrote.written(), big.size());
  ASSERT_EQ(pwrite(fd, big.data(), big.size(), 5), static_cast<ssize_t>(big.size()));
  ExpectSameAttr(client_->Getattr(file.attr().id()).attr(), "f");
  auto read = client_->Read(file.attr().id(), 0, big.size() + 100);
  ASSERT_EQ(read.err(), 0);
  std::string plain(big.size() + 100, '\0');
  plain.resize(static_cast<size_t>(pread(fd, plain.data(), plain.size(), 0)));
  EXPECT_EQ(read.data(), plain);

  pb::SetattrRequest truncate;
  truncate.set_id(file.attr().id());
  truncate.set_valid(pb::SETATTR_SIZE);
  truncate.set_size(1000);
  ASSERT_EQ(client_->CallSync<pb::SetattrResponse>("brick.Setattr", truncate).err(), Err(ftruncate(fd, 1000)));
  pb::FallocateRequest fallocate_request;
  fallocate_request.set_id(file.attr().id());
  fallocate_request.set_length(1 << 20);
  fallocate_request.set_mode(FALLOC_FL_KEEP_SIZE);
  EXPECT_EQ(client_->CallSync<pb::FallocateResponse>("brick.Fallocate", fallocate_request).err(),
            Err(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20)));
  EXPECT_EQ(client_->Fsync(file.attr().id()).err(), Err(fsync(fd)));
  EXPECT_EQ(client_->Fsync(file.attr().id(), true).err(), Err(fdatasync(fd)));
  auto after = client_->Getattr(file.attr().id()).attr();
  ExpectSameAttr(after, "f");
  close(fd);

  // Reads past the end: empty, no error. Oversized single request: EINVAL.
  auto tail = client_->Read(file.attr().id(), 5000, 10);
  EXPECT_EQ(tail.err(), 0);
  EXPECT_TRUE(tail.data().empty());
  pb::ReadRequest huge;
  huge.set_id(file.attr().id());
  huge.set_size((1 << 20) + 1);
  EXPECT_EQ(client_->CallSync<pb::ReadResponse>("brick.Read", huge).err(), EINVAL);
  auto dir = client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "d", 0755));
  EXPECT_EQ(client_->Read(dir.attr().id(), 0, 10).err(), EISDIR);
}

TEST_F(RoundTripTest, SetattrModeOwnerTimes) {
  auto file = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0644));
  close(open(P("f").c_str(), O_CREAT | O_RDWR, 0644));
  pb::SetattrRequest request;
  request.set_id(file.attr().id());
  request.set_valid(pb::SETATTR_MODE | pb::SETATTR_UID | pb::SETATTR_GID | pb::SETATTR_MTIME | pb::SETATTR_ATIME);
  request.set_mode(04711);
  request.set_uid(1234);
  request.set_gid(5678);
  request.set_mtime_ns(1'600'000'000'123'456'789);
  request.set_atime_ns(1'500'000'000'000'000'001);
  auto response = client_->CallSync<pb::SetattrResponse>("brick.Setattr", request);
  ASSERT_EQ(response.err(), 0);
  ASSERT_EQ(chown(P("f").c_str(), 1234, 5678), 0);
  ASSERT_EQ(chmod(P("f").c_str(), 04711), 0);
  ExpectSameAttr(response.attr(), "f");
  EXPECT_EQ(response.attr().mtime_ns(), 1'600'000'000'123'456'789);
  EXPECT_EQ(response.attr().atime_ns(), 1'500'000'000'000'000'001);
}

TEST_F(RoundTripTest, LinkUnlinkRmdirRename) {
  auto f = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0644));
  auto d = client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "d", 0755));
  close(open(P("f").c_str(), O_CREAT | O_RDWR, 0644));
  mkdir(P("d").c_str(), 0755);

  pb::LinkRequest link;
  link.set_id(f.attr().id());
  link.set_new_parent(d.attr().id());
  link.set_new_name("g");
  auto linked = client_->CallSync<pb::LinkResponse>("brick.Link", link);
  ASSERT_EQ(linked.err(), Err(::link(P("f").c_str(), P("d/g").c_str())));
  ExpectSameAttr(linked.attr(), "f");
  EXPECT_EQ(client_->CallSync<pb::LinkResponse>("brick.Link", link).err(),
            Err(::link(P("f").c_str(), P("d/g").c_str())));
  link.set_id(d.attr().id());
  link.set_new_name("dirlink");
  EXPECT_EQ(client_->CallSync<pb::LinkResponse>("brick.Link", link).err(),
            Err(::link(P("d").c_str(), P("d/dirlink").c_str())));

  EXPECT_EQ(client_->Remove(kRootId, "d", false).err(), Err(unlink(P("d").c_str())));
  EXPECT_EQ(client_->Remove(kRootId, "d", true).err(), Err(rmdir(P("d").c_str())));  // ENOTEMPTY
  EXPECT_EQ(client_->Remove(kRootId, "f", true).err(), Err(rmdir(P("f").c_str())));  // ENOTDIR
  EXPECT_EQ(client_->Remove(kRootId, "nope", false).err(), Err(unlink(P("nope").c_str())));

  EXPECT_EQ(client_->Rename(kRootId, "f", d.attr().id(), "g", RENAME_NOREPLACE).err(),
            Err(renameat2(AT_FDCWD, P("f").c_str(), AT_FDCWD, P("d/g").c_str(), RENAME_NOREPLACE)));
  EXPECT_EQ(client_->Rename(kRootId, "f", d.attr().id(), "h").err(), Err(rename(P("f").c_str(), P("d/h").c_str())));
  EXPECT_EQ(client_->Rename(kRootId, "d", d.attr().id(), "inside").err(),
            Err(rename(P("d").c_str(), P("d/inside").c_str())));  // EINVAL
  EXPECT_EQ(client_->Rename(d.attr().id(), "g", kRootId, "g2", RENAME_EXCHANGE).err(),
            Err(renameat2(AT_FDCWD, P("d/g").c_str(), AT_FDCWD, P("g2").c_str(), RENAME_EXCHANGE)));  // ENOENT
  // Hard links survive the unlink of one name; unlink of the last makes the id stale.
  EXPECT_EQ(client_->Remove(d.attr().id(), "g", false).err(), Err(unlink(P("d/g").c_str())));
  ExpectSameAttr(client_->Getattr(f.attr().id()).attr(), "d/h");
  EXPECT_EQ(client_->Remove(d.attr().id(), "h", false).err(), Err(unlink(P("d/h").c_str())));
  EXPECT_EQ(client_->Getattr(f.attr().id()).err(), ESTALE);
  EXPECT_EQ(client_->Remove(kRootId, "d", true).err(), Err(rmdir(P("d").c_str())));

  std::set<std::string> names;
  auto listing = client_->ReaddirAll(kRootId);
  for (const auto& entry : listing.entries()) names.insert(entry.name());
  std::set<std::string> plain_names;
  for (const auto& entry : fs::directory_iterator(plain_)) plain_names.insert(entry.path().filename());
  EXPECT_EQ(names, plain_names);
}

TEST_F(RoundTripTest, XattrsAndStatfs) {
  auto f = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0644));
  close(open(P("f").c_str(), O_CREAT | O_RDWR, 0644));
  pb::SetxattrRequest set;
  set.set_id(f.attr().id());
  set.set_name("user.colour");
  set.set_value("blue");
  EXPECT_EQ(client_->CallSync<pb::SetxattrResponse>("brick.Setxattr", set).err(),
            Err(setxattr(P("f").c_str(), "user.colour", "blue", 4, 0)));
  set.set_flags(XATTR_CREATE);
  EXPECT_EQ(client_->CallSync<pb::SetxattrResponse>("brick.Setxattr", set).err(),
            Err(setxattr(P("f").c_str(), "user.colour", "blue", 4, XATTR_CREATE)));
  pb::GetxattrRequest get;
  get.set_id(f.attr().id());
  get.set_name("user.colour");
  EXPECT_EQ(client_->CallSync<pb::GetxattrResponse>("brick.Getxattr", get).value(), "blue");
  get.set_name("user.none");
  char value[16];
  EXPECT_EQ(client_->CallSync<pb::GetxattrResponse>("brick.Getxattr", get).err(),
            Err(static_cast<int>(getxattr(P("f").c_str(), "user.none", value, sizeof(value)))));
  pb::ListxattrRequest list;
  list.set_id(f.attr().id());
  auto listed = client_->CallSync<pb::ListxattrResponse>("brick.Listxattr", list);
  ASSERT_EQ(listed.err(), 0);
  EXPECT_EQ(std::vector<std::string>(listed.names().begin(), listed.names().end()),
            std::vector<std::string>{"user.colour"});  // trusted.cairn.id is hidden
  pb::RemovexattrRequest remove;
  remove.set_id(f.attr().id());
  remove.set_name("user.colour");
  EXPECT_EQ(client_->CallSync<pb::RemovexattrResponse>("brick.Removexattr", remove).err(),
            Err(removexattr(P("f").c_str(), "user.colour")));
  EXPECT_EQ(client_->CallSync<pb::RemovexattrResponse>("brick.Removexattr", remove).err(),
            Err(removexattr(P("f").c_str(), "user.colour")));

  auto statfs = client_->CallSync<pb::StatfsResponse>("brick.Statfs", pb::StatfsRequest());
  struct statvfs st;
  ASSERT_EQ(statvfs(plain_.c_str(), &st), 0);
  EXPECT_EQ(statfs.err(), 0);
  EXPECT_EQ(statfs.blocks(), st.f_blocks);  // same file system
  EXPECT_EQ(statfs.name_max(), st.f_namemax);
}

TEST_F(RoundTripTest, EscapeAttemptsOverTheWire) {
  std::string outside = dir_.path() + "/outside";
  fs::create_directories(outside);
  auto up = client_->Create(CreateOf(pb::CreateRequest::SYMLINK, kRootId, "up", 0, ".."));
  auto abs = client_->Create(CreateOf(pb::CreateRequest::SYMLINK, kRootId, "abs", 0, outside));
  ASSERT_EQ(up.err(), 0);
  ASSERT_EQ(abs.err(), 0);
  for (const std::string& name : {std::string(".."), std::string("../outside/x"), outside + "/x", std::string("a/b")}) {
    EXPECT_EQ(client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, name, 0644)).err(), EINVAL) << name;
    EXPECT_EQ(client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, name, 0755)).err(), EINVAL) << name;
  }
  EXPECT_EQ(client_->Create(CreateOf(pb::CreateRequest::FILE, abs.attr().id(), "x", 0644)).err(), ENOTDIR);
  EXPECT_EQ(client_->Lookup(up.attr().id(), "outside").err(), ENOTDIR);
  auto d = client_->Create(CreateOf(pb::CreateRequest::DIRECTORY, kRootId, "d", 0755));
  EXPECT_EQ(client_->Rename(kRootId, "d", abs.attr().id(), "d").err(), ENOTDIR);
  EXPECT_EQ(client_->Rename(kRootId, "d", kRootId, "../escaped").err(), EINVAL);
  pb::LinkRequest link;
  link.set_id(d.attr().id());
  link.set_new_parent(abs.attr().id());
  link.set_new_name("x");
  EXPECT_NE(client_->CallSync<pb::LinkResponse>("brick.Link", link).err(), 0);
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_EQ(client_->Lookup(kRootId, ".cairn").err(), ENOENT);
  // Garbage payloads: errors, never crashes.
  auto garbage = client_->transport().CallSync("brick.Create", std::string("\xff\xff\xff", 3), std::chrono::seconds(5));
  ASSERT_TRUE(garbage.ok());
  pb::CreateResponse decoded;
  decoded.ParseFromString(*garbage);
  EXPECT_EQ(decoded.err(), EINVAL);
}

TEST_F(RoundTripTest, RandomGarbageToEveryMethodGivesErrorsNotCrashes) {
  Random random(20261127);
  const char* methods[] = {"brick.Lookup", "brick.Getattr", "brick.Readdir", "brick.Readlink", "brick.Open",
                           "brick.Read", "brick.Release", "brick.Statfs", "brick.Getxattr", "brick.Listxattr",
                           "brick.Setattr", "brick.Create", "brick.Link", "brick.Remove", "brick.Rename",
                           "brick.Write", "brick.Fsync", "brick.Fallocate", "brick.Setxattr", "brick.Removexattr", "brick.Forget",
                           "brick.Replicate", "brick.SetView", "brick.JournalList", "brick.JournalClear"};
  for (int round = 0; round < 20; ++round) {
    for (const char* method : methods) {
      std::string garbage(random.Uniform(64), '\0');
      for (auto& byte : garbage) byte = static_cast<char>(random.Next());
      auto reply = client_->transport().CallSync(method, garbage, std::chrono::seconds(5));
      EXPECT_TRUE(reply.ok()) << method << ": " << reply.status();
    }
  }
  // Still serving.
  EXPECT_EQ(client_->Getattr(kRootId).err(), 0);
}

TEST_F(RoundTripTest, UnlinkedButOpenFileStaysAddressableUntilForget) {
  // POSIX: an open file outlives its last name. The mount says so with keep_id, then Forget.
  auto f = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "tmp", 0600));
  ASSERT_EQ(f.err(), 0);
  ASSERT_EQ(client_->Write(f.attr().id(), 0, "scratch").err(), 0);
  pb::RemoveRequest remove;
  remove.set_parent(kRootId);
  remove.set_name("tmp");
  remove.set_keep_id(true);
  ASSERT_EQ(client_->CallSync<pb::RemoveResponse>("brick.Remove", remove).err(), 0);
  EXPECT_EQ(client_->Lookup(kRootId, "tmp").err(), ENOENT);
  auto attr = client_->Getattr(f.attr().id());
  ASSERT_EQ(attr.err(), 0);
  EXPECT_EQ(attr.attr().nlink(), 0u);
  EXPECT_EQ(client_->Write(f.attr().id(), 7, "!").err(), 0);
  EXPECT_EQ(client_->Read(f.attr().id(), 0, 100).data(), "scratch!");
  pb::ForgetRequest forget;
  forget.set_id(f.attr().id());
  EXPECT_EQ(client_->CallSync<pb::ForgetResponse>("brick.Forget", forget).err(), 0);
  EXPECT_EQ(client_->Getattr(f.attr().id()).err(), ESTALE);
  // Forget of a file that still has a name changes nothing.
  auto g = client_->Create(CreateOf(pb::CreateRequest::FILE, kRootId, "g", 0600));
  forget.set_id(g.attr().id());
  EXPECT_EQ(client_->CallSync<pb::ForgetResponse>("brick.Forget", forget).err(), 0);
  EXPECT_EQ(client_->Getattr(g.attr().id()).err(), 0);
  forget.set_id(kRootId);
  EXPECT_EQ(client_->CallSync<pb::ForgetResponse>("brick.Forget", forget).err(), EINVAL);
}

}  // namespace
}  // namespace cairn::brick::testing
