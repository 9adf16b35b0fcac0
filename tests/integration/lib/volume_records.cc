#include "cairn/itest/volume_records.h"

#include "cairn/volume/keys.h"
#include "cairn/volume/layout.h"
#include "cairn/volume/volume_store.h"
#include "subprocess.h"

namespace cairn::itest {

namespace vpb = ::cairn::proto::volume;
using test_support::WaitFor;

std::optional<etcd::KeyValue> GetKey(etcdclient::EtcdClient& store, const std::string& key) {
  etcd::RangeRequest request;
  request.set_key(key);
  auto reply = store.Range(request);
  if (!reply.ok() || reply->kvs_size() == 0) return std::nullopt;
  return reply->kvs(0);
}

Result<uint32_t> CreateStartedVolume(etcdclient::EtcdClient& store, const std::string& name,
                                     const std::vector<std::string>& bricks, std::chrono::milliseconds limit) {
  volume::CreateVolumeRequest request;
  request.name = name;
  request.replica_count = static_cast<uint32_t>(bricks.size());
  request.bricks = bricks;
  CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec spec, volume::CreateVolumeSpec(request));
  CAIRN_ASSIGN_OR_RETURN(vpb::VolumeSpec started, volume::WithVolumeState(spec, vpb::VOLUME_STARTED));
  etcd::TxnRequest txn = volume::CreateVolumeTxn(started);
  Result<etcd::TxnResponse> reply = UnavailableError("not tried");
  if (!WaitFor([&] {
        reply = store.Txn(txn);
        return reply.ok();
      }, limit)) {
    return reply.status();
  }
  if (!reply->succeeded()) return AlreadyExistsError("volume " + name + " exists already");
  return started.sets(0).id();
}

vpb::ReplicaSetState ReadSet(etcdclient::EtcdClient& store, const std::string& volume, uint32_t set) {
  auto kv = GetKey(store, volume::SetKey(volume, set));
  vpb::ReplicaSetState state;
  if (kv) state.ParseFromString(kv->value());
  return state;
}

std::string BrickAddress(etcdclient::EtcdClient& store, const std::string& volume, const std::string& brick) {
  auto kv = GetKey(store, volume::BrickAddressKey(volume, brick));
  return kv ? kv->value() : "";
}

vpb::ReplicaSetState WaitForPrimary(etcdclient::EtcdClient& store, const std::string& volume, uint32_t set,
                                    int in_sync, std::chrono::milliseconds limit, const std::string& not_this) {
  vpb::ReplicaSetState state;
  WaitFor([&] {
    state = ReadSet(store, volume, set);
    if (state.primary().empty() || state.primary() == not_this || state.in_sync_size() != in_sync) return false;
    auto key = GetKey(store, volume::PrimaryKey(volume, set));
    if (!key || key->value() != state.primary()) return false;
    for (const auto& brick : state.in_sync()) {
      if (BrickAddress(store, volume, brick).empty()) return false;
    }
    return true;
  }, limit);
  return state;
}

}  // namespace cairn::itest
