// mark_read, mark_unread, mark_all_read and is_read.
#include "arguments.hpp"
#include "early_marks.hpp"
#include "outbox.hpp"
#include "privilege.hpp"
#include "source_checks.hpp"
#include "read_state.hpp"

#include <algorithm>

namespace {

using namespace pgfeed;

// FOR SHARE: a concurrent delete of the item waits for this mark, or this mark sees it deleted.
Statement select_items_by_id{"SELECT position, coalesce(topic_id, 0), activity_id, source::pg_catalog.oid "
                             "FROM pgfeed.items WHERE activity_id = ANY($1) AND NOT deleted "
                             "AND ($2::pg_catalog.oid IS NULL OR source = $2::pg_catalog.regclass) "
                             "ORDER BY position FOR SHARE"};
Statement select_item_by_id{"SELECT position, coalesce(topic_id, 0), source::pg_catalog.oid FROM pgfeed.items "
                            "WHERE activity_id = $1 AND NOT deleted "
                            "AND ($2::pg_catalog.oid IS NULL OR source = $2::pg_catalog.regclass)"};
Statement visible_last_position{"SELECT last_position FROM pgfeed.sequencer"};
Statement lock_topic_items{"SELECT position, coalesce(topic_id, 0) FROM pgfeed.items "
                           "WHERE topic_id = ANY($1) AND position > $2 AND position <= $3 AND NOT deleted "
                           "ORDER BY position FOR SHARE"};
// Not locked: clearing a bit needs no lock on its item. Only setting one does, as a bit set on an
// item whose delete is committing would outlive the delete's withdrawal of marks.
Statement items_at{"SELECT position, coalesce(topic_id, 0) FROM pgfeed.items "
                   "WHERE position = ANY($1) AND NOT deleted ORDER BY position"};
// $2, within: LIKE patterns the topics must match, or NULL for no bound.
Statement followed_topics{"SELECT tp.topic_id FROM pgfeed.follows f JOIN pgfeed.readers r USING (user_id) "
                          "JOIN pgfeed.topics tp ON tp.name = f.topic WHERE r.user_key = $1 "
                          "AND ($2::pg_catalog.text[] IS NULL OR tp.name LIKE ANY($2))"};
Statement tombstones_between{"SELECT count(*) FROM pgfeed.items WHERE deleted AND position > $1 AND position <= $2"};
Statement topic_by_name{"SELECT topic_id FROM pgfeed.topics WHERE name = $1 "
                        "AND ($2::pg_catalog.text[] IS NULL OR name LIKE ANY($2))"};
// Of `ids`, the live and pending items, and whether their topic is LIKE a pattern of $3.
Statement items_within{
    "SELECT i.activity_id, i.source::pg_catalog.oid, coalesce((SELECT tp.name LIKE ANY($3) FROM pgfeed.topics tp "
    "WHERE tp.topic_id = i.topic_id), false) FROM pgfeed.items i WHERE i.activity_id = ANY($1) AND NOT i.deleted "
    "AND ($2::pg_catalog.oid IS NULL OR i.source = $2::pg_catalog.regclass) "
    "UNION SELECT p.activity_id, p.source, coalesce(p.topic LIKE ANY($3), false) FROM pgfeed.pending p "
    "WHERE p.activity_id = ANY($1) AND p.op = 'i' AND ($2::pg_catalog.oid IS NULL OR p.source = $2)"};

// The numbered items of `ids` in tables the caller may read; `missing` gets the ids that have none (yet).
std::vector<ItemRef> items_by_id(Spi &spi, AsPgfeedOwner &rights, const std::vector<int64_t> &ids, Oid source,
                                 std::vector<int64_t> &missing) {
    std::vector<ItemRef> items;
    std::map<int64_t, Oid> seen;
    for (const Row &row : spi.run(select_items_by_id, {int8_array_param(ids), oid_or_null(source)}, false)) {
        auto [it, fresh] = seen.emplace(row.int8(3), row.oid(4));
        if (!fresh && it->second != row.oid(4))
            ambiguous_id(row.int8(3));
        if (rights.caller_may_read(row.oid(4)))
            items.push_back({row.int8(1), row.int4(2)});
    }
    for (int64_t id : ids)
        if (!seen.count(id))
            missing.push_back(id);
    return items;
}

// Of `ids`, those whose every item (live or pending) has a topic within the bound: an id outside
// it is left alone and answered as a missing one, so a bounded caller learns nothing of it.
std::vector<int64_t> ids_within(Spi &spi, const std::vector<int64_t> &ids, Oid source, const SqlArg &within) {
    std::map<int64_t, bool> inside;
    for (const Row &row : spi.run(items_within, {int8_array_param(ids), oid_or_null(source), within}, false)) {
        auto it = inside.emplace(row.int8(1), true).first;
        it->second = it->second && row.boolean(3);
    }
    std::vector<int64_t> kept;
    for (int64_t id : ids)
        if (auto it = inside.find(id); it != inside.end() && it->second)
            kept.push_back(id);
    return kept;
}

Datum mark(FunctionCallInfo fcinfo, bool to_read) {
    std::string user_key = user_key_arg(fcinfo, 0);
    std::vector<int64_t> ids = id_array_arg(fcinfo, 1, "activity_ids");
    Oid source = optional_source_arg(fcinfo, 2);
    SqlArg within = within_arg(fcinfo, 3);
    if (ids.empty())
        PG_RETURN_INT32(0);
    AsPgfeedOwner rights;
    Spi spi;
    require_attached_source(spi, source);
    if (!within.is_null) {
        ids = ids_within(spi, ids, source, within);
        if (ids.empty())
            PG_RETURN_INT32(0);
    }
    // Items first, then the reader: the order a delete takes them in, so the two never deadlock.
    std::vector<int64_t> missing;
    std::vector<ItemRef> items = items_by_id(spi, rights, ids, source, missing);
    Reader reader = lock_reader(spi, user_key);
    // This mark replaces any the user made before the items were numbered.
    int64_t early = forget_early_marks(spi, user_key, ids, source);
    if (to_read)
        early = missing.empty() ? 0 : record_early_marks(spi, user_key, missing, source);
    ChunkCache bits(spi, reader, false);
    std::vector<int64_t> changed = apply_marks(spi, reader, bits, items, to_read, &user_key);
    PG_RETURN_INT32(static_cast<int32_t>(static_cast<int64_t>(changed.size()) + early));
}

std::vector<int32_t> feed_topics(Spi &spi, const FeedSpec &feed, const std::string &user_key, const SqlArg &within) {
    std::vector<int32_t> topics;
    if (feed.kind == FeedSpec::Kind::Following) {
        for (const Row &row : spi.run(followed_topics, {text_param(user_key), within}, false))
            topics.push_back(row.int4(1));
    } else if (auto row = spi.run_one(topic_by_name, {text_param(feed.topic), within}, false)) {
        topics.push_back(row->int4(1));
    }
    return topics;
}

// Everything at or below `up_to` becomes read: the horizon moves, and the bits below it go.
// Returns how many items became read.
int64_t move_horizon(Spi &spi, Reader &reader, int64_t up_to) {
    const int64_t old_horizon = reader.horizon, old_net = reader.net_total;
    if (reader.bits_lo && *reader.bits_hi > up_to) {
        // Some bits lie above the new horizon and stay: clear those below it one by one.
        ChunkCache bits(spi, reader, false);
        std::vector<int64_t> positions;
        for (auto p = bits.highest_set_below(up_to + 1, 0); p; p = bits.highest_set_below(*p, 0))
            positions.push_back(*p);
        std::map<int32_t, int64_t> net_delta;
        for (const Row &row : spi.run(items_at, {int8_array_param(positions)}, false)) {
            // A bit below the old horizon made the item unread (+1 in the net); above it, read (-1).
            int64_t delta = row.int8(1) <= old_horizon ? -1 : 1;
            net_delta[row.int4(2)] += delta;
            reader.net_total += delta;
        }
        for (int64_t p : positions)
            bits.flip(p);
        bits.save();
        add_topic_nets(spi, reader, net_delta);
    } else {
        // The common case: no bit above the new horizon, so the whole history retires at once.
        ++reader.generation;
        reader.net_total = 0;
        reader.bits_lo.reset();
        reader.bits_hi.reset();
    }
    reader.horizon = up_to;
    save_reader(spi, reader);
    int64_t tombstones = spi.run_one(tombstones_between, {int8_param(old_horizon), int8_param(up_to)}, false)->int8(1);
    return (up_to - old_horizon) - tombstones + old_net - reader.net_total;
}

} // namespace

