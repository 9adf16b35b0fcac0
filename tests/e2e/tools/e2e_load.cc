// cairn-e2e-load: the load and the checks of the end-to-end tests (tests/e2e/kill_cut), one program
// with subcommands so the bash driver stays simple. Times are wall-clock nanoseconds (date +%s%N), so
// the driver can ask about the stall inside a window it timed itself.
//
//   kv-run ENDPOINTS HISTORY STOPFILE [CLIENTS] [KEYS]
//       CLIENTS threads put unique values to and get KEYS keys (/e2e/k0..), each op on one member
//       (one EtcdClient per member, so the client never re-sends a put elsewhere: a duplicate would be
//       the client's doing). One line per op is appended to HISTORY (flushed at once):
//       CLIENT KIND KEY VALUE CALLED RETURNED REVISION (tab-separated; "-" for absent / pending).
//       A failed put is pending (it may or may not have taken effect); a failed get is left out.
//       Runs until STOPFILE exists.
//   kv-check ENDPOINTS HISTORY
//       reads every key once more (added to the history), checks that each holds a value at least as
//       new as every acknowledged put on it (mod_revision), and that the whole history is linearizable
//       (libs/lincheck). Exit 0 when both hold.
//   files-run DIR LOG STOPFILE
//       creates DIR/f-000001.. (4-16 KiB of content derived from the number), fsync, close; appends
//       "NUMBER NS" to LOG for each acknowledged file, "ERR NUMBER ERRNO NS" for a failure.
//   files-check DIR LOG
//       every acknowledged file exists in DIR with its exact content. Exit 0 when all do.
//   stall LOG FROM_NS TO_NS
//       the longest time in [FROM, TO] without a successful operation in LOG (a kv history or a files
//       log), in ms, from the window's start to the first success, between successes, to its end.
//   peer-probe ADDRESS [KEYFILE]
//       one libs/net call ("e2e.Probe", unknown to every server) to a peer port (Raft, a brick).
//       Without KEYFILE the call is made with no cluster key (authentication off, whatever the
//       environment says) and must be refused with Unauthenticated; with KEYFILE it carries that
//       key and must get past the handshake (any answer but Unauthenticated or Unavailable), which
//       shows the port is live. Prints the status; exit 0 when it is as expected.
//
// Exit codes: 0 ok, 1 check failed, 2 bad arguments or I/O error.
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cairn/common/strings.h"
#include "cairn/etcdclient/etcd_client.h"
#include "cairn/lincheck/kv_checker.h"
#include "cairn/net/client.h"
#include "cairn/net/peer_auth.h"

namespace cairn::e2e {
namespace {

using namespace std::chrono_literals;
using etcdclient::ClientOptions;
using etcdclient::EtcdClient;
using lincheck::Operation;
using lincheck::OpKind;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// "h1:2379,h2:2379" -> endpoints; empty on a bad entry (message printed).
std::vector<HostPort> ParseEndpoints(const std::string& text) {
  std::vector<HostPort> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto endpoint = ParseHostPort(item);
    if (!endpoint.ok()) {
      std::cerr << "bad endpoint " << item << ": " << endpoint.status().ToString() << "\n";
      return {};
    }
    out.push_back(*endpoint);
  }
  return out;
}

// Appends whole lines to a file shared by threads; each line is flushed before Append returns.
class LineLog {
 public:
  explicit LineLog(const std::string& path) : file_(std::fopen(path.c_str(), "a")) {}
  ~LineLog() {
    if (file_ != nullptr) std::fclose(file_);
  }
  bool ok() const { return file_ != nullptr; }
  void Append(const std::string& line) {
    std::lock_guard lock(mu_);
    std::fputs((line + "\n").c_str(), file_);
    std::fflush(file_);
  }

