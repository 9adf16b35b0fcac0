// clusterctl kv ...: put, get, del, watch, txn, over etcd's v3 JSON API (libs/etcdclient), with
// etcdctl's output: "simple" text for -o table, `etcdctl -w json` for -o json (and -o yaml, as
// JSON is YAML). Keys, values and ids are taken and printed as etcdctl does (lease ids in hex).
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cairn/etcdclient/etcd_client.h"
#include "cairn/etcdclient/etcdctl.h"
#include "cairn/etcdclient/json.h"
#include "commands.h"
#include "store_client.h"

namespace cairn::clusterctl {
namespace {

using etcdclient::EtcdClient;

void PrintKv(std::ostream& out, const etcd::KeyValue& kv, bool keys_only = false) {
  out << kv.key() << "\n";
  if (!keys_only) out << kv.value() << "\n";
}

// Sets request's range_end from --prefix / --from-key (etcdctl's meaning).
std::string RangeEnd(const std::string& key, bool prefix, bool from_key) {
  if (prefix) return etcdclient::PrefixRangeEnd(key);
  if (from_key) return std::string(1, '\0');
  return "";
}

struct PutArgs {
  std::string key, value, lease;
  bool prev_kv = false;
};

int RunPut(Context& context, const PutArgs& args) {
  etcd::PutRequest request;
  request.set_key(args.key);
  request.set_value(args.value);
  request.set_prev_kv(args.prev_kv);
  if (!args.lease.empty()) {
    auto lease = etcdclient::ParseHexId(args.lease, "lease id");
    if (!lease.ok()) return Fail(context, "kv put", lease.status());
    request.set_lease(static_cast<int64_t>(*lease));
  }
  auto made = MakeClient(context);
  if (!made.ok()) return Fail(context, "kv put", made.status());
  EtcdClient* client = made->get();
  auto response = client->Put(request);
  if (!response.ok()) return Fail(context, "kv put", response.status());
  if (JsonOutput(context)) {
    *context.out << etcdclient::EtcdctlJson(*response) << "\n";
    return kExitOk;
  }
  *context.out << "OK\n";
  if (args.prev_kv && response->has_prev_kv()) PrintKv(*context.out, response->prev_kv());
  return kExitOk;
}

struct GetArgs {
  std::string key, end;
  bool prefix = false, from_key = false, keys_only = false, count_only = false, serializable = false;
  int64_t revision = 0, limit = 0;
};

int RunGet(Context& context, const GetArgs& args) {
  etcd::RangeRequest request;
  request.set_key(args.key);
  request.set_range_end(args.end.empty() ? RangeEnd(args.key, args.prefix, args.from_key) : args.end);
  request.set_revision(args.revision);
  request.set_limit(args.limit);
  request.set_keys_only(args.keys_only);
  request.set_count_only(args.count_only);
  request.set_serializable(args.serializable);
  auto made = MakeClient(context);
  if (!made.ok()) return Fail(context, "kv get", made.status());
  EtcdClient* client = made->get();
  auto response = client->Range(request);
  if (!response.ok()) return Fail(context, "kv get", response.status());
  if (JsonOutput(context)) {
    *context.out << etcdclient::EtcdctlJson(*response) << "\n";
  } else if (args.count_only) {
    *context.out << response->count() << "\n";
  } else {
    for (const etcd::KeyValue& kv : response->kvs()) PrintKv(*context.out, kv, args.keys_only);
  }
  return kExitOk;
}

struct DelArgs {
  std::string key, end;
  bool prefix = false, from_key = false, prev_kv = false;
};

int RunDel(Context& context, const DelArgs& args) {
  etcd::DeleteRangeRequest request;
  request.set_key(args.key);
  request.set_range_end(args.end.empty() ? RangeEnd(args.key, args.prefix, args.from_key) : args.end);
  request.set_prev_kv(args.prev_kv);
  auto made = MakeClient(context);
  if (!made.ok()) return Fail(context, "kv del", made.status());
  EtcdClient* client = made->get();
  auto response = client->DeleteRange(request);
  if (!response.ok()) return Fail(context, "kv del", response.status());
  if (JsonOutput(context)) {
    *context.out << etcdclient::EtcdctlJson(*response) << "\n";
    return kExitOk;
  }
  *context.out << response->deleted() << "\n";
  for (const etcd::KeyValue& kv : response->prev_kvs()) PrintKv(*context.out, kv);
  return kExitOk;
}

struct WatchArgs {
  std::string key, end;
  bool prefix = false, prev_kv = false;
  int64_t revision = 0;
  int64_t count = 0;       // stop after this many events (0: never)
  std::string duration;    // stop after this long (empty: never)
};

void PrintEvent(std::ostream& out, const etcd::Event& event, bool prev_kv) {
  out << (event.type() == etcd::Event::DELETE ? "DELETE" : "PUT") << "\n";
  if (prev_kv && event.has_prev_kv()) PrintKv(out, event.prev_kv());
  PrintKv(out, event.kv());
}

// Runs like `etcdctl watch`: prints each event as it comes, until Ctrl-C, --count events or --for.
int RunWatch(Context& context, const WatchArgs& args) {
  etcd::WatchCreateRequest request;
  request.set_key(args.key);
  request.set_range_end(args.end.empty() ? RangeEnd(args.key, args.prefix, false) : args.end);
  request.set_start_revision(args.revision);
  request.set_prev_kv(args.prev_kv);
  std::optional<std::chrono::steady_clock::time_point> until;
  if (!args.duration.empty()) {
    auto duration = ParseDuration(args.duration);
    if (!duration.ok()) return Fail(context, "kv watch", InvalidArgumentError("--for: " + duration.status().message()));
    until = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(*duration);
  }
  auto made = MakeClient(context);
  if (!made.ok()) return Fail(context, "kv watch", made.status());
  EtcdClient* client = made->get();
  int64_t seen = 0;
  bool json = JsonOutput(context);
  Status status = client->Watch(
      request,
      [&](const etcd::WatchResponse& response) {
        if (json && (response.events_size() > 0 || response.canceled())) {
          *context.out << etcdclient::EtcdctlJson(response) << "\n";
        }
        for (const etcd::Event& event : response.events()) {
          if (!json) PrintEvent(*context.out, event, args.prev_kv);
          if (args.count > 0 && ++seen >= args.count) break;
        }
        context.out->flush();
        return args.count == 0 || seen < args.count;
      },
      until);
  if (!status.ok()) return Fail(context, "kv watch", status);
  return kExitOk;
}

void PrintTxnResponse(std::ostream& out, const etcd::TxnResponse& response) {
  out << (response.succeeded() ? "SUCCESS" : "FAILURE") << "\n";
  for (const etcd::ResponseOp& op : response.responses()) {
    out << "\n";
    if (op.has_response_put()) {
      out << "OK\n";
    } else if (op.has_response_range()) {
      for (const etcd::KeyValue& kv : op.response_range().kvs()) PrintKv(out, kv);
    } else if (op.has_response_delete_range()) {
      out << op.response_delete_range().deleted() << "\n";
    }
  }
}

// The transaction comes from --file (a TxnRequest in the gateway's JSON) or from stdin in
// etcdctl's text format (see etcdclient::ParseTxnText).
int RunTxn(Context& context, const std::string& file) {
  etcd::TxnRequest request;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return Fail(context, "kv txn", InvalidArgumentError("cannot read " + file));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Status parsed = etcdclient::FromJson(text, &request);
    if (!parsed.ok()) return Fail(context, "kv txn", InvalidArgumentError(file + ": " + parsed.message()));
  } else {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto parsed = etcdclient::ParseTxnText(text);
    if (!parsed.ok()) return Fail(context, "kv txn", parsed.status());
    request = std::move(*parsed);
  }
  auto made = MakeClient(context);
  if (!made.ok()) return Fail(context, "kv txn", made.status());
  EtcdClient* client = made->get();
  auto response = client->Txn(request);
  if (!response.ok()) return Fail(context, "kv txn", response.status());
  if (JsonOutput(context)) {
    *context.out << etcdclient::EtcdctlJson(*response) << "\n";
  } else {
    PrintTxnResponse(*context.out, *response);
  }
  return kExitOk;
}

void AddPut(CLI::App& kv, Context& context) {
  auto args = std::make_shared<PutArgs>();
  CLI::App* put = kv.add_subcommand("put", "set KEY to VALUE");
  put->add_option("KEY", args->key, "the key")->required();
  put->add_option("VALUE", args->value, "the value")->required();
  put->add_option("--lease", args->lease, "attach the key to this lease (hex id)");
  put->add_flag("--prev-kv", args->prev_kv, "print the previous key-value");
  put->callback([&context, args] { context.action = [&context, args] { return RunPut(context, *args); }; });
}

void AddGet(CLI::App& kv, Context& context) {
  auto args = std::make_shared<GetArgs>();
  CLI::App* get = kv.add_subcommand("get", "read KEY, or the range [KEY, END)");
  get->add_option("KEY", args->key, "the key")->required();
  get->add_option("END", args->end, "end of the range (exclusive)");
  get->add_flag("--prefix", args->prefix, "every key starting with KEY");
  get->add_flag("--from-key", args->from_key, "every key >= KEY");
  get->add_option("--rev", args->revision, "read at this past revision");
  get->add_option("--limit", args->limit, "at most this many keys");
  get->add_flag("--keys-only", args->keys_only, "keys without values");
  get->add_flag("--count-only", args->count_only, "only the number of keys");
  get->add_flag("--serializable", args->serializable, "read the answering member's copy (may be stale)");
  get->callback([&context, args] { context.action = [&context, args] { return RunGet(context, *args); }; });
}

void AddDel(CLI::App& kv, Context& context) {
  auto args = std::make_shared<DelArgs>();
  CLI::App* del = kv.add_subcommand("del", "delete KEY, or the range [KEY, END); prints the number deleted");
  del->add_option("KEY", args->key, "the key")->required();
  del->add_option("END", args->end, "end of the range (exclusive)");
  del->add_flag("--prefix", args->prefix, "every key starting with KEY");
  del->add_flag("--from-key", args->from_key, "every key >= KEY");
  del->add_flag("--prev-kv", args->prev_kv, "print the deleted key-values");
  del->callback([&context, args] { context.action = [&context, args] { return RunDel(context, *args); }; });
}

void AddWatch(CLI::App& kv, Context& context) {
  auto args = std::make_shared<WatchArgs>();
  CLI::App* watch = kv.add_subcommand("watch", "print changes to KEY as they happen, until Ctrl-C");
  watch->add_option("KEY", args->key, "the key")->required();
  watch->add_option("END", args->end, "end of the range (exclusive)");
  watch->add_flag("--prefix", args->prefix, "every key starting with KEY");
  watch->add_option("--rev", args->revision, "start from this revision (replays history)");
  watch->add_flag("--prev-kv", args->prev_kv, "print each key's previous value too");
  watch->add_option("--count", args->count, "exit after this many events");
  watch->add_option("--for", args->duration, "exit after this long, e.g. 30s");
  watch->callback([&context, args] { context.action = [&context, args] { return RunWatch(context, *args); }; });
}

void AddTxn(CLI::App& kv, Context& context) {
  auto file = std::make_shared<std::string>();
  CLI::App* txn = kv.add_subcommand(
      "txn", "run a transaction read from stdin in etcdctl's format (compares, blank line, success ops, blank line, "
             "failure ops), or from --file");
  txn->add_option("--file", *file, "a TxnRequest in etcd's JSON gateway encoding");
  txn->callback([&context, file] { context.action = [&context, file] { return RunTxn(context, *file); }; });
}

}  // namespace

void AddKvCommands(CLI::App& root, Context& context) {
  CLI::App* kv = root.add_subcommand("kv", "read, write and watch keys in the store");
  kv->require_subcommand(1);
  AddPut(*kv, context);
  AddGet(*kv, context);
  AddDel(*kv, context);
  AddWatch(*kv, context);
  AddTxn(*kv, context);
}

}  // namespace cairn::clusterctl
