#include "numbering.hpp"

#include "early_marks.hpp"
#include "outbox.hpp"
#include "tombstone.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace pgfeed {

namespace {

Statement anything_to_do{"SELECT EXISTS (SELECT FROM pgfeed.pending) OR EXISTS (SELECT FROM pgfeed.early_marks)"};
// After a restore the counter row is new (pg_dump leaves it out) while the items are back.
Statement restore_counter{"UPDATE pgfeed.sequencer s SET last_position = x.top "
                          "FROM (SELECT max(position) AS top FROM pgfeed.items) x WHERE s.last_position < x.top"};
Statement lock_counter{"SELECT last_position FROM pgfeed.sequencer FOR UPDATE"};
Statement advance_counter{"UPDATE pgfeed.sequencer SET last_position = $1"};
// One statement, one snapshot: rows of transactions still running are not visible, and wait for
// a later round.
Statement take_changes{"DELETE FROM pgfeed.pending WHERE change_id IN "
                       "(SELECT change_id FROM pgfeed.pending ORDER BY change_id LIMIT $1) "
                       "RETURNING change_id, txid::text, op::text, source, activity_id, topic, created_at, payload, "
                       "quiet"};
Statement attached_sources{"SELECT source::pg_catalog.oid FROM pgfeed.sources"};
// Locked in position order, as marks and deletes lock items, so the round deadlocks with neither.
Statement live_items{"SELECT i.position, i.activity_id, i.source::pg_catalog.oid, t.name, i.created_at "
                     "FROM pgfeed.items i JOIN unnest($1::int8[], $2::oid[]) AS k(activity_id, source) "
                     "ON i.activity_id = k.activity_id AND i.source = k.source::pg_catalog.regclass "
                     "LEFT JOIN pgfeed.topics t ON t.topic_id = i.topic_id "
                     "WHERE NOT i.deleted ORDER BY i.position FOR NO KEY UPDATE OF i"};
Statement retime_items{"UPDATE pgfeed.items i SET created_at = k.created "
                       "FROM unnest($1::int8[], $2::timestamptz[]) AS k(position, created) "
                       "WHERE i.position = k.position"};
Statement take_topic_seqs{"INSERT INTO pgfeed.topics AS t (name, last_seq) "
                          "SELECT * FROM unnest($1::text[], $2::int8[]) "
                          "ON CONFLICT (name) DO UPDATE SET last_seq = t.last_seq + EXCLUDED.last_seq "
                          "RETURNING name, topic_id, last_seq"};
Statement insert_items{"INSERT INTO pgfeed.items (position, source, activity_id, topic_id, topic_seq, created_at) "
                       "SELECT p, s::pg_catalog.regclass, a, NULLIF(t, 0), NULLIF(q, 0), c "
                       "FROM unnest($1::int8[], $2::oid[], $3::int8[], $4::int4[], $5::int8[], "
                       "$6::timestamptz[]) AS i(p, s, a, t, q, c)"};

using Key = std::pair<Oid, int64_t>; // source, activity id

struct Change {
    int64_t change_id;
    std::string txid;
    char op; // 'i' insert, 'd' delete, 't' new created_at
    Key key;
    std::optional<std::string> topic;
    std::optional<int64_t> created;
    std::optional<std::string> payload;
    bool quiet;
};

struct LiveItem {
    int64_t position;
    std::optional<std::string> topic;
    std::optional<int64_t> created;
};

// What a key's changes in this round add up to, against its committed item if it has one.
struct Outcome {
    bool tombstone = false;
    std::optional<std::optional<int64_t>> retime; // a new created_at (maybe NULL) for the live item
    std::optional<Change> insert;                 // a new item to number
};

Outcome fold(const std::optional<LiveItem> &live, const std::vector<const Change *> &changes) {
    Outcome out;
    bool standing = live.has_value();
    std::string removed_by; // the transaction that deleted or replaced the live item
    for (const Change *c : changes) {
        switch (c->op) {
        case 'i':
            if (standing && !out.insert) // a second row with a live id replaces the item
                standing = false, removed_by = c->txid, out.retime.reset();
            out.insert = *c;
            break;
        case 'd':
            if (out.insert)
                out.insert.reset(); // inserted and deleted before it was numbered: nothing
            else if (standing)
                standing = false, removed_by = c->txid, out.retime.reset();
            break;
        case 't':
            if (out.insert)
                out.insert->created = c->created;
            else if (standing)
                out.retime = c->created;
            break;
        }
    }
    // A topic or id changed and changed back in one transaction: the item stays as it was.
    if (live && !standing && out.insert && out.insert->txid == removed_by && out.insert->topic == live->topic) {
        if (out.insert->created != live->created)
            out.retime = out.insert->created;
        out.insert.reset();
        standing = true;
    }
    out.tombstone = live && !standing;
    return out;
}

std::vector<Change> take_visible_changes(Spi &spi) {
    std::set<Oid> attached;
    for (const Row &row : spi.run(attached_sources, {}, false))
        attached.insert(row.oid(1));
    std::vector<Change> changes;
    for (const Row &row : spi.run(take_changes, {int4_param(kMaxChangesPerRound)}, false)) {
        Change c{row.int8(1), row.text(2), row.text(3)[0], {row.oid(4), row.int8(5)}, {}, {}, {}, row.boolean(9)};
        if (!row.is_null(6))
            c.topic = row.text(6);
        if (!row.is_null(7))
            c.created = row.int8(7);
        if (!row.is_null(8))
            c.payload = row.text(8);
        // Left by a table detached since: its changes go with it.
        if (attached.count(c.key.first))
            changes.push_back(std::move(c));
    }
    std::sort(changes.begin(), changes.end(),
              [](const Change &a, const Change &b) { return a.change_id < b.change_id; });
    return changes;
}

std::map<Key, LiveItem> lock_live_items(Spi &spi, const std::map<Key, std::vector<const Change *>> &by_key) {
    std::vector<int64_t> ids;
    std::vector<Oid> sources;
    for (const auto &[key, changes] : by_key)
        sources.push_back(key.first), ids.push_back(key.second);
    std::map<Key, LiveItem> live;
    for (const Row &row : spi.run(live_items, {int8_array_param(ids), oid_array_param(sources)}, false)) {
        LiveItem item{row.int8(1), {}, {}};
        if (!row.is_null(4))
            item.topic = row.text(4);
        if (!row.is_null(5))
            item.created = row.int8(5);
        live.emplace(Key{row.oid(3), row.int8(2)}, item);
    }
    return live;
}

void retime(Spi &spi, const std::vector<std::pair<int64_t, std::optional<int64_t>>> &retimes) {
    if (retimes.empty())
        return;
    std::vector<int64_t> positions, created;
    std::vector<bool> created_null;
    for (const auto &[position, value] : retimes) {
        positions.push_back(position);
        created.push_back(value.value_or(0));
        created_null.push_back(!value);
    }
    spi.run(retime_items, {int8_array_param(positions), timestamptz_array_param(created, created_null)}, false);
    std::sort(positions.begin(), positions.end());
    publish_items(spi, "update", positions);
}

// Gives the new items the positions after `last`: a transaction's items in one block, in the order
// they were captured, and the transactions in the order of their last change in the round. A
// transaction that began after another committed is therefore numbered after it.
int64_t number_items(Spi &spi, std::vector<Change> &items, const std::map<std::string, int64_t> &last_change,
                     int64_t last) {
    auto order = [&](const Change &c) { return std::make_pair(last_change.at(c.txid), c.change_id); };
    std::sort(items.begin(), items.end(), [&](const Change &a, const Change &b) { return order(a) < order(b); });
    std::map<std::string, int64_t> per_topic;
    for (const Change &item : items)
        if (item.topic)
            ++per_topic[*item.topic];
    std::map<std::string, std::pair<int32_t, int64_t>> next_seq; // topic -> (id, next sequence number)
    if (!per_topic.empty()) {
        std::vector<std::string> names;
        std::vector<int64_t> counts;
        for (auto &[name, n] : per_topic)
            names.push_back(name), counts.push_back(n);
        for (const Row &row : spi.run(take_topic_seqs, {text_array_param(names), int8_array_param(counts)}, false)) {
            std::string name = row.text(1);
            next_seq[name] = {row.int4(2), row.int8(3) - per_topic[name] + 1};
        }
    }
    std::vector<int64_t> positions, ids, seqs, created, published;
    std::vector<Oid> sources;
    std::vector<int32_t> topics;
    std::vector<bool> created_null;
    std::vector<std::string> payloads;
    for (const Change &item : items) {
        positions.push_back(++last);
        sources.push_back(item.key.first);
        ids.push_back(item.key.second);
        if (item.topic) {
            auto &[topic_id, seq] = next_seq.at(*item.topic);
            topics.push_back(topic_id), seqs.push_back(seq++);
        } else {
            topics.push_back(0), seqs.push_back(0);
        }
        created.push_back(item.created.value_or(0));
        created_null.push_back(!item.created);
        if (!item.quiet)
            published.push_back(last), payloads.push_back(item.payload.value_or(""));
    }
    spi.run(insert_items,
            {int8_array_param(positions), oid_array_param(sources), int8_array_param(ids), int4_array_param(topics),
             int8_array_param(seqs), timestamptz_array_param(created, created_null)},
            false);
    publish_inserts(spi, published, payloads);
    return last;
}

} // namespace

