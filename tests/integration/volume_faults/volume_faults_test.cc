// Faults under a writer, through a real mount: three clusterd processes on 127.0.0.1 with the
// volume agent, a volume created through the store, cairn-mount as a child process, and a writer
// thread creating numbered files (create, write, fsync, close) while hosts are killed (-9),
// stopped (SIGSTOP, then SIGCONT) and restarted. After each fault: the longest time without a
// completed file (printed, and bounded generously for a loaded 2-core CI); at the end every
// acknowledged file has its content through the mount, and every brick holds the same tree (type,
// mode, owner, size, content hash, id of every path). Replica 2 + witness: the GlusterFS
// split-brain case (each replica written alone while the other is down, in turn) ends with one
// history: the second lone write is refused.
//
// Needs root and /dev/fuse (skipped otherwise). Each clusterd and the mount log to files in the
// test's temp dir; a failing test prints their tails.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/replica_set.h"
#include "cairn/volume/volume_store.h"
#include "subprocess.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::FreePort;
using test_support::Subprocess;
using test_support::WaitFor;
namespace vpb = ::cairn::proto::volume;

constexpr int kHosts = 3;
// Generous for a loaded 2-core machine; the targets are 1 s (kill) and 3 s (silence).
constexpr auto kStallBound = 8s;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string Tail(const std::string& text, size_t size) {
  return text.size() > size ? text.substr(text.size() - size) : text;
}

bool IsMounted(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == mountpoint) return true;
  }
  return false;
}

long long Ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// Creates (or truncates) path with data, fsyncs and closes it: 0 when all of it succeeded (the
// file is then acknowledged), else the first errno.
int WriteDurably(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return errno;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      return err;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  return close(fd) == 0 ? 0 : errno;
}

// Everything replicas must agree on, per path below a brick root (the per-brick temp area and the
// primary's change journal excluded, times excluded).
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::string path = it->path().string();
    std::string relative = path.substr(root.size());
    if (relative.rfind("/.cairn/tmp", 0) == 0 || relative.rfind("/.cairn/journal", 0) == 0) continue;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    std::ostringstream line;
    line << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid;
    if (S_ISREG(st.st_mode)) {
      std::string content = ReadWhole(path);
      line << " size=" << content.size() << " hash=" << std::hash<std::string>()(content);
    } else if (S_ISLNK(st.st_mode)) {
      line << " -> " << fs::read_symlink(path, ec).string();
    }
    char id[16];
    ssize_t n = lgetxattr(path.c_str(), "trusted.cairn.id", id, sizeof(id));
    if (n == 16) {
      line << " id=";
      for (char c : id) line << std::hex << (static_cast<unsigned>(c) & 0xff);
    }
    out[relative] = line.str();
  }
  return out;
}

// The first difference between two snapshots, for a readable failure.
std::string FirstDifference(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  for (const auto& [path, line] : a) {
    auto other = b.find(path);
    if (other == b.end()) return path + " only in the first";
    if (other->second != line) return path + ": " + line + " vs " + other->second;
  }
  for (const auto& [path, line] : b) {
    if (a.count(path) == 0) return path + " only in the second";
  }
  return "";
}

// A thread writing files f0, f1, ... below dir through the mount, each with create, write, fsync
// and close. Records the acknowledged ones and when each completed.
class Writer {
 public:
  explicit Writer(std::string dir) : dir_(std::move(dir)) {}
  ~Writer() { Stop(); }

  static std::string Content(int i) {
    std::string data = "file " + std::to_string(i) + ":";
    for (int k = 0; k < 3000 + (i % 13) * 517; ++k) data.push_back(static_cast<char>('a' + (k * 7 + i) % 26));
    return data;
  }

