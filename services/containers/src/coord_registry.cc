#include "cairn/containers/coord_registry.h"

#include <chrono>
#include <future>
#include <memory>

#include "cairn/etcdclient/etcdctl.h"

namespace cairn::containers {
namespace {

// Issues call(done) and waits for done's result, or DeadlineExceeded after limit.
template <typename Response, typename Call>
Result<Response> Wait(Call call, std::chrono::milliseconds limit) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  std::future<Result<Response>> future = promise->get_future();
  call([promise](Result<Response> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(limit + std::chrono::seconds(1)) != std::future_status::ready) {
    return DeadlineExceededError("the store did not answer within " + std::to_string(limit.count()) + " ms");
  }
  return future.get();
}


}  // namespace

Result<std::optional<std::string>> CoordRegistry::Get(const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response,
                         Wait<etcd::RangeResponse>([&](auto done) { api_.Range(request, options_, done); },
                                                   options_.deadline));
  if (response.kvs_size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(response.kvs(0).value());
}

Result<std::vector<std::pair<std::string, std::string>>> CoordRegistry::List(const std::string& prefix) {
  etcd::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(etcdclient::PrefixRangeEnd(prefix));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response,
                         Wait<etcd::RangeResponse>([&](auto done) { api_.Range(request, options_, done); },
                                                   options_.deadline));
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& kv : response.kvs()) found.emplace_back(kv.key(), kv.value());
  return found;
}

Status CoordRegistry::Create(const std::string& key, const std::string& value) {
  etcd::TxnRequest txn;
  etcd::Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(etcd::Compare::CREATE);
  compare->set_result(etcd::Compare::EQUAL);
  compare->set_create_revision(0);
  etcd::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response,
                         Wait<etcd::TxnResponse>([&](auto done) { api_.Txn(txn, options_, done); }, options_.deadline));
  if (!response.succeeded()) return AlreadyExistsError(key + " already exists");
  return Status::Ok();
}

Status CoordRegistry::Put(const std::string& key, const std::string& value) {
  etcd::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  return Wait<etcd::PutResponse>([&](auto done) { api_.Put(request, options_, done); }, options_.deadline).status();
}

Status CoordRegistry::Delete(const std::string& key) {
  etcd::DeleteRangeRequest request;
  request.set_key(key);
  return Wait<etcd::DeleteRangeResponse>([&](auto done) { api_.DeleteRange(request, options_, done); },
                                         options_.deadline)
      .status();
}

Result<std::optional<Versioned>> CoordRegistry::GetVersioned(const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response,
                         Wait<etcd::RangeResponse>([&](auto done) { api_.Range(request, options_, done); },
                                                   options_.deadline));
  if (response.kvs_size() == 0) return std::optional<Versioned>();
  return std::optional<Versioned>(Versioned{response.kvs(0).value(), response.kvs(0).mod_revision()});
}

Status CoordRegistry::PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) {
  etcd::TxnRequest txn = CompareAndPut(key, value, mod_revision);
  CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response,
                         Wait<etcd::TxnResponse>([&](auto done) { api_.Txn(txn, options_, done); }, options_.deadline));
  if (!response.succeeded()) return AbortedError(key + " changed meanwhile");
  return Status::Ok();
}

}  // namespace cairn::containers