int64_t number_round(Spi &spi) {
    spi.run(restore_counter, {}, false);
    // Idle rounds cost one read: no row lock, so no transaction id and no WAL.
    if (!spi.run_one(anything_to_do, {}, false)->boolean(1))
        return 0;
    const int64_t first_last = spi.run_one(lock_counter, {}, false)->int8(1);
    std::vector<Change> changes = take_visible_changes(spi);
    if (changes.empty()) {
        apply_early_marks(spi);
        ring_bridge_if_published();
        return 0;
    }
    std::map<Key, std::vector<const Change *>> by_key;
    std::map<std::string, int64_t> last_change; // transaction -> its last change in this round
    for (const Change &c : changes) {
        by_key[c.key].push_back(&c);
        last_change[c.txid] = c.change_id;
    }
    std::map<Key, LiveItem> live = lock_live_items(spi, by_key);

    std::vector<int64_t> gone_ids;
    std::vector<Oid> gone_sources;
    std::vector<std::pair<int64_t, std::optional<int64_t>>> retimes;
    std::vector<Change> inserts;
    for (const auto &[key, key_changes] : by_key) {
        auto found = live.find(key);
        std::optional<LiveItem> item = found == live.end() ? std::nullopt : std::optional<LiveItem>(found->second);
        Outcome out = fold(item, key_changes);
        if (out.tombstone)
            gone_ids.push_back(key.second), gone_sources.push_back(key.first);
        if (out.retime)
            retimes.emplace_back(item->position, *out.retime);
        if (out.insert)
            inserts.push_back(std::move(*out.insert));
    }
    // Committed items change first: withdrawing marks takes reader locks, as marks do after their items.
    if (!gone_ids.empty())
        withdraw_marks(spi, tombstone_items(spi, gone_ids, gone_sources));
    retime(spi, retimes);
    if (!inserts.empty()) {
        int64_t last = number_items(spi, inserts, last_change, first_last);
        spi.run(advance_counter, {int8_param(last)}, false);
    }
    apply_early_marks(spi);
    ring_bridge_if_published();
    return static_cast<int64_t>(changes.size());
}

} // namespace pgfeed