  void Start() {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_; ++i) {
        {
          std::unique_lock lock(mu_);
          resumed_.wait(lock, [&] { return !paused_ || stop_; });
        }
        int err = WriteDurably(dir_ + "/f" + std::to_string(i), Content(i));
        std::lock_guard lock(mu_);
        if (err == 0) {
          acked_.push_back(i);
          completions_.push_back(Clock::now());
        } else {
          ++failures_;
          last_errno_ = err;
        }
      }
    });
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      resumed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Holds the writer before its next file (the one in progress completes).
  void Pause() {
    std::lock_guard lock(mu_);
    paused_ = true;
  }
  void Resume() {
    std::lock_guard lock(mu_);
    paused_ = false;
    resumed_.notify_all();
  }

  size_t acked() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::vector<int> acked_files() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  int failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  int last_errno() {
    std::lock_guard lock(mu_);
    return last_errno_;
  }

  // Waits until `more` further files were acknowledged.
  bool Progress(size_t more, std::chrono::milliseconds limit) {
    size_t target = acked() + more;
    return WaitFor([&] { return acked() >= target; }, limit);
  }

  // The longest time without a completed file between `from` and the last completion so far
  // (from `from` to the first completion after it counts).
  Clock::duration LongestGap(Clock::time_point from) {
    std::lock_guard lock(mu_);
    Clock::duration longest{};
    Clock::time_point previous = from;
    for (Clock::time_point at : completions_) {
      if (at < from) continue;
      longest = std::max(longest, at - previous);
      previous = at;
    }
    return longest;
  }

 private:
  const std::string dir_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable resumed_;
  bool paused_ = false;                       // GUARDED_BY mu_
  std::vector<int> acked_;                    // GUARDED_BY mu_
  std::vector<Clock::time_point> completions_;  // GUARDED_BY mu_
  int failures_ = 0;                          // GUARDED_BY mu_
  int last_errno_ = 0;                        // GUARDED_BY mu_
};

class VolumeFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
    char pattern[] = "/tmp/cairn-volfaults-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    mountpoint_ = dir_ + "/mnt";
    fs::create_directories(mountpoint_);
    for (int i = 0; i < kHosts; ++i) {
      peer_ports_[i] = FreePort();
      client_ports_[i] = FreePort();
    }
    for (int i = 0; i < kHosts; ++i) {
      std::string yaml = "name: " + Name(i) + "\ndata_dir: " + dir_ + "/d" + std::to_string(i + 1) +
                         "\npeer_address: 127.0.0.1:" + std::to_string(peer_ports_[i]) +
                         "\nclient_address: 127.0.0.1:" + std::to_string(client_ports_[i]) + "\nlog:\n  file: " +
                         LogPath(i) + "\ninitial_cluster:\n";
      for (int j = 0; j < kHosts; ++j) {
        yaml += "  - name: " + Name(j) + "\n    peer_address: 127.0.0.1:" + std::to_string(peer_ports_[j]) + "\n";
      }
      configs_[i] = dir_ + "/node" + std::to_string(i + 1) + ".yaml";
      std::ofstream(configs_[i]) << yaml;
    }
  }

  void TearDown() override {
    if (dir_.empty()) return;
    // The mount first: a writer blocked in the file system returns once the mount is gone.
    if (IsMounted(mountpoint_)) {
      std::string quiet = "fusermount3 -u -q " + mountpoint_ + " 2>/dev/null";
      if (std::system(quiet.c_str()) != 0 || IsMounted(mountpoint_)) umount2(mountpoint_.c_str(), MNT_DETACH);
    }
    if (mount_ && mount_->WaitForExit(10s) == -1) mount_.reset();  // killed
    if (writer_) writer_->Stop();
    writer_.reset();
    mount_.reset();
    for (int i = 0; i < kHosts; ++i) {
      if (!processes_[i]) continue;
      processes_[i]->Signal(SIGCONT);  // a stopped one must be able to die
      processes_[i].reset();
    }
    if (HasFailure()) {
      for (int i = 0; i < kHosts; ++i) std::cerr << "---- " << Name(i) << " log (tail) ----\n" << Tail(ReadWhole(LogPath(i)), 8000) << "\n";
      std::cerr << "---- mount log (tail) ----\n" << Tail(ReadWhole(dir_ + "/mount.log"), 12000) << "\n";
    }
    fs::remove_all(dir_);
  }

  static std::string Name(int i) { return "n" + std::to_string(i + 1); }
  std::string LogPath(int i) const { return dir_ + "/n" + std::to_string(i + 1) + ".log"; }
  std::string BrickOf(int i) const { return Name(i) + ":" + BrickDir(i); }
  std::string BrickDir(int i) const { return dir_ + "/bricks/" + Name(i); }
  static int HostOf(const std::string& brick) { return brick[1] - '1'; }

  // A store client over the hosts that are not stopped: a SIGSTOPped member accepts connections
  // but never answers, which would eat every call's deadline.
  etcdclient::EtcdClient& Store() {
    if (!store_) {
      std::vector<HostPort> endpoints;
      for (int i = 0; i < kHosts; ++i) {
        if (!stopped_[i]) endpoints.push_back({"127.0.0.1", static_cast<uint16_t>(client_ports_[i])});
      }
      store_ = std::make_unique<etcdclient::EtcdClient>(endpoints, etcdclient::ClientOptions{.timeout = 3s});
    }
    return *store_;
  }

  void StartHost(int i) {
    size_t seen = ReadWhole(LogPath(i)).size();
    processes_[i] = std::make_unique<Subprocess>(CLUSTERD_PATH, std::vector<std::string>{"--config", configs_[i]});
    ASSERT_TRUE(WaitFor([&] { return ReadWhole(LogPath(i)).find("clusterd.started", seen) != std::string::npos; }, 30s))
        << processes_[i]->err();
  }
  void KillHost(int i) {
    processes_[i]->Signal(SIGKILL);
    processes_[i]->WaitForExit(10s);
    processes_[i].reset();
  }
  void StopHost(int i) {
    processes_[i]->Signal(SIGSTOP);
    stopped_[i] = true;
    store_.reset();
  }
  void ContinueHost(int i) {
    processes_[i]->Signal(SIGCONT);
    stopped_[i] = false;
    store_.reset();
  }

  void CreateVolume(const std::string& name, const std::vector<int>& hosts) {
    volume::CreateVolumeRequest request;
    request.name = name;
    request.replica_count = static_cast<uint32_t>(hosts.size());
    for (int i : hosts) request.bricks.push_back(BrickOf(i));
    auto spec = volume::CreateVolumeSpec(request);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    auto started = volume::WithVolumeState(*spec, vpb::VOLUME_STARTED);
    ASSERT_TRUE(started.ok());
    etcd::TxnRequest txn = volume::CreateVolumeTxn(*started);
    Result<etcd::TxnResponse> reply = UnavailableError("not tried");
    ASSERT_TRUE(WaitFor([&] {
      reply = Store().Txn(txn);
      return reply.ok();
    }, 30s)) << reply.status().ToString();
    ASSERT_TRUE(reply->succeeded());
    volume_ = name;
    set_id_ = started->sets(0).id();
  }

  std::optional<etcd::KeyValue> Get(const std::string& key) {
    etcd::RangeRequest request;
    request.set_key(key);
    auto reply = Store().Range(request);
    if (!reply.ok() || reply->kvs_size() == 0) return std::nullopt;
    return reply->kvs(0);
  }

  vpb::ReplicaSetState Set() {
    auto kv = Get(volume::SetKey(volume_, set_id_));
    vpb::ReplicaSetState state;
    if (kv) state.ParseFromString(kv->value());
    return state;
  }

  // The set once it has a primary (not `not_this`) holding its key, with `in_sync` replicas in
  // sync, each with a published address.
  vpb::ReplicaSetState WaitForPrimary(int in_sync, std::chrono::milliseconds limit, const std::string& not_this = "") {
    vpb::ReplicaSetState state;
    WaitFor([&] {
      state = Set();
      if (state.primary().empty() || state.primary() == not_this || state.in_sync_size() != in_sync) return false;
      auto key = Get(volume::PrimaryKey(volume_, set_id_));
      if (!key || key->value() != state.primary()) return false;
      for (const auto& brick : state.in_sync()) {
        if (!Get(volume::BrickAddressKey(volume_, brick))) return false;
      }
      return true;
    }, limit);
    return state;
  }

  void Mount() {
    std::string endpoints;
    for (int i = 0; i < kHosts; ++i) endpoints += (i ? "," : "") + ("127.0.0.1:" + std::to_string(client_ports_[i]));
    mount_ = std::make_unique<Subprocess>(
        CAIRN_MOUNT_BIN, std::vector<std::string>{volume_, mountpoint_, "--endpoints", endpoints, "-f", "-o",
                                                  "host=client,log=info,log_file=" + dir_ + "/mount.log"});
    ASSERT_TRUE(WaitFor([&] { return IsMounted(mountpoint_); }, 30s)) << mount_->err();
    struct stat st;
    ASSERT_EQ(stat(mountpoint_.c_str(), &st), 0) << strerror(errno);
  }

  void StartWriter() {
    ASSERT_EQ(mkdir((mountpoint_ + "/w").c_str(), 0755), 0) << strerror(errno);
    writer_ = std::make_unique<Writer>(mountpoint_ + "/w");
    writer_->Start();
    ASSERT_TRUE(writer_->Progress(10, 30s)) << "the writer made no progress; errno " << writer_->last_errno();
  }

  // After a fault at `at`: the writer completes `more` files, then the longest pause is checked.
  void ExpectWriterRecovers(const std::string& what, Clock::time_point at, Clock::duration bound) {
    ASSERT_TRUE(writer_->Progress(10, 60s)) << what << ": the writer stalled; errno " << writer_->last_errno();
    Clock::duration gap = writer_->LongestGap(at);
    std::cerr << what << ": longest stall " << Ms(gap) << " ms\n";
    RecordProperty(what + "_stall_ms", std::to_string(Ms(gap)));
    EXPECT_LT(gap, bound) << what;
  }

  // Waits until the set has `count` replicas in sync again (heal + readmission), with the writer
  // held: the heal runner gives up a round while files keep changing (services/heal), so under a
  // writer of ~100 files/s readmission can take minutes. The writer then resumes.
  void ExpectReadmitted(int count) {
    writer_->Pause();
    bool readmitted = WaitFor([&] { return AllInSync(count); }, 90s);
    writer_->Resume();
    ASSERT_TRUE(readmitted) << "not readmitted; set: " << Set().ShortDebugString();
    ASSERT_TRUE(writer_->Progress(5, 30s));
  }

  bool AllInSync(int count) {
    vpb::ReplicaSetState state = Set();
    return state.in_sync_size() == count && !state.primary().empty();
  }

  void ExpectAckedFilesThroughTheMount() {
    std::vector<int> acked = writer_->acked_files();
    int wrong = 0;
    for (int i : acked) {
      std::string path = mountpoint_ + "/w/f" + std::to_string(i);
      if (ReadWhole(path) != Writer::Content(i) && ++wrong <= 5) ADD_FAILURE() << "acknowledged " << path << " differs";
    }
    EXPECT_EQ(wrong, 0) << "of " << acked.size() << " acknowledged files";
  }

  void ExpectIdenticalBricks(const std::vector<int>& hosts) {
    auto first = Snapshot(BrickDir(hosts[0]));
    EXPECT_GT(first.size(), 10u);
    for (size_t k = 1; k < hosts.size(); ++k) {
      auto other = Snapshot(BrickDir(hosts[k]));
      EXPECT_TRUE(other == first) << Name(hosts[0]) << " vs " << Name(hosts[k]) << ": " << FirstDifference(first, other);
    }
  }

  std::string dir_, mountpoint_;
  int peer_ports_[kHosts] = {};
  int client_ports_[kHosts] = {};
  bool stopped_[kHosts] = {};
  std::string configs_[kHosts];
  std::unique_ptr<Subprocess> processes_[kHosts];
  std::unique_ptr<etcdclient::EtcdClient> store_;
  std::unique_ptr<Subprocess> mount_;
  std::unique_ptr<Writer> writer_;
  std::string volume_;
  uint32_t set_id_ = 0;
};

