#include "read_state.hpp"

#include "outbox.hpp"
#include "worker_link.hpp"

#include "core/read_walk.hpp"

#include <algorithm>

namespace pgfeed {

namespace {
Statement select_reader{"SELECT r.user_id, r.horizon, r.generation, r.net_total, r.bits_lo, r.bits_hi, "
                        "s.last_position FROM pgfeed.sequencer s LEFT JOIN pgfeed.readers r ON r.user_key = $1"};
Statement select_reader_for_update{"SELECT user_id, horizon, generation, net_total, bits_lo, bits_hi "
                                   "FROM pgfeed.readers WHERE user_key = $1 FOR UPDATE"};
Statement insert_reader{"INSERT INTO pgfeed.readers (user_key) VALUES ($1) ON CONFLICT (user_key) DO NOTHING"};
Statement update_reader{"UPDATE pgfeed.readers SET horizon = $2, generation = $3, net_total = $4, "
                        "bits_lo = $5, bits_hi = $6 WHERE user_id = $1"};
Statement select_chunks{"SELECT chunk_no, bits FROM pgfeed.read_chunks "
                        "WHERE user_id = $1 AND generation = $2 AND chunk_no BETWEEN $3 AND $4"};
Statement upsert_chunk{"INSERT INTO pgfeed.read_chunks AS c (user_id, chunk_no, generation, bits) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, chunk_no) "
                       "DO UPDATE SET generation = EXCLUDED.generation, bits = EXCLUDED.bits"};
Statement delete_chunk{"DELETE FROM pgfeed.read_chunks WHERE user_id = $1 AND chunk_no = $2"};
Statement upsert_nets{"INSERT INTO pgfeed.topic_nets AS n (user_id, bucket, generation, nets) "
                      "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, bucket) DO UPDATE SET "
                      "nets = CASE WHEN n.generation = EXCLUDED.generation "
                      "THEN ARRAY(SELECT a + b FROM unnest(n.nets, EXCLUDED.nets) AS u(a, b)) "
                      "ELSE EXCLUDED.nets END, generation = EXCLUDED.generation"};

// A mark's writes and its read event in one statement: the chunk ($6 user, $7 chunk, $8
// generation, $9 bits: upsert, or delete when it has no bit left), the topic bucket ($10, nets $11)
// if any, the reader row ($12, $13 bits bounds; horizon and net_total are the event's $3 and $4).
#define MARK_CHUNK_UPSERT                                                                                              \
    "WITH c AS (INSERT INTO pgfeed.read_chunks AS c (user_id, chunk_no, generation, bits) VALUES ($6, $7, $8, $9) "    \
    "ON CONFLICT (user_id, chunk_no) DO UPDATE SET generation = EXCLUDED.generation, bits = EXCLUDED.bits), "
#define MARK_CHUNK_DELETE "WITH c AS (DELETE FROM pgfeed.read_chunks WHERE user_id = $6 AND chunk_no = $7), "
#define MARK_NETS                                                                                                      \
    "n AS (INSERT INTO pgfeed.topic_nets AS n (user_id, bucket, generation, nets) VALUES ($6, $10, $8, $11) "          \
    "ON CONFLICT (user_id, bucket) DO UPDATE SET nets = CASE WHEN n.generation = EXCLUDED.generation "                 \
    "THEN ARRAY(SELECT a + b FROM unnest(n.nets, EXCLUDED.nets) AS u(a, b)) ELSE EXCLUDED.nets END, "                  \
    "generation = EXCLUDED.generation), "
#define MARK_READER                                                                                                    \
    "r AS (UPDATE pgfeed.readers SET horizon = $3, generation = $8, net_total = $4, bits_lo = $12, bits_hi = $13 "     \
    "WHERE user_id = $6) "
Statement mark_upsert_nets{MARK_CHUNK_UPSERT MARK_NETS MARK_READER PGFEED_INSERT_READ_EVENT};
Statement mark_upsert{MARK_CHUNK_UPSERT MARK_READER PGFEED_INSERT_READ_EVENT};
Statement mark_delete_nets{MARK_CHUNK_DELETE MARK_NETS MARK_READER PGFEED_INSERT_READ_EVENT};
Statement mark_delete{MARK_CHUNK_DELETE MARK_READER PGFEED_INSERT_READ_EVENT};

// Topics per row of pgfeed.topic_nets; the SQL of feed_counts.cpp spells it out too.
constexpr int32_t kTopicsPerBucket = 64;
// Chunks fetched per query: a heavy reader's run of marks usually fits in one fetch.
constexpr int64_t kChunkFetch = 64;

Reader reader_from(const Row &row) {
    Reader r;
    r.exists = true;
    r.user_id = row.int4(1);
    r.horizon = row.int8(2);
    r.generation = row.int4(3);
    r.net_total = row.int8(4);
    if (!row.is_null(5))
        r.bits_lo = row.int8(5);
    if (!row.is_null(6))
        r.bits_hi = row.int8(6);
    return r;
}
} // namespace

Reader load_reader(Spi &spi, const std::string &user_key) {
    Row row = *spi.run_one(select_reader, {text_param(user_key)}, true);
    Reader reader = row.is_null(1) ? Reader{} : reader_from(row);
    reader.last_position = row.int8(7);
    return reader;
}

Reader lock_reader(Spi &spi, const std::string &user_key) {
    for (;;) {
        if (auto row = spi.run_one(select_reader_for_update, {text_param(user_key)}, false))
            return reader_from(*row);
        // Absent: create it, then lock whichever row won a concurrent insert.
        spi.run(insert_reader, {text_param(user_key)}, false);
    }
}

void save_reader(Spi &spi, const Reader &r) {
    spi.run(update_reader,
            {int4_param(r.user_id), int8_param(r.horizon), int4_param(r.generation), int8_param(r.net_total),
             int8_or_null(r.bits_lo), int8_or_null(r.bits_hi)},
            false);
}

bool ChunkCache::may_have_bits(int64_t chunk_no) const {
    return reader_.exists && reader_.bits_lo && chunk_no >= chunk_of(*reader_.bits_lo) &&
           chunk_no <= chunk_of(*reader_.bits_hi);
}

ChunkCache::Entry &ChunkCache::chunk(int64_t chunk_no) {
    auto found = chunks_.find(chunk_no);
    if (found != chunks_.end())
        return found->second;
    auto in = [chunk_no](const std::pair<int64_t, int64_t> &range) {
        return range.first <= chunk_no && chunk_no <= range.second;
    };
    if (may_have_bits(chunk_no) && std::none_of(fetched_.begin(), fetched_.end(), in)) {
        // Fetch this chunk and the ones below it at once: callers walk down the feed. The empty
        // ones get their entry when used, not all 64 now.
        int64_t lo = std::max(chunk_no - kChunkFetch + 1, chunk_of(*reader_.bits_lo));
        for (const Row &row :
             spi_.run(select_chunks,
                      {int4_param(reader_.user_id), int4_param(reader_.generation),
                       int4_param(static_cast<int32_t>(lo)), int4_param(static_cast<int32_t>(chunk_no))},
                      read_only_)) {
            std::vector<uint8_t> bytes = row.bytea(2);
            chunks_.try_emplace(row.int4(1), Entry{ChunkBits::decode(bytes.data(), bytes.size()), false});
        }
        fetched_.emplace_back(lo, chunk_no);
    }
    return chunks_[chunk_no];
}

bool ChunkCache::test(int64_t position) {
    if (!may_have_bits(chunk_of(position)))
        return false;
    return chunk(chunk_of(position)).bits.test(offset_of(position));
}

void ChunkCache::flip(int64_t position) {
    Entry &e = chunk(chunk_of(position));
    int offset = offset_of(position);
    if (e.bits.test(offset)) {
        e.bits.clear(offset);
    } else {
        e.bits.set(offset);
        reader_.bits_lo = std::min(reader_.bits_lo.value_or(position), position);
        reader_.bits_hi = std::max(reader_.bits_hi.value_or(position), position);
    }
    e.dirty = true;
}

std::optional<int64_t> ChunkCache::highest_set_below(int64_t below, int64_t floor) {
    if (!reader_.bits_lo)
        return std::nullopt;
    return highest_set_in([this](int64_t c) -> const ChunkBits & { return chunk(c).bits; }, *reader_.bits_lo,
                          *reader_.bits_hi, below, floor);
}

int64_t ChunkCache::run_start(int64_t position) {
    return run_start_in([this](int64_t c) -> const ChunkBits & { return chunk(c).bits; },
                        reader_.bits_lo.value_or(position), position);
}

void ChunkCache::save() {
    for (auto &[chunk_no, e] : chunks_) {
        if (!e.dirty)
            continue;
        uint8_t bytes[kMaxEncodedBytes];
        std::size_t size = e.bits.encode(bytes);
        if (size == 0)
            spi_.run(delete_chunk, {int4_param(reader_.user_id), int4_param(static_cast<int32_t>(chunk_no))}, false);
        else
            spi_.run(upsert_chunk,
                     {int4_param(reader_.user_id), int4_param(static_cast<int32_t>(chunk_no)),
                      int4_param(reader_.generation), bytea_param(bytes, size)},
                     false);
        e.dirty = false;
    }
}

bool ChunkCache::take_only_change(int64_t &chunk_no, std::vector<uint8_t> &encoded) {
    Entry *changed = nullptr;
    for (auto &[number, e] : chunks_)
        if (e.dirty) {
            if (changed)
                return false;
            changed = &e;
            chunk_no = number;
        }
    if (!changed)
        return false;
    uint8_t bytes[kMaxEncodedBytes];
    encoded.assign(bytes, bytes + changed->bits.encode(bytes));
    changed->dirty = false;
    return true;
}

namespace {
// The nets of the one bucket `delta` touches, or false when it touches none or several.
bool only_bucket(const std::map<int32_t, int64_t> &delta, int32_t &bucket, std::vector<int32_t> &nets) {
    bool found = false;
    for (auto [topic, net] : delta) {
        if (topic == 0 || net == 0)
            continue;
        if (found && topic / kTopicsPerBucket != bucket)
            return false;
        if (!found)
            bucket = topic / kTopicsPerBucket, nets.assign(kTopicsPerBucket, 0), found = true;
        nets[topic % kTopicsPerBucket] += static_cast<int32_t>(net);
    }
    return found;
}

bool touches_buckets(const std::map<int32_t, int64_t> &delta) {
    for (auto [topic, net] : delta)
        if (topic != 0 && net != 0)
            return true;
    return false;
}

// The hot path of a mark: one chunk and at most one bucket changed. False when it does not apply.
bool save_mark_with_event(Spi &spi, const Reader &reader, ChunkCache &bits, const std::map<int32_t, int64_t> &delta,
                          const std::string &user_key, const char *op, const std::vector<int64_t> &positions) {
    int32_t bucket = 0;
    std::vector<int32_t> nets;
    const bool with_nets = only_bucket(delta, bucket, nets);
    if (!with_nets && touches_buckets(delta))
        return false;
    int64_t chunk_no = 0;
    std::vector<uint8_t> encoded;
    if (!bits.take_only_change(chunk_no, encoded))
        return false;
    Statement &statement =
        encoded.empty() ? (with_nets ? mark_delete_nets : mark_delete) : (with_nets ? mark_upsert_nets : mark_upsert);
    spi.run(statement,
            {text_param(user_key), text_param(op), int8_param(reader.horizon), int8_param(reader.net_total),
             int8_array_param(positions), int4_param(reader.user_id), int4_param(static_cast<int32_t>(chunk_no)),
             int4_param(reader.generation), bytea_param(encoded.data(), encoded.size()), int4_param(bucket),
             int4_array_param(nets), int8_or_null(reader.bits_lo), int8_or_null(reader.bits_hi)},
            false);
    note_events_written();
    return true;
}
} // namespace

void add_topic_nets(Spi &spi, const Reader &reader, const std::map<int32_t, int64_t> &delta) {
    std::map<int32_t, std::vector<int32_t>> buckets; // bucket -> nets of its kTopicsPerBucket topics
    for (auto [topic, net] : delta) {
        if (topic == 0 || net == 0)
            continue;
        auto &nets = buckets[topic / kTopicsPerBucket];
        nets.resize(kTopicsPerBucket);
        nets[topic % kTopicsPerBucket] += static_cast<int32_t>(net);
    }
    for (auto &[bucket, nets] : buckets)
        spi.run(upsert_nets,
                {int4_param(reader.user_id), int4_param(bucket), int4_param(reader.generation), int4_array_param(nets)},
                false);
}

std::vector<int64_t> apply_marks(Spi &spi, Reader &reader, ChunkCache &bits, const std::vector<ItemRef> &items,
                                 bool to_read, const std::string *event_for) {
    std::map<int32_t, int64_t> net_delta;
    std::vector<int64_t> changed;
    // Read state changes by one flip either way, and the unread count by one.
    const int64_t unread_delta = to_read ? -1 : 1;
    for (const ItemRef &item : items) {
        bool is_read = (item.position <= reader.horizon) != bits.test(item.position);
        if (is_read == to_read)
            continue;
        bits.flip(item.position);
        reader.net_total += unread_delta;
        net_delta[item.topic_id] += unread_delta;
        changed.push_back(item.position);
    }
    if (changed.empty())
        return changed;
    const char *op = to_read ? "read" : "unread";
    if (event_for && save_mark_with_event(spi, reader, bits, net_delta, *event_for, op, changed))
        return changed;
    bits.save();
    add_topic_nets(spi, reader, net_delta);
    save_reader(spi, reader);
    if (event_for)
        publish_marks(spi, reader, *event_for, op, changed);
    return changed;
}

} // namespace pgfeed
