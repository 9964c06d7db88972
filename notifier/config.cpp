#include "config.hpp"

#include "cors.hpp"
#include "trusted_proxies.hpp"

// inih: a small, maintained ini parser packaged by Debian (libinih-dev) that reports the line of
// each error; pgbouncer-style ini files need nothing more.
#include <ini.h>
#include <libpq-fe.h>

#include <getopt.h>

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pgfeed::notifier {

namespace {

// What a value should have been; thrown by the parsers below and completed by Loader::set with
// where the value came from.
struct BadValue {
    std::string expected;
};

// For text keys: "" when the value is fine, else what was expected.
using TextCheck = std::string (*)(const std::string &value);
// For secrets: the value as --check-config may print it.
using TextMask = std::string (*)(const std::string &value);

struct KeySpec {
    const char *section;
    const char *name;
    const char *meaning;
    std::int64_t min = 0; // integer keys only
    std::int64_t max = 0;
    TextCheck check = nullptr;
    TextMask mask = nullptr;
};

constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr const char *kMasked = "********";

std::string expect_not_empty(const std::string &value) { return value.empty() ? "expected a non-empty value" : ""; }

std::string expect_directory_or_empty(const std::string &value) {
    struct stat info {};
    return value.empty() || (stat(value.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) ? "" : "expected a directory";
}

// The name ends up in PostgreSQL's registry and in log lines: keep it a plain word.
std::string expect_bridge_name(const std::string &value) {
    bool plain = !value.empty() && value.size() <= 63;
    for (unsigned char c : value)
        plain = plain && (std::isalnum(c) || std::strchr("_-.:", c));
    return plain ? "" : "expected 1 to 63 letters, digits, '_', '-', '.' or ':'";
}

// Caught here, a typo in the connection string is a configuration error at start-up rather than
// an endless reconnect loop.
std::string expect_conninfo(const std::string &value) {
    if (value.empty())
        return "";
    char *error = nullptr;
    PQconninfoOption *options = PQconninfoParse(value.c_str(), &error);
    if (options) {
        PQconninfoFree(options);
        return "";
    }
    std::string reason = error ? error : "out of memory";
    PQfreemem(error);
    while (!reason.empty() && std::isspace(static_cast<unsigned char>(reason.back())))
        reason.pop_back();
    return "expected a libpq connection string: " + reason;
}

std::string expect_cors_origins(const std::string &value) {
    try {
        parse_cors_origins(value);
        return "";
    } catch (const std::invalid_argument &error) {
        return std::string("expected comma-separated origins such as https://app.example.com: ") + error.what();
    }
}

std::string expect_trusted_proxies(const std::string &value) {
    try {
        TrustedProxies::parse(value);
        return "";
    } catch (const std::invalid_argument &error) {
        return std::string("expected comma-separated addresses and networks such as 127.0.0.1, 10.0.0.0/8, ::1: ") +
               error.what();
    }
}

std::string mask_whole(const std::string &value) { return value.empty() ? value : kMasked; }

// The connection string with its password masked; unchanged when it has no password.
std::string mask_conninfo_password(const std::string &value) {
    PQconninfoOption *options = value.empty() ? nullptr : PQconninfoParse(value.c_str(), nullptr);
    if (!options)
        return value;
    bool has_password = false;
    std::string masked;
    for (PQconninfoOption *option = options; option->keyword; ++option) {
        if (!option->val)
            continue;
        bool is_password = std::strcmp(option->keyword, "password") == 0;
        has_password = has_password || is_password;
        std::string shown = is_password ? kMasked : option->val;
        if (!masked.empty())
            masked += ' ';
        masked += option->keyword;
        masked += "='";
        for (char c : shown) {
            if (c == '\'' || c == '\\')
                masked += '\\';
            masked += c;
        }
        masked += '\'';
    }
    PQconninfoFree(options);
    return has_password ? masked : value;
}

// Every key, in the order of config.hpp: the single list that parsing, --help, --check-config
// and changed_keys() read. `AnyConfig` is Config or const Config.
template <typename AnyConfig, typename Visit> void for_each_key(AnyConfig &&config, Visit &&visit) {
    visit(KeySpec{"postgres", "conninfo", "libpq connection string; empty uses libpq's PG* environment variables", 0, 0,
                  expect_conninfo, mask_conninfo_password},
          config.postgres.conninfo);
    visit(KeySpec{"redis", "host", "Redis host name or address", 0, 0, expect_not_empty}, config.redis.host);
    visit(KeySpec{"redis", "port", "Redis TCP port", 1, 65535}, config.redis.port);
    visit(KeySpec{"redis", "socket", "Redis unix socket path; when set, host and port are ignored"},
          config.redis.socket);
    visit(KeySpec{"redis", "password", "sent with AUTH when not empty", 0, 0, nullptr, mask_whole},
          config.redis.password);
    visit(KeySpec{"redis", "connect_timeout_ms", "time allowed to connect to Redis", 10, 60000},
          config.redis.connect_timeout_ms);
    visit(KeySpec{"bridge", "enabled", "whether this instance may run the bridge from PostgreSQL to Redis"},
          config.bridge.enabled);
    visit(KeySpec{"bridge", "name", "names this bridge in PostgreSQL's registry; 1 to 63 of A-Z a-z 0-9 _ - . :", 0, 0,
                  expect_bridge_name},
          config.bridge.name);
    visit(KeySpec{"bridge", "stream", "the Redis stream events are appended to", 0, 0, expect_not_empty},
          config.bridge.stream);
    visit(KeySpec{"bridge", "maxlen", "approximate cap on the stream's length (XADD MAXLEN ~)", 1, kInt64Max},
          config.bridge.maxlen);
    visit(KeySpec{"bridge", "batch_size", "events moved per round trip", 1, 100000}, config.bridge.batch_size);
    visit(KeySpec{"bridge", "tick_ms", "fallback poll when no NOTIFY arrives", 10, 60000}, config.bridge.tick_ms);
    visit(
        KeySpec{"bridge", "lock_key", "PostgreSQL advisory lock key held by the running bridge", kInt64Min, kInt64Max},
        config.bridge.lock_key);
    visit(KeySpec{"bridge", "takeover_ms", "how often a standby instance tries to become the bridge", 50, 60000},
          config.bridge.takeover_ms);
    visit(KeySpec{"bridge", "prune_interval_ms", "how often events already in Redis are deleted from PostgreSQL", 10,
                  600000},
          config.bridge.prune_interval_ms);
    visit(KeySpec{"reconnect", "initial_ms", "first reconnection delay ceiling (PostgreSQL and Redis)", 1, 60000},
          config.reconnect.initial_ms);
    visit(KeySpec{"reconnect", "max_ms", "cap of the reconnection delay; not below initial_ms", 1, 600000},
          config.reconnect.max_ms);
    visit(KeySpec{"http", "listen", "address every worker listens on (SO_REUSEPORT)", 0, 0, expect_not_empty},
          config.http.listen);
    visit(KeySpec{"http", "port", "HTTP port; 0 picks a free one", 0, 65535}, config.http.port);
    visit(KeySpec{"http", "workers", "worker processes serving connections (each holds at most 20,000 files)", 1, 64},
          config.http.workers);
    visit(KeySpec{"http", "max_header_bytes", "largest request line and headers", 1024, 1048576},
          config.http.max_header_bytes);
    visit(KeySpec{"http", "header_timeout_ms", "time allowed for each request's line, headers and body", 100, 600000},
          config.http.header_timeout_ms);
    visit(
        KeySpec{"http", "write_timeout_ms", "a stream whose output cannot move for this long is closed", 100, 3600000},
        config.http.write_timeout_ms);
    visit(KeySpec{"http", "heartbeat_ms", "interval of the comment lines that keep streams alive", 100, 3600000},
          config.http.heartbeat_ms);
    visit(KeySpec{"http", "retry_ms", "the retry: hint streams start with", 0, 3600000}, config.http.retry_ms);
    visit(KeySpec{"http", "drain_retry_ms", "the retry: hint sent when SIGTERM closes streams", 0, 3600000},
          config.http.drain_retry_ms);
    visit(KeySpec{"http", "high_watermark_bytes", "unsent output at which a stream is closed (slow client)", 16384,
                  1073741824},
          config.http.high_watermark_bytes);
    visit(KeySpec{"http", "replay_page", "stream entries per XRANGE while replaying", 1, 100000},
          config.http.replay_page);
    visit(KeySpec{"http", "cors_origins", "comma-separated origins allowed by CORS; empty: none", 0, 0,
                  expect_cors_origins},
          config.http.cors_origins);
    visit(KeySpec{"http", "static_dir", "directory of files served at / and /<name> (the demo page); empty: none", 0, 0,
                  expect_directory_or_empty},
          config.http.static_dir);
    visit(KeySpec{"http", "trusted_proxies",
                  "comma-separated addresses and networks of reverse proxies whose X-Forwarded-For names the client; "
                  "empty: none",
                  0, 0, expect_trusted_proxies},
          config.http.trusted_proxies);
    visit(KeySpec{"api", "sessions", "PostgreSQL sessions of each worker for the feed API", 1, 64},
          config.api.sessions);
    visit(KeySpec{"api", "statement_timeout_ms", "a feed API query running longer fails (503)", 1, 600000},
          config.api.statement_timeout_ms);
    visit(KeySpec{"api", "max_waiting", "feed API queries waiting per worker (then 503)", 1, 100000},
          config.api.max_waiting);
    visit(
        KeySpec{"limits", "connections_per_user", "streams one user may hold over all workers (then 429)", 1, 1000000},
        config.limits.connections_per_user);
    visit(KeySpec{"limits", "max_connections", "streams over all workers (then 503)", 1, 10000000},
          config.limits.max_connections);
    visit(KeySpec{"limits", "new_connections_per_second", "new connections per client address and worker (then 429)", 0,
                  1000000000},
          config.limits.new_connections_per_second);
    visit(
        KeySpec{"limits", "new_connections_burst", "new connections a client address may open at once", 1, 1000000000},
        config.limits.new_connections_burst);
    visit(KeySpec{"limits", "connections_per_address",
                  "open connections of one client address (IPv6: its /64) on one worker (then 429)", 1, 1000000},
          config.limits.connections_per_address);
    visit(KeySpec{"limits", "replays_per_minute",
                  "streams with a Last-Event-ID (replays) one user may start per minute, per worker (then 429)", 0,
                  1000000000},
          config.limits.replays_per_minute);
    visit(KeySpec{"limits", "replays_burst", "replays one user may start at once, per worker", 1, 1000000},
          config.limits.replays_burst);
    visit(KeySpec{"limits", "api_calls_per_user", "feed API calls of one user in flight at once, per worker (then 429)",
                  1, 100000},
          config.limits.api_calls_per_user);
    visit(KeySpec{"limits", "api_unsent_bytes_per_user",
                  "bytes of feed API replies one user's clients have not read, per worker (then 429)", 65536,
                  std::int64_t{1} << 40},
          config.limits.api_unsent_bytes_per_user);
    visit(KeySpec{"limits", "api_unsent_bytes",
                  "bytes of feed API replies clients have not read, per worker (then 503)", 65536,
                  std::int64_t{1} << 40},
          config.limits.api_unsent_bytes);
    visit(KeySpec{"auth", "hs256_secrets", "comma-separated HS256 secrets; tokens signed with any are accepted", 0, 0,
                  nullptr, mask_whole},
          config.auth.hs256_secrets);
    visit(KeySpec{"auth", "leeway_seconds", "clock skew allowed on a token's exp and nbf", 0, 3600},
          config.auth.leeway_seconds);
    visit(KeySpec{"auth", "audience", "when set, a token's aud must name it; empty: aud is not checked"},
          config.auth.audience);
    visit(KeySpec{"auth", "issuer", "when set, a token's iss must be it; empty: iss is not checked"},
          config.auth.issuer);
    visit(KeySpec{"ready", "max_bridge_lag_ms", "/readyz says poll when events wait longer than this", 1, 3600000},
          config.ready.max_bridge_lag_ms);
    visit(KeySpec{"ready", "probe_interval_ms", "how often each worker checks PostgreSQL and the stream", 100, 60000},
          config.ready.probe_interval_ms);
    visit(KeySpec{"log", "level", "lowest level logged"}, config.log.level);
}

template <typename Field> constexpr bool is_text = std::is_same_v<Field, std::string>;

std::string lower(std::string text) {
    for (char &c : text)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

std::string upper(std::string text) {
    for (char &c : text)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return text;
}

// What an integer key accepts, as errors and --help say it.
std::string integer_range(const KeySpec &spec) {
    if (spec.min == kInt64Min && spec.max == kInt64Max)
        return "a 64-bit integer";
    return "an integer in " + std::to_string(spec.min) + ".." + std::to_string(spec.max);
}

// Rates: above spec.min (a rate of 0 would refuse everybody forever), at most spec.max.
std::string number_range(const KeySpec &spec) {
    return "a number above " + std::to_string(spec.min) + " and at most " + std::to_string(spec.max);
}

double parse_number(const std::string &text, const KeySpec &spec) {
    double value = 0;
    const char *end = text.data() + text.size();
    auto [stop, error] = std::from_chars(text.data(), end, value);
    if (error != std::errc() || stop != end || !(value > static_cast<double>(spec.min)) ||
        !(value <= static_cast<double>(spec.max)))
        throw BadValue{"expected " + number_range(spec)};
    return value;
}

// What a key accepts, as --help says it; "" for free text.
template <typename Field> std::string accepted_values(const KeySpec &spec) {
    if constexpr (is_text<Field>)
        return "";
    else if constexpr (std::is_same_v<Field, bool>)
        return "true or false";
    else if constexpr (std::is_same_v<Field, LogLevel>)
        return "debug, info, warn or error";
    else if constexpr (std::is_same_v<Field, double>)
        return number_range(spec);
    else
        return integer_range(spec);
}

bool parse_bool(const std::string &text) {
    std::string word = lower(text);
    if (word == "true" || word == "yes" || word == "on" || word == "1")
        return true;
    if (word == "false" || word == "no" || word == "off" || word == "0")
        return false;
    throw BadValue{"expected true or false"};
}

std::int64_t parse_integer(const std::string &text, const KeySpec &spec) {
    std::int64_t value = 0;
    const char *end = text.data() + text.size();
    auto [stop, error] = std::from_chars(text.data(), end, value);
    if (error != std::errc() || stop != end || value < spec.min || value > spec.max)
        throw BadValue{"expected " + integer_range(spec)};
    return value;
}

template <typename Field> void parse_into(const KeySpec &spec, const std::string &text, Field &field) {
    if constexpr (is_text<Field>) {
        if (spec.check) {
            std::string expected = spec.check(text);
            if (!expected.empty())
                throw BadValue{expected};
        }
        field = text;
    } else if constexpr (std::is_same_v<Field, bool>) {
        field = parse_bool(text);
    } else if constexpr (std::is_same_v<Field, LogLevel>) {
        std::optional<LogLevel> level = parse_log_level(lower(text));
        if (!level)
            throw BadValue{"expected one of debug, info, warn, error"};
        field = *level;
    } else if constexpr (std::is_same_v<Field, double>) {
        field = parse_number(text, spec);
    } else {
        field = static_cast<Field>(parse_integer(text, spec));
    }
}

template <typename Field> std::string to_text(const Field &field) {
    if constexpr (is_text<Field>)
        return field;
    else if constexpr (std::is_same_v<Field, bool>)
        return field ? "true" : "false";
    else if constexpr (std::is_same_v<Field, LogLevel>)
        return log_level_name(field);
    else if constexpr (std::is_same_v<Field, double>) {
        // Shortest text that reads back as the same value.
        char text[32];
        auto [end, error] = std::to_chars(text, text + sizeof text, field);
        return error == std::errc() ? std::string(text, end) : std::to_string(field);
    } else
        return std::to_string(field);
}

std::string key_id(const KeySpec &spec) { return std::string(spec.section) + "." + spec.name; }

std::vector<std::string> section_names() {
    std::vector<std::string> sections;
    for_each_key(Config{}, [&](const KeySpec &spec, const auto &) {
        if (sections.empty() || sections.back() != spec.section)
            sections.push_back(spec.section);
    });
    return sections;
}

std::string join(const std::vector<std::string> &words) {
    std::string joined;
    for (const std::string &word : words)
        joined += (joined.empty() ? "" : ", ") + word;
    return joined;
}

// The section a PGFEED_<SECTION>_<KEY> variable names, and the <KEY> part; empty when the
// variable names no section of ours.
std::pair<std::string, std::string> split_environment_name(const std::string &name) {
    for (const std::string &section : section_names()) {
        std::string prefix = "PGFEED_" + upper(section) + "_";
        if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0)
            return {section, lower(name.substr(prefix.size()))};
    }
    return {};
}

// Applies sources in order onto the defaults and remembers where each key's value came from.
class Loader {
  public:
    // Sets [section] key. `subject` names the setting in value errors ("environment
    // PGFEED_REDIS_PORT"); `origin` is where it came from ("/etc/x.ini line 7").
    void set(const std::string &section, const std::string &key, const std::string &value, const std::string &subject,
             const std::string &origin);
    void apply_ini(std::string_view text, const std::string &origin);
    void apply_file(const std::string &path);
    void apply_sources(const ConfigSources &sources);
    // Checks between keys, once every source is applied.
    void check() const;

    const Config &config() const { return config_; }
    // Where the value of "section.key" came from; "default" when no source set it.
    std::string origin_of(const std::string &id) const {
        auto found = origins_.find(id);
        return found == origins_.end() ? "default" : found->second;
    }

  private:
    Config config_;
    std::map<std::string, std::string> origins_; // "redis.port" -> "environment PGFEED_REDIS_PORT"
};

void Loader::set(const std::string &section, const std::string &key, const std::string &value,
                 const std::string &subject, const std::string &origin) {
    bool section_known = false;
    bool key_known = false;
    std::vector<std::string> keys_of_section;
    for_each_key(config_, [&](const KeySpec &spec, auto &field) {
        if (section != spec.section)
            return;
        section_known = true;
        keys_of_section.push_back(spec.name);
        if (key != spec.name)
            return;
        key_known = true;
        try {
            parse_into(spec, value, field);
        } catch (const BadValue &bad) {
            // Secrets are not echoed back into terminals and logs.
            std::string shown = spec.mask ? "" : " = \"" + value + "\"";
            throw ConfigError("config: " + subject + shown + ": " + bad.expected);
        }
        origins_[key_id(spec)] = origin;
    });
    if (section.empty())
        throw ConfigError("config: " + origin + ": key " + key +
                          " is outside any section; sections are: " + join(section_names()));
    if (!section_known)
        throw ConfigError("config: " + origin + ": unknown section [" + section +
                          "]; sections are: " + join(section_names()));
    if (!key_known)
        throw ConfigError("config: " + origin + ": unknown key [" + section + "] " + key + "; keys of [" + section +
                          "] are: " + join(keys_of_section));
}

// The state of one ini_parse_stream() call. inih is C: nothing may unwind through it, so errors
// are kept here and thrown once it returns.
struct IniParse {
    Loader &loader;
    const std::string &origin;
    std::string_view rest;        // text not yet handed to inih
    std::string_view line_text{}; // the line inih is working on
    int line = 0;
    std::map<std::string, int> key_lines{}; // "redis.port" -> line that set it in this file
    int error_line = 0;
    std::string error{};

    void fail(std::string message) {
        if (error.empty()) {
            error_line = line;
            error = std::move(message);
        }
    }
};

// inih's reader: one line per call. Reading lines here (rather than with ini_parse_string) is what
// gives the handler its line number, and turns a line longer than inih's buffer into an error
// rather than two lines.
char *read_ini_line(char *buffer, int size, void *stream) {
    auto &parse = *static_cast<IniParse *>(stream);
    if (parse.rest.empty())
        return nullptr;
    std::size_t newline = parse.rest.find('\n');
    std::size_t content = newline == std::string_view::npos ? parse.rest.size() : newline;
    std::size_t length = newline == std::string_view::npos ? content : content + 1;
    ++parse.line;
    parse.line_text = parse.rest.substr(0, length);
    std::size_t room = static_cast<std::size_t>(size) - 2; // inih's buffer holds the '\n' and a NUL too
    if (content > room) {
        parse.fail("config: " + parse.origin + " line " + std::to_string(parse.line) + ": longer than " +
                   std::to_string(room) + " characters");
        return nullptr;
    }
    std::memcpy(buffer, parse.rest.data(), length);
    buffer[length] = '\0';
    parse.rest.remove_prefix(length);
    return buffer;
}

int on_ini_value(void *user, const char *section, const char *name, const char *value) {
    auto &parse = *static_cast<IniParse *>(user);
    std::string where = parse.origin + " line " + std::to_string(parse.line);
    std::string id = std::string(section) + "." + name;
    auto earlier = parse.key_lines.find(id);
    if (earlier != parse.key_lines.end()) {
        bool continuation = !parse.line_text.empty() && (parse.line_text[0] == ' ' || parse.line_text[0] == '\t');
        std::string earlier_line = std::to_string(earlier->second);
        parse.fail("config: " + where + ": " +
                   (continuation
                        ? "an indented line continues [" + std::string(section) + "] " + name + " from line " +
                              earlier_line + "; a value must fit on one line"
                        : "[" + std::string(section) + "] " + name + " is already set on line " + earlier_line));
        return 0;
    }
    parse.key_lines[id] = parse.line;
    try {
        parse.loader.set(section, name, value, where + ": [" + std::string(section) + "] " + name, where);
    } catch (const std::exception &error) {
        parse.fail(error.what());
        return 0;
    }
    return 1;
}

void Loader::apply_ini(std::string_view text, const std::string &origin) {
    IniParse parse{*this, origin, text};
    int first_error_line = ini_parse_stream(read_ini_line, &parse, on_ini_value, &parse);
    // inih reports lines it cannot read as "key = value" or "[section]" without calling us.
    if (first_error_line > 0 && (parse.error.empty() || first_error_line < parse.error_line))
        throw ConfigError("config: " + origin + " line " + std::to_string(first_error_line) +
                          ": expected [section] or key = value");
    if (!parse.error.empty())
        throw ConfigError(parse.error);
}

void Loader::apply_file(const std::string &path) {
    std::FILE *file = std::fopen(path.c_str(), "rb");
    if (!file)
        throw ConfigError("config: " + path + ": cannot open: " + std::strerror(errno));
    std::string text;
    char buffer[4096];
    std::size_t count;
    while ((count = std::fread(buffer, 1, sizeof buffer, file)) > 0)
        text.append(buffer, count);
    int read_error = std::ferror(file) ? errno : 0;
    std::fclose(file);
    if (read_error)
        throw ConfigError("config: " + path + ": cannot read: " + std::strerror(read_error));
    apply_ini(text, path);
}

void Loader::apply_sources(const ConfigSources &sources) {
    if (!sources.file.empty())
        apply_file(sources.file);
    for (const NamedValue &variable : sources.environment) {
        auto [section, key] = split_environment_name(variable.name);
        std::string where = "environment " + variable.name;
        if (!section.empty())
            set(section, key, variable.value, where, where);
    }
    for (const NamedValue &flag : sources.flags) {
        std::size_t dot = flag.name.find('.');
        std::string where = "flag --" + flag.name;
        set(flag.name.substr(0, dot), dot == std::string::npos ? "" : flag.name.substr(dot + 1), flag.value, where,
            where);
    }
    check();
}

void Loader::check() const {
    const ReconnectConfig &reconnect = config_.reconnect;
    if (reconnect.initial_ms > reconnect.max_ms)
        throw ConfigError("config: [reconnect] initial_ms = " + std::to_string(reconnect.initial_ms) + " (" +
                          origin_of("reconnect.initial_ms") + ") is above [reconnect] max_ms = " +
                          std::to_string(reconnect.max_ms) + " (" + origin_of("reconnect.max_ms") + ")");
}

std::string pad(std::string text, std::size_t width) {
    if (text.size() < width)
        text.resize(width, ' ');
    return text;
}

} // namespace

ConfigSources parse_command_line(int argc, char **argv, char **envp) {
    ConfigSources sources;
    // getopt_long keeps pointers to the names: they live until it is done.
    std::vector<std::string> key_names;
    for_each_key(Config{}, [&](const KeySpec &spec, const auto &) { key_names.push_back(key_id(spec)); });

    // Long-only options have values past any character, which is how '?' tells them apart.
    enum : int { help_option = 256, check_config_option, version_option, first_key_option };
    std::vector<option> options = {
        {"config", required_argument, nullptr, 'c'},
        {"check-config", no_argument, nullptr, check_config_option},
        {"help", no_argument, nullptr, help_option},
        {"version", no_argument, nullptr, version_option},
    };
    for (std::size_t i = 0; i < key_names.size(); ++i)
        options.push_back({key_names[i].c_str(), required_argument, nullptr, first_key_option + static_cast<int>(i)});
    options.push_back({nullptr, 0, nullptr, 0});

    optind = 0; // glibc: start over completely, whatever an earlier call left behind
    opterr = 0; // errors are reported by UsageError, not printed by getopt
    int choice;
    // '+': stop at the first argument that is not an option instead of reordering argv.
    // ':': report a missing value apart from an unknown option.
    while ((choice = getopt_long(argc, argv, "+:c:h", options.data(), nullptr)) != -1) {
        switch (choice) {
        case 'c':
            sources.file = optarg;
            break;
        case 'h':
        case help_option:
            sources.command = Command::help;
            break;
        case check_config_option:
            sources.command = Command::check_config;
            break;
        case version_option:
            sources.command = Command::version;
            break;
        case ':':
            throw UsageError(std::string("option ") + argv[optind - 1] + " needs a value");
        case '?': {
            // optopt is 0 for an unknown or ambiguous long option, the option's value for a long
            // option given a value it does not take, and the character for an unknown short one.
            std::string argument = argv[optind - 1];
            argument = argument.substr(0, argument.find('='));
            if (optopt == 0)
                throw UsageError("unknown option " + argument);
            if (optopt >= help_option)
                throw UsageError("option " + argument + " takes no value");
            throw UsageError(std::string("unknown option -") + static_cast<char>(optopt));
        }
        default:
            sources.flags.push_back({key_names[static_cast<std::size_t>(choice - first_key_option)], optarg});
        }
    }
    if (optind < argc)
        throw UsageError(std::string("unexpected argument ") + argv[optind]);

    for (char **entry = envp; entry && *entry; ++entry) {
        std::string_view text = *entry;
        std::size_t equals = text.find('=');
        if (equals == std::string_view::npos)
            continue;
        std::string name(text.substr(0, equals));
        if (!split_environment_name(name).first.empty())
            sources.environment.push_back({name, std::string(text.substr(equals + 1))});
    }
    return sources;
}

Config load_config(const ConfigSources &sources) {
    Loader loader;
    loader.apply_sources(sources);
    return loader.config();
}

Config parse_config_string(std::string_view ini_text, std::string_view origin) {
    Loader loader;
    loader.apply_ini(ini_text, std::string(origin));
    loader.check();
    return loader.config();
}

std::string describe_config(const ConfigSources &sources) {
    Loader loader;
    loader.apply_sources(sources);
    std::string text;
    const char *section = "";
    for_each_key(loader.config(), [&](const KeySpec &spec, const auto &field) {
        if (std::strcmp(section, spec.section) != 0) {
            section = spec.section;
            text += std::string(text.empty() ? "" : "\n") + "[" + section + "]\n";
        }
        std::string value = to_text(field);
        if (spec.mask)
            value = spec.mask(value);
        text += pad(std::string(spec.name) + " = " + value, 40) + " ; " + loader.origin_of(key_id(spec)) + "\n";
    });
    return text;
}

std::string usage_text(std::string_view program) {
    std::string name(program);
    std::string text = "Usage: " + name + " [-c FILE] [--section.key=VALUE]...\n" + "       " + name +
                       " --check-config [-c FILE] [--section.key=VALUE]...\n" +
                       "\n"
                       "Moves committed pgfeed events from PostgreSQL to a Redis stream.\n"
                       "\n"
                       "Options:\n"
                       "  -c, --config=FILE        read settings from an ini file (none by default)\n"
                       "      --check-config       check the configuration, print it and exit\n"
                       "      --section.key=VALUE  set one key, e.g. --redis.port=6380\n"
                       "  -h, --help               print this help and exit\n"
                       "      --version            print the version and exit\n"
                       "\n"
                       "Settings apply in this order, a later one winning: defaults, the ini file,\n"
                       "environment variables PGFEED_<SECTION>_<KEY> (e.g. PGFEED_REDIS_PORT=6380), flags.\n"
                       "SIGHUP reads them again; SIGTERM and SIGINT stop the daemon.\n"
                       "Exit status: 0 done, 64 bad command line, 78 bad configuration.\n"
                       "\n"
                       "Keys, with their defaults:\n";
    const char *section = "";
    for_each_key(Config{}, [&](const KeySpec &spec, const auto &field) {
        if (std::strcmp(section, spec.section) != 0) {
            section = spec.section;
            text += std::string("[") + section + "]\n";
        }
        std::string shown = to_text(field);
        std::string line = "  " + std::string(spec.name) + " = " + (shown.empty() ? "\"\"" : shown);
        std::string accepted = accepted_values<std::decay_t<decltype(field)>>(spec);
        text += pad(line, 32) + "  " + spec.meaning + (accepted.empty() ? "" : "; " + accepted) + "\n";
    });
    return text;
}

std::vector<std::string> changed_keys(const Config &before, const Config &after) {
    std::vector<std::string> values_before;
    for_each_key(before, [&](const KeySpec &, const auto &field) { values_before.push_back(to_text(field)); });
    std::vector<std::string> changed;
    std::size_t index = 0;
    for_each_key(after, [&](const KeySpec &spec, const auto &field) {
        if (to_text(field) != values_before[index++])
            changed.push_back(key_id(spec));
    });
    return changed;
}

} // namespace pgfeed::notifier
