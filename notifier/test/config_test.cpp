// Unit tests of the configuration: defaults, the ini file, environment and flag overrides, and the
// message every kind of bad input gets (notifier/config.hpp).
#include "config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

namespace pgfeed::notifier {
namespace {

// A file with the given text, removed when the test ends.
class TempFile {
  public:
    explicit TempFile(const std::string &text) {
        char pattern[] = "/tmp/pgfeed-notifier-test-XXXXXX";
        int fd = mkstemp(pattern);
        EXPECT_GE(fd, 0);
        path_ = pattern;
        EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
        close(fd);
    }
    ~TempFile() { std::remove(path_.c_str()); }
    const std::string &path() const { return path_; }

  private:
    std::string path_;
};

// parse_command_line() over C-style copies of `args` (without the program name) and `environment`.
ConfigSources parse(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    args.insert(args.begin(), "pgfeed-notifier");
    std::vector<char *> argv;
    for (std::string &arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<char *> envp;
    for (std::string &variable : environment)
        envp.push_back(variable.data());
    envp.push_back(nullptr);
    return parse_command_line(static_cast<int>(args.size()), argv.data(), envp.data());
}

Config load(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    return load_config(parse(std::move(args), std::move(environment)));
}

// The message of the ConfigError `action` throws, or "" when it throws none.
std::string config_error(const std::function<void()> &action) {
    try {
        action();
    } catch (const ConfigError &error) {
        return error.what();
    }
    return "";
}

std::string usage_error(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const UsageError &error) {
        return error.what();
    }
    return "";
}

std::string string_error(const std::string &ini) {
    return config_error([&] { parse_config_string(ini, "test.ini"); });
}

bool contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Defaults and the sources in order

TEST(Config, Defaults) {
    Config config;
    EXPECT_EQ(config.postgres.conninfo, "");
    EXPECT_EQ(config.redis.host, "127.0.0.1");
    EXPECT_EQ(config.redis.port, 6379);
    EXPECT_EQ(config.redis.socket, "");
    EXPECT_EQ(config.redis.password, "");
    EXPECT_EQ(config.redis.connect_timeout_ms, 2000);
    EXPECT_TRUE(config.bridge.enabled);
    EXPECT_EQ(config.bridge.name, "default");
    EXPECT_EQ(config.bridge.stream, "pgfeed:events");
    EXPECT_EQ(config.bridge.maxlen, 1000000);
    EXPECT_EQ(config.bridge.batch_size, 1000);
    EXPECT_EQ(config.bridge.tick_ms, 200);
    EXPECT_EQ(config.bridge.lock_key, 7365414);
    EXPECT_EQ(config.bridge.takeover_ms, 1000);
    EXPECT_EQ(config.bridge.prune_interval_ms, 1000);
    EXPECT_EQ(config.reconnect.initial_ms, 100);
    EXPECT_EQ(config.reconnect.max_ms, 5000);
    EXPECT_EQ(config.log.level, LogLevel::info);

    EXPECT_TRUE(changed_keys(config, parse_config_string("")).empty());
    EXPECT_TRUE(changed_keys(config, load({})).empty());
}

TEST(Config, ExampleFileStatesTheDefaults) {
    Config example = load({"-c", NOTIFIER_SOURCE_DIR "/pgfeed-notifier.ini.example"});
    EXPECT_TRUE(changed_keys(Config{}, example).empty());
}

TEST(Config, IniFile) {
    Config config = parse_config_string("; a comment\n"
                                        "# another\n"
                                        "[postgres]\n"
                                        "conninfo = host=db dbname=app\n"
                                        "\n"
                                        "[redis]\n"
                                        "  host =  redis.internal  \n"
                                        "port=6380 ; inline comment\n"
                                        "socket = /run/redis.sock\n"
                                        "password = s3cret\n"
                                        "connect_timeout_ms = 10\n"
                                        "[bridge]\n"
                                        "enabled = no\n"
                                        "name = eu-west.1\n"
                                        "stream = app:events\n"
                                        "maxlen = 9223372036854775807\n"
                                        "batch_size = 100000\n"
                                        "tick_ms = 60000\n"
                                        "lock_key = -9223372036854775808\n"
                                        "takeover_ms = 50\n"
                                        "prune_interval_ms = 600000\n"
                                        "[reconnect]\n"
                                        "initial_ms = 1\n"
                                        "max_ms = 600000\n"
                                        "[log]\n"
                                        "level = DEBUG\n");
    EXPECT_EQ(config.postgres.conninfo, "host=db dbname=app");
    EXPECT_EQ(config.redis.host, "redis.internal");
    EXPECT_EQ(config.redis.port, 6380);
    EXPECT_EQ(config.redis.socket, "/run/redis.sock");
    EXPECT_EQ(config.redis.password, "s3cret");
    EXPECT_EQ(config.redis.connect_timeout_ms, 10);
    EXPECT_FALSE(config.bridge.enabled);
    EXPECT_EQ(config.bridge.name, "eu-west.1");
    EXPECT_EQ(config.bridge.stream, "app:events");
    EXPECT_EQ(config.bridge.maxlen, INT64_MAX);
    EXPECT_EQ(config.bridge.batch_size, 100000);
    EXPECT_EQ(config.bridge.tick_ms, 60000);
    EXPECT_EQ(config.bridge.lock_key, INT64_MIN);
    EXPECT_EQ(config.bridge.takeover_ms, 50);
    EXPECT_EQ(config.bridge.prune_interval_ms, 600000);
    EXPECT_EQ(config.reconnect.initial_ms, 1);
    EXPECT_EQ(config.reconnect.max_ms, 600000);
    EXPECT_EQ(config.log.level, LogLevel::debug);
}

TEST(Config, GatewayLimitsAndTokenClaims) {
    EXPECT_EQ(Config{}.limits.connections_per_address, 256);
    EXPECT_EQ(Config{}.limits.api_calls_per_user, 8);
    EXPECT_EQ(Config{}.limits.api_unsent_bytes_per_user, 16 << 20);
    EXPECT_EQ(Config{}.limits.api_unsent_bytes, 256 << 20);
    EXPECT_EQ(Config{}.auth.audience, "");
    EXPECT_EQ(Config{}.auth.issuer, "");
    Config config = parse_config_string("[limits]\nconnections_per_address = 7\napi_calls_per_user = 2\n"
                                        "api_unsent_bytes_per_user = 65536\napi_unsent_bytes = 1099511627776\n"
                                        "[auth]\naudience = pgfeed\nissuer = https://app.example.com\n");
    EXPECT_EQ(config.limits.connections_per_address, 7);
    EXPECT_EQ(config.limits.api_calls_per_user, 2);
    EXPECT_EQ(config.limits.api_unsent_bytes_per_user, 65536);
    EXPECT_EQ(config.limits.api_unsent_bytes, std::int64_t{1} << 40);
    EXPECT_EQ(config.auth.audience, "pgfeed");
    EXPECT_EQ(config.auth.issuer, "https://app.example.com");
    config = load({"--limits.connections_per_address=1000000", "--auth.issuer=flag-issuer"},
                  {"PGFEED_AUTH_AUDIENCE=env-audience", "PGFEED_AUTH_ISSUER=env-issuer"});
    EXPECT_EQ(config.limits.connections_per_address, 1000000);
    EXPECT_EQ(config.auth.audience, "env-audience");
    EXPECT_EQ(config.auth.issuer, "flag-issuer");
    EXPECT_EQ(string_error("[limits]\nconnections_per_address = 0"),
              "config: test.ini line 2: [limits] connections_per_address = \"0\": expected an integer in 1..1000000");
    EXPECT_EQ(string_error("[limits]\napi_unsent_bytes = 65535"),
              "config: test.ini line 2: [limits] api_unsent_bytes = \"65535\": expected an integer in "
              "65536..1099511627776");
    EXPECT_EQ(string_error("[limits]\napi_calls_per_user = 0"),
              "config: test.ini line 2: [limits] api_calls_per_user = \"0\": expected an integer in 1..100000");
    std::string usage = usage_text("pgfeed-notifier");
    for (const char *line :
         {"connections_per_address = 256", "api_calls_per_user = 8", "api_unsent_bytes_per_user = 16777216",
          "api_unsent_bytes = 268435456", "audience = \"\"", "issuer = \"\""})
        EXPECT_TRUE(contains(usage, line)) << line;
    EXPECT_EQ(changed_keys(Config{}, config),
              (std::vector<std::string>{"limits.connections_per_address", "auth.audience", "auth.issuer"}));
}

TEST(Config, BooleanSpellings) {
    for (const char *yes : {"true", "TRUE", "yes", "on", "1"})
        EXPECT_TRUE(parse_config_string(std::string("[bridge]\nenabled = ") + yes).bridge.enabled) << yes;
    for (const char *no : {"false", "False", "no", "off", "0"})
        EXPECT_FALSE(parse_config_string(std::string("[bridge]\nenabled = ") + no).bridge.enabled) << no;
}

TEST(Config, EnvironmentBeatsFile) {
    TempFile file("[redis]\nport = 6380\nhost = from-file\n");
    Config config = load({"-c", file.path()}, {"PGFEED_REDIS_PORT=6381", "PGFEED_BRIDGE_BATCH_SIZE=500"});
    EXPECT_EQ(config.redis.port, 6381);
    EXPECT_EQ(config.redis.host, "from-file");
    EXPECT_EQ(config.bridge.batch_size, 500);
}

TEST(Config, FlagsBeatEnvironment) {
    TempFile file("[redis]\nport = 6380\n");
    Config config = load({"--config=" + file.path(), "--redis.port=6382", "--log.level", "warn"},
                         {"PGFEED_REDIS_PORT=6381", "PGFEED_LOG_LEVEL=error"});
    EXPECT_EQ(config.redis.port, 6382);
    EXPECT_EQ(config.log.level, LogLevel::warn);
}

TEST(Config, LaterFlagWins) { EXPECT_EQ(load({"--redis.port=1", "--redis.port=2"}).redis.port, 2); }

TEST(Config, FlagMaySetAnEmptyValue) {
    EXPECT_EQ(load({"--redis.password="}, {"PGFEED_REDIS_PASSWORD=x"}).redis.password, "");
}

TEST(Config, OtherPgfeedVariablesAreLeftAlone) {
    ConfigSources sources = parse({}, {"PGFEED_SEED=1", "PGFEED_TEST_REEXEC=1", "PATH=/bin", "PGFEED_LOG_LEVEL=warn"});
    ASSERT_EQ(sources.environment.size(), 1u);
    EXPECT_EQ(sources.environment[0].name, "PGFEED_LOG_LEVEL");
    EXPECT_EQ(load_config(sources).log.level, LogLevel::warn);
}

TEST(Config, ReloadReadsTheFileAgain) {
    TempFile file("[bridge]\ntick_ms = 300\n");
    ConfigSources sources = parse({"-c", file.path()});
    EXPECT_EQ(load_config(sources).bridge.tick_ms, 300);
    FILE *rewrite = std::fopen(file.path().c_str(), "w");
    ASSERT_NE(rewrite, nullptr);
    std::fputs("[bridge]\ntick_ms = 400\n", rewrite);
    std::fclose(rewrite);
    Config reloaded = load_config(sources);
    EXPECT_EQ(reloaded.bridge.tick_ms, 400);
    EXPECT_EQ(changed_keys(Config{}, reloaded), std::vector<std::string>{"bridge.tick_ms"});
}

// ---------------------------------------------------------------------------------------------
// Bad values, keys, sections and files

TEST(ConfigErrors, BadIntegerInFile) {
    TempFile file("[redis]\nhost = x\n\nport = abc\n");
    EXPECT_EQ(config_error([&] {
                  load({"-c", file.path()});
              }),
              "config: " + file.path() + " line 4: [redis] port = \"abc\": expected an integer in 1..65535");
}

TEST(ConfigErrors, IntegersAreWholeNumbersInRange) {
    for (const char *bad : {"0", "65536", "-1", "+80", " 80", "80 ms", "0x50", "8.0", ""})
        EXPECT_EQ(config_error([&] { load({}, {std::string("PGFEED_REDIS_PORT=") + bad}); }),
                  std::string("config: environment PGFEED_REDIS_PORT = \"") + bad +
                      "\": expected an integer in 1..65535")
            << bad;
    EXPECT_EQ(string_error("[bridge]\nmaxlen = 9223372036854775808"),
              "config: test.ini line 2: [bridge] maxlen = \"9223372036854775808\": expected an integer in "
              "1..9223372036854775807");
    EXPECT_EQ(string_error("[bridge]\nlock_key = 1e3"),
              "config: test.ini line 2: [bridge] lock_key = \"1e3\": expected a 64-bit integer");
}

TEST(ConfigErrors, OutOfRangeInEnvironment) {
    EXPECT_EQ(config_error([] { load({}, {"PGFEED_BRIDGE_TICK_MS=5"}); }),
              "config: environment PGFEED_BRIDGE_TICK_MS = \"5\": expected an integer in 10..60000");
    EXPECT_EQ(config_error([] { load({}, {"PGFEED_BRIDGE_BATCH_SIZE=100001"}); }),
              "config: environment PGFEED_BRIDGE_BATCH_SIZE = \"100001\": expected an integer in 1..100000");
    EXPECT_EQ(config_error([] { load({}, {"PGFEED_BRIDGE_TAKEOVER_MS=49"}); }),
              "config: environment PGFEED_BRIDGE_TAKEOVER_MS = \"49\": expected an integer in 50..60000");
}

TEST(ConfigErrors, BadValueInFlag) {
    EXPECT_EQ(config_error([] { load({"--redis.port=http"}); }),
              "config: flag --redis.port = \"http\": expected an integer in 1..65535");
}

TEST(ConfigErrors, BadBoolean) {
    EXPECT_EQ(string_error("[bridge]\nenabled = maybe"),
              "config: test.ini line 2: [bridge] enabled = \"maybe\": expected true or false");
}

TEST(ConfigErrors, BadLevel) {
    EXPECT_EQ(config_error([] { load({"--log.level=verbose"}); }),
              "config: flag --log.level = \"verbose\": expected one of debug, info, warn, error");
}

TEST(ConfigErrors, BadText) {
    EXPECT_EQ(string_error("[bridge]\nname = my bridge"),
              "config: test.ini line 2: [bridge] name = \"my bridge\": expected 1 to 63 letters, digits, '_', "
              "'-', '.' or ':'");
    EXPECT_EQ(string_error("[bridge]\nname = " + std::string(64, 'n')),
              "config: test.ini line 2: [bridge] name = \"" + std::string(64, 'n') +
                  "\": expected 1 to 63 letters, digits, '_', '-', '.' or ':'");
    EXPECT_EQ(string_error("[bridge]\nstream ="),
              "config: test.ini line 2: [bridge] stream = \"\": expected a non-empty value");
    EXPECT_EQ(string_error("[redis]\nhost ="),
              "config: test.ini line 2: [redis] host = \"\": expected a non-empty value");
}

TEST(Config, ReplayBudgetAndTrustedProxies) {
    EXPECT_EQ(Config{}.limits.replays_per_minute, 12);
    EXPECT_EQ(Config{}.limits.replays_burst, 20);
    EXPECT_EQ(Config{}.http.trusted_proxies, "");
    Config config = parse_config_string("[limits]\nreplays_per_minute = 0.5\nreplays_burst = 1\n"
                                        "[http]\ntrusted_proxies = 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8\n");
    EXPECT_EQ(config.limits.replays_per_minute, 0.5);
    EXPECT_EQ(config.limits.replays_burst, 1);
    EXPECT_EQ(config.http.trusted_proxies, "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8");
    EXPECT_EQ(string_error("[limits]\nreplays_per_minute = 0"),
              "config: test.ini line 2: [limits] replays_per_minute = \"0\": expected a number above 0 and at most "
              "1000000000");
    EXPECT_EQ(string_error("[limits]\nreplays_burst = 0"),
              "config: test.ini line 2: [limits] replays_burst = \"0\": expected an integer in 1..1000000");
    EXPECT_EQ(string_error("[http]\ntrusted_proxies = 10.0.0.1/8"),
              "config: test.ini line 2: [http] trusted_proxies = \"10.0.0.1/8\": expected comma-separated addresses "
              "and networks such as 127.0.0.1, 10.0.0.0/8, ::1: \"10.0.0.1/8\" has address bits set past its /8 "
              "(write the network's first address)");
}

TEST(ConfigErrors, BadConninfoIsNotEchoed) {
    std::string error = string_error("[postgres]\nconninfo = host=db password=hunter2 oops");
    EXPECT_EQ(error, "config: test.ini line 2: [postgres] conninfo: expected a libpq connection string: missing "
                     "\"=\" after \"oops\" in connection info string");
    EXPECT_FALSE(contains(error, "hunter2"));
}

TEST(ConfigErrors, UnknownKey) {
    EXPECT_EQ(string_error("[redis]\nprot = 6380"),
              "config: test.ini line 2: unknown key [redis] prot; keys of [redis] are: host, port, socket, "
              "password, connect_timeout_ms");
    EXPECT_EQ(config_error([] { load({}, {"PGFEED_REDIS_PROT=6380"}); }),
              "config: environment PGFEED_REDIS_PROT: unknown key [redis] prot; keys of [redis] are: host, port, "
              "socket, password, connect_timeout_ms");
}

TEST(ConfigErrors, UnknownSection) {
    EXPECT_EQ(string_error("[redis]\nport = 1\n[rediss]\nport = 2"),
              "config: test.ini line 4: unknown section [rediss]; sections are: postgres, redis, bridge, "
              "reconnect, http, api, limits, auth, ready, log");
}

TEST(ConfigErrors, KeyOutsideAnySection) {
    EXPECT_EQ(string_error("port = 1"), "config: test.ini line 1: key port is outside any section; sections are: "
                                        "postgres, redis, bridge, reconnect, http, api, limits, auth, ready, log");
}

TEST(ConfigErrors, SyntaxError) {
    EXPECT_EQ(string_error("[redis]\nport 6380\n"), "config: test.ini line 2: expected [section] or key = value");
    EXPECT_EQ(string_error("[redis\nport = 1\n"), "config: test.ini line 1: expected [section] or key = value");
}

TEST(ConfigErrors, FirstErrorInTheFileWins) {
    EXPECT_EQ(string_error("[redis]\nport 6380\nport = x\n"),
              "config: test.ini line 2: expected [section] or key = value");
    EXPECT_EQ(string_error("[redis]\nport = x\nport 6380\n"),
              "config: test.ini line 2: [redis] port = \"x\": expected an integer in 1..65535");
}

TEST(ConfigErrors, KeyGivenTwice) {
    EXPECT_EQ(string_error("[redis]\nport = 1\n\nport = 2\n"),
              "config: test.ini line 4: [redis] port is already set on line 2");
    EXPECT_EQ(string_error("[postgres]\nconninfo = host=a\n  port=5433\n"),
              "config: test.ini line 3: an indented line continues [postgres] conninfo from line 2; a value "
              "must fit on one line");
}

TEST(ConfigErrors, LineTooLong) {
    std::string fits = "[postgres]\nconninfo = host=" + std::string(198 - 16, 'h') + "\n";
    EXPECT_EQ(parse_config_string(fits).postgres.conninfo.size(), 198u - 11);
    std::string too_long = "[postgres]\nconninfo = host=" + std::string(199 - 16, 'h') + "\n[redis]\nport = 1\n";
    EXPECT_EQ(string_error(too_long), "config: test.ini line 2: longer than 198 characters");
}

TEST(ConfigErrors, MissingFile) {
    EXPECT_EQ(config_error([] {
                  load({"-c", "/nonexistent/notifier.ini"});
              }),
              "config: /nonexistent/notifier.ini: cannot open: No such file or directory");
}

TEST(ConfigErrors, BackoffBoundsOutOfOrder) {
    EXPECT_EQ(config_error([] { load({"--reconnect.max_ms=50"}); }),
              "config: [reconnect] initial_ms = 100 (default) is above [reconnect] max_ms = 50 (flag "
              "--reconnect.max_ms)");
    EXPECT_EQ(string_error("[reconnect]\ninitial_ms = 6000"),
              "config: [reconnect] initial_ms = 6000 (test.ini line 2) is above [reconnect] max_ms = 5000 (default)");
}

// ---------------------------------------------------------------------------------------------
// The command line

TEST(CommandLine, Commands) {
    EXPECT_EQ(parse({}).command, Command::run);
    EXPECT_EQ(parse({"--help"}).command, Command::help);
    EXPECT_EQ(parse({"-h"}).command, Command::help);
    EXPECT_EQ(parse({"--version"}).command, Command::version);
    EXPECT_EQ(parse({"--check-config", "-c", "x.ini"}).command, Command::check_config);
    EXPECT_EQ(parse({"-c", "x.ini"}).file, "x.ini");
    EXPECT_EQ(parse({"-cx.ini"}).file, "x.ini");
    EXPECT_EQ(parse({"--config=x.ini"}).file, "x.ini");
    EXPECT_EQ(parse({"--config", "x.ini"}).file, "x.ini");
}

TEST(CommandLine, Flags) {
    ConfigSources sources = parse({"--redis.port=6380", "--bridge.name", "eu"});
    ASSERT_EQ(sources.flags.size(), 2u);
    EXPECT_EQ(sources.flags[0].name, "redis.port");
    EXPECT_EQ(sources.flags[0].value, "6380");
    EXPECT_EQ(sources.flags[1].name, "bridge.name");
    EXPECT_EQ(sources.flags[1].value, "eu");
}

TEST(CommandLine, BadUsage) {
    EXPECT_EQ(usage_error({"--nope"}), "unknown option --nope");
    EXPECT_EQ(usage_error({"--redis.prot=6380"}), "unknown option --redis.prot");
    EXPECT_EQ(usage_error({"-x"}), "unknown option -x");
    EXPECT_EQ(usage_error({"--redis.port=1", "-hx"}), "unknown option -x");
    EXPECT_EQ(usage_error({"-c"}), "option -c needs a value");
    EXPECT_EQ(usage_error({"--redis.port"}), "option --redis.port needs a value");
    EXPECT_EQ(usage_error({"--help=yes"}), "option --help takes no value");
    EXPECT_EQ(usage_error({"notifier.ini"}), "unexpected argument notifier.ini");
}

// ---------------------------------------------------------------------------------------------
// What --check-config and --help print

TEST(Describe, SaysWhereEachValueCameFrom) {
    TempFile file("[redis]\nhost = cache\n");
    std::string text = describe_config(parse({"-c", file.path(), "--bridge.tick_ms=300"}, {"PGFEED_REDIS_PORT=6380"}));
    EXPECT_TRUE(contains(text, "[redis]\nhost = cache"));
    EXPECT_TRUE(contains(text, " ; " + file.path() + " line 2\n"));
    EXPECT_TRUE(contains(text, "port = 6380")) << text;
    EXPECT_TRUE(contains(text, " ; environment PGFEED_REDIS_PORT\n"));
    EXPECT_TRUE(contains(text, "tick_ms = 300"));
    EXPECT_TRUE(contains(text, " ; flag --bridge.tick_ms\n"));
    EXPECT_TRUE(contains(text, "batch_size = 1000"));
    EXPECT_TRUE(contains(text, "level = info"));
}

TEST(Describe, MasksPasswords) {
    std::string text = describe_config(
        parse({"--redis.password=hunter2", "--postgres.conninfo=host=db password='hun ter3' dbname=app"}));
    EXPECT_FALSE(contains(text, "hunter2"));
    EXPECT_FALSE(contains(text, "hun ter3"));
    EXPECT_TRUE(contains(text, "password = ********"));
    // Rebuilt in libpq's order of keywords.
    for (const char *part : {"host='db'", "password='********'", "dbname='app'"})
        EXPECT_TRUE(contains(text, part)) << part;

    std::string without_password = describe_config(parse({"--postgres.conninfo=postgresql://db/app"}));
    EXPECT_TRUE(contains(without_password, "conninfo = postgresql://db/app")) << without_password;
}

TEST(Describe, DescriptionIsAValidConfigFile) {
    ConfigSources sources = parse({"--redis.port=6380", "--bridge.enabled=off"});
    TempFile file(describe_config(sources));
    Config reread = load({"-c", file.path()});
    EXPECT_TRUE(changed_keys(load_config(sources), reread).empty());
}

TEST(Usage, ListsEveryKeyWithItsDefault) {
    std::string text = usage_text("pgfeed-notifier");
    EXPECT_TRUE(contains(text, "--check-config"));
    EXPECT_TRUE(contains(text, "PGFEED_<SECTION>_<KEY>"));
    for (const char *line :
         {"conninfo = \"\"", "host = 127.0.0.1", "port = 6379", "socket = \"\"", "password = \"\"",
          "connect_timeout_ms = 2000", "enabled = true", "name = default", "stream = pgfeed:events", "maxlen = 1000000",
          "batch_size = 1000", "tick_ms = 200", "lock_key = 7365414", "takeover_ms = 1000", "prune_interval_ms = 1000",
          "initial_ms = 100", "max_ms = 5000", "level = info"})
        EXPECT_TRUE(contains(text, line)) << line;
    EXPECT_TRUE(contains(text, "an integer in 10..60000"));
    EXPECT_TRUE(contains(text, "a 64-bit integer"));
    EXPECT_TRUE(contains(text, "debug, info, warn or error"));
}

TEST(ChangedKeys, NamesTheKeysThatDiffer) {
    Config before;
    Config after;
    after.redis.port = 6380;
    after.log.level = LogLevel::debug;
    EXPECT_EQ(changed_keys(before, after), (std::vector<std::string>{"redis.port", "log.level"}));
}

} // namespace
} // namespace pgfeed::notifier
