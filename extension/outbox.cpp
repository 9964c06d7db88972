#include "outbox.hpp"

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
#define ACTIVITY_ITEMS "FROM pgfeed.items i LEFT JOIN pgfeed.topics t ON t.topic_id = i.topic_id"

Statement insert_item_events{"INSERT INTO pgfeed.events (kind, topic, data) "
                             "SELECT 'activity', t.name, json_build_object('op', $1::text, " ACTIVITY_FIELDS
                             ")::text " ACTIVITY_ITEMS " WHERE i.position = ANY($2) ORDER BY i.position"};

Statement insert_read_event{"INSERT INTO pgfeed.events (kind, user_key, data) "
                            "SELECT 'read', $1, json_build_object('op', $2::text, 'user', $1, 'positions', $3::int8[], "
                            "'activity_ids', (SELECT array_agg(i.activity_id ORDER BY i.position) FROM pgfeed.items i "
                            "WHERE i.position = ANY($3)), 'unread', pgfeed.unread_count($1, 'all'))::text"};

Statement insert_read_all_event{
    "INSERT INTO pgfeed.events (kind, user_key, data) "
    "SELECT 'read', $1, json_build_object('op', 'read_all', 'user', $1, 'feed', $2::text, 'up_to', $3::int8, "
    "'changed', $4::int8, 'unread', pgfeed.unread_count($1, 'all'))::text"};

// For each source with payload columns, the lateral join that reads them from the row as a JSON
// object, or NULL when it would exceed kMaxPayloadBytes. format() quotes every name; the order
// keeps the statement's text, and so its cached plan, the same from one commit to the next.
Statement payload_joins{
    "SELECT pg_catalog.format(' LEFT JOIN LATERAL (SELECT CASE WHEN pg_catalog.octet_length(x.j::text) <= %s "
    "THEN x.j END AS payload FROM (SELECT pg_catalog.json_build_object(%s) AS j FROM %s s WHERE s.%I = "
    "i.activity_id) x) p%s ON i.source = %s::pg_catalog.oid', $2::int4, "
    "(SELECT pg_catalog.string_agg(pg_catalog.format('%L, s.%I', c, c), ', ' ORDER BY n) "
    "FROM unnest(s.payload_columns) WITH ORDINALITY AS u(c, n)), "
    "s.source, s.id_column, s.source::pg_catalog.oid, s.source::pg_catalog.oid), "
    "'p' || s.source::pg_catalog.oid "
    "FROM pgfeed.sources s WHERE s.source::pg_catalog.oid = ANY($1) "
    "AND pg_catalog.cardinality(s.payload_columns) > 0 ORDER BY s.source::pg_catalog.oid"};

void ring_doorbell() {
    pg_guard([] { Async_Notify("pgfeed", ""); });
}

} // namespace

std::string insert_events_sql(Spi &spi, const std::vector<Oid> &sources) {
    std::string joins, payload = "NULL::json";
    for (const Row &row : spi.run(payload_joins, {oid_array_param(sources), int4_param(kMaxPayloadBytes)}, true)) {
        joins += row.text(1);
        payload = "coalesce(" + row.text(2) + ".payload, " + payload + ")";
    }
    return "INSERT INTO pgfeed.events (kind, topic, data) "
           "SELECT 'activity', t.name, json_build_object('op', 'insert', " ACTIVITY_FIELDS ", 'payload', " +
           payload + ")::text " ACTIVITY_ITEMS + joins + " WHERE i.position = ANY($1) ORDER BY i.position";
}

void publish_inserts(Spi &spi, const std::string &sql, const std::vector<int64_t> &positions) {
    // Planned once per text: the text changes only when an attach or detach changes the sources.
    static DynamicStatement insert_events;
    if (positions.empty())
        return;
    spi.run(insert_events, sql, {int8_array_param(positions)});
    ring_doorbell();
}

void publish_items(Spi &spi, const char *op, const std::vector<int64_t> &positions) {
    if (positions.empty())
        return;
    spi.run(insert_item_events, {text_param(op), int8_array_param(positions)}, false);
    ring_doorbell();
}

void publish_marks(Spi &spi, const std::string &user_key, const char *op, const std::vector<int64_t> &positions) {
    if (positions.empty())
        return;
    spi.run(insert_read_event, {text_param(user_key), text_param(op), int8_array_param(positions)}, false);
    ring_doorbell();
}

void publish_read_all(Spi &spi, const std::string &user_key, const std::string &feed, int64_t up_to, int64_t changed) {
    if (changed == 0)
        return;
    spi.run(insert_read_all_event, {text_param(user_key), text_param(feed), int8_param(up_to), int8_param(changed)},
            false);
    ring_doorbell();
}

} // namespace pgfeed