PGFEED_FUNCTION(pgfeed_mark_read) { return mark(fcinfo, true); }

PGFEED_FUNCTION(pgfeed_mark_unread) { return mark(fcinfo, false); }

PGFEED_FUNCTION(pgfeed_mark_all_read) {
    std::string user_key = user_key_arg(fcinfo, 0);
    FeedSpec feed = feed_arg(fcinfo, 1);
    std::optional<int64_t> up_to = optional_position_arg(fcinfo, 2, "up_to");
    SqlArg within = within_arg(fcinfo, 3);
    require_feed_takes_bound(feed, within);
    AsPgfeedOwner rights;
    Spi spi;
    require_known_feed(spi, feed);
    // Never beyond what this transaction can see: later commits get higher positions (I2).
    int64_t visible = spi.run_one(visible_last_position, {}, false)->int8(1);
    int64_t target = up_to ? std::min(*up_to, visible) : visible;
    std::vector<int32_t> topics;
    if (feed.kind != FeedSpec::Kind::All) {
        topics = feed_topics(spi, feed, user_key, within);
        if (topics.empty())
            PG_RETURN_INT64(0);
    }

    // On a topic or 'following', the feed's items above the horizon get their bit set: they are
    // locked in one pass in position order before the reader, as deletes do. The horizon can only
    // rise meanwhile, and apply_marks skips what is read by then.
    std::vector<ItemRef> items;
    if (feed.kind != FeedSpec::Kind::All) {
        int64_t horizon = load_reader(spi, user_key).horizon;
        for (const Row &row :
             spi.run(lock_topic_items, {int4_array_param(topics), int8_param(horizon), int8_param(target)}, false))
            items.push_back({row.int8(1), row.int4(2)});
    }
    Reader reader = lock_reader(spi, user_key);
    const std::string feed_name = text_arg(fcinfo, 1, "feed");
    if (feed.kind == FeedSpec::Kind::All && target > reader.horizon) {
        int64_t changed = move_horizon(spi, reader, target);
        publish_read_all(spi, reader, user_key, feed_name, target, changed);
        PG_RETURN_INT64(changed);
    }

    // Below the horizon, the items a bit marks unread: their bits are cleared.
    ChunkCache bits(spi, reader, false);
    std::vector<int64_t> flipped;
    for (auto p = bits.highest_set_below(std::min(reader.horizon, target) + 1, 0); p; p = bits.highest_set_below(*p, 0))
        flipped.push_back(*p);
    if (!flipped.empty())
        for (const Row &row : spi.run(items_at, {int8_array_param(flipped)}, false))
            items.push_back({row.int8(1), row.int4(2)});

    auto in_feed = [&](const ItemRef &item) {
        return feed.kind == FeedSpec::Kind::All ||
               std::find(topics.begin(), topics.end(), item.topic_id) != topics.end();
    };
    items.erase(std::remove_if(items.begin(), items.end(), [&](const ItemRef &item) { return !in_feed(item); }),
                items.end());
    int64_t changed = static_cast<int64_t>(apply_marks(spi, reader, bits, items, true).size());
    publish_read_all(spi, reader, user_key, feed_name, target, changed);
    PG_RETURN_INT64(changed);
}

PGFEED_FUNCTION(pgfeed_is_read) {
    std::string user_key = user_key_arg(fcinfo, 0);
    require_not_null(fcinfo, 1, "activity_id");
    int64_t id = PG_GETARG_INT64(1);
    Oid source = optional_source_arg(fcinfo, 2);
    AsPgfeedOwner rights;
    Spi spi;
    require_attached_source(spi, source);
    std::vector<Row> rows = spi.run(select_item_by_id, {int8_param(id), oid_or_null(source)}, true);
    if (rows.size() > 1)
        ambiguous_id(id);
    if (rows.empty() || !rights.caller_may_read(rows[0].oid(3)))
        PG_RETURN_NULL(); // no such item, or none the caller may see: neither read nor unread
    int64_t position = rows[0].int8(1);
    Reader reader = load_reader(spi, user_key);
    ChunkCache bits(spi, reader, true);
    PG_RETURN_BOOL((position <= reader.horizon) != bits.test(position));
}
