#include "read_bits.hpp"

#include <string>

namespace pgfeed {

namespace {
constexpr int kWords = kChunkBits / 64;

// Highest set bit of `word` below bit `below` (0..64), or -1.
int highest_in_word(uint64_t word, int below) {
    if (below < 64)
        word &= (uint64_t{1} << below) - 1;
    return word ? 63 - __builtin_clzll(word) : -1;
}

int highest_below(const uint64_t *words, int below, bool want_set) {
    if (below <= 0)
        return -1;
    int w = (below - 1) >> 6;
    int limit = below - (w << 6);
    for (; w >= 0; --w, limit = 64) {
        uint64_t word = want_set ? words[w] : ~words[w];
        int bit = highest_in_word(word, limit);
        if (bit >= 0)
            return (w << 6) + bit;
    }
    return -1;
}
} // namespace

ChunkBits ChunkBits::decode(const uint8_t *data, std::size_t size) {
    ChunkBits bits;
    if (size == kBitmapBytes) {
        for (int w = 0; w < kWords; ++w) {
            uint64_t word = 0;
            for (int b = 7; b >= 0; --b)
                word = (word << 8) | data[w * 8 + b];
            bits.words_[w] = word;
        }
        if (bits.count() <= kMaxArrayOffsets)
            throw CorruptReadState("read chunk bitmap holds too few bits to have been stored as a bitmap");
        return bits;
    }
    if (size % 2 != 0 || size / 2 > static_cast<std::size_t>(kMaxArrayOffsets))
        throw CorruptReadState("read chunk of " + std::to_string(size) +
                               " bytes is neither an offset array nor a bitmap");
    int previous = -1;
    for (std::size_t i = 0; i < size; i += 2) {
        int offset = data[i] | (data[i + 1] << 8);
        if (offset >= kChunkBits || offset <= previous)
            throw CorruptReadState("read chunk offsets are not strictly ascending below 1024");
        bits.set(offset);
        previous = offset;
    }
    return bits;
}

std::size_t ChunkBits::encode(uint8_t *out) const {
    int n = count();
    if (n > kMaxArrayOffsets) {
        for (int w = 0; w < kWords; ++w)
            for (int b = 0; b < 8; ++b)
                out[w * 8 + b] = static_cast<uint8_t>(words_[w] >> (8 * b));
        return kBitmapBytes;
    }
    std::size_t size = 0;
    for (int w = 0; w < kWords; ++w) {
        for (uint64_t word = words_[w]; word; word &= word - 1) {
            int offset = (w << 6) + __builtin_ctzll(word);
            out[size++] = static_cast<uint8_t>(offset);
            out[size++] = static_cast<uint8_t>(offset >> 8);
        }
    }
    return size;
}

int ChunkBits::count() const {
    int n = 0;
    for (uint64_t word : words_)
        n += __builtin_popcountll(word);
    return n;
}

int ChunkBits::highest_set_below(int below) const { return highest_below(words_, below, true); }
int ChunkBits::highest_clear_below(int below) const { return highest_below(words_, below, false); }

} // namespace pgfeed
