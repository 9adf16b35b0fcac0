#include "cluster.h"

#include <algorithm>
#include <sstream>

namespace cairn::sim {
namespace {

// WAL record kinds: one byte tag, then the serialized protobuf.
constexpr char kRecordEntry = 'E';
constexpr char kRecordHardState = 'H';
constexpr char kRecordSnapshot = 'S';  // replaces the log (received, or the base of a rewritten WAL)

std::string Record(char kind, const google::protobuf::MessageLite& message) {
  return std::string(1, kind) + message.SerializeAsString();
}

size_t EntryHash(const raft::Entry& entry) {
  return std::hash<std::string>()(entry.data()) * 31 + static_cast<size_t>(entry.type());
}

size_t StateHash(const std::map<std::string, std::string>& kv) {
  size_t hash = 17;
  for (const auto& [key, value] : kv) hash = hash * 1000003 ^ std::hash<std::string>()(key + "=" + value);
  return hash;
}

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// KV command in a log entry: "put|client|sequence|key|value".
struct Command {
  uint64_t client = 0;
  uint64_t sequence = 0;
  std::string key;
  std::string value;
};

std::string EncodeCommand(const Command& command) {
  return "put|" + std::to_string(command.client) + "|" + std::to_string(command.sequence) + "|" + command.key +
         "|" + command.value;
}

std::optional<Command> DecodeCommand(const std::string& data) {
  std::vector<std::string> parts = Split(data, '|');
  if (parts.size() != 5 || parts[0] != "put") return std::nullopt;
  return Command{std::stoull(parts[1]), std::stoull(parts[2]), parts[3], parts[4]};
}

std::string EncodeState(const SimNode& node) {
  std::string out;
  for (const auto& [key, value] : node.kv) out += "k\t" + key + "\t" + value + "\n";
  for (const auto& [client, sequence] : node.sessions) {
    out += "s\t" + std::to_string(client) + "\t" + std::to_string(sequence) + "\n";
  }
  return out;
}

void DecodeState(const std::string& data, SimNode& node) {
  node.kv.clear();
  node.sessions.clear();
  for (const std::string& line : Split(data, '\n')) {
    std::vector<std::string> parts = Split(line, '\t');
    if (parts.size() != 3) continue;
    if (parts[0] == "k") node.kv[parts[1]] = parts[2];
    if (parts[0] == "s") node.sessions[std::stoull(parts[1])] = std::stoull(parts[2]);
  }
}

std::string Describe(const std::vector<uint64_t>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "}";
}

bool Contains(const google::protobuf::RepeatedField<uint64_t>& ids, uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

Cluster::Cluster(const SimOptions& options)
    : options_(options), random_(options.seed), network_(random_) {
  faults_on_ = options.random_faults;
  network_.SetFaults({.min_delay = 1, .max_delay = kUnitsPerTick / 2});
  if (options.random_faults) {
    // A per-seed network profile, so seeds differ in character, not only in detail.
    NetworkFaults faults;
    faults.drop_per_mille = static_cast<uint32_t>(random_.Uniform(60));
    faults.duplicate_per_mille = static_cast<uint32_t>(random_.Uniform(30));
    faults.min_delay = 1;
    faults.max_delay = 1 + static_cast<int64_t>(random_.Uniform(2 * kUnitsPerTick));
    faults.spike_per_mille = static_cast<uint32_t>(random_.Uniform(20));
    faults.spike_delay = faults.max_delay + static_cast<int64_t>(random_.Uniform(8 * kUnitsPerTick));
    network_.SetFaults(faults);
  }
  for (int i = 1; i <= options.nodes; ++i) founders_.push_back(static_cast<uint64_t>(i));
  next_node_id_ = founders_.size() + 1;
  for (uint64_t id : founders_) {
    SimNode& node = AddNode(id, true);
    node.tick_phase = options.random_faults ? static_cast<int>(random_.Uniform(kUnitsPerTick)) : 0;
    Status started = StartNode(node);
    if (!started.ok()) Violation("could not start " + NodeName(id) + ": " + started.ToString());
  }
  for (int i = 1; i <= options.clients; ++i) clients_.push_back({.id = static_cast<uint64_t>(i)});
}

Cluster::~Cluster() = default;

SimNode& Cluster::AddNode(uint64_t id, bool founding) {
  auto node = std::make_unique<SimNode>();
  node->id = id;
  node->founding = founding;
  SimNode& ref = *node;
  nodes_[id] = std::move(node);
  return ref;
}

SimNode* Cluster::node(uint64_t id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

std::vector<uint64_t> Cluster::MemberIds() const {
  std::vector<uint64_t> ids;
  for (const auto& [id, node] : nodes_) {
    if (!node->removed) ids.push_back(id);
  }
  return ids;
}

// ---- tracing -------------------------------------------------------------------------------

void Cluster::Say(const std::string& line) {
  std::string stamped = "[t" + std::to_string(Tick()) + "] " + line;
  if (options_.narrate) narration_.push_back(stamped);
  trace_tail_.push_back(stamped);
  while (trace_tail_.size() > options_.trace_tail) trace_tail_.pop_front();
  if (trace_sink_) trace_sink_(stamped);
}

void Cluster::Violation(const std::string& what) {
  if (!violation_.empty()) return;
  violation_ = what;
  Say("VIOLATION: " + what);
}

// ---- node lifecycle ------------------------------------------------------------------------

// Rebuilds MemoryStorage from the WAL exactly as the live node had it at the last durable point:
// the WAL is a log of storage mutations, replayed in order.
Status Cluster::StartNode(SimNode& node) {
  Recovery recovery = node.disk.Recover();
  if (recovery.truncated_torn_tail) {
    ++torn_tails_;
    Say(NodeName(node.id) + " recovery: truncated a torn WAL tail (" + std::to_string(recovery.truncated_bytes) +
        " bytes)");
  }
  node.storage = std::make_unique<raft::MemoryStorage>();
  for (const std::string& record : recovery.records) {
    std::string body = record.substr(1);
    if (record[0] == kRecordEntry) {
      raft::Entry entry;
      if (!entry.ParseFromString(body)) return CorruptionError("bad entry record");
      CAIRN_RETURN_IF_ERROR(node.storage->Append({entry}));
    } else if (record[0] == kRecordHardState) {
      raft::HardState hard_state;
      if (!hard_state.ParseFromString(body)) return CorruptionError("bad hard state record");
      node.storage->SetHardState(hard_state);
    } else if (record[0] == kRecordSnapshot) {
      raft::Snapshot snapshot;
      if (!snapshot.ParseFromString(body)) return CorruptionError("bad snapshot record");
      CAIRN_RETURN_IF_ERROR(node.storage->ApplySnapshot(snapshot));
    }
  }
  RestoreApplication(node);
  uint64_t last_index = node.storage->LastIndex().value();
  raft::Config config;
  config.id = node.id;
  if (node.founding && last_index == 0) config.voters = founders_;
  config.election_tick = options_.election_tick;
  config.heartbeat_tick = options_.heartbeat_tick;
  config.storage = node.storage.get();
  config.applied = node.applied;
  config.random_seed = options_.seed * 1000003 + node.id * 7919 + static_cast<uint64_t>(node.restarts);
  config.on_event = [this](const raft::Event& event) {
    // Conf changes are narrated by the applier with their index; ignored messages are noise.
    if (event.kind == raft::EventKind::kConfChangeApplied || event.kind == raft::EventKind::kMessageIgnored) return;
    Say(NodeName(event.node) + " [term " + std::to_string(event.term) + "] " + event.text);
  };
  CAIRN_ASSIGN_OR_RETURN(node.raft, raft::RawNode::Create(config));
  dirty_.insert(node.id);
  node.up = true;
  node.role = raft::Role::kFollower;
  node.pending_reads.clear();
  node.verified_commit = 0;
  network_.SetNodeUp(node.id, true);
  return Status::Ok();
}

void Cluster::RestoreApplication(SimNode& node) {
  raft::Snapshot snapshot = node.storage->GetSnapshot().value();
  DecodeState(snapshot.data(), node);
  node.applied = snapshot.metadata().index();
  node.conf_state = snapshot.metadata().conf_state();
}

void Cluster::Crash(uint64_t id) {
  SimNode* target = node(id);
  if (!target || !target->up) return;
  CrashReport report = target->disk.Crash(random_);
  target->raft.reset();
  target->storage.reset();
  target->up = false;
  target->role = raft::Role::kFollower;
  network_.SetNodeUp(id, false);
  ++crashes_;
  Say("crash " + NodeName(id) + ": power lost with " + std::to_string(report.unsynced_bytes) +
      " unsynced WAL bytes, " + std::to_string(report.kept_bytes) + " of them reached the disk");
}

void Cluster::Restart(uint64_t id) {
  SimNode* target = node(id);
  if (!target || target->up || target->removed) return;
  ++target->restarts;
  Say("restart " + NodeName(id));
  Status started = StartNode(*target);
  if (!started.ok()) Violation("restart of " + NodeName(id) + " failed: " + started.ToString());
}

void Cluster::Isolate(uint64_t id) {
  std::vector<uint64_t> others;
  for (const auto& [other, node] : nodes_) {
    if (other != id) others.push_back(other);
  }
  network_.Partition({id}, others);
  ++partitions_;
  Say("partition: " + NodeName(id) + " is cut off from " + Describe(others));
}

void Cluster::Partition(const std::vector<uint64_t>& side_a, const std::vector<uint64_t>& side_b) {
  network_.Partition(side_a, side_b);
  ++partitions_;
  Say("partition: " + Describe(side_a) + " | " + Describe(side_b));
}

void Cluster::Heal() {
  if (!network_.HasCutLinks()) return;
  network_.HealLinks();
  Say("network healed");
}

// ---- the main loop -------------------------------------------------------------------------

bool Cluster::RunTicks(int ticks) {
  int64_t end = now_ + ticks * kUnitsPerTick;
  while (now_ < end && violation_.empty()) Step();
  return violation_.empty();
}

bool Cluster::RunUntil(const std::function<bool()>& done, int max_ticks) {
  int64_t end = now_ + max_ticks * kUnitsPerTick;
  while (now_ < end && violation_.empty()) {
    if (done()) return true;
    Step();
  }
  return violation_.empty() && done();
}

void Cluster::Step() {
  ++now_;
  if (faults_on_ && now_ % kUnitsPerTick == 0) RandomFaults();
  Deliver();
  TickNodes();
  if (faults_on_ && now_ % kUnitsPerTick == 0) RandomClients();
  ClientTimeouts();
  ProcessReadies();
}

void Cluster::Deliver() {
  for (Delivery<raft::Message>& delivery : network_.TakeDue(now_)) {
    SimNode* target = node(delivery.to);
    if (!target || !target->up) continue;
    const raft::Message& message = delivery.message;
    if (options_.narrate && (message.type() == raftpb::MSG_SNAP ||
                             (message.type() == raftpb::MSG_APP && message.entries_size() > 0))) {
      Say("deliver " + raft::DescribeMessage(message));
    }
    Status stepped = target->raft->Step(message);
    if (!stepped.ok()) Say(NodeName(target->id) + " rejected " + raft::DescribeMessage(message) + ": " + stepped.ToString());
    HandleReady(*target);  // keep each Step's output with it, as a real node's event loop would
    if (!violation_.empty()) return;
  }
}

void Cluster::TickNodes() {
  for (auto& [id, node] : nodes_) {
    if (node->up && (now_ + node->tick_phase) % kUnitsPerTick == 0) {
      node->raft->Tick();
      dirty_.insert(id);
    }
  }
}

// Only nodes touched since the last pass can have a Ready: HandleReady drains it completely.
void Cluster::ProcessReadies() {
  std::set<uint64_t> dirty;
  dirty.swap(dirty_);
  for (uint64_t id : dirty) {
    if (!violation_.empty()) return;
    SimNode* target = node(id);
    if (target && target->up) HandleReady(*target);
  }
}

// The Ready contract (raft.h): persist snapshot, entries and hard state (sync when must_sync), then
// send, then apply, then Advance.
void Cluster::HandleReady(SimNode& node) {
  for (int rounds = 0; node.up && node.raft->HasReady() && violation_.empty(); ++rounds) {
    if (rounds > 1000) return Violation(NodeName(node.id) + " never stops producing Ready batches");
    raft::HardState before = node.storage->GetInitialState()->hard_state;
    raft::Ready ready = node.raft->GetReady();
    if (ready.soft_state) NoteSoftState(node, *ready.soft_state);
    if (ready.snapshot) PersistSnapshot(node, *ready.snapshot);
    PersistEntries(node, ready.entries);
    if (ready.hard_state) {
      bool term_or_vote_changed =
          ready.hard_state->term() != before.term() || ready.hard_state->vote() != before.vote();
      if (term_or_vote_changed && !ready.must_sync) {
        Violation(NodeName(node.id) + " ready contract: term/vote changed without must_sync");
      }
      node.disk.Append(Record(kRecordHardState, *ready.hard_state));
      node.storage->SetHardState(*ready.hard_state);
    }
    if (!ready.entries.empty() && !ready.must_sync) {
      Violation(NodeName(node.id) + " ready contract: new entries without must_sync");
    }
    // A snapshot raises the commit index; if the hard state saying so were lost in a crash, the WAL
    // would hold a commit below its own snapshot (restart refuses that). must_sync does not cover it.
    if ((ready.must_sync || ready.snapshot) && options_.driver_bug != DriverBug::kSkipSync) node.disk.Sync();
    NoteCommit(node);
    std::vector<uint64_t> snapshot_targets;
    for (raft::Message& message : ready.messages) {
      if (message.type() == raftpb::MSG_SNAP) snapshot_targets.push_back(message.to());
      uint64_t to = message.to();
      network_.Send(node.id, to, std::move(message), now_);
    }
    ApplyEntries(node, ready.committed_entries);
    for (raft::ReadState& read : ready.read_states) node.pending_reads.push_back(std::move(read));
    ServeReads(node);
    if (!node.up) return;  // removed by a conf change it just applied
    node.raft->Advance();
    for (uint64_t to : snapshot_targets) node.raft->ReportSnapshot(to, network_.Connected(node.id, to));
    MaybeCompact(node);
  }
}

void Cluster::PersistSnapshot(SimNode& node, const raft::Snapshot& snapshot) {
  uint64_t index = snapshot.metadata().index();
  auto known = committed_.find(index);
  if (known != committed_.end() && known->second.term != snapshot.metadata().term()) {
    Violation(NodeName(node.id) + " received a snapshot at i" + std::to_string(index) + " with term " +
              std::to_string(snapshot.metadata().term()) + " but the committed entry there has term " +
              std::to_string(known->second.term));
  }
  node.disk.Append(Record(kRecordSnapshot, snapshot));
  if (options_.driver_bug != DriverBug::kSkipSync) node.disk.Sync();
  Status applied = node.storage->ApplySnapshot(snapshot);
  if (!applied.ok()) return Violation(NodeName(node.id) + " ApplySnapshot failed: " + applied.ToString());
  RestoreApplication(node);
  auto fact = applied_.find(index);
  if (fact != applied_.end() && fact->second.state_hash != StateHash(node.kv)) {
    Violation(NodeName(node.id) + " snapshot at i" + std::to_string(index) + " holds a different KV state");
  }
  Say(NodeName(node.id) + " installed a snapshot at i" + std::to_string(index) + " t" +
      std::to_string(snapshot.metadata().term()));
}

// Log matching, checked on every write: an (index, term) names one entry with one predecessor term.
void Cluster::PersistEntries(SimNode& node, const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  uint64_t old_last = node.storage->LastIndex().value();
  for (const raft::Entry& entry : entries) {
    Result<uint64_t> old_term = node.storage->Term(entry.index());
    if (entry.index() <= old_last && old_term.ok() && *old_term != entry.term()) {
      Say(NodeName(node.id) + " overwrites its uncommitted entries i" + std::to_string(entry.index()) + "..i" +
          std::to_string(old_last) + " (t" + std::to_string(*old_term) + ") with the leader's (t" +
          std::to_string(entry.term()) + ")");
      break;
    }
  }
  for (const raft::Entry& entry : entries) node.disk.Append(Record(kRecordEntry, entry));
  Status appended = node.storage->Append(entries);
  if (!appended.ok()) return Violation(NodeName(node.id) + " storage rejected entries: " + appended.ToString());
  for (const raft::Entry& entry : entries) {
    Result<uint64_t> prev_term = node.storage->Term(entry.index() - 1);
    if (!prev_term.ok()) continue;  // below the snapshot: covered by the snapshot check
    LogFact fact{EntryHash(entry), *prev_term};
    auto [it, inserted] = log_facts_.emplace(std::make_pair(entry.index(), entry.term()), fact);
    if (!inserted && (it->second.hash != fact.hash || it->second.prev_term != fact.prev_term)) {
      Violation("log matching: " + NodeName(node.id) + " holds a different entry at i" + std::to_string(entry.index()) +
                " t" + std::to_string(entry.term()) + " (or a different predecessor term: " +
                std::to_string(fact.prev_term) + " vs " + std::to_string(it->second.prev_term) + ")");
      return;
    }
  }
  if (options_.narrate) {
    Say(NodeName(node.id) + " appended i" + std::to_string(entries.front().index()) + "..i" +
        std::to_string(entries.back().index()) + " (t" + std::to_string(entries.back().term()) + ") to its log");
  }
}

void Cluster::NoteSoftState(SimNode& node, const raft::SoftState& soft) {
  bool became_leader = soft.role == raft::Role::kLeader && node.role != raft::Role::kLeader;
  node.role = soft.role;
  if (!became_leader) return;
  uint64_t term = node.raft->term();
  auto [it, inserted] = leader_of_term_.emplace(term, node.id);
  if (!inserted && it->second != node.id) {
    return Violation("election safety: " + NodeName(node.id) + " and " + NodeName(it->second) +
                     " are both leader of term " + std::to_string(term));
  }
  CheckLeaderCompleteness(node);
}

void Cluster::CheckLeaderCompleteness(SimNode& node) {
  uint64_t term = node.raft->term();
  uint64_t first = node.storage->FirstIndex().value();
  for (const auto& [index, entry] : committed_) {
    if (entry.commit_term >= term || index < first) continue;
    Result<uint64_t> held = node.storage->Term(index);
    if (!held.ok() || *held != entry.term) {
      return Violation("leader completeness: " + NodeName(node.id) + " became leader of term " + std::to_string(term) +
                       " without entry i" + std::to_string(index) + " t" + std::to_string(entry.term) +
                       " committed in term " + std::to_string(entry.commit_term));
    }
  }
}

// Records newly committed entries (the first node to commit an index is its leader, so its term is
// the commit term) and checks each node's log against what was committed.
void Cluster::NoteCommit(SimNode& node) {
  uint64_t commit = node.storage->GetInitialState()->hard_state.commit();
  uint64_t first = node.storage->FirstIndex().value();
  uint64_t last = node.storage->LastIndex().value();
  if (commit > last) {
    return Violation(NodeName(node.id) + " commit index " + std::to_string(commit) + " is past its last entry " +
                     std::to_string(last));
  }
  for (uint64_t index = std::max(node.verified_commit + 1, first); index <= commit; ++index) {
    raft::Entry entry = node.storage->Entries(index, index + 1, raft::kNoLimit).value().front();
    auto [it, inserted] =
        committed_.emplace(index, CommittedEntry{entry.term(), EntryHash(entry), node.raft->term()});
    if (!inserted && (it->second.term != entry.term() || it->second.hash != EntryHash(entry))) {
      return Violation("state machine safety: " + NodeName(node.id) + " committed a different entry at i" +
                       std::to_string(index) + " (t" + std::to_string(entry.term()) + " vs t" +
                       std::to_string(it->second.term) + ")");
    }
  }
  node.verified_commit = std::max(node.verified_commit, commit);
}

void Cluster::ApplyEntries(SimNode& node, const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& entry : entries) {
    if (!node.up || !violation_.empty()) return;
    if (entry.index() <= node.applied) continue;  // already in the restored snapshot
    if (entry.index() != node.applied + 1) {
      return Violation(NodeName(node.id) + " asked to apply i" + std::to_string(entry.index()) + " after i" +
                       std::to_string(node.applied));
    }
    ApplyOne(node, entry);
  }
}

void Cluster::ApplyOne(SimNode& node, const raft::Entry& entry) {
  if (entry.type() == raftpb::ENTRY_CONF_CHANGE) {
    ApplyConfChange(node, entry);
  } else if (std::optional<Command> command = DecodeCommand(entry.data())) {
    uint64_t& last = node.sessions[command->client];
    if (command->sequence > last) {  // a retried or duplicated command applies once
      last = command->sequence;
      node.kv[command->key] = command->value;
      if (options_.narrate) {
        Say(NodeName(node.id) + " applied i" + std::to_string(entry.index()) + ": " + command->key + "=" +
            command->value);
      }
    }
    for (ClientState& client : clients_) {
      if (client.id == command->client && client.op && client.node == node.id &&
          history_[*client.op].kind == lincheck::OpKind::kPut && client.sequence == command->sequence) {
        CompleteOp(client, std::nullopt);
      }
    }
  }
  node.applied = entry.index();
  AppliedFact fact{entry.term(), EntryHash(entry), StateHash(node.kv)};
  auto [it, inserted] = applied_.emplace(entry.index(), fact);
  if (!inserted && (it->second.term != fact.term || it->second.hash != fact.hash ||
                    it->second.state_hash != fact.state_hash)) {
    Violation("state machine safety: " + NodeName(node.id) + " applied a different entry or reached a different "
              "state at i" + std::to_string(entry.index()));
  }
  auto committed = committed_.find(entry.index());
  if (committed == committed_.end() || committed->second.term != entry.term()) {
    Violation(NodeName(node.id) + " applied i" + std::to_string(entry.index()) + " which is not committed as such");
  }
}

void Cluster::ApplyConfChange(SimNode& node, const raft::Entry& entry) {
  if (entry.data().empty()) return;
  raft::ConfChange change;
  if (!change.ParseFromString(entry.data())) return Violation("unparseable conf change at i" + std::to_string(entry.index()));
  node.conf_state = node.raft->ApplyConfChange(change);
  if (options_.narrate || change.id() != 0) {
    const char* what = change.type() == raftpb::CONF_CHANGE_ADD_NODE      ? "add voter"
                       : change.type() == raftpb::CONF_CHANGE_ADD_LEARNER ? "add learner"
                                                                          : "remove";
    Say(NodeName(node.id) + " applied conf change at i" + std::to_string(entry.index()) + ": " + what + " " +
        NodeName(change.node_id()));
  }
  if (change.id() != 0 && node.role == raft::Role::kLeader) conf_change_deadline_ = -1;
  if (change.type() == raftpb::CONF_CHANGE_REMOVE_NODE) Retire(change.node_id(), "its removal committed");
}

// The operator decommissions a host once its removal committed (or its join never happened): it is
// shut down for good and no longer expected to catch up.
void Cluster::Retire(uint64_t id, const std::string& why) {
  SimNode* target = node(id);
  if (!target || target->removed) return;
  target->removed = true;
  restart_at_tick_.erase(id);
  if (pending_learner_ == id) pending_learner_.reset();
  if (target->up) {
    target->up = false;
    target->raft.reset();
    network_.SetNodeUp(id, false);
  }
  Say(NodeName(id) + " is decommissioned: " + why);
}

void Cluster::ServeReads(SimNode& node) {
  auto ready = [&](const raft::ReadState& read) { return read.index <= node.applied; };
  for (const raft::ReadState& read : node.pending_reads) {
    if (!ready(read)) continue;
    for (ClientState& client : clients_) {
      if (client.op && client.node == node.id && client.read_context == read.request_context) {
        const std::string& key = history_[*client.op].key;
        auto it = node.kv.find(key);
        std::optional<std::string> observed =
            it == node.kv.end() ? std::nullopt : std::optional<std::string>(it->second);
        if (options_.narrate) {
          Say(NodeName(node.id) + " read index i" + std::to_string(read.index) + " confirmed: c" +
              std::to_string(client.id) + " reads " + key + "=" + observed.value_or("(absent)"));
        }
        CompleteOp(client, observed);
      }
    }
  }
  std::erase_if(node.pending_reads, ready);
}

void Cluster::MaybeCompact(SimNode& node) {
  if (!faults_on_ || !node.up) return;
  uint64_t first = node.storage->FirstIndex().value();
  if (node.applied < first + 20 || !random_.OneIn(4)) return;
  Compact(node.id);
}

// Snapshot at the applied index, compact the log, and rewrite the WAL to [snapshot, later entries,
// hard state]: what purging old WAL segments achieves.
void Cluster::Compact(uint64_t id) {
  SimNode* target = node(id);
  if (!target || !target->up || target->applied == 0) return;
  SimNode& node = *target;
  uint64_t first = node.storage->FirstIndex().value();
  if (node.applied < first) return;
  Result<raft::Snapshot> snapshot = node.storage->CreateSnapshot(node.applied, &node.conf_state, EncodeState(node));
  if (!snapshot.ok()) return Violation(NodeName(id) + " CreateSnapshot failed: " + snapshot.status().ToString());
  Status compacted = node.storage->Compact(node.applied);
  if (!compacted.ok()) return Violation(NodeName(id) + " Compact failed: " + compacted.ToString());
  std::vector<std::string> records = {Record(kRecordSnapshot, *snapshot)};
  uint64_t last = node.storage->LastIndex().value();
  if (last > node.applied) {
    std::vector<raft::Entry> entries = node.storage->Entries(node.applied + 1, last + 1, raft::kNoLimit).value();
    for (const raft::Entry& entry : entries) records.push_back(Record(kRecordEntry, entry));
  }
  records.push_back(Record(kRecordHardState, node.storage->GetInitialState()->hard_state));
  node.disk.Rewrite(records);
  ++snapshots_;
  Say(NodeName(id) + " compacted its log up to i" + std::to_string(node.applied) + " (snapshot)");
}

// ---- clients -------------------------------------------------------------------------------

bool Cluster::ClientIdle(uint64_t id) const { return !clients_.at(id - 1).op.has_value(); }

bool Cluster::ClientPut(uint64_t id, uint64_t node_id, const std::string& key, const std::string& value) {
  ClientState& client = clients_.at(id - 1);
  SimNode* target = node(node_id);
  if (client.op || !target || !target->up) return false;
  ++client.sequence;
  Status proposed =
      target->raft->Propose(EncodeCommand({client.id, client.sequence, key, value}));
  dirty_.insert(node_id);
  if (!proposed.ok()) {
    // Dropped by contract (raft.h): it never takes effect, so it is left out of the history.
    ++ops_refused_;
    if (options_.narrate) Say("c" + std::to_string(id) + " put " + key + "=" + value + " refused by " + NodeName(node_id) + ": " + proposed.message());
    return false;
  }
  history_.push_back({.client = id, .kind = lincheck::OpKind::kPut, .key = key, .value = value,
                      .called = ++history_clock_});
  client.op = history_.size() - 1;
  client.node = node_id;
  client.read_context.clear();
  client.deadline = now_ + options_.client_timeout_ticks * kUnitsPerTick;
  if (options_.narrate) Say("c" + std::to_string(id) + " proposes " + key + "=" + value + " at " + NodeName(node_id));
  return true;
}

bool Cluster::ClientGet(uint64_t id, uint64_t node_id, const std::string& key) {
  ClientState& client = clients_.at(id - 1);
  SimNode* target = node(node_id);
  if (client.op || !target || !target->up) return false;
  ++client.sequence;
  history_.push_back({.client = id, .kind = lincheck::OpKind::kGet, .key = key, .called = ++history_clock_});
  client.op = history_.size() - 1;
  client.node = node_id;
  client.read_context = "read/c" + std::to_string(id) + "/" + std::to_string(client.sequence);
  client.deadline = now_ + options_.client_timeout_ticks * kUnitsPerTick;
  if (options_.narrate) Say("c" + std::to_string(id) + " asks " + NodeName(node_id) + " for a linearizable read of " + key);
  if (options_.driver_bug == DriverBug::kStaleRead) {
    auto it = target->kv.find(key);
    CompleteOp(client, it == target->kv.end() ? std::nullopt : std::optional<std::string>(it->second));
    return true;
  }
  target->raft->ReadIndex(client.read_context);
  dirty_.insert(node_id);
  return true;
}

void Cluster::CompleteOp(ClientState& client, std::optional<std::string> observed) {
  lincheck::Operation& op = history_[*client.op];
  op.returned = ++history_clock_;
  if (op.kind == lincheck::OpKind::kGet) op.value = std::move(observed);
  ++ops_completed_;
  client.op.reset();
  client.read_context.clear();
  client.next_action = now_ + static_cast<int64_t>(random_.Uniform(3 * kUnitsPerTick));
}

void Cluster::ClientTimeouts() {
  for (ClientState& client : clients_) {
    if (!client.op || now_ < client.deadline) continue;
    // The outcome is unknown: the history keeps the op with no return (a put may still happen).
    ++ops_timed_out_;
    if (options_.narrate) Say("c" + std::to_string(client.id) + " timed out waiting for " + NodeName(client.node));
    client.op.reset();
    client.read_context.clear();
    client.next_action = now_ + kUnitsPerTick;
  }
}

void Cluster::RandomClients() {
  std::vector<uint64_t> up;
  for (const auto& [id, node] : nodes_) {
    if (node->up) up.push_back(id);
  }
  if (up.empty()) return;
  for (ClientState& client : clients_) {
    if (client.op || now_ < client.next_action) continue;
    uint64_t target = up[random_.Uniform(up.size())];
    uint64_t leader = Leader();
    if (leader != 0 && random_.OneIn(2)) target = leader;
    std::string key = "k" + std::to_string(random_.Uniform(options_.keys));
    if (random_.OneIn(2)) {
      ClientPut(client.id, target, key, "c" + std::to_string(client.id) + "v" + std::to_string(client.sequence + 1));
    } else {
      ClientGet(client.id, target, key);
    }
    if (!client.op) client.next_action = now_ + kUnitsPerTick;
  }
}

// ---- faults, membership, leadership --------------------------------------------------------

uint64_t Cluster::Leader() const {
  uint64_t best = 0, best_term = 0;
  for (const auto& [id, node] : nodes_) {
    if (node->up && node->raft->role() == raft::Role::kLeader && node->raft->term() >= best_term) {
      best = id;
      best_term = node->raft->term();
    }
  }
  return best;
}

void Cluster::TransferLeader(uint64_t to) {
  uint64_t leader = Leader();
  if (leader == 0 || leader == to) return;
  ++transfers_;
  Say("operator asks leader " + NodeName(leader) + " to transfer leadership to " + NodeName(to));
  node(leader)->raft->TransferLeadership(to);
  dirty_.insert(leader);
}

void Cluster::Campaign(uint64_t id) {
  SimNode* target = node(id);
  if (!target || !target->up) return;
  Say(NodeName(id) + " is told to campaign now");
  Status status = target->raft->Campaign();
  dirty_.insert(id);
  if (!status.ok()) Say(NodeName(id) + " campaign refused: " + status.ToString());
}

uint64_t Cluster::AddLearner() {
  uint64_t leader = Leader();
  if (leader == 0) return 0;
  uint64_t id = next_node_id_++;
  raft::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_ADD_LEARNER);
  change.set_node_id(id);
  change.set_id(next_conf_change_id_++);
  dirty_.insert(leader);
  if (!node(leader)->raft->ProposeConfChange(change).ok()) return 0;
  SimNode& added = AddNode(id, false);
  added.tick_phase = faults_on_ ? static_cast<int>(random_.Uniform(kUnitsPerTick)) : 0;
  Status started = StartNode(added);
  if (!started.ok()) Violation("could not start " + NodeName(id) + ": " + started.ToString());
  ++conf_changes_;
  Say("operator adds " + NodeName(id) + " as a learner through leader " + NodeName(leader));
  return id;
}

bool Cluster::Promote(uint64_t id) {
  uint64_t leader = Leader();
  if (leader == 0) return false;
  raft::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_ADD_NODE);
  change.set_node_id(id);
  change.set_id(next_conf_change_id_++);
  dirty_.insert(leader);
  if (!node(leader)->raft->ProposeConfChange(change).ok()) return false;
  ++conf_changes_;
  Say("operator promotes " + NodeName(id) + " to voter through leader " + NodeName(leader));
  return true;
}

bool Cluster::Remove(uint64_t id) {
  uint64_t leader = Leader();
  if (leader == 0) return false;
  raft::ConfChange change;
  change.set_type(raftpb::CONF_CHANGE_REMOVE_NODE);
  change.set_node_id(id);
  change.set_id(next_conf_change_id_++);
  dirty_.insert(leader);
  if (!node(leader)->raft->ProposeConfChange(change).ok()) return false;
  ++conf_changes_;
  Say("operator removes " + NodeName(id) + " through leader " + NodeName(leader));
  return true;
}

void Cluster::RandomFaults() {
  int64_t tick = Tick();
  if (heal_at_tick_ >= 0 && tick >= heal_at_tick_) {
    Heal();
    heal_at_tick_ = -1;
  }
  for (auto it = restart_at_tick_.begin(); it != restart_at_tick_.end();) {
    if (tick >= it->second) {
      Restart(it->first);
      it = restart_at_tick_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<uint64_t> up;
  for (const auto& [id, node] : nodes_) {
    if (node->up) up.push_back(id);
  }
  if (up.empty()) return;
  uint64_t dice = random_.Uniform(1000);
  if (dice < 8 && heal_at_tick_ < 0) {
    std::vector<uint64_t> members = MemberIds(), side_a, side_b;
    for (uint64_t id : members) (random_.OneIn(2) ? side_a : side_b).push_back(id);
    if (random_.OneIn(3) || side_a.empty() || side_b.empty()) {
      Isolate(members[random_.Uniform(members.size())]);
    } else {
      Partition(side_a, side_b);
    }
    heal_at_tick_ = tick + 5 + static_cast<int64_t>(random_.Uniform(60));
  } else if (dice < 16) {
    uint64_t victim = up[random_.Uniform(up.size())];
    Crash(victim);
    restart_at_tick_[victim] = tick + 2 + static_cast<int64_t>(random_.Uniform(40));
  } else if (dice < 20) {
    std::vector<uint64_t> voters;
    uint64_t leader = Leader();
    if (leader != 0) {
      for (uint64_t id : node(leader)->conf_state.voters()) voters.push_back(id);
    }
    if (!voters.empty()) TransferLeader(voters[random_.Uniform(voters.size())]);
  } else if (dice < 26) {
    uint64_t leader = Leader();
    if (leader == 0 || (conf_change_deadline_ >= 0 && tick < conf_change_deadline_)) return;
    const raft::ConfState& conf = node(leader)->conf_state;
    conf_change_deadline_ = tick + 50;
    if (pending_learner_ && Contains(conf.learners(), *pending_learner_)) {
      if (Promote(*pending_learner_)) pending_learner_.reset();
    } else if (pending_learner_ && !Contains(conf.voters(), *pending_learner_)) {
      Retire(*pending_learner_, "its add-learner change never committed");
    } else if (conf.voters_size() > options_.nodes) {
      Remove(conf.voters(static_cast<int>(random_.Uniform(conf.voters_size()))));
    } else if (!pending_learner_ && conf.learners_size() == 0) {
      uint64_t id = AddLearner();
      if (id != 0) pending_learner_ = id;
    }
  }
}

// ---- whole runs ----------------------------------------------------------------------------

bool Cluster::CheckHistory() {
  Result<lincheck::CheckResult> result = lincheck::CheckKvHistory(history_);
  if (!result.ok()) {
    Violation("history is malformed: " + result.status().ToString());
    return false;
  }
  if (result->verdict == lincheck::Verdict::kNotLinearizable) {
    Violation("linearizability: " + result->explanation);
    return false;
  }
  if (result->verdict == lincheck::Verdict::kUnknown) Say("linearizability check gave up: " + result->explanation);
  return true;
}

bool Cluster::AllAppliedEqual() const { return Laggards().empty(); }

bool Cluster::InLeaderConfig(uint64_t id, bool voter) const {
  uint64_t leader = Leader();
  if (leader == 0) return false;
  const raft::ConfState& conf = nodes_.at(leader)->conf_state;
  return voter ? Contains(conf.voters(), id) : Contains(conf.learners(), id);
}

// Members (in the leader's configuration) that are down or have not applied the leader's commit.
std::string Cluster::Laggards() const {
  uint64_t leader = Leader();
  if (leader == 0) return "no leader";
  const SimNode& lead = *nodes_.at(leader);
  uint64_t commit = lead.raft->commit_index();
  std::string laggards;
  for (const auto& [id, node] : nodes_) {
    bool member = Contains(lead.conf_state.voters(), id) || Contains(lead.conf_state.learners(), id);
    if (node->removed || !member) continue;
    if (!node->up || node->applied != commit) {
      laggards += " " + NodeName(id) + (node->up ? " applied " + std::to_string(node->applied) : " down");
    }
  }
  return laggards.empty() ? "" : "leader " + NodeName(leader) + " commit " + std::to_string(commit) + ":" + laggards;
}

bool Cluster::CheckLiveness() {
  faults_on_ = false;
  network_.SetFaults({.min_delay = 1, .max_delay = kUnitsPerTick / 2});
  Heal();
  for (const auto& [id, when] : restart_at_tick_) Restart(id);
  restart_at_tick_.clear();
  for (const auto& [id, node] : nodes_) {
    if (!node->up && !node->removed) Restart(id);
  }
  Say("faults stop: network healed, every member up");
  int64_t deadline = now_ + options_.liveness_ticks * kUnitsPerTick;
  // Each client must get one put and one read through, retrying against the current leader.
  for (ClientState& client : clients_) {
    for (int kind = 0; kind < 2 && violation_.empty(); ++kind) {
      bool done = false;
      while (!done && now_ < deadline && violation_.empty()) {
        RunUntil([&] { return !client.op.has_value(); }, options_.liveness_ticks);
        uint64_t leader = 0;
        RunUntil([&] { return (leader = Leader()) != 0; }, static_cast<int>((deadline - now_) / kUnitsPerTick) + 1);
        if (leader == 0) break;
        uint64_t completed_before = ops_completed_;
        bool started = kind == 0 ? ClientPut(client.id, leader, "live", "c" + std::to_string(client.id) + "-final")
                                 : ClientGet(client.id, leader, "live");
        if (!started) {
          RunTicks(1);
          continue;
        }
        RunUntil([&] { return !client.op.has_value(); }, options_.client_timeout_ticks + 1);
        done = ops_completed_ > completed_before;
      }
      if (!done && violation_.empty()) {
        Violation("liveness: c" + std::to_string(client.id) + " could not complete a " + (kind == 0 ? "put" : "read") +
                  " within " + std::to_string(options_.liveness_ticks) + " ticks after faults stopped (leader: " +
                  NodeName(Leader()) + ")");
      }
    }
  }
  if (!violation_.empty()) return false;
  if (!RunUntil([&] { return AllAppliedEqual(); }, static_cast<int>((deadline - now_) / kUnitsPerTick) + 1)) {
    Violation("liveness: members did not all apply the leader's commit index within " +
              std::to_string(options_.liveness_ticks) + " ticks after faults stopped (" + Laggards() + ")");
    return false;
  }
  return true;
}

bool Cluster::RunRandom() {
  RunTicks(options_.fault_ticks);
  if (!violation_.empty()) return false;
  if (!CheckLiveness()) return false;
  return CheckHistory();
}

std::map<std::string, uint64_t> Cluster::Counters() const {
  return {{"ops", ops_completed_},         {"timeouts", ops_timed_out_},
          {"refused", ops_refused_},       {"crashes", crashes_},
          {"torn", torn_tails_},           {"partitions", partitions_},
          {"conf_changes", conf_changes_}, {"transfers", transfers_},
          {"snapshots", snapshots_},       {"leaders", leader_of_term_.size()},
          {"msgs", network_.stats().sent}, {"dropped", network_.stats().dropped},
          {"duplicated", network_.stats().duplicated}};
}

std::string Cluster::Summary() const {
  std::string out = "ticks=" + std::to_string(Tick());
  for (const auto& [name, value] : Counters()) out += " " + name + "=" + std::to_string(value);
  return out;
}

}  // namespace cairn::sim
