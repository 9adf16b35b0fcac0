// A small reading layer over yaml-cpp that remembers, for every value, the file, the 1-based
// line/column and the field path that led to it, so each error reads
//
//   node.yaml:7:3: peers[1].address: "10.0.0.2:foo" is not host:port (port "foo" is not a number)
//
// Typical use, for any schema (node.yaml today, cluster.yaml later):
//
//   CAIRN_ASSIGN_OR_RETURN(YamlValue root, ParseYaml(text, "node.yaml"));
//   CAIRN_ASSIGN_OR_RETURN(YamlMap top, root.Map({"name", "peers"}));   // unknown keys fail here
//   CAIRN_ASSIGN_OR_RETURN(config.name, top.RequireString("name"));
//   if (auto peers = top.Get("peers")) {
//     CAIRN_ASSIGN_OR_RETURN(auto items, peers->List());
//     for (const YamlValue& item : items) { ... item.Map({...}) ... }
//   }
//
// Errors: every function returns an InvalidArgument Status whose message starts with
// "FILE:LINE:COLUMN: PATH: " (the path is left out at the top level). No exceptions escape.
// Threading: values are immutable after parsing; separate documents may be read on separate
// threads, one document must not be read from two threads (yaml-cpp nodes share state).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"

namespace cairn::config {

// Where a value came from. line and column are 1-based; 0 means unknown (then only the file prints).
struct SourceLocation {
  std::string file;
  int line = 0;
  int column = 0;

  // "node.yaml:7:3", or "node.yaml" when the position is unknown.
  std::string ToString() const;
};

// Builds the standard message "LOCATION: PATH: what" (PATH and its colon left out when empty).
Status ConfigError(const SourceLocation& location, std::string_view path, std::string_view what);

class YamlMap;

// One YAML node plus the field path ("initial_cluster[1].name") and source location that led to it.
// Cheap to copy (yaml-cpp nodes are shared handles).
class YamlValue {
 public:
  YamlValue(YAML::Node node, std::string path, SourceLocation location);

  const std::string& path() const { return path_; }
  const SourceLocation& location() const { return location_; }
  const YAML::Node& node() const { return node_; }

  bool IsNull() const;
  bool IsScalar() const;
  bool IsList() const;
  bool IsMap() const;
  // "a mapping", "a list", "a string" or "null": the words used in "expected X, got Y".
  std::string_view KindName() const;

  // An InvalidArgument error at this value: "FILE:LINE:COL: PATH: what".
  Status Error(std::string_view what) const;

  // Typed readers; each fails with a located error when the kind or the content is wrong.
  Result<std::string> String() const;                     // any scalar, as written
  Result<int64_t> Int(int64_t min, int64_t max) const;   // decimal, range-checked
  Result<bool> Bool() const;                              // true or false only
  Result<std::chrono::nanoseconds> Duration() const;     // "500ms", "30s" (cairn::ParseDuration)
  Result<HostPort> HostPortValue(bool allow_zero_port = false) const;
  Result<std::string> AbsolutePath() const;               // must start with '/'
  Result<std::vector<YamlValue>> List() const;            // elements get paths "path[i]"
  // A mapping whose keys must all be in known_fields (else "unknown field ..., did you mean ...?").
  // Duplicate keys and non-string keys are errors too.
  Result<YamlMap> Map(std::initializer_list<std::string_view> known_fields) const;
  Result<YamlMap> Map(const std::vector<std::string_view>& known_fields) const;

 private:
  Status WrongKind(std::string_view expected) const;

  YAML::Node node_;
  std::string path_;
  SourceLocation location_;
};

// A mapping whose keys were checked against the schema's known fields. Produced by YamlValue::Map.
class YamlMap {
 public:
  struct Entry {
    std::string key;
    SourceLocation key_location;
    YamlValue value;
  };

  const YamlValue& self() const { return self_; }
  const std::vector<Entry>& entries() const { return entries_; }

  // True when the key is present, even with a null value.
  bool Has(std::string_view key) const;
  // The value, or nullopt when the key is absent or its value is null (null means "not set").
  std::optional<YamlValue> Get(std::string_view key) const;
  // The value, or `LOCATION-OF-MAP: PATH: missing required field "key"`. A null value is returned
  // as is, so the typed reader then says "expected a string, got null".
  Result<YamlValue> Require(std::string_view key) const;
  // Location of the key itself (for errors about the field as a whole), or of the map when absent.
  SourceLocation KeyLocation(std::string_view key) const;
  // An error located at the key, with path "PATH.key".
  Status KeyError(std::string_view key, std::string_view what) const;

  Result<std::string> RequireString(std::string_view key) const;
  // Reads the field into *out when present; leaves *out unchanged (the default) otherwise.
  Status ReadString(std::string_view key, std::string* out) const;
  Status ReadBool(std::string_view key, bool* out) const;
  Status ReadInt(std::string_view key, int64_t min, int64_t max, int64_t* out) const;
  Status ReadDuration(std::string_view key, std::chrono::nanoseconds* out) const;

 private:
  friend class YamlValue;
  explicit YamlMap(YamlValue self) : self_(std::move(self)) {}
  const Entry* Find(std::string_view key) const;

  YamlValue self_;
  std::vector<Entry> entries_;
};

// Parses one YAML document. Syntax errors read "FILE:LINE:COL: syntax error: ...". An empty file
// gives a null root (the schema decides whether that is acceptable); several documents are an error.
Result<YamlValue> ParseYaml(std::string_view text, std::string_view filename);

// Reads a whole config file (at most 64 MiB). Errors: NotFound / PermissionDenied / IoError with
// the path and the system's reason; InvalidArgument when the file is too large.
Result<std::string> ReadConfigFile(const std::string& path);

// Reads and parses a file; the file name in messages is the path as given.
// Errors: NotFound / IoError when the file cannot be read, InvalidArgument for bad YAML.
Result<YamlValue> LoadYamlFile(const std::string& path);

// The candidate closest to word (edit distance with transpositions, case-insensitive), when close
// enough to be a likely typo; otherwise empty. Used for "did you mean ...?".
std::string ClosestName(std::string_view word, const std::vector<std::string_view>& candidates);

// Joins a path and a field: ("", "log") -> "log", ("log", "level") -> "log.level".
std::string JoinPath(std::string_view parent, std::string_view field);

}  // namespace cairn::config
