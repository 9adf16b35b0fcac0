#include "cairn/config/node_config.h"

#include <cctype>

#include <yaml-cpp/yaml.h>

#include "cairn/config/yaml_reader.h"

namespace cairn::config {
namespace {

// Order matters only for "known fields: ..." in messages; it follows docs/config.md.
const std::vector<std::string_view> kTopFields = {
    "name",           "data_dir",       "role", "peer_address", "client_address", "advertise_peer_address",
    "advertise_client_address", "initial_cluster", "join", "log", "auth"};
const std::vector<std::string_view> kAuthFields = {"peer", "cluster_key_file", "api_token_file"};
const std::vector<std::string_view> kMemberFields = {"name", "peer_address"};
const std::vector<std::string_view> kJoinFields = {"address", "token"};
const std::vector<std::string_view> kLogFields = {"level", "format", "file"};

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool IsWildcardHost(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

// An address other nodes must be able to dial: no wildcard host, no port 0.
Status CheckDialable(const YamlValue& where, const HostPort& address) {
  if (IsWildcardHost(address.host)) {
    return where.Error(address.host + " is a wildcard that other nodes cannot dial; give a concrete address");
  }
  if (address.port == 0) return where.Error("port 0 cannot be dialled by other nodes; give a fixed port");
  return Status::Ok();
}

Status ReadName(const YamlMap& top, NodeConfig* config) {
  CAIRN_ASSIGN_OR_RETURN(YamlValue value, top.Require("name"));
  CAIRN_ASSIGN_OR_RETURN(config->name, value.String());
  Status valid = ValidateNodeName(config->name);
  if (!valid.ok()) return value.Error(valid.message());
  return Status::Ok();
}

Status ReadAddresses(const YamlMap& top, NodeConfig* config) {
  if (auto value = top.Get("peer_address")) {
    CAIRN_ASSIGN_OR_RETURN(config->peer_address, value->HostPortValue(/*allow_zero_port=*/true));
  }
  if (auto value = top.Get("client_address")) {
    CAIRN_ASSIGN_OR_RETURN(config->client_address, value->HostPortValue(/*allow_zero_port=*/true));
    if (config->client_address.port != 0 && SameAddress(config->client_address, config->peer_address)) {
      return value->Error("is the same as peer_address; the peer and client listeners need different ports");
    }
  }
  if (auto value = top.Get("advertise_peer_address")) {
    CAIRN_ASSIGN_OR_RETURN(config->advertise_peer_address, value->HostPortValue());
    CAIRN_RETURN_IF_ERROR(CheckDialable(*value, *config->advertise_peer_address));
  }
  if (auto value = top.Get("advertise_client_address")) {
    CAIRN_ASSIGN_OR_RETURN(config->advertise_client_address, value->HostPortValue());
    CAIRN_RETURN_IF_ERROR(CheckDialable(*value, *config->advertise_client_address));
  }
  return Status::Ok();
}

Status ReadRole(const YamlMap& top, NodeConfig* config) {
  auto value = top.Get("role");
  if (!value) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::string text, value->String());
  if (text == "voter") {
    config->role = Role::kVoter;
  } else if (text == "witness") {
    config->role = Role::kWitness;
  } else {
    return value->Error(Quoted(text) + " is not a role (use voter or witness)");
  }
  return Status::Ok();
}

Status ReadAuth(const YamlMap& top, NodeConfig* config) {
  auto value = top.Get("auth");
  if (!value) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(YamlMap auth_map, value->Map(kAuthFields));
  if (auto peer = auth_map.Get("peer")) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, peer->String());
    if (text == "auto") {
      config->auth.peer = PeerAuth::kAuto;
    } else if (text == "required") {
      config->auth.peer = PeerAuth::kRequired;
    } else if (text == "off") {
      config->auth.peer = PeerAuth::kOff;
    } else {
      return peer->Error(Quoted(text) + " is not a peer authentication mode (use auto, required or off)");
    }
  }
  if (auto path = auth_map.Get("cluster_key_file")) {
    CAIRN_ASSIGN_OR_RETURN(config->auth.cluster_key_file, path->AbsolutePath());
  }
  if (auto path = auth_map.Get("api_token_file")) {
    CAIRN_ASSIGN_OR_RETURN(config->auth.api_token_file, path->AbsolutePath());
  }
  return Status::Ok();
}

