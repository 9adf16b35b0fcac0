// The plan: per kind, the names only in desired are created, those only in current deleted, and
// those in both compared field by field. Which field changes apply can make is decided here, so
// the CLI only executes.
#include <algorithm>
#include <functional>
#include <map>

#include "cairn/clusterspec/plan.h"

namespace cairn::clusterspec {
namespace {

std::string Words(const std::vector<std::string>& items, std::string_view separator = " ") {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : std::string(separator)) + item;
  return out;
}

std::string Arrow(const std::string& from, const std::string& to) {
  return (from.empty() ? "\"\"" : from) + " -> " + (to.empty() ? "\"\"" : to);
}

// ---- per kind: the summary line of a create/delete, and the field changes ----

std::string Summary(const HostDecl& h) {
  return "(" + (h.roles.empty() ? std::string("no roles") : Words(h.roles, ",")) +
         (h.address.empty() ? "" : ", " + h.address) + ")";
}
std::string Summary(const VolumeDecl& v) {
  return "(" + v.type + ", replica " + std::to_string(v.replica) + ": " + Words(v.bricks) + ")";
}
std::string Summary(const MountDecl& m) {
  return "(volume " + m.volume + (m.options.empty() ? "" : ", -o " + m.options) + ")";
}
std::string Summary(const ImageDecl& i) {
  return "(" + i.source + (i.parent.empty() ? "" : ", parent " + i.parent) + ")";
}
std::string Summary(const ContainerDecl& c) {
  return "(image " + c.image + " on " + c.host + ", " + c.state + ")";
}

std::string NameOf(const HostDecl& h) { return h.name; }
std::string NameOf(const VolumeDecl& v) { return v.name; }
std::string NameOf(const MountDecl& m) { return m.Name(); }
std::string NameOf(const ImageDecl& i) { return i.name; }
std::string NameOf(const ContainerDecl& c) { return c.name; }

bool HoldsData(Kind kind) { return kind == Kind::kVolume || kind == Kind::kImage || kind == Kind::kContainer; }

void Compare(const HostDecl& from, const HostDecl& to, Change* change) {
  if (from.address != to.address) change->fields.push_back("address " + Arrow(from.address, to.address));
  if (from.roles != to.roles) change->fields.push_back("roles " + Arrow(Words(from.roles, ","), Words(to.roles, ",")));
}

void Compare(const VolumeDecl& from, const VolumeDecl& to, Change* change) {
  if (from.state != to.state) change->fields.push_back("state " + Arrow(from.state, to.state));
  if (from.no_quorum != to.no_quorum) change->fields.push_back("options.no_quorum " + Arrow(from.no_quorum, to.no_quorum));
  if (from.replica != to.replica || from.bricks != to.bricks) {
    change->fields.push_back("bricks " + Arrow(Summary(from), Summary(to)));
    change->unsupported = "apply does not move bricks; use clusterctl volume add-brick / remove-brick " + to.name +
                          ", then apply again";
  }
}

void Compare(const MountDecl& from, const MountDecl& to, Change* change) {
  if (from.volume != to.volume) change->fields.push_back("volume " + Arrow(from.volume, to.volume));
  if (from.options != to.options) change->fields.push_back("options " + Arrow(from.options, to.options));
}

void Compare(const ImageDecl& from, const ImageDecl& to, Change* change) {
  if (from.source != to.source) change->fields.push_back("source " + Arrow(from.source, to.source));
  if (from.parent != to.parent) change->fields.push_back("parent " + Arrow(from.parent, to.parent));
  if (!change->fields.empty()) {
    change->unsupported = "images never change; give the new image another name (and remove the old one with --prune)";
  }
}

void Compare(const ContainerDecl& from, const ContainerDecl& to, Change* change) {
  if (from.state != to.state) change->fields.push_back("state " + Arrow(from.state, to.state));
  bool fixed = false;
  if (from.image != to.image) change->fields.push_back("image " + Arrow(from.image, to.image)), fixed = true;
  if (from.host != to.host) change->fields.push_back("host " + Arrow(from.host, to.host)), fixed = true;
  if (from.volumes != to.volumes) {
    change->fields.push_back("volumes " + Arrow(Words(from.volumes, ","), Words(to.volumes, ","))), fixed = true;
  }
  if (from.binds != to.binds) {
    change->fields.push_back("binds " + Arrow(Words(from.binds, ","), Words(to.binds, ","))), fixed = true;
  }
  if (fixed) {
    change->unsupported = "a container's image, host, volumes and binds are fixed at creation; remove it from the file, "
                          "apply with --prune, then add it back";
  }
}

template <typename Decl>
void Diff(Kind kind, const std::vector<Decl>& desired, const std::vector<Decl>& current, std::vector<Change>* deletes,
          std::vector<Change>* updates) {
  std::map<std::string, const Decl*> now;
  for (const Decl& decl : current) now[NameOf(decl)] = &decl;
  std::map<std::string, const Decl*> wanted;
  for (const Decl& decl : desired) wanted[NameOf(decl)] = &decl;
  for (const auto& [name, decl] : now) {
    if (wanted.count(name) > 0) continue;
    deletes->push_back(Change{Action::kDelete, kind, name, Summary(*decl), {}, HoldsData(kind), ""});
  }
  for (const auto& [name, decl] : wanted) {
    auto it = now.find(name);
    if (it == now.end()) {
      updates->push_back(Change{Action::kCreate, kind, name, Summary(*decl), {}, false, ""});
      continue;
    }
    Change change{Action::kChange, kind, name, "", {}, false, ""};
    Compare(*it->second, *decl, &change);
    if (!change.fields.empty()) updates->push_back(std::move(change));
  }
}

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kCreate: return "create";
    case Action::kChange: return "change";
    case Action::kDelete: return "delete";
  }
  return "?";
}

