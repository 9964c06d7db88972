// follow and unfollow: the topics of a user's 'following' feed.
#include "arguments.hpp"
#include "privilege.hpp"
#include "read_state.hpp"
#include "source_checks.hpp"

namespace {

using namespace pgfeed;

Statement insert_follow{"INSERT INTO pgfeed.follows (user_id, topic) VALUES ($1, $2) ON CONFLICT DO NOTHING"};
Statement delete_follow{"DELETE FROM pgfeed.follows f USING pgfeed.readers r "
                        "WHERE r.user_key = $1 AND f.user_id = r.user_id AND f.topic = $2"};

} // namespace

PGFEED_FUNCTION(pgfeed_follow) {
    std::string user_key = user_key_arg(fcinfo, 0);
    std::string topic = topic_arg(fcinfo, 1);
    AsPgfeedOwner rights;
    Spi spi;
    require_topic_column(spi, topic);
    Reader reader = lock_reader(spi, user_key);
    spi.run(insert_follow, {int4_param(reader.user_id), text_param(topic)}, false);
    PG_RETURN_BOOL(spi.processed() == 1);
}

PGFEED_FUNCTION(pgfeed_unfollow) {
    std::string user_key = user_key_arg(fcinfo, 0);
    std::string topic = topic_arg(fcinfo, 1);
    AsPgfeedOwner rights;
    Spi spi;
    spi.run(delete_follow, {text_param(user_key), text_param(topic)}, false);
    PG_RETURN_BOOL(spi.processed() > 0);
}
