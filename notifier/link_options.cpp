#include "link_options.hpp"

#include <chrono>
#include <utility>

namespace pgfeed::notifier {

PgLinkOptions pg_link_options(const Config &config, std::vector<std::string> channels) {
    PgLinkOptions options;
    options.conninfo = config.postgres.conninfo;
    options.channels = std::move(channels);
    options.retry_initial = std::chrono::milliseconds(config.reconnect.initial_ms);
    options.retry_max = std::chrono::milliseconds(config.reconnect.max_ms);
    return options;
}

RedisLinkOptions redis_link_options(const Config &config) {
    RedisLinkOptions options;
    options.host = config.redis.host;
    options.port = config.redis.port;
    options.unix_socket = config.redis.socket;
    options.password = config.redis.password;
    options.connect_timeout = std::chrono::milliseconds(config.redis.connect_timeout_ms);
    options.retry_initial = std::chrono::milliseconds(config.reconnect.initial_ms);
    options.retry_max = std::chrono::milliseconds(config.reconnect.max_ms);
    return options;
}

} // namespace pgfeed::notifier
