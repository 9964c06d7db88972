// Queries over a user's flipped positions across chunks, walking down the feed chunk by chunk.
//
// `chunk_at(c)` returns the ChunkBits of chunk c (empty when it holds no bit); every set bit lies
// in [lo, hi]. Pure C++: the page walk's jumps are unit-tested here without a server.
#pragma once

#include "read_bits.hpp"

#include <algorithm>
#include <optional>

namespace pgfeed {

// Highest position in [floor, below) whose bit is set, if any.
template <class ChunkAt>
std::optional<int64_t> highest_set_in(ChunkAt &&chunk_at, int64_t lo, int64_t hi, int64_t below, int64_t floor) {
    floor = std::max(floor, lo);
    below = std::min(below, hi + 1);
    if (below <= floor)
        return std::nullopt;
    const int64_t top = chunk_of(below - 1);
    for (int64_t c = top; c >= chunk_of(floor); --c) {
        int offset = chunk_at(c).highest_set_below(c == top ? offset_of(below - 1) + 1 : kChunkBits);
        if (offset >= 0) {
            int64_t position = position_at(c, offset);
            return position >= floor ? std::optional<int64_t>(position) : std::nullopt;
        }
    }
    return std::nullopt;
}

// The lowest position of the run of set bits that ends at `position`, whose bit is set.
template <class ChunkAt> int64_t run_start_in(ChunkAt &&chunk_at, int64_t lo, int64_t position) {
    for (int64_t c = chunk_of(position), limit = offset_of(position) + 1;; --c, limit = kChunkBits) {
        int clear = chunk_at(c).highest_clear_below(static_cast<int>(limit));
        // Not position_at(c, clear + 1): a clear bit at offset 1023 puts the run's start in the
        // next chunk, and offset 1024 is no offset.
        if (clear >= 0)
            return position_at(c, clear) + 1;
        if (c <= chunk_of(lo))
            return position_at(c, 0);
    }
}

} // namespace pgfeed
