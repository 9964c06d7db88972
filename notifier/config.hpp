// Configuration of pgfeed-notifier. Settings apply in this order, a later source winning:
//   1. the defaults below;
//   2. an ini file given with -c FILE / --config=FILE (none by default);
//   3. environment variables PGFEED_<SECTION>_<KEY>, e.g. PGFEED_REDIS_PORT=6380;
//   4. flags --section.key=value, e.g. --redis.port=6380.
// Every value is checked as it is read: a bad value, an unknown section or key, a missing file is a
// ConfigError naming where the value came from. notifier/pgfeed-notifier.ini.example documents
// the same keys for operators.
#pragma once

#include "log.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgfeed::notifier {

// Configuration the daemon cannot run with; main exits with EX_CONFIG (78).
class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A command line that is not understood (unknown option, stray argument); main exits with
// EX_USAGE (64).
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct PostgresConfig {
    // libpq connection string (key=value or URI); empty uses libpq's PG* environment variables.
    std::string conninfo;
};

struct RedisConfig {
    std::string host = "127.0.0.1";
    int port = 6379; // 1..65535
    // Unix socket path; when set, host and port are ignored.
    std::string socket;
    // Sent with AUTH when not empty.
    std::string password;
    int connect_timeout_ms = 2000; // 10..60000
};

struct BridgeConfig {
    // Whether this instance may run the bridge (PostgreSQL to Redis); false only reads the stream.
    bool enabled = true;
    // Names this bridge in PostgreSQL's registry, where its position is kept. 1..63 characters
    // among letters, digits, '_', '-', '.' and ':'.
    std::string name = "default";
    // The Redis stream the bridge appends to.
    std::string stream = "pgfeed:events";
    // Approximate cap on the stream's length (XADD MAXLEN ~); 1..2^63-1.
    std::int64_t maxlen = 1000000;
    // Events moved per round trip; 1..100000.
    int batch_size = 1000;
    // Fallback poll when no NOTIFY arrives; 10..60000.
    int tick_ms = 200;
    // PostgreSQL advisory lock key held by the one running bridge; any 64-bit integer.
    std::int64_t lock_key = 7365414;
    // How often a standby instance tries to take the lock and become the bridge; 50..60000.
    int takeover_ms = 1000;
    // How often events already in Redis are deleted from PostgreSQL; 10..600000.
    int prune_interval_ms = 1000;
};

// Capped exponential backoff with jitter between reconnection attempts, for both PostgreSQL and
// Redis (see backoff.hpp).
struct ReconnectConfig {
    int initial_ms = 100; // 1..60000
    int max_ms = 5000;    // 1..600000, and not below initial_ms
};

// The HTTP server of each worker process (GET /v1/stream, the feed API, /metrics, /healthz, /readyz).
struct HttpConfig {
    // Address every worker binds with SO_REUSEPORT; 0.0.0.0 or :: for all interfaces.
    std::string listen = "127.0.0.1";
    int port = 8080; // 0..65535; 0 picks a free port, which the log line "listening" names
    // Processes serving connections. Each process may hold at most 20,000 open files on the
    // machines we target, so 100,000 connections need at least 6. 1..64.
    int workers = 2;
    int max_header_bytes = 8192; // request line and headers; 1024..1048576
    int header_timeout_ms =
        10000; // each request's line, headers and body must arrive within this (slowloris); 100..600000
    int write_timeout_ms = 30000; // a stream whose output cannot move for this long is closed; 100..3600000
    int heartbeat_ms = 15000;     // comment lines that keep idle streams and proxies alive; 100..3600000
    int retry_ms = 3000;          // the retry: hint streams start with; 0..3600000
    int drain_retry_ms = 1000;    // the retry: hint sent when SIGTERM closes streams; 0..3600000
    // A stream whose unsent output passes this is closed (it resumes with Last-Event-ID); 16384..1073741824,
    // well above one event (a payload is at most about 4 KB).
    int high_watermark_bytes = 1048576;
    int replay_page = 500; // entries per XRANGE while replaying; 1..100000
    // Comma-separated origins allowed by CORS ("https://app.example.com,http://localhost:3000");
    // empty: no CORS headers.
    std::string cors_origins;
    // A directory whose files are served at GET / (index.html) and /<name> (the demo page);
    // empty: none.
    std::string static_dir;
    // Comma-separated addresses and networks of reverse proxies ("127.0.0.1, 10.0.0.0/8, ::1"):
    // a request from one of them is counted under the client its X-Forwarded-For names
    // (trusted_proxies.hpp); empty: X-Forwarded-For is ignored.
    std::string trusted_proxies;
};

