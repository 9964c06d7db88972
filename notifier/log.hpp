// Structured log lines on stderr, in logfmt:
//
//   ts=2026-11-23T10:00:00.123Z level=info msg="moved events" component=bridge events=12
//
// Each line goes out in one write(2), so lines of the supervisor and its workers, which share
// stderr, never interleave (atomic for lines up to PIPE_BUF bytes on a pipe).
#pragma once

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace pgfeed::notifier {

enum class LogLevel { debug, info, warn, error };

// "debug", "info", "warn", "error"; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view name);
const char *log_level_name(LogLevel level);

// Lines below this level are dropped; changed at run time by a SIGHUP reload.
void set_log_level(LogLevel level);
LogLevel log_level();

// One key=value pair after msg and component. Keys are identifiers chosen in code; values are
// anything (text from Redis, PostgreSQL or clients included) and are quoted when needed.
struct LogField {
    LogField(std::string_view key, std::string_view value) : key(key), value(value) {}
    // Without this, a string literal would convert to bool rather than to string_view.
    LogField(std::string_view key, const char *value) : key(key), value(value) {}
    LogField(std::string_view key, bool value) : key(key), value(value ? "true" : "false") {}
    template <typename Integer, std::enable_if_t<std::is_integral_v<Integer>, int> = 0>
    LogField(std::string_view key, Integer value) : key(key), value(std::to_string(value)) {}

    std::string_view key;
    std::string value;
};

using LogFields = std::initializer_list<LogField>;

// The value as logfmt writes it: bare when it is a non-empty run of printable characters other
// than '"' and '='; otherwise double-quoted with '"', '\\' and control characters escaped.
std::string logfmt_value(std::string_view value);

// The whole line, ending in '\n'.
std::string format_log_line(std::chrono::system_clock::time_point time, LogLevel level, std::string_view component,
                            std::string_view message, LogFields fields);

// Writes the line for the current time if `level` passes the filter.
void log_line(LogLevel level, std::string_view component, std::string_view message, LogFields fields = {});

inline void log_debug(std::string_view component, std::string_view message, LogFields fields = {}) {
    log_line(LogLevel::debug, component, message, fields);
}
inline void log_info(std::string_view component, std::string_view message, LogFields fields = {}) {
    log_line(LogLevel::info, component, message, fields);
}
inline void log_warn(std::string_view component, std::string_view message, LogFields fields = {}) {
    log_line(LogLevel::warn, component, message, fields);
}
inline void log_error(std::string_view component, std::string_view message, LogFields fields = {}) {
    log_line(LogLevel::error, component, message, fields);
}

} // namespace pgfeed::notifier
