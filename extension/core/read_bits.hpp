// The flipped positions of one user within one chunk of 1024 feed positions.
//
// Stored as a sorted array of 16-bit offsets while there are few (a light reader's scattered
// marks cost 2 bytes each) and as a 128-byte bitmap once that is smaller (a heavy reader's runs
// cost 1 bit each). Pure C++: no PostgreSQL headers, so it is unit-tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace pgfeed {

constexpr int kChunkBits = 1024;
constexpr int kChunkShift = 10;
constexpr std::size_t kBitmapBytes = kChunkBits / 8;
// Arrays hold at most this many offsets; one more would be as large as the bitmap.
constexpr int kMaxArrayOffsets = kBitmapBytes / 2 - 1;
constexpr std::size_t kMaxEncodedBytes = kBitmapBytes;

inline int64_t chunk_of(int64_t position) { return position >> kChunkShift; }
inline int offset_of(int64_t position) { return static_cast<int>(position & (kChunkBits - 1)); }
inline int64_t position_at(int64_t chunk, int offset) { return (chunk << kChunkShift) | offset; }

// A stored chunk that is not a valid encoding: the read state was damaged outside pgfeed.
class CorruptReadState : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class ChunkBits {
  public:
    // Throws CorruptReadState for anything encode() cannot have produced.
    static ChunkBits decode(const uint8_t *data, std::size_t size);
    // Writes at most kMaxEncodedBytes into out and returns the size used; 0 means empty.
    std::size_t encode(uint8_t *out) const;

    bool test(int offset) const { return (words_[offset >> 6] >> (offset & 63)) & 1; }
    void set(int offset) { words_[offset >> 6] |= uint64_t{1} << (offset & 63); }
    void clear(int offset) { words_[offset >> 6] &= ~(uint64_t{1} << (offset & 63)); }
    int count() const;
    bool empty() const { return count() == 0; }
    // The highest offset below `below` whose bit is set (or clear), or -1.
    int highest_set_below(int below) const;
    int highest_clear_below(int below) const;

  private:
    uint64_t words_[kChunkBits / 64] = {};
};

} // namespace pgfeed
