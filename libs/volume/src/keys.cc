#include "cairn/volume/keys.h"

#include <cstdio>

namespace cairn::volume {

std::string VolumePrefix(std::string_view volume) {
  return std::string(kVolumesPrefix) + std::string(volume) + "/";
}

std::string SpecKey(std::string_view volume) { return VolumePrefix(volume) + "spec"; }

std::string SetKey(std::string_view volume, uint32_t set_id) {
  // Zero-padded so a range over sets/ returns them in id order.
  char id[16];
  std::snprintf(id, sizeof(id), "%06u", set_id);
  return VolumePrefix(volume) + "sets/" + id;
}

std::string PrimaryKey(std::string_view volume, uint32_t set_id) {
  return SetKey(volume, set_id) + "/primary";
}

std::string HealKey(std::string_view volume, std::string_view brick) {
  return VolumePrefix(volume) + "heal/" + std::string(brick);
}

std::string BrickAddressKey(std::string_view volume, std::string_view brick) {
  return VolumePrefix(volume) + "bricks/" + std::string(brick);
}

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" means every key
}

etcd::Compare ModRevisionEquals(std::string_view key, int64_t mod_revision) {
  etcd::Compare compare;
  compare.set_key(std::string(key));
  compare.set_target(etcd::Compare::MOD);
  compare.set_result(etcd::Compare::EQUAL);
  compare.set_mod_revision(mod_revision);
  return compare;
}

etcd::Compare LeaseEquals(std::string_view key, int64_t lease_id) {
  etcd::Compare compare;
  compare.set_key(std::string(key));
  compare.set_target(etcd::Compare::LEASE);
  compare.set_result(etcd::Compare::EQUAL);
  compare.set_lease(lease_id);
  return compare;
}

etcd::Compare KeyAbsent(std::string_view key) {
  etcd::Compare compare;
  compare.set_key(std::string(key));
  compare.set_target(etcd::Compare::VERSION);
  compare.set_result(etcd::Compare::EQUAL);
  compare.set_version(0);
  return compare;
}

etcd::RequestOp PutOp(std::string_view key, std::string value, int64_t lease_id) {
  etcd::RequestOp op;
  auto* put = op.mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::move(value));
  put->set_lease(lease_id);
  return op;
}

}  // namespace cairn::volume