Status ReadLog(const YamlMap& top, NodeConfig* config) {
  auto value = top.Get("log");
  if (!value) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(YamlMap log_map, value->Map(kLogFields));
  if (auto level = log_map.Get("level")) {
    CAIRN_ASSIGN_OR_RETURN(config->log.level, level->String());
    auto parsed = log::ParseLevel(config->log.level);
    if (!parsed.ok()) return level->Error(parsed.status().message());
  }
  if (auto format = log_map.Get("format")) {
    CAIRN_ASSIGN_OR_RETURN(std::string text, format->String());
    auto parsed = log::ParseFormat(text);
    if (!parsed.ok()) return format->Error(parsed.status().message());
    config->log.format = *parsed;
  }
  if (auto file = log_map.Get("file")) {
    CAIRN_ASSIGN_OR_RETURN(config->log.file, file->AbsolutePath());
  }
  return Status::Ok();
}

// The member entry that names this node must carry the address this node advertises, or the
// other founders would dial somewhere else.
Status CheckOwnEntry(const NodeConfig& config, const YamlValue& address_value, const HostPort& listed) {
  HostPort advertised = config.AdvertisedPeerAddress();
  if (SameAddress(listed, advertised)) return Status::Ok();
  return address_value.Error(Quoted(listed.ToString()) + " differs from this node's " +
                             (config.advertise_peer_address ? "advertise_peer_address " : "peer_address ") +
                             Quoted(advertised.ToString()) + "; the entry for this node must match it");
}

Status ReadInitialCluster(const YamlMap& top, NodeConfig* config) {
  auto value = top.Get("initial_cluster");
  if (!value) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(std::vector<YamlValue> items, value->List());
  if (items.empty()) return value->Error("is empty; list every founding member, this node included");
  bool found_self = false;
  for (size_t i = 0; i < items.size(); ++i) {
    CAIRN_ASSIGN_OR_RETURN(YamlMap item, items[i].Map(kMemberFields));
    CAIRN_ASSIGN_OR_RETURN(YamlValue name_value, item.Require("name"));
    CAIRN_ASSIGN_OR_RETURN(YamlValue address_value, item.Require("peer_address"));
    InitialMember member;
    CAIRN_ASSIGN_OR_RETURN(member.name, name_value.String());
    Status valid = ValidateNodeName(member.name);
    if (!valid.ok()) return name_value.Error(valid.message());
    CAIRN_ASSIGN_OR_RETURN(member.peer_address, address_value.HostPortValue());
    CAIRN_RETURN_IF_ERROR(CheckDialable(address_value, member.peer_address));
    for (size_t j = 0; j < i; ++j) {
      const InitialMember& earlier = config->initial_cluster[j];
      std::string other = "initial_cluster[" + std::to_string(j) + "]";
      if (earlier.name == member.name) {
        return name_value.Error("duplicate member name " + Quoted(member.name) + " (also " + other + ")");
      }
      if (SameAddress(earlier.peer_address, member.peer_address)) {
        return address_value.Error("duplicate peer address " + Quoted(member.peer_address.ToString()) +
                                   " (also " + other + ")");
      }
    }
    if (member.name == config->name) {
      found_self = true;
      CAIRN_RETURN_IF_ERROR(CheckOwnEntry(*config, address_value, member.peer_address));
    }
    config->initial_cluster.push_back(std::move(member));
  }
  if (!found_self) {
    return value->Error("does not list this node (name " + Quoted(config->name) +
                        "); every founding member, this one included, must be listed");
  }
  return Status::Ok();
}

