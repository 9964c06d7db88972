#include "outbox.hpp"

#include "worker_link.hpp"

extern "C" {
#include "commands/async.h"
}

namespace pgfeed {

namespace {

// The JSON is built by PostgreSQL (json_build_object), which quotes and formats every value. Every
// activity event has these fields, from pgfeed.items i joined to pgfeed.topics t; inserts add a
// payload. One definition, so that the event kinds cannot drift apart.
#define ACTIVITY_FIELDS                                                                                                \
    "'position', i.position, 'source', i.source::text, 'activity_id', i.activity_id, 'topic', t.name, "                \
    "'created_at', i.created_at"
#define ACTIVITY_TOPIC "LEFT JOIN pgfeed.topics t ON t.topic_id = i.topic_id"

Statement insert_item_events{"INSERT INTO pgfeed.events (kind, topic, data) "
                             "SELECT 'activity', t.name, json_build_object('op', $1::text, " ACTIVITY_FIELDS
                             ")::text FROM pgfeed.items i " ACTIVITY_TOPIC
                             " WHERE i.position = ANY($2) ORDER BY i.position"};

// The payload was built by the capture trigger with the writer's rights; here it is only parsed.
Statement insert_insert_events{"INSERT INTO pgfeed.events (kind, topic, data) "
                               "SELECT 'activity', t.name, json_build_object('op', 'insert', " ACTIVITY_FIELDS
                               ", 'payload', u.payload::json)::text "
                               "FROM unnest($1::int8[], $2::text[]) AS u(position, payload) "
                               "JOIN pgfeed.items i ON i.position = u.position " ACTIVITY_TOPIC " ORDER BY i.position"};

Statement insert_read_event{PGFEED_INSERT_READ_EVENT};

Statement insert_read_all_event{
    "INSERT INTO pgfeed.events (kind, user_key, data) "
    "SELECT 'read', $1, json_build_object('op', 'read_all', 'user', $1, 'feed', $2::text, 'up_to', $5::int8, "
    "'changed', $6::int8, 'unread', " PGFEED_UNREAD_AFTER ")::text"};

} // namespace

void publish_inserts(Spi &spi, const std::vector<int64_t> &positions, const std::vector<std::string> &payloads) {
    if (positions.empty())
        return;
    spi.run(insert_insert_events, {int8_array_param(positions), text_array_param(payloads)}, false);
    note_events_written();
}

void publish_items(Spi &spi, const char *op, const std::vector<int64_t> &positions) {
    if (positions.empty())
        return;
    spi.run(insert_item_events, {text_param(op), int8_array_param(positions)}, false);
    note_events_written();
}

void publish_marks(Spi &spi, const Reader &reader, const std::string &user_key, const char *op,
                   const std::vector<int64_t> &positions) {
    if (positions.empty())
        return;
    spi.run(insert_read_event,
            {text_param(user_key), text_param(op), int8_param(reader.horizon), int8_param(reader.net_total),
             int8_array_param(positions)},
            false);
    note_events_written();
}

void publish_read_all(Spi &spi, const Reader &reader, const std::string &user_key, const std::string &feed,
                      int64_t up_to, int64_t changed) {
    if (changed == 0)
        return;
    spi.run(insert_read_all_event,
            {text_param(user_key), text_param(feed), int8_param(reader.horizon), int8_param(reader.net_total),
             int8_param(up_to), int8_param(changed)},
            false);
    note_events_written();
}

void ring_bridge_if_published() {
    if (!take_events_written())
        return;
    pg_guard([] { Async_Notify("pgfeed", ""); });
}

} // namespace pgfeed
