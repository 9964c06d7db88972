// The options of the notifier's PostgreSQL and Redis connections, from its configuration: one
// place, so the bridge, the stream reader and the probes connect alike.
#pragma once

#include "config.hpp"
#include "pg_link.hpp"
#include "redis_link.hpp"

#include <string>
#include <vector>

namespace pgfeed::notifier {

PgLinkOptions pg_link_options(const Config &config, std::vector<std::string> channels = {});
RedisLinkOptions redis_link_options(const Config &config);

} // namespace pgfeed::notifier
