#include "cairn/etcdclient/etcdctl.h"

#include <cctype>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <vector>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"

namespace cairn::etcdclient {
namespace {

namespace pb = google::protobuf;
using FieldDescriptor = pb::FieldDescriptor;

void AppendMessage(const pb::Message& message, std::string* out);

void AppendScalar(const pb::Message& message, const FieldDescriptor* field, int index, std::string* out) {
  const pb::Reflection* reflection = message.GetReflection();
  bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      out->append(std::to_string(repeated ? reflection->GetRepeatedInt32(message, field, index)
                                          : reflection->GetInt32(message, field)));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out->append(std::to_string(repeated ? reflection->GetRepeatedInt64(message, field, index)
                                          : reflection->GetInt64(message, field)));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      out->append(std::to_string(repeated ? reflection->GetRepeatedUInt32(message, field, index)
                                          : reflection->GetUInt32(message, field)));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      out->append(std::to_string(repeated ? reflection->GetRepeatedUInt64(message, field, index)
                                          : reflection->GetUInt64(message, field)));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out->append((repeated ? reflection->GetRepeatedBool(message, field, index) : reflection->GetBool(message, field))
                      ? "true"
                      : "false");
      break;
    case FieldDescriptor::CPPTYPE_ENUM:
      out->append(std::to_string(repeated ? reflection->GetRepeatedEnumValue(message, field, index)
                                          : reflection->GetEnumValue(message, field)));
      break;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string text = repeated ? reflection->GetRepeatedString(message, field, index)
                                  : reflection->GetString(message, field);
      bool bytes = field->type() == FieldDescriptor::TYPE_BYTES;
      out->append("\"").append(bytes ? Base64Encode(text) : log::JsonEscape(text)).append("\"");
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      AppendMessage(repeated ? reflection->GetRepeatedMessage(message, field, index)
                             : reflection->GetMessage(message, field),
                    out);
      break;
    default:  // float and double: etcd's messages have none
      out->append("null");
  }
}

void AppendMessage(const pb::Message& message, std::string* out) {
  const pb::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);  // set fields only: Go's omitempty
  out->push_back('{');
  bool first = true;
  for (const FieldDescriptor* field : fields) {
    if (!first) out->push_back(',');
    first = false;
    out->append("\"").append(field->name()).append("\":");
    if (!field->is_repeated()) {
      AppendScalar(message, field, 0, out);
      continue;
    }
    out->push_back('[');
    int size = reflection->FieldSize(message, field);
    for (int i = 0; i < size; ++i) {
      if (i > 0) out->push_back(',');
      AppendScalar(message, field, i, out);
    }
    out->push_back(']');
  }
  out->push_back('}');
}

// ---- txn text ----

Status LineError(int line, const std::string& what) {
  return InvalidArgumentError("txn line " + std::to_string(line) + ": " + what);
}

// Reads one word at *pos: a "quoted string" (Go escapes) or a run of characters up to a space or
// one of stop. Errors: an unterminated quote.
Result<std::string> ReadWord(std::string_view line, size_t* pos, std::string_view stop = "") {
  while (*pos < line.size() && std::isspace(static_cast<unsigned char>(line[*pos]))) ++*pos;
  std::string word;
  if (*pos < line.size() && line[*pos] == '"') {
    for (++*pos; *pos < line.size(); ++*pos) {
      char c = line[*pos];
      if (c == '"') {
        ++*pos;
        return word;
      }
      if (c == '\\' && *pos + 1 < line.size()) {
        char next = line[++*pos];
        word.push_back(next == 'n' ? '\n' : next == 't' ? '\t' : next);
        continue;
      }
      word.push_back(c);
    }
    return InvalidArgumentError("unterminated quote");
  }
  while (*pos < line.size() && !std::isspace(static_cast<unsigned char>(line[*pos])) &&
         stop.find(line[*pos]) == std::string_view::npos) {
    word.push_back(line[(*pos)++]);
  }
  return word;
}

Result<std::vector<std::string>> SplitWords(std::string_view line) {
  std::vector<std::string> words;
  size_t pos = 0;
  while (true) {
    while (pos < line.size() && std::isspace(static_cast<unsigned char>(line[pos]))) ++pos;
    if (pos >= line.size()) return words;
    CAIRN_ASSIGN_OR_RETURN(std::string word, ReadWord(line, &pos));
    words.push_back(std::move(word));
  }
}