Status ReadJoin(const YamlMap& top, NodeConfig* config) {
  auto value = top.Get("join");
  if (!value) return Status::Ok();
  if (top.Get("initial_cluster")) {
    return top.KeyError("join", "cannot be combined with initial_cluster (line " +
                                    std::to_string(top.KeyLocation("initial_cluster").line) +
                                    "): use initial_cluster to found a new cluster, join to enter a running one");
  }
  CAIRN_ASSIGN_OR_RETURN(YamlMap join_map, value->Map(kJoinFields));
  JoinConfig join;
  CAIRN_ASSIGN_OR_RETURN(YamlValue address_value, join_map.Require("address"));
  CAIRN_ASSIGN_OR_RETURN(join.address, address_value.HostPortValue());
  CAIRN_RETURN_IF_ERROR(CheckDialable(address_value, join.address));
  CAIRN_ASSIGN_OR_RETURN(YamlValue token_value, join_map.Require("token"));
  CAIRN_ASSIGN_OR_RETURN(join.token, token_value.String());
  if (join.token.empty()) return token_value.Error("is empty; use the token printed by the cluster's first node");
  for (char c : join.token) {
    if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c))) {
      return token_value.Error("contains whitespace or control characters; paste the token exactly as printed");
    }
  }
  config->join = std::move(join);
  return Status::Ok();
}

// In a multi-node cluster the other members dial this node's advertised peer address, so a
// wildcard or port-0 listen address needs an explicit advertise_peer_address. Checked before the
// member list so the message names the real cause.
Status CheckPeerAddressDialable(const YamlMap& top, const NodeConfig& config) {
  bool multi_node = top.Get("initial_cluster").has_value() || top.Get("join").has_value();
  if (!multi_node || config.advertise_peer_address) return Status::Ok();
  const HostPort& address = config.peer_address;
  if (!IsWildcardHost(address.host) && address.port != 0) return Status::Ok();
  return top.KeyError("peer_address", Quoted(address.ToString()) +
                                          " cannot be dialled by other members; set advertise_peer_address");
}

Status CheckRole(const YamlMap& top, const NodeConfig& config) {
  if (config.role == Role::kWitness && config.bootstrap_mode() == BootstrapMode::kSingleNode) {
    return top.KeyError("role", "a witness only votes and cannot form a cluster alone; add initial_cluster or join");
  }
  return Status::Ok();
}

void EmitAddress(YAML::Emitter& out, std::string_view key, const HostPort& address) {
  out << YAML::Key << std::string(key) << YAML::Value << address.ToString();
}

}  // namespace

std::string_view PeerAuthName(PeerAuth mode) {
  switch (mode) {
    case PeerAuth::kRequired: return "required";
    case PeerAuth::kOff: return "off";
    case PeerAuth::kAuto: break;
  }
  return "auto";
}

std::string_view RoleName(Role role) { return role == Role::kWitness ? "witness" : "voter"; }

std::string_view BootstrapModeName(BootstrapMode mode) {
  switch (mode) {
    case BootstrapMode::kStatic: return "static";
    case BootstrapMode::kJoin: return "join";
    case BootstrapMode::kSingleNode: break;
  }
  return "single-node";
}

bool SameAddress(const HostPort& a, const HostPort& b) { return a.host == b.host && a.port == b.port; }

bool operator==(const InitialMember& a, const InitialMember& b) {
  return a.name == b.name && SameAddress(a.peer_address, b.peer_address);
}

bool operator==(const JoinConfig& a, const JoinConfig& b) {
  return SameAddress(a.address, b.address) && a.token == b.token;
}

namespace {
bool SameOptionalAddress(const std::optional<HostPort>& a, const std::optional<HostPort>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || SameAddress(*a, *b);
}
}  // namespace

bool operator==(const NodeConfig& a, const NodeConfig& b) {
  return a.name == b.name && a.data_dir == b.data_dir && SameAddress(a.peer_address, b.peer_address) &&
         SameAddress(a.client_address, b.client_address) &&
         SameOptionalAddress(a.advertise_peer_address, b.advertise_peer_address) &&
         SameOptionalAddress(a.advertise_client_address, b.advertise_client_address) &&
         a.initial_cluster == b.initial_cluster && a.join == b.join && a.log == b.log && a.auth == b.auth &&
         a.role == b.role;
}

BootstrapMode NodeConfig::bootstrap_mode() const {
  if (join.has_value()) return BootstrapMode::kJoin;
  if (!initial_cluster.empty()) return BootstrapMode::kStatic;
  return BootstrapMode::kSingleNode;
}

