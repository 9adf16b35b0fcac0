#include "cairn/config/yaml_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>

namespace cairn::config {
namespace {

// Larger files are almost certainly a mistake (a binary or a log given by accident); refusing them
// keeps yaml-cpp from spending memory on them.
constexpr size_t kMaxFileBytes = 64u << 20;

SourceLocation LocationOf(const YAML::Mark& mark, const SourceLocation& fallback) {
  if (mark.is_null()) return fallback;
  return SourceLocation{fallback.file, mark.line + 1, mark.column + 1};
}

std::string Quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps
// each cost 1, so "nmae" is one edit from "name".
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string JoinNames(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::string SourceLocation::ToString() const {
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Status ConfigError(const SourceLocation& location, std::string_view path, std::string_view what) {
  std::string message = location.ToString() + ": ";
  if (!path.empty()) message += std::string(path) + ": ";
  message += what;
  return InvalidArgumentError(std::move(message));
}

std::string JoinPath(std::string_view parent, std::string_view field) {
  if (parent.empty()) return std::string(field);
  return std::string(parent) + "." + std::string(field);
}

std::string ClosestName(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string lowered = Lower(word);
  // A typo is a couple of edits, up to a third of a long word, never more than 3.
  size_t limit = std::clamp<size_t>(word.size() / 3, 2, 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (std::string_view candidate : candidates) {
    size_t distance = EditDistance(lowered, Lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(candidate);
    }
  }
  return best;
}

// ---- YamlValue ----

YamlValue::YamlValue(YAML::Node node, std::string path, SourceLocation location)
    : node_(std::move(node)), path_(std::move(path)), location_(std::move(location)) {}

bool YamlValue::IsNull() const { return !node_.IsDefined() || node_.IsNull(); }
bool YamlValue::IsScalar() const { return node_.IsDefined() && node_.IsScalar(); }
bool YamlValue::IsList() const { return node_.IsDefined() && node_.IsSequence(); }
bool YamlValue::IsMap() const { return node_.IsDefined() && node_.IsMap(); }

std::string_view YamlValue::KindName() const {
  if (IsMap()) return "a mapping";
  if (IsList()) return "a list";
  if (IsScalar()) return "a string";
  return "null";
}

Status YamlValue::Error(std::string_view what) const { return ConfigError(location_, path_, what); }

Status YamlValue::WrongKind(std::string_view expected) const {
  std::string what = "expected " + std::string(expected) + ", got " + std::string(KindName());
  if (IsScalar()) what += " (" + Quoted(node_.Scalar()) + ")";
  return Error(what);
}

Result<std::string> YamlValue::String() const {
  if (!IsScalar()) return WrongKind("a string");
  return node_.Scalar();
}

Result<int64_t> YamlValue::Int(int64_t min, int64_t max) const {
  if (!IsScalar()) return WrongKind("an integer");
  const std::string& text = node_.Scalar();
  int64_t value = 0;
  const char* begin = text.data();
  if (!text.empty() && text[0] == '+') ++begin;
  auto [end, error] = std::from_chars(begin, text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || begin == end) {
    return Error(Quoted(text) + " is not an integer");
  }
  if (value < min || value > max) {
    return Error(text + " is out of range (" + std::to_string(min) + " to " + std::to_string(max) + ")");
  }
  return value;
}

Result<bool> YamlValue::Bool() const {
  if (!IsScalar()) return WrongKind("true or false");
  const std::string& text = node_.Scalar();
  if (text == "true") return true;
  if (text == "false") return false;
  return Error(Quoted(text) + " is not a boolean (use true or false)");
}

Result<std::chrono::nanoseconds> YamlValue::Duration() const {
  CAIRN_ASSIGN_OR_RETURN(std::string text, String());
  auto parsed = ParseDuration(text);
  if (!parsed.ok()) return Error(parsed.status().message());
  return *parsed;
}

Result<HostPort> YamlValue::HostPortValue(bool allow_zero_port) const {
  CAIRN_ASSIGN_OR_RETURN(std::string text, String());
  auto parsed = ParseHostPort(text, allow_zero_port);
  if (!parsed.ok()) return Error(parsed.status().message());
  return *parsed;
}

Result<std::string> YamlValue::AbsolutePath() const {
  CAIRN_ASSIGN_OR_RETURN(std::string text, String());
  if (text.empty() || text[0] != '/') return Error(Quoted(text) + " is not an absolute path (start it with /)");
  if (text.find('\0') != std::string::npos) return Error("the path contains a NUL byte");
  return text;
}

Result<std::vector<YamlValue>> YamlValue::List() const {
  if (!IsList()) return WrongKind("a list");
  std::vector<YamlValue> items;
  items.reserve(node_.size());
  for (size_t i = 0; i < node_.size(); ++i) {
    YAML::Node item = node_[i];
    items.emplace_back(item, path_ + "[" + std::to_string(i) + "]", LocationOf(item.Mark(), location_));
  }
  return items;
}

Result<YamlMap> YamlValue::Map(std::initializer_list<std::string_view> known_fields) const {
  return Map(std::vector<std::string_view>(known_fields));
}

Result<YamlMap> YamlValue::Map(const std::vector<std::string_view>& known_fields) const {
  if (!IsMap()) return WrongKind("a mapping");
  YamlMap map(*this);
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    SourceLocation key_location = LocationOf(it->first.Mark(), location_);
    if (!it->first.IsScalar()) {
      return ConfigError(key_location, path_, "field names must be plain strings, got " +
                                                  std::string(YamlValue(it->first, "", {}).KindName()));
    }
    std::string key = it->first.Scalar();
    std::string field_path = JoinPath(path_, key);
    if (const YamlMap::Entry* first = map.Find(key)) {
      return ConfigError(key_location, field_path,
                         "duplicate field (first set at line " + std::to_string(first->key_location.line) + ")");
    }
    if (std::find(known_fields.begin(), known_fields.end(), key) == known_fields.end()) {
      std::string what = "unknown field " + Quoted(key);
      std::string suggestion = ClosestName(key, known_fields);
      if (!suggestion.empty()) {
        what += ", did you mean " + Quoted(suggestion) + "?";
      } else {
        what += " (known fields: " + JoinNames(known_fields) + ")";
      }
      return ConfigError(key_location, path_, what);
    }
    // An empty value ("name:") is positioned by yaml-cpp at the next token, often on the next
    // line; the key is where the reader should look.
    SourceLocation value_location = it->second.IsNull() ? key_location : LocationOf(it->second.Mark(), key_location);
    YamlValue value(it->second, field_path, std::move(value_location));
    map.entries_.push_back(YamlMap::Entry{std::move(key), key_location, std::move(value)});
  }
  return map;
}

// ---- YamlMap ----

const YamlMap::Entry* YamlMap::Find(std::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

bool YamlMap::Has(std::string_view key) const { return Find(key) != nullptr; }

std::optional<YamlValue> YamlMap::Get(std::string_view key) const {
  const Entry* entry = Find(key);
  if (entry == nullptr || entry->value.IsNull()) return std::nullopt;
  return entry->value;
}

Result<YamlValue> YamlMap::Require(std::string_view key) const {
  const Entry* entry = Find(key);
  if (entry == nullptr) return self_.Error("missing required field " + Quoted(key));
  return entry->value;
}

SourceLocation YamlMap::KeyLocation(std::string_view key) const {
  const Entry* entry = Find(key);
  return entry != nullptr ? entry->key_location : self_.location();
}

Status YamlMap::KeyError(std::string_view key, std::string_view what) const {
  return ConfigError(KeyLocation(key), JoinPath(self_.path(), key), what);
}

Result<std::string> YamlMap::RequireString(std::string_view key) const {
  CAIRN_ASSIGN_OR_RETURN(YamlValue value, Require(key));
  return value.String();
}

Status YamlMap::ReadString(std::string_view key, std::string* out) const {
  if (auto value = Get(key)) {
    CAIRN_ASSIGN_OR_RETURN(*out, value->String());
  }
  return Status::Ok();
}

Status YamlMap::ReadBool(std::string_view key, bool* out) const {
  if (auto value = Get(key)) {
    CAIRN_ASSIGN_OR_RETURN(*out, value->Bool());
  }
  return Status::Ok();
}

Status YamlMap::ReadInt(std::string_view key, int64_t min, int64_t max, int64_t* out) const {
  if (auto value = Get(key)) {
    CAIRN_ASSIGN_OR_RETURN(*out, value->Int(min, max));
  }
  return Status::Ok();
}

Status YamlMap::ReadDuration(std::string_view key, std::chrono::nanoseconds* out) const {
  if (auto value = Get(key)) {
    CAIRN_ASSIGN_OR_RETURN(*out, value->Duration());
  }
  return Status::Ok();
}

// ---- parsing ----

Result<YamlValue> ParseYaml(std::string_view text, std::string_view filename) {
  SourceLocation start{std::string(filename), 1, 1};
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    SourceLocation where = e.mark.is_null() ? start : LocationOf(e.mark, start);
    return ConfigError(where, "", "syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return ConfigError(start, "", std::string("cannot parse YAML: ") + e.what());
  }
  if (documents.empty()) return YamlValue(YAML::Node(), "", start);
  if (documents.size() > 1) {
    return ConfigError(LocationOf(documents[1].Mark(), start), "",
                       "the file holds several YAML documents (\"---\"); expected one");
  }
  return YamlValue(documents[0], "", LocationOf(documents[0].Mark(), start));
}

Result<std::string> ReadConfigFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path, errno);
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError("cannot read " + path, err);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) {
      ::close(fd);
      return InvalidArgumentError(path + ": the file is larger than " + HumanBytes(kMaxFileBytes) +
                                  "; is it the right file?");
    }
  }
  ::close(fd);
  return text;
}

Result<YamlValue> LoadYamlFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(path));
  return ParseYaml(text, path);
}

}  // namespace cairn::config