Result<int64_t> ParseInt(std::string_view text, std::string_view what) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError(std::string(what) + " \"" + std::string(text) + "\" is not a number");
  }
  return value;
}

Result<etcd::Compare> ParseCompare(std::string_view line) {
  etcd::Compare compare;
  size_t open = line.find('(');
  if (open == std::string_view::npos) return InvalidArgumentError("expected TARGET(\"key\") OP VALUE");
  std::string target(Trim(line.substr(0, open)));
  size_t pos = open + 1;
  CAIRN_ASSIGN_OR_RETURN(std::string key, ReadWord(line, &pos, ")"));
  while (pos < line.size() && line[pos] == ' ') ++pos;
  if (pos >= line.size() || line[pos] != ')') return InvalidArgumentError("expected ) after the key");
  ++pos;
  while (pos < line.size() && line[pos] == ' ') ++pos;
  std::string_view rest = line.substr(pos);
  if (StartsWith(rest, "!=")) {
    compare.set_result(etcd::Compare::NOT_EQUAL);
    pos += 2;
  } else if (!rest.empty() && (rest[0] == '=' || rest[0] == '<' || rest[0] == '>')) {
    compare.set_result(rest[0] == '=' ? etcd::Compare::EQUAL : rest[0] == '<' ? etcd::Compare::LESS
                                                                              : etcd::Compare::GREATER);
    pos += 1;
  } else {
    return InvalidArgumentError("expected one of = != < > after " + target + "(\"" + key + "\")");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string value, ReadWord(line, &pos));
  if (!Trim(line.substr(pos)).empty()) return InvalidArgumentError("unexpected text after the value");
  compare.set_key(key);
  if (target == "value" || target == "val") {
    compare.set_target(etcd::Compare::VALUE);
    compare.set_value(value);
  } else if (target == "lease") {
    compare.set_target(etcd::Compare::LEASE);
    CAIRN_ASSIGN_OR_RETURN(uint64_t lease, ParseHexId(value, "lease id"));
    compare.set_lease(static_cast<int64_t>(lease));
  } else {
    CAIRN_ASSIGN_OR_RETURN(int64_t number, ParseInt(value, target));
    if (target == "version" || target == "ver") {
      compare.set_target(etcd::Compare::VERSION);
      compare.set_version(number);
    } else if (target == "create" || target == "c") {
      compare.set_target(etcd::Compare::CREATE);
      compare.set_create_revision(number);
    } else if (target == "mod" || target == "m") {
      compare.set_target(etcd::Compare::MOD);
      compare.set_mod_revision(number);
    } else {
      return InvalidArgumentError("unknown compare target \"" + target + "\" (value, version, create, mod, lease)");
    }
  }
  return compare;
}

// Splits "--name=value" into its parts (value empty for a bare flag).
std::pair<std::string, std::string> SplitFlag(const std::string& word) {
  size_t equals = word.find('=');
  if (equals == std::string::npos) return {word, ""};
  return {word.substr(0, equals), word.substr(equals + 1)};
}

