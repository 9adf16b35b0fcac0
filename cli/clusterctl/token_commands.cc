// clusterctl token create|list|revoke: join tokens for new hosts (docs/operations.md "Joining a
// host"). Thin edges over the member's /cairn/v1/token/ endpoints (libs/auth JoinService); the
// messages travel as JSON (cairn/auth/auth.proto), read here through protobuf's Struct so this
// file needs no generated code.
#include <ctime>
#include <memory>
#include <ostream>

#include <google/protobuf/struct.pb.h>

#include "cairn/etcdclient/json.h"
#include "commands.h"
#include "store_client.h"

namespace cairn::clusterctl {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

struct CreateArgs {
  std::string ttl = "24h";
  std::string role = "voter";
};

std::string Text(const Struct& object, const std::string& field) {
  auto it = object.fields().find(field);
  if (it == object.fields().end()) return "";
  if (it->second.has_string_value()) return it->second.string_value();
  if (it->second.has_number_value()) return std::to_string(static_cast<int64_t>(it->second.number_value()));
  if (it->second.has_bool_value()) return it->second.bool_value() ? "true" : "false";
  return "";
}

int64_t Number(const Struct& object, const std::string& field) {
  std::string text = Text(object, field);
  return text.empty() || text == "false" ? 0 : text == "true" ? 1 : std::strtoll(text.c_str(), nullptr, 10);
}

std::string UtcText(int64_t unix_seconds) {
  std::time_t time = static_cast<std::time_t>(unix_seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string JoinList(const Struct& object, const std::string& field) {
  auto it = object.fields().find(field);
  if (it == object.fields().end() || !it->second.has_list_value()) return "";
  std::string text;
  for (const Value& item : it->second.list_value().values()) text += (text.empty() ? "" : ",") + item.string_value();
  return text;
}

std::string StateOf(const Struct& record, int64_t now) {
  if (Number(record, "revoked")) return "revoked";
  if (Number(record, "expires_unix") <= now) return "expired";
  return "valid";
}

int RunCreate(Context& context, const CreateArgs& args) {
  auto ttl = ParseDuration(args.ttl);
  if (!ttl.ok()) return Fail(context, "token create", InvalidArgumentError("--ttl: " + ttl.status().message()));
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*ttl).count();
  if (seconds < 1) return Fail(context, "token create", InvalidArgumentError("--ttl must be at least 1s"));
  return WithClient(context, "token create", [&](etcdclient::EtcdClient& client) -> Status {
    Struct request, response;
    (*request.mutable_fields())["ttl_seconds"].set_number_value(static_cast<double>(seconds));
    (*request.mutable_fields())["role"].set_string_value(args.role);
    CAIRN_RETURN_IF_ERROR(client.Call("/cairn/v1/token/create", request, &response));
    if (JsonOutput(context)) {
      *context.out << etcdclient::ToJson(response) << "\n";
      return Status::Ok();
    }
    const Struct& record = response.fields().at("record").struct_value();
    *context.out << Text(response, "token") << "\n";
    *context.err << "join token " << Text(record, "id") << " for a " << Text(record, "role") << ", valid until "
                 << UtcText(Number(record, "expires_unix")) << ". On the new host, in node.yaml:\n"
                 << "  join:\n    address: " << client.endpoints().front().ToString() << "\n    token: "
                 << Text(response, "token") << "\n";
    return Status::Ok();
  });
}

int RunList(Context& context) {
  return WithClient(context, "token list", [&](etcdclient::EtcdClient& client) -> Status {
    Struct request, response;
    CAIRN_RETURN_IF_ERROR(client.Call("/cairn/v1/token/list", request, &response));
    if (JsonOutput(context)) {
      *context.out << etcdclient::ToJson(response) << "\n";
      return Status::Ok();
    }
    int64_t now = Number(response, "now_unix");
    std::vector<std::vector<std::string>> rows = {{"ID", "ROLE", "EXPIRES", "STATE", "USED BY"}};
    auto tokens = response.fields().find("tokens");
    if (tokens != response.fields().end()) {
      for (const Value& item : tokens->second.list_value().values()) {
        const Struct& record = item.struct_value();
        rows.push_back({Text(record, "id"), Text(record, "role"), UtcText(Number(record, "expires_unix")),
                        StateOf(record, now), JoinList(record, "used_by")});
      }
    }
    PrintTable(*context.out, rows);
    return Status::Ok();
  });
}

int RunRevoke(Context& context, const std::string& id) {
  return WithClient(context, "token revoke", [&](etcdclient::EtcdClient& client) -> Status {
    Struct request, response;
    (*request.mutable_fields())["id"].set_string_value(id);
    CAIRN_RETURN_IF_ERROR(client.Call("/cairn/v1/token/revoke", request, &response));
    if (JsonOutput(context)) {
      *context.out << etcdclient::ToJson(response) << "\n";
    } else {
      *context.out << "revoked join token " << id << "\n";
    }
    return Status::Ok();
  });
}

}  // namespace

void AddTokenCommands(CLI::App& root, Context& context) {
  CLI::App* token = root.add_subcommand("token", "join tokens for new hosts: create, list, revoke");
  token->require_subcommand(1);

  auto create_args = std::make_shared<CreateArgs>();
  CLI::App* create = token->add_subcommand("create", "print a new join token (cairn1.ID.SECRET)");
  create->add_option("--ttl", create_args->ttl, "how long it stays valid, e.g. 1h, 24h")->capture_default_str();
  create->add_option("--role", create_args->role, "what a host joining with it becomes")
      ->check(CLI::IsMember({"voter", "witness"}))
      ->capture_default_str();
  create->callback([&context, create_args] {
    context.action = [&context, create_args] { return RunCreate(context, *create_args); };
  });

  CLI::App* list = token->add_subcommand("list", "list join tokens (ids only, never secrets)");
  list->callback([&context] { context.action = [&context] { return RunList(context); }; });

  auto revoke_id = std::make_shared<std::string>();
  CLI::App* revoke = token->add_subcommand("revoke", "make a join token unusable");
  revoke->add_option("ID", *revoke_id, "the token id (the part after cairn1.)")->required();
  revoke->callback([&context, revoke_id] {
    context.action = [&context, revoke_id] { return RunRevoke(context, *revoke_id); };
  });
}

}  // namespace cairn::clusterctl
