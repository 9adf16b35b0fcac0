#include "inode_table.h"

#include <cstring>

#include "cairn/brickclient/brick_client.h"

namespace cairn::volumemount {

InodeTable::InodeTable() {
  Node root;
  root.id = brickclient::kRootId;
  root.directory = true;
  root.lookups = 1;
  nodes_[FUSE_ROOT_ID] = root;
  by_id_[root.id] = FUSE_ROOT_ID;
}

fuse_ino_t InodeTable::Add(const FileId& id, uint32_t set, bool directory) {
  std::lock_guard lock(mu_);
  auto known = by_id_.find(id);
  fuse_ino_t ino;
  if (known != by_id_.end()) {
    ino = known->second;
  } else {
    ino = next_++;
    by_id_[id] = ino;
    nodes_[ino].id = id;
  }
  Node& node = nodes_[ino];
  node.set = set;
  node.directory = directory;
  if (ino != FUSE_ROOT_ID) ++node.lookups;
  return ino;
}

std::optional<Node> InodeTable::Get(fuse_ino_t ino) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return std::nullopt;
  return it->second;
}

std::optional<fuse_ino_t> InodeTable::Find(const FileId& id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<Dropped> InodeTable::DropIfUnused(std::unordered_map<fuse_ino_t, Node>::iterator it) {
  const Node& node = it->second;
  if (it->first == FUSE_ROOT_ID || node.lookups > 0 || node.opens > 0) return std::nullopt;
  std::optional<Dropped> dropped;
  if (node.kept) dropped = Dropped{node.id, node.set};
  by_id_.erase(node.id);
  nodes_.erase(it);
  return dropped;
}

std::optional<Dropped> InodeTable::Forget(fuse_ino_t ino, uint64_t count) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || ino == FUSE_ROOT_ID) return std::nullopt;
  it->second.lookups -= std::min(count, it->second.lookups);
  return DropIfUnused(it);
}

void InodeTable::Opened(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  ++it->second.opens;
  ++open_files_;
}

std::optional<Dropped> InodeTable::Released(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.opens == 0) return std::nullopt;
  --it->second.opens;
  --open_files_;
  return DropIfUnused(it);
}

bool InodeTable::IsOpen(const FileId& id) const {
  std::lock_guard lock(mu_);
  auto known = by_id_.find(id);
  return known != by_id_.end() && nodes_.at(known->second).opens > 0;
}

void InodeTable::MarkKept(const FileId& id) {
  std::lock_guard lock(mu_);
  auto known = by_id_.find(id);
  if (known != by_id_.end()) nodes_.at(known->second).kept = true;
}

size_t InodeTable::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

uint64_t InodeNumberOf(const FileId& id) {
  if (id == brickclient::kRootId) return FUSE_ROOT_ID;
  uint64_t high = 0, low = 0;
  std::memcpy(&high, id.data(), std::min<size_t>(8, id.size()));
  if (id.size() > 8) std::memcpy(&low, id.data() + 8, std::min<size_t>(8, id.size() - 8));
  uint64_t folded = high ^ low;
  return folded <= FUSE_ROOT_ID ? folded + 2 : folded;
}

}  // namespace cairn::volumemount
