// unread_count and count_since: arithmetic on dense positions, never a scan of history.
//
// Positions and per-topic sequence numbers are gap-free (tombstones keep their numbers), so the
// items above a position are a subtraction minus the few tombstones there; a user's unread items
// above the horizon are those items plus the user's net of flipped bits.
#include "arguments.hpp"
#include "privilege.hpp"
#include "source_checks.hpp"
#include "spi.hpp"

namespace {

using namespace pgfeed;

// One named topic ($2), or the followed ones when $2 is NULL.
#define READER_CTE                                                                                                     \
    "WITH r AS (SELECT coalesce(max(user_id), 0) AS user_id, coalesce(max(horizon), 0) AS horizon, "                   \
    "coalesce(max(generation), 0) AS generation, coalesce(max(net_total), 0) AS net_total "                            \
    "FROM pgfeed.readers WHERE user_key = $1), "                                                                       \
    "t AS (SELECT topic_id, last_seq, name FROM pgfeed.topics WHERE name = $2 "                                        \
    "UNION ALL SELECT tp.topic_id, tp.last_seq, tp.name FROM pgfeed.follows f JOIN pgfeed.topics tp "                  \
    "ON tp.name = f.topic WHERE $2 IS NULL AND f.user_id = (SELECT user_id FROM r)) "

// Of those topics, the ones LIKE a pattern of `within`, unless that is NULL.
#define WITHIN(within) " WHERE (" within "::pg_catalog.text[] IS NULL OR t.name LIKE ANY(" within "))"

#define ITEMS_ABOVE(p)                                                                                                 \
    "(s.last_position - " p " - (SELECT count(*) FROM pgfeed.items i WHERE i.deleted AND i.position > " p "))"

#define TOPIC_ITEMS_ABOVE(p)                                                                                           \
    "(t.last_seq - coalesce((SELECT i.topic_seq FROM pgfeed.items i WHERE i.topic_id = t.topic_id "                    \
    "AND i.position <= " p " ORDER BY i.position DESC LIMIT 1), 0) "                                                   \
    "- (SELECT count(*) FROM pgfeed.items i WHERE i.deleted AND i.topic_id = t.topic_id AND i.position > " p "))"

#define TOPIC_NET                                                                                                      \
    "coalesce((SELECT n.nets[t.topic_id % 64 + 1] FROM pgfeed.topic_nets n WHERE n.user_id = r.user_id "               \
    "AND n.bucket = t.topic_id / 64 AND n.generation = r.generation), 0)"

Statement unread_all{READER_CTE "SELECT " ITEMS_ABOVE("r.horizon") " + r.net_total FROM pgfeed.sequencer s, r"};
Statement unread_topics{READER_CTE "SELECT coalesce(sum(" TOPIC_ITEMS_ABOVE("r.horizon") " + " TOPIC_NET "), 0)::int8 "
                                                                                         "FROM t, r" WITHIN("$3")};
Statement since_all{"SELECT greatest(0, " ITEMS_ABOVE("$1") ") FROM pgfeed.sequencer s"};
Statement since_topics{READER_CTE "SELECT coalesce(sum(greatest(0, " TOPIC_ITEMS_ABOVE("$3") ")), 0)::int8 "
                                                                                             "FROM t" WITHIN("$4")};

SqlArg topic_or_following(const FeedSpec &feed) {
    return feed.kind == FeedSpec::Kind::Topic ? text_param(feed.topic) : SqlArg{TEXTOID, 0, true};
}

} // namespace

PGFEED_FUNCTION(pgfeed_unread_count) {
    std::string user_key = user_key_arg(fcinfo, 0);
    FeedSpec feed = feed_arg(fcinfo, 1);
    SqlArg within = within_arg(fcinfo, 2);
    require_feed_takes_bound(feed, within);
    AsPgfeedOwner rights;
    Spi spi;
    require_known_feed(spi, feed);
    auto row = feed.kind == FeedSpec::Kind::All
                   ? spi.run_one(unread_all, {text_param(user_key), SqlArg{TEXTOID, 0, true}}, true)
                   : spi.run_one(unread_topics, {text_param(user_key), topic_or_following(feed), within}, true);
    PG_RETURN_INT64(row->int8(1));
}

PGFEED_FUNCTION(pgfeed_count_since) {
    std::string user_key = user_key_arg(fcinfo, 0);
    FeedSpec feed = feed_arg(fcinfo, 1);
    require_not_null(fcinfo, 2, "after");
    int64_t after = *optional_position_arg(fcinfo, 2, "after");
    SqlArg within = within_arg(fcinfo, 3);
    require_feed_takes_bound(feed, within);
    AsPgfeedOwner rights;
    Spi spi;
    require_known_feed(spi, feed);
    auto row = feed.kind == FeedSpec::Kind::All
                   ? spi.run_one(since_all, {int8_param(after)}, true)
                   : spi.run_one(since_topics,
                                 {text_param(user_key), topic_or_following(feed), int8_param(after), within}, true);
    PG_RETURN_INT64(row->int8(1));
}
