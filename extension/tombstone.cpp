#include "tombstone.hpp"

#include "outbox.hpp"
#include "read_state.hpp"

namespace pgfeed {

namespace {
Statement lock_live_items{"SELECT i.position, coalesce(i.topic_id, 0) FROM pgfeed.items i "
                          "JOIN unnest($1::int8[], $2::oid[]) AS k(activity_id, source) "
                          "ON i.activity_id = k.activity_id AND i.source = k.source::pg_catalog.regclass "
                          "WHERE NOT i.deleted ORDER BY i.position FOR NO KEY UPDATE OF i"};
Statement mark_deleted{"UPDATE pgfeed.items SET deleted = true WHERE position = ANY($1)"};
// Users whose current chunk may hold the bit, in user order so concurrent deletes lock alike. Read
// with the latest snapshot: under REPEATABLE READ a mark committed after this transaction's snapshot
// must still be found (locking that user's row then raises the serialization error).
Statement users_with_chunks{"SELECT DISTINCT r.user_id, r.user_key FROM pgfeed.read_chunks c "
                            "JOIN pgfeed.readers r ON r.user_id = c.user_id AND r.generation = c.generation "
                            "WHERE c.chunk_no = ANY($1) ORDER BY r.user_id"};
} // namespace

std::vector<Tombstone> tombstone_items(Spi &spi, const std::vector<int64_t> &activity_ids,
                                       const std::vector<Oid> &sources) {
    std::vector<Tombstone> tombstones;
    std::vector<int64_t> positions;
    for (const Row &row : spi.run(lock_live_items, {int8_array_param(activity_ids), oid_array_param(sources)}, false)) {
        tombstones.push_back({row.int8(1), row.int4(2)});
        positions.push_back(row.int8(1));
    }
    if (!positions.empty())
        spi.run(mark_deleted, {int8_array_param(positions)}, false);
    publish_items(spi, "delete", positions);
    return tombstones;
}

void withdraw_marks(Spi &spi, const std::vector<Tombstone> &tombstones) {
    if (tombstones.empty())
        return;
    std::vector<int32_t> chunks;
    for (const Tombstone &t : tombstones)
        chunks.push_back(static_cast<int32_t>(chunk_of(t.position)));
    std::vector<std::string> users;
    for (const Row &row : spi.run_latest(users_with_chunks, {int4_array_param(chunks)}))
        users.push_back(row.text(2));
    // One pass over the users in id order, whatever the order of the tombstones.
    for (const std::string &user_key : users) {
        Reader reader = lock_reader(spi, user_key);
        ChunkCache bits(spi, reader, false);
        std::map<int32_t, int64_t> net_delta;
        for (const Tombstone &t : tombstones) {
            if (!bits.test(t.position))
                continue;
            // A set bit above the horizon took the item out of the unread count, below it put the
            // item in; the tombstone now keeps it out, so undo the bit's share.
            const int64_t delta = t.position <= reader.horizon ? -1 : 1;
            bits.flip(t.position);
            reader.net_total += delta;
            net_delta[t.topic_id] += delta;
        }
        if (net_delta.empty())
            continue;
        bits.save();
        add_topic_nets(spi, reader, net_delta);
        save_reader(spi, reader);
    }
}

} // namespace pgfeed

PGFEED_FUNCTION(pgfeed_tombstone) {
    pgfeed::Spi spi;
    auto tombstones = pgfeed::tombstone_items(spi, {PG_GETARG_INT64(1)}, {PG_GETARG_OID(0)});
    pgfeed::withdraw_marks(spi, tombstones);
    PG_RETURN_BOOL(!tombstones.empty());
}
