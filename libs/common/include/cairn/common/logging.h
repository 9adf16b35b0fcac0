// Logging on spdlog: one line per event, "event=name key=value ...", or one JSON object per line.
//
//   cairn::log::Info("raft.elected", "term", 5, "node", "n1");
//   -> 2026-11-26T21:00:00.123Z I raft.elected term=5 node=n1
//
// Values with spaces, quotes or '=' are quoted. Thread-safe (spdlog's multi-threaded sinks).
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "cairn/common/status.h"

namespace cairn::log {

enum class Format { kText, kJson };

struct Options {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
  Format format = Format::kText;
  std::string file;            // empty: stderr
  std::string component;       // e.g. "clusterd", added to every line as component=...
};

// Parses "text" or "json".
Result<Format> ParseFormat(std::string_view text);
// Validates a level name ("info", "debug", ...).
Result<spdlog::level::level_enum> ParseLevel(std::string_view text);

// Installs the default logger. Call once at program start; later calls replace it.
Status Init(const Options& options);

// Quotes a value when it holds a space, quote, '=' or control character, or is empty.
std::string QuoteValue(std::string_view value);
// Escapes a string for a JSON string literal (without the surrounding quotes).
std::string JsonEscape(std::string_view value);

namespace detail {

template <typename T>
std::string ToText(const T& value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(value);
  } else if constexpr (std::is_same_v<T, Status>) {
    return value.ToString();
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return std::string(std::string_view(value));
  } else {
    std::ostringstream out;
    out << value;
    return out.str();
  }
}

void AppendField(std::string& line, std::string_view key, const std::string& value);
std::string Render(std::string_view event);

template <typename K, typename V, typename... Rest>
void AppendFields(std::string& line, const K& key, const V& value, const Rest&... rest) {
  AppendField(line, std::string_view(key), ToText(value));
  if constexpr (sizeof...(rest) > 0) {
    static_assert(sizeof...(rest) % 2 == 0, "log fields come in key, value pairs");
    AppendFields(line, rest...);
  }
}

void Emit(spdlog::level::level_enum level, std::string line);
std::string Finish(std::string line);

template <typename... Fields>
void Write(spdlog::level::level_enum level, std::string_view event, const Fields&... fields) {
  if (!spdlog::default_logger_raw()->should_log(level)) return;
  static_assert(sizeof...(fields) % 2 == 0, "log fields come in key, value pairs");
  std::string line = Render(event);
  if constexpr (sizeof...(fields) > 0) AppendFields(line, fields...);
  Emit(level, Finish(std::move(line)));
}

}  // namespace detail

template <typename... F> void Trace(std::string_view event, const F&... f) { detail::Write(spdlog::level::trace, event, f...); }
template <typename... F> void Debug(std::string_view event, const F&... f) { detail::Write(spdlog::level::debug, event, f...); }
template <typename... F> void Info(std::string_view event, const F&... f) { detail::Write(spdlog::level::info, event, f...); }
template <typename... F> void Warn(std::string_view event, const F&... f) { detail::Write(spdlog::level::warn, event, f...); }
template <typename... F> void Error(std::string_view event, const F&... f) { detail::Write(spdlog::level::err, event, f...); }

}  // namespace cairn::log
