#include "tombstone.hpp"

#include "read_state.hpp"

namespace pgfeed {

namespace {
Statement mark_deleted{"UPDATE pgfeed.items SET deleted = true "
                       "WHERE activity_id = $1 AND source = $2::pg_catalog.regclass AND NOT deleted "
                       "RETURNING position, coalesce(topic_id, 0)"};
// Users whose current chunk may hold the bit, in user order so concurrent deletes lock alike. Read
// with the latest snapshot: under REPEATABLE READ a mark committed after this transaction's snapshot
// must still be found (locking that user's row then raises the serialization error).
Statement users_with_chunk{"SELECT r.user_key FROM pgfeed.read_chunks c JOIN pgfeed.readers r "
                           "ON r.user_id = c.user_id AND r.generation = c.generation "
                           "WHERE c.chunk_no = $1 ORDER BY r.user_id"};
} // namespace

bool tombstone_item(Spi &spi, Oid source, int64_t activity_id) {
    auto item = spi.run_one(mark_deleted, {int8_param(activity_id), oid_param(source)}, false);
    if (!item)
        return false;
    const int64_t position = item->int8(1);
    const int32_t topic_id = item->int4(2);
    std::vector<std::string> users;
    for (const Row &row : spi.run_latest(users_with_chunk, {int4_param(static_cast<int32_t>(chunk_of(position)))}))
        users.push_back(row.text(1));
    for (const std::string &user_key : users) {
        Reader reader = lock_reader(spi, user_key);
        ChunkCache bits(spi, reader, false);
        if (!bits.test(position))
            continue;
        // A set bit above the horizon took the item out of the unread count, below it put the
        // item in; the tombstone now keeps it out, so undo the bit's share.
        const int64_t delta = position <= reader.horizon ? -1 : 1;
        bits.flip(position);
        reader.net_total += delta;
        bits.save();
        add_topic_nets(spi, reader, {{topic_id, delta}});
        save_reader(spi, reader);
    }
    return true;
}

} // namespace pgfeed

PGFEED_FUNCTION(pgfeed_tombstone) {
    pgfeed::Spi spi;
    bool removed = pgfeed::tombstone_item(spi, PG_GETARG_OID(0), PG_GETARG_INT64(1));
    PG_RETURN_BOOL(removed);
}