 private:
  std::mutex mu_;
  std::FILE* file_;
};

std::string KeyName(int k) { return "/e2e/k" + std::to_string(k); }

std::string HistoryLine(const Operation& op, int64_t revision) {
  std::ostringstream line;
  line << op.client << '\t' << (op.kind == OpKind::kPut ? "put" : "get") << '\t' << op.key << '\t'
       << op.value.value_or("-") << '\t' << op.called << '\t'
       << (op.returned ? std::to_string(*op.returned) : "-") << '\t' << revision;
  return line.str();
}

// One kv op; appends its line. Returns false when it failed.
bool KvOp(EtcdClient& client, uint64_t id, OpKind kind, const std::string& key, const std::string& value,
          LineLog& log) {
  Operation op{.client = id, .kind = kind, .key = key};
  int64_t revision = 0;
  op.called = NowNs();
  if (kind == OpKind::kPut) {
    op.value = value;
    etcd::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    auto reply = client.Put(request);
    if (reply.ok()) {
      op.returned = NowNs();
      revision = reply->header().revision();
    }
  } else {
    etcd::RangeRequest request;
    request.set_key(key);
    auto reply = client.Range(request);
    if (!reply.ok()) return false;  // observed nothing: left out
    op.returned = NowNs();
    if (reply->kvs_size() > 0) {
      op.value = reply->kvs(0).value();
      revision = reply->kvs(0).mod_revision();
    }
  }
  log.Append(HistoryLine(op, revision));
  return op.returned.has_value();
}

void KvClient(uint64_t id, const std::vector<HostPort>& endpoints, int keys, const std::string& stop_file,
              LineLog& log) {
  ClientOptions options{.timeout = 2s, .connect_timeout = 300ms};
  std::vector<std::unique_ptr<EtcdClient>> members;
  for (const HostPort& endpoint : endpoints) {
    members.push_back(std::make_unique<EtcdClient>(std::vector{endpoint}, options));
  }
  std::mt19937 random(static_cast<uint32_t>(1000 + id));
  size_t member = id % members.size();
  int sequence = 0;
  while (!Exists(stop_file)) {
    std::string key = KeyName(static_cast<int>(random() % keys));
    bool put = random() % 2 == 0;
    std::string value = "c" + std::to_string(id) + "-" + std::to_string(++sequence);
    if (!KvOp(*members[member], id, put ? OpKind::kPut : OpKind::kGet, key, value, log)) {
      member = (member + 1) % members.size();  // that member is down or cut off: try the next
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(20ms);  // a steady trickle, not a benchmark
  }
}

int KvRun(const std::vector<std::string>& args) {
  if (args.size() < 3) return 2;
  auto endpoints = ParseEndpoints(args[0]);
  int clients = args.size() > 3 ? std::stoi(args[3]) : 3;
  int keys = args.size() > 4 ? std::stoi(args[4]) : 24;
  LineLog log(args[1]);
  if (endpoints.empty() || !log.ok() || clients < 1 || keys < 1) return 2;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] { KvClient(static_cast<uint64_t>(i + 1), endpoints, keys, args[2], log); });
  }
  for (auto& thread : threads) thread.join();
  return 0;
}

struct HistoryEntry {
  Operation op;
  int64_t revision = 0;
};

bool ReadHistory(const std::string& path, std::vector<HistoryEntry>* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) f.push_back(field);
    if (f.size() != 7) continue;  // a line cut short by a crash of the writer
    HistoryEntry entry;
    entry.op.client = std::stoull(f[0]);
    entry.op.kind = f[1] == "put" ? OpKind::kPut : OpKind::kGet;
    entry.op.key = f[2];
    if (f[3] != "-") entry.op.value = f[3];
    entry.op.called = std::stoll(f[4]);
    if (f[5] != "-") entry.op.returned = std::stoll(f[5]);
    entry.revision = std::stoll(f[6]);
    out->push_back(std::move(entry));
  }
  return true;
}

