// brickd as a real process: serves, stops on SIGTERM, and as a backup killed with SIGKILL is
// reported by the primary.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "brick_harness.h"

namespace cairn::brick::testing {
namespace {

using brickclient::BrickClient;
using namespace std::chrono_literals;

// A brickd child process; killed (SIGKILL) and reaped on destruction if still running.
class Brickd {
 public:
  explicit Brickd(const std::string& root) {
    fs::create_directories(root);
    int out[2];
    if (pipe(out) != 0) std::abort();
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(BRICKD_BIN, "brickd", "--root", root.c_str(), "--listen", "127.0.0.1:0", "--threads", "2",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    // "brickd listening on 127.0.0.1:PORT"; a read with no data means it died.
    FILE* stream = fdopen(out[0], "r");
    char line[256] = {0};
    if (fgets(line, sizeof(line), stream) != nullptr) {
      std::string text(line);
      auto space = text.rfind(' ');
      if (space != std::string::npos) address_ = text.substr(space + 1, text.find_last_not_of("\n") - space);
    }
    fclose(stream);
  }
  ~Brickd() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
  }
  int Signal(int signal) { return kill(pid_, signal); }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  const std::string& address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string address_;
};

TEST(BrickdTest, ServesAndStopsCleanlyOnSigterm) {
  IoThreads io;
  TempDir dir;
  Brickd brickd(dir.path() + "/brick");
  ASSERT_FALSE(brickd.address().empty());
  {
    BrickClient client(io.io(), brickd.address());
    auto created = client.Create(CreateOf(pb::CreateRequest::FILE, kRootId, "hello", 0644));
    ASSERT_EQ(created.err(), 0);
    ASSERT_EQ(client.Write(created.attr().id(), 0, "world").err(), 0);
    EXPECT_EQ(client.Read(created.attr().id(), 0, 100).data(), "world");
  }
  ASSERT_EQ(brickd.Signal(SIGTERM), 0);
  int status = brickd.Wait();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::ifstream file(dir.path() + "/brick/hello");
  std::string content;
  file >> content;
  EXPECT_EQ(content, "world");
}

TEST(BrickdTest, BackupProcessKilledIsReportedAndThePrimaryGoesOn) {
  IoThreads io;
  TempDir dir;
  Brickd backup(dir.path() + "/b");
  ASSERT_FALSE(backup.address().empty());
  std::mutex mu;
  std::condition_variable reported;
  std::string failed;
  TestBrick primary(io.io(), dir.path() + "/a",
                    {.replica_timeout = 300ms, .on_replica_failed = [&](const std::string& replica, const Status&) {
                       std::lock_guard lock(mu);
                       failed = replica;
                       reported.notify_all();
                     }});
  auto view = View(1, primary.address(), {backup.address()});
  ASSERT_TRUE(primary.server().SetView(view).ok());
  BrickClient to_backup(io.io(), backup.address());
  pb::SetViewRequest set_view;
  *set_view.mutable_view() = view;
  set_view.mutable_view()->set_self(backup.address());
  ASSERT_EQ(to_backup.CallSync<pb::SetViewResponse>("brick.SetView", set_view).err(), 0);

  BrickClient client(io.io(), primary.address(), {.epoch = 1});
  auto created = client.Create(CreateOf(pb::CreateRequest::FILE, kRootId, "f", 0644));
  ASSERT_EQ(created.err(), 0);
  EXPECT_TRUE(fs::exists(dir.path() + "/b/f"));  // acknowledged means applied on the backup too

  ASSERT_EQ(backup.Signal(SIGKILL), 0);
  backup.Wait();
  auto killed_at = std::chrono::steady_clock::now();
  std::thread owner([&] {
    std::unique_lock lock(mu);
    if (reported.wait_for(lock, 20s, [&] { return !failed.empty(); })) {
      lock.unlock();
      (void)primary.server().SetView(View(2, primary.address(), {}, {backup.address()}));
    }
  });
  auto wrote = client.Write(created.attr().id(), 0, "after the kill");
  owner.join();
  EXPECT_EQ(wrote.err(), 0);
  // A killed backup breaks its connection at once; the bound is loose because CI shares 2 cores.
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 5s);
  EXPECT_EQ(failed, backup.address());
  auto journal = primary.server().JournalIds(backup.address());
  EXPECT_EQ(journal, std::vector<FileId>{created.attr().id()});
}

}  // namespace
}  // namespace cairn::brick::testing
