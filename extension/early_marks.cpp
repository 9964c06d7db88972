#include "early_marks.hpp"

#include "arguments.hpp"
#include "read_state.hpp"
#include "worker_link.hpp"

#include <algorithm>
#include <map>

namespace pgfeed {

namespace {

Statement pending_inserts{"SELECT DISTINCT p.activity_id, p.source FROM pgfeed.pending p "
                          "WHERE p.activity_id = ANY($1) AND p.op = 'i' "
                          "AND ($2::pg_catalog.oid IS NULL OR p.source = $2)"};
Statement record_marks{"INSERT INTO pgfeed.early_marks (user_key, activity_id, source) "
                       "SELECT $1, * FROM unnest($2::int8[], $3::oid[]) ON CONFLICT DO NOTHING"};
Statement forget_marks{"DELETE FROM pgfeed.early_marks WHERE user_key = $1 AND activity_id = ANY($2) "
                       "AND ($3::pg_catalog.oid IS NULL OR source = $3)"};
Statement any_marks{"SELECT EXISTS (SELECT FROM pgfeed.early_marks)"};
Statement users_with_numbered_marks{
    "SELECT DISTINCT e.user_key FROM pgfeed.early_marks e JOIN pgfeed.items i "
    "ON i.activity_id = e.activity_id AND i.source = e.source::pg_catalog.regclass AND NOT i.deleted ORDER BY 1"};
// Items are tombstoned only by rounds and by detach, which both hold the sequencer lock that the
// round holds now: the items found here stay live, no item lock needed.
Statement take_numbered_marks{
    "DELETE FROM pgfeed.early_marks e USING pgfeed.items i WHERE e.user_key = $1 "
    "AND i.activity_id = e.activity_id AND i.source = e.source::pg_catalog.regclass AND NOT i.deleted "
    "RETURNING i.position, coalesce(i.topic_id, 0)"};
Statement drop_orphans{
    "DELETE FROM pgfeed.early_marks e WHERE NOT EXISTS (SELECT FROM pgfeed.items i "
    "WHERE i.activity_id = e.activity_id AND i.source = e.source::pg_catalog.regclass AND NOT i.deleted) "
    "AND NOT EXISTS (SELECT FROM pgfeed.pending p WHERE p.activity_id = e.activity_id AND p.source = e.source "
    "AND p.op = 'i')"};

} // namespace

int64_t record_early_marks(Spi &spi, const std::string &user_key, const std::vector<int64_t> &ids, Oid source) {
    std::vector<int64_t> found_ids;
    std::vector<Oid> found_sources;
    std::map<int64_t, Oid> seen;
    for (const Row &row : spi.run(pending_inserts, {int8_array_param(ids), oid_or_null(source)}, false)) {
        auto [it, fresh] = seen.emplace(row.int8(1), row.oid(2));
        if (!fresh && it->second != row.oid(2))
            ambiguous_id(row.int8(1));
        found_ids.push_back(row.int8(1));
        found_sources.push_back(row.oid(2));
    }
    if (found_ids.empty())
        return 0;
    spi.run(record_marks, {text_param(user_key), int8_array_param(found_ids), oid_array_param(found_sources)}, false);
    note_pending_written(); // a round applies them, perhaps one that has numbered the item already
    return static_cast<int64_t>(spi.processed());
}

int64_t forget_early_marks(Spi &spi, const std::string &user_key, const std::vector<int64_t> &ids, Oid source) {
    spi.run(forget_marks, {text_param(user_key), int8_array_param(ids), oid_or_null(source)}, false);
    return static_cast<int64_t>(spi.processed());
}

void apply_early_marks(Spi &spi) {
    if (!spi.run_one(any_marks, {}, false)->boolean(1))
        return;
    std::vector<std::string> users;
    for (const Row &row : spi.run(users_with_numbered_marks, {}, false))
        users.push_back(row.text(1));
    // Each user's reader lock first, then their marks: the order of a direct mark, which drops them.
    for (const std::string &user_key : users) {
        Reader reader = lock_reader(spi, user_key);
        std::vector<ItemRef> items;
        for (const Row &row : spi.run(take_numbered_marks, {text_param(user_key)}, false))
            items.push_back({row.int8(1), row.int4(2)});
        std::sort(items.begin(), items.end(),
                  [](const ItemRef &a, const ItemRef &b) { return a.position < b.position; });
        ChunkCache bits(spi, reader, false);
        apply_marks(spi, reader, bits, items, true, &user_key);
    }
    spi.run(drop_orphans, {}, false);
}

} // namespace pgfeed
