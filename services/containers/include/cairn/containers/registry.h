// Registry: the few key-value operations images and containers need from the coordination store,
// behind a small interface so the logic runs against the real store (EtcdRegistry over
// libs/etcdclient, what clusterctl uses) or an in-memory map in unit tests (MemoryRegistry).
//
// Keys: /cairn/images/NAME and /cairn/containers/NAME; values: protobuf JSON of the records in
// cairn/containers/records.proto. Threading: an implementation is used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/common/status.h"
#include "cairn/containers/records.pb.h"
#include "cairn/proto/etcd_rpc.pb.h"

namespace cairn::etcdclient {
class EtcdClient;
}

namespace cairn::containers {

inline constexpr const char* kImagePrefix = "/cairn/images/";
inline constexpr const char* kContainerPrefix = "/cairn/containers/";

// A value with the store revision of its last write, for compare-and-swap updates.
struct Versioned {
  std::string value;
  int64_t mod_revision = 0;
};

class Registry {
 public:
  virtual ~Registry() = default;
  // The value, or nullopt when the key does not exist. Errors: the store's (Unavailable, ...).
  virtual Result<std::optional<std::string>> Get(const std::string& key) = 0;
  // Every (key, value) whose key starts with prefix, in key order.
  virtual Result<std::vector<std::pair<std::string, std::string>>> List(const std::string& prefix) = 0;
  // Writes key only if it does not exist (one store transaction). AlreadyExists otherwise.
  virtual Status Create(const std::string& key, const std::string& value) = 0;
  // Writes key whatever it held.
  virtual Status Put(const std::string& key, const std::string& value) = 0;
  // Removes key; a missing key is OK.
  virtual Status Delete(const std::string& key) = 0;
  // The value with its mod revision, or nullopt when absent.
  virtual Result<std::optional<Versioned>> GetVersioned(const std::string& key) = 0;
  // Writes key only while its mod revision is still mod_revision (one transaction).
  // Aborted when someone else wrote it in between (read again and retry).
  virtual Status PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) = 0;
};

// A map in memory, for tests.
class MemoryRegistry : public Registry {
 public:
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Result<std::vector<std::pair<std::string, std::string>>> List(const std::string& prefix) override;
  Status Create(const std::string& key, const std::string& value) override;
  Status Put(const std::string& key, const std::string& value) override;
  Status Delete(const std::string& key) override;
  Result<std::optional<Versioned>> GetVersioned(const std::string& key) override;
  Status PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) override;

 private:
  std::map<std::string, Versioned> values_;
  int64_t revision_ = 0;
};

// The coordination store through a (synchronous) EtcdClient, which must outlive this object.
class EtcdRegistry : public Registry {
 public:
  explicit EtcdRegistry(etcdclient::EtcdClient& client) : client_(client) {}
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Result<std::vector<std::pair<std::string, std::string>>> List(const std::string& prefix) override;
  Status Create(const std::string& key, const std::string& value) override;
  Status Put(const std::string& key, const std::string& value) override;
  Status Delete(const std::string& key) override;
  Result<std::optional<Versioned>> GetVersioned(const std::string& key) override;
  Status PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) override;

 private:
  etcdclient::EtcdClient& client_;
};

// The transaction behind PutIfUnchanged (shared with CoordRegistry).
etcd::TxnRequest CompareAndPut(const std::string& key, const std::string& value, int64_t mod_revision);

// Record <-> stored JSON. Errors: Corruption naming the key when a stored value does not parse.
std::string ToJson(const google::protobuf::Message& record);
Status FromJson(const std::string& key, const std::string& json, google::protobuf::Message* record);

// Typed helpers over a Registry: nullopt when absent.
Result<std::optional<ImageRecord>> GetImage(Registry& registry, const std::string& name);
Result<std::optional<ContainerRecord>> GetContainer(Registry& registry, const std::string& name);
Result<std::vector<ImageRecord>> ListImages(Registry& registry);
Result<std::vector<ContainerRecord>> ListContainers(Registry& registry);

// Reads container NAME, applies change to it and writes it back if nobody wrote it meanwhile
// (compare-and-swap on the mod revision, retried a few times). The agent and clusterctl both
// write container records (state vs desired), so every read-modify-write goes through here.
// Errors: NotFound when the record is gone, change's error, Aborted after repeated races.
Status UpdateContainer(Registry& registry, const std::string& name,
                       const std::function<Status(ContainerRecord&)>& change);

// Names of images and containers: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit.
// Errors: InvalidArgument saying what is allowed.
Status ValidateName(const std::string& what, const std::string& name);

}  // namespace cairn::containers