// The HTTP feed API (/v1/feed, /v1/read, ...): each worker's PostgreSQL sessions for it.
struct ApiConfig {
    int sessions = 2;                // per worker; 1..64
    int statement_timeout_ms = 5000; // a query running longer fails (503); 1..600000
    int max_waiting = 256;           // queries waiting per worker, then 503; 1..100000
};

// Connection limits; all of them reload on SIGHUP.
struct LimitsConfig {
    int connections_per_user = 3;           // over all workers, then 429; 1..1000000
    int max_connections = 10000;            // over all workers, then 503; 1..10000000
    double new_connections_per_second = 20; // per client address and worker, then 429; > 0
    double new_connections_burst = 40;      // tokens a client address starts with; >= 1
    // Open connections of one client address (an IPv6 /64) on one worker, streams and requests
    // alike; beyond, a new one is answered 429 and closed. 1..1000000.
    int connections_per_address = 256;
    // Streams of one user that start with a Last-Event-ID (a replay reads the Redis stream from
    // there, up to bridge.maxlen entries), per worker: a token bucket of replays_burst refilled at
    // replays_per_minute; beyond, 429 with Retry-After. Rate > 0, burst 1..1000000.
    double replays_per_minute = 12;
    int replays_burst = 20;
    // The feed API, per worker: calls of one user in flight at once, then 429 (1..100000); bytes of
    // replies not yet read by one user's clients, then 429, and by everybody's, then 503
    // (65536..2^40).
    int api_calls_per_user = 8;
    std::int64_t api_unsent_bytes_per_user = 16 << 20;
    std::int64_t api_unsent_bytes = 256 << 20;
};

struct AuthConfig {
    // Comma-separated HS256 secrets: a token signed with any of them is accepted, so keys rotate by
    // adding the new one, then removing the old. Reloads on SIGHUP.
    std::string hs256_secrets;
    int leeway_seconds = 30; // clock skew allowed on exp and nbf; 0..3600
    // When set, a token's `aud` must name this audience, and its `iss` be this issuer. Reload on SIGHUP.
    std::string audience;
    std::string issuer;
};

struct ReadyConfig {
    // /readyz tells clients to poll when events wait longer than this in PostgreSQL; 1..3600000.
    int max_bridge_lag_ms = 5000;
    int probe_interval_ms = 1000; // how often each worker checks PostgreSQL and the stream; 100..60000
};

struct LogConfig {
    LogLevel level = LogLevel::info; // debug, info, warn or error
};

struct Config {
    PostgresConfig postgres;
    RedisConfig redis;
    BridgeConfig bridge;
    ReconnectConfig reconnect;
    HttpConfig http;
    ApiConfig api;
    LimitsConfig limits;
    AuthConfig auth;
    ReadyConfig ready;
    LogConfig log;
};

// What the command line asked for.
enum class Command { run, check_config, help, version };

// A value given outside the file: an environment variable (name "PGFEED_REDIS_PORT") or a flag
// (name "redis.port").
struct NamedValue {
    std::string name;
    std::string value;
};

// Everything the configuration is read from. Kept for the life of the process so that SIGHUP
// re-reads the same file and re-applies the same environment and flags.
struct ConfigSources {
    Command command = Command::run;
    std::string file; // empty: no file
    // The PGFEED_<SECTION>_<KEY> variables, naming a known section, in environment order. Other
    // PGFEED_* variables belong to other tools (test scripts) and are left alone.
    std::vector<NamedValue> environment;
    // --section.key=value flags in command-line order.
    std::vector<NamedValue> flags;
};

// Reads the command line and picks the notifier's variables out of envp. Throws UsageError for an
// unknown option, a missing option value or a stray argument. Uses getopt_long: call it from one
// thread at a time (start-up).
ConfigSources parse_command_line(int argc, char **argv, char **envp);

// Defaults, then the file, the environment and the flags of `sources`, then checks between keys.
// Throws ConfigError. Also what SIGHUP calls to reload.
Config load_config(const ConfigSources &sources);

// Defaults, then `ini_text` (named `origin` in errors), then checks between keys. Throws ConfigError.
Config parse_config_string(std::string_view ini_text, std::string_view origin = "<string>");

// What --check-config prints: the effective configuration as ini text, each key annotated with
// where its value came from, passwords masked. Throws ConfigError.
std::string describe_config(const ConfigSources &sources);

// What --help prints: the options, then every key with its default and meaning.
std::string usage_text(std::string_view program);

// The keys ("redis.port") whose values differ, in the order of the sections above.
std::vector<std::string> changed_keys(const Config &before, const Config &after);

} // namespace pgfeed::notifier