int KvCheck(const std::vector<std::string>& args) {
  if (args.size() < 2) return 2;
  auto endpoints = ParseEndpoints(args[0]);
  std::vector<HistoryEntry> entries;
  if (endpoints.empty() || !ReadHistory(args[1], &entries)) return 2;
  std::map<std::string, int64_t> acked;  // key -> newest acknowledged put's revision
  int puts_acked = 0, puts_pending = 0, gets = 0;
  for (const auto& e : entries) {
    if (e.op.kind == OpKind::kPut && e.op.returned) {
      ++puts_acked;
      acked[e.op.key] = std::max(acked[e.op.key], e.revision);
    } else if (e.op.kind == OpKind::kPut) {
      ++puts_pending;
    } else {
      ++gets;
    }
  }
  EtcdClient client(endpoints, ClientOptions{.timeout = 10s, .connect_timeout = 1s});
  LineLog log(args[1]);
  int lost = 0;
  for (const auto& [key, revision] : acked) {
    Operation op{.client = 0, .kind = OpKind::kGet, .key = key};
    etcd::RangeRequest request;
    request.set_key(key);
    op.called = NowNs();
    auto reply = client.Range(request);
    if (!reply.ok()) {
      std::cerr << "kv-check: final read of " << key << " failed: " << reply.status().ToString() << "\n";
      return 1;
    }
    op.returned = NowNs();
    int64_t mod_revision = 0;
    if (reply->kvs_size() > 0) {
      op.value = reply->kvs(0).value();
      mod_revision = reply->kvs(0).mod_revision();
    }
    if (mod_revision < revision) {
      ++lost;
      std::cerr << "kv-check: LOST: " << key << " was acknowledged at revision " << revision << ", now holds "
                << (op.value ? *op.value : "nothing") << " at revision " << mod_revision << "\n";
    }
    entries.push_back({op, mod_revision});
    log.Append(HistoryLine(op, mod_revision));
  }
  std::vector<Operation> history;
  for (auto& e : entries) history.push_back(e.op);
  auto result = lincheck::CheckKvHistory(history);
  if (!result.ok()) {
    std::cerr << "kv-check: " << result.status().ToString() << "\n";
    return 2;
  }
  std::cout << "kv-check: " << puts_acked << " acknowledged puts, " << puts_pending << " with unknown outcome, "
            << gets << " gets, " << acked.size() << " keys; lost acknowledged writes: " << lost
            << "; history: " << lincheck::VerdictName(result->verdict) << " (" << result->operations_checked
            << " operations)\n";
  if (result->verdict != lincheck::Verdict::kLinearizable) {
    std::cerr << "kv-check: key " << result->key << ": " << result->explanation << "\n";
  }
  return lost == 0 && result->verdict == lincheck::Verdict::kLinearizable ? 0 : 1;
}

// The content of file NUMBER: a size and bytes that depend only on the number.
std::string FileContent(long number) {
  std::string content;
  size_t size = 4096 + static_cast<size_t>(number % 4) * 4096;
  std::mt19937 random(static_cast<uint32_t>(number));
  content.reserve(size);
  while (content.size() < size) content.push_back(static_cast<char>('a' + random() % 26));
  return content;
}

std::string FileName(const std::string& dir, long number) {
  char name[32];
  std::snprintf(name, sizeof name, "/f-%06ld", number);
  return dir + name;
}

// 0 or the errno of the first step that failed.
int WriteFileDurably(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int error = 0;
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    error = errno != 0 ? errno : EIO;
  } else if (::fsync(fd) != 0) {
    error = errno;
  }
  if (::close(fd) != 0 && error == 0) error = errno;
  return error;
}

int FilesRun(const std::vector<std::string>& args) {
  if (args.size() < 3) return 2;
  LineLog log(args[1]);
  if (!log.ok()) return 2;
  for (long number = 1; !Exists(args[2]); ++number) {
    int error = WriteFileDurably(FileName(args[0], number), FileContent(number));
    if (error == 0) {
      log.Append(std::to_string(number) + " " + std::to_string(NowNs()));
    } else {
      log.Append("ERR " + std::to_string(number) + " " + std::to_string(error) + " " + std::to_string(NowNs()));
      std::this_thread::sleep_for(200ms);
    }
    std::this_thread::sleep_for(50ms);
  }
  return 0;
}

