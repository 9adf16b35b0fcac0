#include "cairn/containers/registry.h"

#include <google/protobuf/util/json_util.h>

#include "cairn/etcdclient/etcdctl.h"
#include "cairn/etcdclient/etcd_client.h"

namespace cairn::containers {

// ---- MemoryRegistry ----------------------------------------------------------------------------

Result<std::optional<std::string>> MemoryRegistry::Get(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second.value);
}

Result<std::vector<std::pair<std::string, std::string>>> MemoryRegistry::List(const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> found;
  for (auto it = values_.lower_bound(prefix); it != values_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    found.emplace_back(it->first, it->second.value);
  }
  return found;
}

Status MemoryRegistry::Create(const std::string& key, const std::string& value) {
  if (!values_.try_emplace(key, Versioned{value, revision_ + 1}).second) return AlreadyExistsError(key + " already exists");
  ++revision_;
  return Status::Ok();
}

Status MemoryRegistry::Put(const std::string& key, const std::string& value) {
  values_[key] = Versioned{value, ++revision_};
  return Status::Ok();
}

Status MemoryRegistry::Delete(const std::string& key) {
  values_.erase(key);
  return Status::Ok();
}

Result<std::optional<Versioned>> MemoryRegistry::GetVersioned(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return std::optional<Versioned>();
  return std::optional<Versioned>(it->second);
}

Status MemoryRegistry::PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) {
  auto it = values_.find(key);
  int64_t current = it == values_.end() ? 0 : it->second.mod_revision;
  if (current != mod_revision) return AbortedError(key + " changed meanwhile");
  values_[key] = Versioned{value, ++revision_};
  return Status::Ok();
}

// ---- EtcdRegistry ------------------------------------------------------------------------------

Result<std::optional<std::string>> EtcdRegistry::Get(const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client_.Range(request));
  if (response.kvs_size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(response.kvs(0).value());
}

Result<std::vector<std::pair<std::string, std::string>>> EtcdRegistry::List(const std::string& prefix) {
  etcd::RangeRequest request;
  request.set_key(prefix);
  request.set_range_end(etcdclient::PrefixRangeEnd(prefix));
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client_.Range(request));
  std::vector<std::pair<std::string, std::string>> found;
  for (const auto& kv : response.kvs()) found.emplace_back(kv.key(), kv.value());
  return found;
}

Status EtcdRegistry::Create(const std::string& key, const std::string& value) {
  etcd::TxnRequest txn;
  etcd::Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(etcd::Compare::CREATE);
  compare->set_result(etcd::Compare::EQUAL);
  compare->set_create_revision(0);
  etcd::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client_.Txn(txn));
  if (!response.succeeded()) return AlreadyExistsError(key + " already exists");
  return Status::Ok();
}

Status EtcdRegistry::Put(const std::string& key, const std::string& value) {
  etcd::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  return client_.Put(request).status();
}

Status EtcdRegistry::Delete(const std::string& key) {
  etcd::DeleteRangeRequest request;
  request.set_key(key);
  return client_.DeleteRange(request).status();
}

Result<std::optional<Versioned>> EtcdRegistry::GetVersioned(const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  CAIRN_ASSIGN_OR_RETURN(etcd::RangeResponse response, client_.Range(request));
  if (response.kvs_size() == 0) return std::optional<Versioned>();
  return std::optional<Versioned>(Versioned{response.kvs(0).value(), response.kvs(0).mod_revision()});
}

Status EtcdRegistry::PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) {
  CAIRN_ASSIGN_OR_RETURN(etcd::TxnResponse response, client_.Txn(CompareAndPut(key, value, mod_revision)));
  if (!response.succeeded()) return AbortedError(key + " changed meanwhile");
  return Status::Ok();
}

etcd::TxnRequest CompareAndPut(const std::string& key, const std::string& value, int64_t mod_revision) {
  etcd::TxnRequest txn;
  etcd::Compare* compare = txn.add_compare();
  compare->set_key(key);
  compare->set_target(etcd::Compare::MOD);
  compare->set_result(etcd::Compare::EQUAL);
  compare->set_mod_revision(mod_revision);
  etcd::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  return txn;
}

// ---- records -----------------------------------------------------------------------------------

std::string ToJson(const google::protobuf::Message& record) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(record, &json, options);
  return json;
}

Status FromJson(const std::string& key, const std::string& json, google::protobuf::Message* record) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, record, options);
  if (!status.ok()) return CorruptionError("record " + key + " does not parse: " + std::string(status.message()));
  return Status::Ok();
}

namespace {

template <typename Record>
Result<std::optional<Record>> GetRecord(Registry& registry, const std::string& key) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, registry.Get(key));
  if (!value) return std::optional<Record>();
  Record record;
  CAIRN_RETURN_IF_ERROR(FromJson(key, *value, &record));
  return std::optional<Record>(std::move(record));
}

template <typename Record>
Result<std::vector<Record>> ListRecords(Registry& registry, const std::string& prefix) {
  CAIRN_ASSIGN_OR_RETURN(auto values, registry.List(prefix));
  std::vector<Record> records;
  for (const auto& [key, value] : values) {
    Record record;
    CAIRN_RETURN_IF_ERROR(FromJson(key, value, &record));
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace

Result<std::optional<ImageRecord>> GetImage(Registry& registry, const std::string& name) {
  return GetRecord<ImageRecord>(registry, kImagePrefix + name);
}

Result<std::optional<ContainerRecord>> GetContainer(Registry& registry, const std::string& name) {
  return GetRecord<ContainerRecord>(registry, kContainerPrefix + name);
}

Result<std::vector<ImageRecord>> ListImages(Registry& registry) {
  return ListRecords<ImageRecord>(registry, kImagePrefix);
}

Result<std::vector<ContainerRecord>> ListContainers(Registry& registry) {
  return ListRecords<ContainerRecord>(registry, kContainerPrefix);
}

Status UpdateContainer(Registry& registry, const std::string& name,
                       const std::function<Status(ContainerRecord&)>& change) {
  const std::string key = kContainerPrefix + name;
  for (int attempt = 0; attempt < 20; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<Versioned> current, registry.GetVersioned(key));
    if (!current) return NotFoundError("container " + name + " does not exist (clusterctl container list)");
    ContainerRecord record;
    CAIRN_RETURN_IF_ERROR(FromJson(key, current->value, &record));
    CAIRN_RETURN_IF_ERROR(change(record));
    Status written = registry.PutIfUnchanged(key, ToJson(record), current->mod_revision);
    if (written.code() != StatusCode::kAborted) return written;
  }
  return AbortedError("container " + name + " kept changing while it was updated; try again");
}

Status ValidateName(const std::string& what, const std::string& name) {
  bool valid = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-');
  }
  if (!valid) {
    return InvalidArgumentError(what + " name '" + name +
                                "' is invalid: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit");
  }
  return Status::Ok();
}

}  // namespace cairn::containers
