#include "log.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace pgfeed::notifier {

namespace {

std::atomic<LogLevel> current_level{LogLevel::info};

bool needs_quotes(std::string_view value) {
    if (value.empty())
        return true;
    for (unsigned char c : value) {
        if (c <= ' ' || c == 0x7f || c == '"' || c == '=')
            return true;
    }
    return false;
}

// RFC 3339 in UTC with milliseconds: sorts as text and needs no time zone to read.
std::string format_timestamp(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    auto since_epoch = duration_cast<milliseconds>(time.time_since_epoch());
    auto seconds = floor<std::chrono::seconds>(since_epoch);
    auto millis = since_epoch - seconds;
    std::time_t whole = static_cast<std::time_t>(seconds.count());
    std::tm utc{};
    gmtime_r(&whole, &utc);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
    char text[48];
    std::snprintf(text, sizeof text, "%s.%03dZ", date, static_cast<int>(millis.count()));
    return text;
}

void append_pair(std::string &line, std::string_view key, std::string_view value) {
    line += ' ';
    line += key;
    line += '=';
    line += logfmt_value(value);
}

// A short write (past PIPE_BUF on a pipe, or a full disk) is completed rather than lost; a failed
// one is dropped: stderr is the only place it could be reported.
void write_stderr(const std::string &line) {
    const char *data = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t written = ::write(STDERR_FILENO, data, left);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        data += written;
        left -= static_cast<std::size_t>(written);
    }
}

} // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
    for (LogLevel level : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
        if (name == log_level_name(level))
            return level;
    }
    return std::nullopt;
}

const char *log_level_name(LogLevel level) {
    switch (level) {
    case LogLevel::debug:
        return "debug";
    case LogLevel::info:
        return "info";
    case LogLevel::warn:
        return "warn";
    case LogLevel::error:
        return "error";
    }
    return "unknown";
}

void set_log_level(LogLevel level) { current_level.store(level, std::memory_order_relaxed); }

LogLevel log_level() { return current_level.load(std::memory_order_relaxed); }

std::string logfmt_value(std::string_view value) {
    if (!needs_quotes(value))
        return std::string(value);
    std::string quoted = "\"";
    for (unsigned char c : value) {
        switch (c) {
        case '"':
            quoted += "\\\"";
            break;
        case '\\':
            quoted += "\\\\";
            break;
        case '\n':
            quoted += "\\n";
            break;
        case '\r':
            quoted += "\\r";
            break;
        case '\t':
            quoted += "\\t";
            break;
        default:
            if (c < ' ' || c == 0x7f) {
                char escape[8];
                std::snprintf(escape, sizeof escape, "\\u%04x", c);
                quoted += escape;
            } else {
                quoted += static_cast<char>(c);
            }
        }
    }
    quoted += '"';
    return quoted;
}

std::string format_log_line(std::chrono::system_clock::time_point time, LogLevel level, std::string_view component,
                            std::string_view message, LogFields fields) {
    std::string line = "ts=" + format_timestamp(time);
    append_pair(line, "level", log_level_name(level));
    append_pair(line, "msg", message);
    append_pair(line, "component", component);
    for (const LogField &field : fields)
        append_pair(line, field.key, field.value);
    line += '\n';
    return line;
}

void log_line(LogLevel level, std::string_view component, std::string_view message, LogFields fields) {
    if (level < log_level())
        return;
    write_stderr(format_log_line(std::chrono::system_clock::now(), level, component, message, fields));
}

} // namespace pgfeed::notifier
