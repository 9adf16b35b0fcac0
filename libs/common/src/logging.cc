#include "cairn/common/logging.h"

#include <atomic>
#include <memory>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace cairn::log {
namespace {

std::atomic<Format> g_format{Format::kText};
std::string g_component;  // written once in Setup, before logging threads start

}  // namespace

Result<Format> ParseFormat(std::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  return InvalidArgumentError("log format \"" + std::string(text) + "\" is not one of: text, json");
}

Result<spdlog::level::level_enum> ParseLevel(std::string_view text) {
  static constexpr std::string_view kNames[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  static constexpr spdlog::level::level_enum kLevels[] = {
      spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
      spdlog::level::err,   spdlog::level::critical, spdlog::level::off};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (text == kNames[i]) return kLevels[i];
  }
  return InvalidArgumentError("log level \"" + std::string(text) +
                              "\" is not one of: trace, debug, info, warn, error, critical, off");
}

Status Init(const Options& options) {
  CAIRN_ASSIGN_OR_RETURN(auto level, ParseLevel(options.level));
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (options.file.empty()) {
      logger = std::make_shared<spdlog::logger>("cairn", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "cairn", std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file, /*truncate=*/false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return IoError("cannot open log file " + options.file + ": " + e.what());
  }
  g_format = options.format;
  g_component = options.component;
  if (options.format == Format::kJson) {
    logger->set_pattern("{\"ts\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\",%v}", spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %L %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(level);
  // Flush every line: operators and scripts tail these files (e.g. waiting for "clusterd.started"),
  // and one line per event is far from a hot path.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

std::string QuoteValue(std::string_view value) {
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      needs_quotes = true;
      break;
    }
  }
  if (!needs_quotes) return std::string(value);
  std::string out = "\"";
  out += JsonEscape(value);
  out += '"';
  return out;
}

std::string JsonEscape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out;
}

namespace detail {

std::string Render(std::string_view event) {
  std::string line;
  if (g_format == Format::kJson) {
    line = "\"event\":\"" + JsonEscape(event) + "\"";
  } else {
    line = std::string(event);
  }
  if (!g_component.empty()) AppendField(line, "component", g_component);
  return line;
}

void AppendField(std::string& line, std::string_view key, const std::string& value) {
  if (g_format == Format::kJson) {
    line += ",\"";
    line += JsonEscape(key);
    line += "\":\"";
    line += JsonEscape(value);
    line += '"';
  } else {
    line += ' ';
    line += key;
    line += '=';
    line += QuoteValue(value);
  }
}

// The JSON pattern set in Setup closes the object, so the line is complete as it is.
std::string Finish(std::string line) { return line; }

void Emit(spdlog::level::level_enum level, std::string line) {
  spdlog::default_logger_raw()->log(level, "{}", line);
}

}  // namespace detail
}  // namespace cairn::log