TEST_F(VolumeFaultTest, Replica3WriterSurvivesKillsSilenceAndRestarts) {
  for (int i = 0; i < kHosts; ++i) ASSERT_NO_FATAL_FAILURE(StartHost(i));
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol3", {0, 1, 2}));
  vpb::ReplicaSetState state = WaitForPrimary(3, 60s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(Mount());
  ASSERT_NO_FATAL_FAILURE(StartWriter());

  // (a) kill -9 of a backup's host: dropped, writes go on.
  int backup = (HostOf(state.primary()) + 1) % kHosts;
  KillHost(backup);
  auto at = Clock::now();
  ASSERT_NO_FATAL_FAILURE(ExpectWriterRecovers("backup_killed", at, kStallBound));
  EXPECT_TRUE(WaitFor([&] { return !volume::IsInSync(Set(), BrickOf(backup)); }, 30s));

  // (d) its restart: healed and readmitted while the writer goes on.
  ASSERT_NO_FATAL_FAILURE(StartHost(backup));
  ASSERT_NO_FATAL_FAILURE(ExpectReadmitted(3));

  // (c) SIGSTOP of the primary's host: replaced after its lease; the mount abandons the calls in
  // flight to it. Then SIGCONT: it refuses writes, is healed and readmitted.
  state = WaitForPrimary(3, 30s);
  int primary = HostOf(state.primary());
  StopHost(primary);
  at = Clock::now();
  vpb::ReplicaSetState next = WaitForPrimary(2, 30s, state.primary());
  ASSERT_FALSE(next.primary().empty()) << "no take-over; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(ExpectWriterRecovers("primary_silent", at, kStallBound));
  ContinueHost(primary);
  ASSERT_NO_FATAL_FAILURE(ExpectReadmitted(3));

  // (b) kill -9 of the primary's host, then its restart.
  state = WaitForPrimary(3, 30s);
  primary = HostOf(state.primary());
  KillHost(primary);
  at = Clock::now();
  next = WaitForPrimary(2, 30s, state.primary());
  ASSERT_FALSE(next.primary().empty()) << "no take-over; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(ExpectWriterRecovers("primary_killed", at, kStallBound));
  ASSERT_NO_FATAL_FAILURE(StartHost(primary));
  ASSERT_NO_FATAL_FAILURE(ExpectReadmitted(3));

  writer_->Stop();
  std::cerr << writer_->acked() << " files acknowledged, " << writer_->failures() << " writes failed\n";
  ExpectAckedFilesThroughTheMount();
  // Every in-sync brick has every fsynced write: the trees are identical.
  ASSERT_TRUE(AllInSync(3));
  ExpectIdenticalBricks({0, 1, 2});
}

// Replica 2 + a store-only witness (n3): the replica that was written alone while the other was
// down stays the only history. The other one, back alone, is out of sync: the set serves no write
// from it (no quorum), so the two copies never diverge; once the first returns it heals the other.
TEST_F(VolumeFaultTest, Replica2WithAWitnessNeverDiverges) {
  for (int i = 0; i < kHosts; ++i) ASSERT_NO_FATAL_FAILURE(StartHost(i));
  ASSERT_NO_FATAL_FAILURE(CreateVolume("vol2", {0, 1}));
  vpb::ReplicaSetState state = WaitForPrimary(2, 60s);
  ASSERT_FALSE(state.primary().empty()) << "no primary; set: " << Set().ShortDebugString();
  ASSERT_NO_FATAL_FAILURE(Mount());
  ASSERT_NO_FATAL_FAILURE(StartWriter());
  const std::string shared = mountpoint_ + "/shared";
  ASSERT_EQ(WriteDurably(shared, "v1 on both"), 0);

  int first = HostOf(state.primary());
  int second = 1 - first;
  // The second replica's host dies; the first is written alone.
  KillHost(second);
  auto at = Clock::now();
  ASSERT_NO_FATAL_FAILURE(ExpectWriterRecovers("replica2_backup_killed", at, kStallBound));
  ASSERT_EQ(WriteDurably(shared, "v2 written on the first alone"), 0);
  writer_->Stop();
  ASSERT_TRUE(WaitFor([&] { return !volume::IsInSync(Set(), BrickOf(second)); }, 30s));

  // Now the first dies and the second comes back alone (with the witness: a store majority).
  KillHost(first);
  ASSERT_NO_FATAL_FAILURE(StartHost(second));
  // The second is out of sync and the only in-sync replica is gone: no quorum.
  EXPECT_TRUE(WaitFor([&] { return Set().mode() != vpb::REPLICA_SET_NORMAL; }, 30s))
      << "set: " << Set().ShortDebugString();
  int err = WriteDurably(shared, "v3 written on the second alone");
  std::cerr << "the write to the lone out-of-sync replica answered errno " << err << " (" << strerror(err) << ")\n";
  EXPECT_NE(err, 0) << "a write was accepted by the out-of-sync replica alone";

  // The first returns: it takes over again, heals the second, readmits it.
  ASSERT_NO_FATAL_FAILURE(StartHost(first));
  ASSERT_TRUE(WaitFor([&] { return AllInSync(2) && Set().mode() == vpb::REPLICA_SET_NORMAL; }, 90s))
      << "not healed; set: " << Set().ShortDebugString();
  EXPECT_EQ(Set().primary(), BrickOf(first));
  EXPECT_TRUE(WaitFor([&] { return ReadWhole(shared) == "v2 written on the first alone"; }, 20s))
      << "shared reads '" << ReadWhole(shared) << "'";
  ExpectAckedFilesThroughTheMount();
  ExpectIdenticalBricks({0, 1});
}

}  // namespace
}  // namespace cairn