std::string JsonText(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

}  // namespace

Plan ComputePlan(const ClusterSpec& desired_in, const ClusterSpec& current_in) {
  ClusterSpec desired = desired_in;
  ClusterSpec current = current_in;
  desired.Normalize();
  current.Normalize();
  std::map<Kind, std::vector<Change>> deletes, updates;
  for (Kind kind : kAllKinds) {
    if (!desired.Has(kind)) continue;
    switch (kind) {
      case Kind::kHost: Diff(kind, desired.hosts, current.hosts, &deletes[kind], &updates[kind]); break;
      case Kind::kVolume: Diff(kind, desired.volumes, current.volumes, &deletes[kind], &updates[kind]); break;
      case Kind::kMount: Diff(kind, desired.mounts, current.mounts, &deletes[kind], &updates[kind]); break;
      case Kind::kImage: Diff(kind, desired.images, current.images, &deletes[kind], &updates[kind]); break;
      case Kind::kContainer: Diff(kind, desired.containers, current.containers, &deletes[kind], &updates[kind]); break;
    }
  }
  Plan plan;
  // Deletes run users first (containers, mounts) so nothing is removed from under them.
  for (auto it = std::rbegin(kAllKinds); it != std::rend(kAllKinds); ++it) {
    for (Change& change : deletes[*it]) plan.changes.push_back(std::move(change));
  }
  for (Kind kind : kAllKinds) {
    for (Change& change : updates[kind]) plan.changes.push_back(std::move(change));
  }
  return plan;
}

size_t Plan::Count(Action action) const {
  return static_cast<size_t>(std::count_if(changes.begin(), changes.end(), [&](const Change& c) { return c.action == action; }));
}

std::vector<const Change*> Plan::Deletes() const {
  std::vector<const Change*> out;
  for (const Change& change : changes) {
    if (change.action == Action::kDelete) out.push_back(&change);
  }
  return out;
}

std::vector<const Change*> Plan::Unsupported() const {
  std::vector<const Change*> out;
  for (const Change& change : changes) {
    if (!change.unsupported.empty()) out.push_back(&change);
  }
  return out;
}

std::string RenderChange(const Change& change) {
  std::string kind(KindName(change.kind));
  switch (change.action) {
    case Action::kCreate: return "+ " + kind + " " + change.name + " " + change.summary;
    case Action::kDelete:
      return "- " + kind + " " + change.name + " " + change.summary + (change.holds_data ? " [holds data]" : "");
    case Action::kChange: {
      std::string line = "~ " + kind + " " + change.name + ": " + Words(change.fields, ", ");
      if (!change.unsupported.empty()) line += "\n    ! cannot apply: " + change.unsupported;
      return line;
    }
  }
  return "";
}

std::string Plan::Render() const {
  if (empty()) return "No changes. The cluster matches the file.\n";
  std::string out;
  for (const Change& change : changes) out += RenderChange(change) + "\n";
  out += "Plan: " + std::to_string(Count(Action::kCreate)) + " to create, " + std::to_string(Count(Action::kChange)) +
         " to change, " + std::to_string(Count(Action::kDelete)) + " to delete.\n";
  return out;
}

std::string Plan::ToJson() const {
  std::string out = "{\"create\":" + std::to_string(Count(Action::kCreate)) +
                    ",\"change\":" + std::to_string(Count(Action::kChange)) +
                    ",\"delete\":" + std::to_string(Count(Action::kDelete)) + ",\"changes\":[";
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    out += std::string(i ? "," : "") + "{\"action\":" + JsonText(ActionName(c.action)) +
           ",\"kind\":" + JsonText(KindName(c.kind)) + ",\"name\":" + JsonText(c.name) + ",\"line\":" +
           JsonText(RenderChange(c)) + ",\"holds_data\":" + (c.holds_data ? "true" : "false") +
           ",\"unsupported\":" + JsonText(c.unsupported) + "}";
  }
  return out + "]}";
}

}  // namespace cairn::clusterspec
