// A user's read state: the reader row (horizon, generation, counters) and the chunks of flipped
// positions. A position is read when (position <= horizon) XOR (its bit is set).
#pragma once

#include "core/read_bits.hpp"
#include "spi.hpp"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgfeed {

struct Reader {
    bool exists = false;
    int32_t user_id = 0;
    int64_t horizon = 0;
    int32_t generation = 0;
    int64_t net_total = 0;                   // unread items minus items above the horizon, see pgfeed.readers
    std::optional<int64_t> bits_lo, bits_hi; // bounds of the set bits of this generation
    int64_t last_position = 0;               // the newest item the snapshot sees (load_reader only)
};

// The reader as the caller's snapshot sees it; a user never seen has read nothing.
Reader load_reader(Spi &spi, const std::string &user_key);
// The reader row locked FOR UPDATE (created if missing): every change of one user's state
// holds this lock, so concurrent changes for the same user apply in some serial order.
Reader lock_reader(Spi &spi, const std::string &user_key);
void save_reader(Spi &spi, const Reader &reader);

// The chunks of one reader, loaded on demand within one call.
class ChunkCache {
  public:
    ChunkCache(Spi &spi, Reader &reader, bool read_only) : spi_(spi), reader_(reader), read_only_(read_only) {}
    bool test(int64_t position);
    void flip(int64_t position);
    // Highest position in [floor, below) whose bit is set, if any.
    std::optional<int64_t> highest_set_below(int64_t below, int64_t floor);
    // The lowest position of the run of set bits that ends at `position` (whose bit is set).
    int64_t run_start(int64_t position);
    // Writes changed chunks back.
    void save();
    // When exactly one chunk changed: its number and encoding (empty: it has no bit left), taken
    // as saved; the caller writes it.
    bool take_only_change(int64_t &chunk_no, std::vector<uint8_t> &encoded);

  private:
    struct Entry {
        ChunkBits bits;
        bool dirty = false;
    };
    Entry &chunk(int64_t chunk_no);
    bool may_have_bits(int64_t chunk_no) const;

    Spi &spi_;
    Reader &reader_;
    bool read_only_;
    std::map<int64_t, Entry> chunks_; // the chunks fetched, and those used that have no row
    // Ranges [lo, hi] of chunk numbers fetched: a chunk in one and not in chunks_ has no row.
    std::vector<std::pair<int64_t, int64_t>> fetched_;
};

struct ItemRef {
    int64_t position;
    int32_t topic_id; // 0: the item has no topic
};

// Marks items read (or unread), skipping those already so; returns the positions that changed.
// Keeps net_total and the per-topic nets in step, and saves everything; with `event_for`, also the
// read event of that user (one statement in all when a mark changed one chunk and one topic bucket,
// as a mark of one item does).
std::vector<int64_t> apply_marks(Spi &spi, Reader &reader, ChunkCache &bits, const std::vector<ItemRef> &items,
                                 bool to_read, const std::string *event_for = nullptr);

// Per-topic nets of the reader, summed: adds `delta` for each topic and writes them.
void add_topic_nets(Spi &spi, const Reader &reader, const std::map<int32_t, int64_t> &delta);

} // namespace pgfeed