Result<etcd::RequestOp> ParseRequest(std::string_view line) {
  CAIRN_ASSIGN_OR_RETURN(std::vector<std::string> words, SplitWords(line));
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 1; i < words.size(); ++i) {
    if (StartsWith(words[i], "--")) {
      flags.push_back(SplitFlag(words[i]));
    } else {
      positional.push_back(words[i]);
    }
  }
  const std::string& verb = words[0];
  etcd::RequestOp op;
  bool prefix = false, from_key = false;
  if (verb == "put") {
    if (positional.size() != 2) return InvalidArgumentError("put needs KEY VALUE");
    etcd::PutRequest* put = op.mutable_request_put();
    put->set_key(positional[0]);
    put->set_value(positional[1]);
    for (const auto& [name, value] : flags) {
      if (name == "--prev-kv") {
        put->set_prev_kv(true);
      } else if (name == "--lease") {
        CAIRN_ASSIGN_OR_RETURN(uint64_t lease, ParseHexId(value, "lease id"));
        put->set_lease(static_cast<int64_t>(lease));
      } else {
        return InvalidArgumentError("put: unknown flag " + name);
      }
    }
    return op;
  }
  if (verb != "get" && verb != "del") return InvalidArgumentError("unknown request \"" + verb + "\" (get, put, del)");
  if (positional.empty() || positional.size() > 2) return InvalidArgumentError(verb + " needs KEY [END]");
  std::string key = positional[0], end = positional.size() > 1 ? positional[1] : "";
  etcd::RangeRequest* range = verb == "get" ? op.mutable_request_range() : nullptr;
  etcd::DeleteRangeRequest* del = verb == "del" ? op.mutable_request_delete_range() : nullptr;
  for (const auto& [name, value] : flags) {
    if (name == "--prefix") {
      prefix = true;
    } else if (name == "--from-key") {
      from_key = true;
    } else if (del != nullptr && name == "--prev-kv") {
      del->set_prev_kv(true);
    } else if (range != nullptr && name == "--keys-only") {
      range->set_keys_only(true);
    } else if (range != nullptr && name == "--count-only") {
      range->set_count_only(true);
    } else if (range != nullptr && name == "--limit") {
      CAIRN_ASSIGN_OR_RETURN(int64_t limit, ParseInt(value, "--limit"));
      range->set_limit(limit);
    } else if (range != nullptr && name == "--rev") {
      CAIRN_ASSIGN_OR_RETURN(int64_t revision, ParseInt(value, "--rev"));
      range->set_revision(revision);
    } else {
      return InvalidArgumentError(verb + ": unknown flag " + name);
    }
  }
  if (prefix) end = PrefixRangeEnd(key);
  if (from_key) end = std::string(1, '\0');
  if (range != nullptr) {
    range->set_key(key);
    range->set_range_end(end);
  } else {
    del->set_key(key);
    del->set_range_end(end);
  }
  return op;
}

}  // namespace

std::string HexId(uint64_t id) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%" PRIx64, id);
  return buffer;
}

Result<uint64_t> ParseHexId(std::string_view text, std::string_view what) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return InvalidArgumentError(std::string(what) + " \"" + std::string(text) +
                                "\" is not a hexadecimal id (e.g. 694d7ff5a2b4c10b)");
  }
  return value;
}

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  for (size_t i = end.size(); i > 0; --i) {
    if (static_cast<unsigned char>(end[i - 1]) < 0xff) {
      end[i - 1] = static_cast<char>(static_cast<unsigned char>(end[i - 1]) + 1);
      end.resize(i);
      return end;
    }
  }
  return std::string(1, '\0');
}

Result<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return InvalidArgumentError("base64 text has an impossible length");
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = value(c);
    if (v < 0) return InvalidArgumentError("base64 text holds a character outside the alphabet");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.append("==");
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::string EtcdctlJson(const pb::Message& message) {
  std::string out;
  AppendMessage(message, &out);
  return out;
}

Result<etcd::TxnRequest> ParseTxnText(std::string_view text) {
  etcd::TxnRequest txn;
  int section = 0;  // 0 compares, 1 success, 2 failure
  std::vector<std::string> lines = Split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    int number = static_cast<int>(i) + 1;
    std::string_view line = Trim(lines[i]);
    if (line.empty()) {
      if (i + 1 == lines.size()) break;  // the text's final newline
      if (++section > 2) {
        // Trailing blank lines are fine; anything after them is not.
        for (size_t j = i + 1; j < lines.size(); ++j) {
          if (!Trim(lines[j]).empty()) return LineError(static_cast<int>(j) + 1, "text after the failure requests");
        }
        break;
      }
      continue;
    }
    if (section == 0) {
      auto compare = ParseCompare(line);
      if (!compare.ok()) return LineError(number, compare.status().message());
      *txn.add_compare() = std::move(*compare);
    } else {
      auto op = ParseRequest(line);
      if (!op.ok()) return LineError(number, op.status().message());
      *(section == 1 ? txn.add_success() : txn.add_failure()) = std::move(*op);
    }
  }
  return txn;
}

}  // namespace cairn::etcdclient
