#include "cairn/kv/key_range.h"

namespace cairn::kv {

KeyRange KeyRange::From(std::string_view key, std::string_view range_end) {
  KeyRange range;
  range.start_ = std::string(key);
  if (range_end.empty()) {
    range.kind_ = Kind::kSingle;
  } else if (range_end.size() == 1 && range_end[0] == '\0') {
    range.kind_ = Kind::kUnbounded;
  } else {
    range.kind_ = Kind::kBounded;
    range.end_ = std::string(range_end);
  }
  return range;
}

KeyRange KeyRange::Prefix(std::string_view prefix) { return From(prefix, PrefixEnd(prefix)); }

bool KeyRange::Contains(std::string_view key) const {
  switch (kind_) {
    case Kind::kSingle:
      return key == start_;
    case Kind::kUnbounded:
      return key >= start_;
    case Kind::kBounded:
      return key >= start_ && key < end_;
  }
  return false;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  for (size_t i = end.size(); i > 0; --i) {
    auto byte = static_cast<unsigned char>(end[i - 1]);
    if (byte < 0xff) {
      end[i - 1] = static_cast<char>(byte + 1);
      end.resize(i);
      return end;
    }
  }
  // No key is greater than every key with this prefix: the range is unbounded.
  return std::string(1, '\0');
}

}  // namespace cairn::kv
