// Key ranges as etcd spells them: (key, range_end) where an empty range_end means the single key,
// "\0" means every key >= key, and anything else means [key, range_end).
#pragma once

#include <string>
#include <string_view>

namespace cairn::kv {

class KeyRange {
 public:
  // Builds the range etcd means by (key, range_end). Never fails: a range_end <= key is empty.
  static KeyRange From(std::string_view key, std::string_view range_end);
  static KeyRange Single(std::string_view key) { return From(key, ""); }
  static KeyRange Prefix(std::string_view prefix);

  bool Contains(std::string_view key) const;
  bool single() const { return kind_ == Kind::kSingle; }
  bool unbounded() const { return kind_ == Kind::kUnbounded; }
  const std::string& start() const { return start_; }
  // Exclusive end; meaningful only when neither single() nor unbounded().
  const std::string& end() const { return end_; }

 private:
  enum class Kind { kSingle, kBounded, kUnbounded };
  Kind kind_ = Kind::kSingle;
  std::string start_;
  std::string end_;
};

// etcd's GetPrefixRangeEnd: the smallest key greater than every key starting with `prefix`
// ("abc" -> "abd", "a\xff" -> "b"); "\0" when no such key exists (prefix empty or all 0xff).
std::string PrefixEnd(std::string_view prefix);

}  // namespace cairn::kv
