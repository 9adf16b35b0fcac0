// CoordRegistry: the Registry over a CoordApi, for hosting ContainerService / ReconcileHost inside
// clusterd (which has the store in process) instead of over HTTP.
//
// Each call issues the asynchronous CoordApi request and blocks the calling thread until `done`
// runs or options.deadline plus a second passes (DeadlineExceeded). So never call it on a thread
// that the CoordApi implementation needs to complete requests (its io/tick threads): use a worker.
#pragma once

#include "cairn/containers/registry.h"
#include "cairn/coord/api.h"

namespace cairn::containers {

class CoordRegistry : public Registry {
 public:
  // api must outlive this object.
  explicit CoordRegistry(coord::CoordApi& api, coord::CallOptions options = {}) : api_(api), options_(options) {}
  Result<std::optional<std::string>> Get(const std::string& key) override;
  Result<std::vector<std::pair<std::string, std::string>>> List(const std::string& prefix) override;
  Status Create(const std::string& key, const std::string& value) override;
  Status Put(const std::string& key, const std::string& value) override;
  Status Delete(const std::string& key) override;
  Result<std::optional<Versioned>> GetVersioned(const std::string& key) override;
  Status PutIfUnchanged(const std::string& key, const std::string& value, int64_t mod_revision) override;

 private:
  coord::CoordApi& api_;
  coord::CallOptions options_;
};

}  // namespace cairn::containers
