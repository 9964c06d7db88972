// The commit-time flush: applies this transaction's deletes and created_at changes to committed
// items, then gives the items it inserted their positions.
//
// It runs as a deferred constraint trigger, so at commit; numbering starts by locking the single
// sequencer row, which stays locked until the commit is visible. Whoever numbers next therefore
// sees this commit already, positions follow commit order, and the committed positions are always
// a gap-free prefix: a cursor handed out is never passed by a late commit (invariant I2).
#include "capture_log.hpp"
#include "outbox.hpp"
#include "spi.hpp"
#include "tombstone.hpp"

extern "C" {
#include "commands/trigger.h"
}

#include <map>
#include <utility>

namespace {

using namespace pgfeed;

Statement take_positions{"UPDATE pgfeed.sequencer SET last_position = last_position + $1 "
                         "RETURNING last_position - $1"};
Statement take_topic_seqs{"INSERT INTO pgfeed.topics AS t (name, last_seq) "
                          "SELECT * FROM unnest($1::text[], $2::int8[]) "
                          "ON CONFLICT (name) DO UPDATE SET last_seq = t.last_seq + EXCLUDED.last_seq "
                          "RETURNING name, topic_id, last_seq"};
Statement insert_items{"INSERT INTO pgfeed.items (position, source, activity_id, topic_id, topic_seq, created_at) "
                       "SELECT p, s::pg_catalog.regclass, a, NULLIF(t, 0), NULLIF(q, 0), c "
                       "FROM unnest($1::int8[], $2::oid[], $3::int8[], $4::int4[], $5::int8[], "
                       "$6::timestamptz[]) AS i(p, s, a, t, q, c)"};

Statement lock_changed_items{"SELECT i.position FROM pgfeed.items i "
                             "JOIN unnest($1::int8[], $2::oid[]) AS k(activity_id, source) "
                             "ON i.activity_id = k.activity_id AND i.source = k.source::pg_catalog.regclass "
                             "WHERE NOT i.deleted ORDER BY i.position FOR NO KEY UPDATE OF i"};
Statement retime_items{"UPDATE pgfeed.items i SET created_at = k.created "
                       "FROM unnest($1::int8[], $2::oid[], $3::timestamptz[]) AS k(activity_id, source, created) "
                       "WHERE i.activity_id = k.activity_id AND i.source = k.source::pg_catalog.regclass "
                       "AND NOT i.deleted RETURNING i.position"};

struct NewItem {
    Oid source;
    int64_t activity_id;
    std::string topic; // empty: none
    int64_t created;
    bool created_null;
};

// What the transaction's captured changes add up to, in capture order.
std::vector<NewItem> net_inserts() {
    int count = 0;
    const CapturedChange *log = capture_log_entries(&count);
    std::map<std::pair<Oid, int64_t>, int> latest; // key -> index of its live insert
    for (int i = 0; i < count; ++i) {
        auto key = std::make_pair(log[i].source, log[i].activity_id);
        if (log[i].kind == CapturedChange::Kind::Cancel)
            latest.erase(key);
        else if (log[i].kind == CapturedChange::Kind::Insert)
            latest[key] = i;
    }
    std::map<int, const CapturedChange *> in_order;
    for (auto [key, index] : latest)
        in_order[index] = &log[index];
    std::vector<NewItem> items;
    for (auto [index, change] : in_order)
        items.push_back({change->source, change->activity_id, change->topic ? change->topic : "", change->created,
                         change->created_null});
    return items;
}

// What the transaction did to items committed before it: deletes, and new created_at values.
struct CommittedChanges {
    std::vector<int64_t> deleted_ids, retimed_ids, created;
    std::vector<Oid> deleted_sources, retimed_sources;
    std::vector<bool> created_null;
    bool empty() const { return deleted_ids.empty() && retimed_ids.empty(); }
};

CommittedChanges committed_changes() {
    int count = 0;
    const CapturedChange *log = capture_log_entries(&count);
    CommittedChanges changes;
    std::map<std::pair<Oid, int64_t>, int> last_retime;
    for (int i = 0; i < count; ++i) {
        if (log[i].kind == CapturedChange::Kind::Delete)
            changes.deleted_ids.push_back(log[i].activity_id), changes.deleted_sources.push_back(log[i].source);
        else if (log[i].kind == CapturedChange::Kind::Retime)
            last_retime[{log[i].source, log[i].activity_id}] = i;
    }
    for (auto [key, i] : last_retime) {
        changes.retimed_sources.push_back(key.first);
        changes.retimed_ids.push_back(key.second);
        changes.created.push_back(log[i].created);
        changes.created_null.push_back(log[i].created_null);
    }
    return changes;
}

void apply_committed_changes(Spi &spi, const CommittedChanges &changes) {
    if (!changes.retimed_ids.empty()) {
        // All changed items locked in one pass in position order, deleted ones included.
        std::vector<int64_t> ids = changes.deleted_ids;
        std::vector<Oid> sources = changes.deleted_sources;
        ids.insert(ids.end(), changes.retimed_ids.begin(), changes.retimed_ids.end());
        sources.insert(sources.end(), changes.retimed_sources.begin(), changes.retimed_sources.end());
        spi.run(lock_changed_items, {int8_array_param(ids), oid_array_param(sources)}, false);
        std::vector<int64_t> retimed;
        for (const Row &row : spi.run(retime_items,
                                      {int8_array_param(changes.retimed_ids), oid_array_param(changes.retimed_sources),
                                       timestamptz_array_param(changes.created, changes.created_null)},
                                      false))
            retimed.push_back(row.int8(1));
        publish_items(spi, "update", retimed);
    }
    if (!changes.deleted_ids.empty())
        withdraw_marks(spi, tombstone_items(spi, changes.deleted_ids, changes.deleted_sources));
}

void number_items(Spi &spi, const std::vector<NewItem> &items) {
    std::vector<Oid> sources;
    for (const NewItem &item : items)
        sources.push_back(item.source);
    // Before the lock, which is held until the commit is visible: whatever can run outside it does.
    const std::string insert_events = insert_events_sql(spi, sources);

    const int64_t first =
        spi.run_one(take_positions, {int8_param(static_cast<int64_t>(items.size()))}, false)->int8(1) + 1;

    std::map<std::string, int64_t> per_topic;
    for (const NewItem &item : items)
        if (!item.topic.empty())
            ++per_topic[item.topic];
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

    std::vector<int64_t> positions, ids, seqs, created;
    std::vector<int32_t> topics;
    std::vector<bool> created_null;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const NewItem &item = items[i];
        positions.push_back(first + static_cast<int64_t>(i));
        ids.push_back(item.activity_id);
        if (item.topic.empty()) {
            topics.push_back(0), seqs.push_back(0);
        } else {
            auto &[topic_id, seq] = next_seq.at(item.topic);
            topics.push_back(topic_id), seqs.push_back(seq++);
        }
        created.push_back(item.created);
        created_null.push_back(item.created_null);
    }
    spi.run(insert_items,
            {int8_array_param(positions), oid_array_param(sources), int8_array_param(ids), int4_array_param(topics),
             int8_array_param(seqs), timestamptz_array_param(created, created_null)},
            false);
    // Still under the sequencer lock: insert events take event ids in commit order.
    publish_inserts(spi, insert_events, positions);
}

} // namespace

PGFEED_FUNCTION(pgfeed_sequence) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw FeedError(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "pgfeed._sequence is called by triggers only");
    // Every captured row queues one deferred event; the first to fire numbers them all.
    std::vector<NewItem> items = net_inserts();
    CommittedChanges changes = committed_changes();
    if (!items.empty() || !changes.empty()) {
        Spi spi;
        // Before the sequencer lock: withdrawing marks takes reader locks, and a transaction that
        // marked items and inserts some holds its reader lock while it waits for the sequencer.
        apply_committed_changes(spi, changes);
        if (!items.empty())
            number_items(spi, items);
    }
    capture_log_clear();
    return PointerGetDatum(nullptr);
}