int FilesCheck(const std::vector<std::string>& args) {
  if (args.size() < 2) return 2;
  std::ifstream in(args[1]);
  if (!in) return 2;
  std::string line;
  int acked = 0, bad = 0, errors = 0;
  while (std::getline(in, line)) {
    if (line.rfind("ERR", 0) == 0) {
      ++errors;
      continue;
    }
    long number = std::stol(line.substr(0, line.find(' ')));
    ++acked;
    std::ifstream file(FileName(args[0], number), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!file.is_open() || content != FileContent(number)) {
      ++bad;
      std::cerr << "files-check: LOST or CHANGED: " << FileName(args[0], number)
                << (file.is_open() ? " (content differs)" : " (missing)") << "\n";
    }
  }
  std::cout << "files-check: " << args[0] << ": " << acked << " acknowledged files, " << bad
            << " missing or changed; " << errors << " writes failed (not acknowledged)\n";
  return bad == 0 ? 0 : 1;
}

// Success times of a kv history (returned ops) or a files log (acknowledged numbers).
std::vector<int64_t> SuccessTimes(const std::string& path) {
  std::vector<int64_t> times;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    std::string field;
    while (fields >> field) f.push_back(field);
    if (f.size() == 2 && f[0] != "ERR") times.push_back(std::stoll(f[1]));
    if (f.size() == 7 && f[5] != "-") times.push_back(std::stoll(f[5]));
  }
  std::sort(times.begin(), times.end());
  return times;
}

int Stall(const std::vector<std::string>& args) {
  if (args.size() < 3) return 2;
  int64_t from = std::stoll(args[1]), to = std::stoll(args[2]);
  int64_t previous = from, longest = 0;
  for (int64_t t : SuccessTimes(args[0])) {
    if (t < from || t > to) continue;
    longest = std::max(longest, t - previous);
    previous = t;
  }
  longest = std::max(longest, to - previous);
  std::cout << longest / 1'000'000 << "\n";
  return 0;
}

// One call with the given key ("" = none) on its own io_context thread; the call's status.
Status ProbeCall(const std::string& address, const std::string& key) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&io] { io.run(); });
  Status status;
  {
    net::Client client(io, net::ClientOptions{.address = address, .connect_timeout = 5s, .cluster_key = key});
    status = client.CallSync("e2e.Probe", "", 10s).status();
  }
  guard.reset();
  io.stop();
  runner.join();
  return status;
}

int PeerProbe(const std::vector<std::string>& args) {
  if (args.empty() || args.size() > 2) return 2;
  std::string key;
  if (args.size() == 2) {
    auto read = net::ReadClusterKeyFile(args[1]);
    if (!read.ok()) {
      std::cerr << "peer-probe: " << read.status().ToString() << "\n";
      return 2;
    }
    key = *read;
  }
  Status status = ProbeCall(args[0], key);
  std::cout << "peer-probe " << args[0] << (key.empty() ? " without a key: " : " with the key: ") << status.ToString()
            << "\n";
  if (key.empty()) return status.code() == StatusCode::kUnauthenticated ? 0 : 1;
  bool through = status.code() != StatusCode::kUnauthenticated && status.code() != StatusCode::kUnavailable &&
                 status.code() != StatusCode::kDeadlineExceeded;
  return through ? 0 : 1;
}

}  // namespace
}  // namespace cairn::e2e

int main(int argc, char** argv) {
  using namespace cairn::e2e;
  if (argc < 2) {
    std::cerr << "usage: cairn-e2e-load kv-run|kv-check|files-run|files-check|stall|peer-probe ARGS (see the source)\n";
    return 2;
  }
  std::string verb = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  int code = 2;
  try {
    if (verb == "kv-run") code = KvRun(args);
    else if (verb == "kv-check") code = KvCheck(args);
    else if (verb == "files-run") code = FilesRun(args);
    else if (verb == "files-check") code = FilesCheck(args);
    else if (verb == "stall") code = Stall(args);
    else if (verb == "peer-probe") code = PeerProbe(args);
  } catch (const std::exception& e) {  // std::stoll on a malformed argument
    std::cerr << "cairn-e2e-load: " << e.what() << "\n";
    return 2;
  }
  if (code == 2) std::cerr << "cairn-e2e-load " << verb << ": bad arguments or I/O error\n";
  return code;
}