HostPort NodeConfig::AdvertisedPeerAddress() const { return advertise_peer_address.value_or(peer_address); }
std::string NodeConfig::ClusterKeyPath() const {
  return auth.cluster_key_file.empty() ? data_dir + "/cluster.key" : auth.cluster_key_file;
}

HostPort NodeConfig::AdvertisedClientAddress() const { return advertise_client_address.value_or(client_address); }

Status ValidateNodeName(std::string_view name) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError(Quoted(name) + " is not a valid node name (" + std::string(why) + ")");
  };
  if (name.empty()) return fail("it is empty");
  if (name.size() > 63) return fail("longer than 63 characters");
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!allowed) return fail("use only a-z, 0-9 and '-'");
  }
  if (name.front() == '-' || name.back() == '-') return fail("it must start and end with a letter or digit");
  return Status::Ok();
}

Result<NodeConfig> ParseNodeConfig(std::string_view text, std::string_view filename) {
  CAIRN_ASSIGN_OR_RETURN(YamlValue root, ParseYaml(text, filename));
  if (root.IsNull()) return root.Error("the file is empty; node.yaml needs at least name and data_dir");
  CAIRN_ASSIGN_OR_RETURN(YamlMap top, root.Map(kTopFields));
  NodeConfig config;
  CAIRN_RETURN_IF_ERROR(ReadName(top, &config));
  CAIRN_ASSIGN_OR_RETURN(YamlValue data_dir, top.Require("data_dir"));
  CAIRN_ASSIGN_OR_RETURN(config.data_dir, data_dir.AbsolutePath());
  CAIRN_RETURN_IF_ERROR(ReadRole(top, &config));
  CAIRN_RETURN_IF_ERROR(ReadAddresses(top, &config));
  CAIRN_RETURN_IF_ERROR(CheckPeerAddressDialable(top, config));
  CAIRN_RETURN_IF_ERROR(ReadLog(top, &config));
  CAIRN_RETURN_IF_ERROR(ReadAuth(top, &config));
  CAIRN_RETURN_IF_ERROR(ReadInitialCluster(top, &config));
  CAIRN_RETURN_IF_ERROR(ReadJoin(top, &config));
  CAIRN_RETURN_IF_ERROR(CheckRole(top, config));
  return config;
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ParseNodeConfig(text, path);
}

std::string NodeConfigToYaml(const NodeConfig& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << config.name;
  out << YAML::Key << "data_dir" << YAML::Value << config.data_dir;
  out << YAML::Key << "role" << YAML::Value << std::string(RoleName(config.role));
  EmitAddress(out, "peer_address", config.peer_address);
  EmitAddress(out, "client_address", config.client_address);
  if (config.advertise_peer_address) EmitAddress(out, "advertise_peer_address", *config.advertise_peer_address);
  if (config.advertise_client_address) {
    EmitAddress(out, "advertise_client_address", *config.advertise_client_address);
  }
  if (!config.initial_cluster.empty()) {
    out << YAML::Key << "initial_cluster" << YAML::Value << YAML::BeginSeq;
    for (const InitialMember& member : config.initial_cluster) {
      out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << member.name;
      EmitAddress(out, "peer_address", member.peer_address);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (config.join) {
    out << YAML::Key << "join" << YAML::Value << YAML::BeginMap;
    EmitAddress(out, "address", config.join->address);
    out << YAML::Key << "token" << YAML::Value << config.join->token << YAML::EndMap;
  }
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "level" << YAML::Value << config.log.level;
  out << YAML::Key << "format" << YAML::Value << (config.log.format == log::Format::kJson ? "json" : "text");
  if (!config.log.file.empty()) out << YAML::Key << "file" << YAML::Value << config.log.file;
  out << YAML::EndMap;
  out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "peer" << YAML::Value << std::string(PeerAuthName(config.auth.peer));
  if (!config.auth.cluster_key_file.empty()) {
    out << YAML::Key << "cluster_key_file" << YAML::Value << config.auth.cluster_key_file;
  }
  if (!config.auth.api_token_file.empty()) {
    out << YAML::Key << "api_token_file" << YAML::Value << config.auth.api_token_file;
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace cairn::config
