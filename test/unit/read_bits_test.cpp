// Unit tests of ChunkBits (extension/core/read_bits.hpp): the encoding of one user's flipped
// read positions within a 1024-position chunk, its decoder's validation, and the bit queries.
#include "read_bits.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bitset>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgfeed {
namespace {

using Bytes = std::vector<uint8_t>;
using Reference = std::bitset<kChunkBits>;

static_assert(kChunkBits == 1024, "tests assume 1024-position chunks");
static_assert(kChunkShift == 10, "1 << kChunkShift must be kChunkBits");
static_assert(kBitmapBytes == 128, "a bitmap is 1024 bits");
static_assert(kMaxArrayOffsets == 63, "64 offsets would be as large as the bitmap");
static_assert(kMaxEncodedBytes == kBitmapBytes, "the bitmap is the largest encoding");

Bytes encode(const ChunkBits &bits) {
    // Sentinel-filled and larger than allowed, to catch writes past kMaxEncodedBytes.
    Bytes out(kMaxEncodedBytes + 64, 0xA5);
    std::size_t size = bits.encode(out.data());
    EXPECT_LE(size, kMaxEncodedBytes);
    for (std::size_t i = kMaxEncodedBytes; i < out.size(); ++i)
        EXPECT_EQ(out[i], 0xA5) << "encode() wrote past kMaxEncodedBytes at byte " << i;
    out.resize(std::min(size, kMaxEncodedBytes));
    return out;
}

ChunkBits decode(const Bytes &bytes) { return ChunkBits::decode(bytes.data(), bytes.size()); }

ChunkBits from_offsets(const std::vector<int> &offsets) {
    ChunkBits bits;
    for (int o : offsets)
        bits.set(o);
    return bits;
}

// The offsets as the array encoding lays them out: uint16 little-endian, in the given order.
Bytes array_bytes(const std::vector<int> &offsets) {
    Bytes out;
    for (int o : offsets) {
        out.push_back(static_cast<uint8_t>(o & 0xff));
        out.push_back(static_cast<uint8_t>((o >> 8) & 0xff));
    }
    return out;
}

// The bitmap encoding of a reference set: byte i holds offsets 8i..8i+7, lowest offset in bit 0.
Bytes bitmap_bytes(const Reference &ref) {
    Bytes out(kBitmapBytes, 0);
    for (int o = 0; o < kChunkBits; ++o)
        if (ref.test(o))
            out[o / 8] |= static_cast<uint8_t>(1u << (o % 8));
    return out;
}

// What encode() must produce for a reference set.
Bytes expected_encoding(const Reference &ref) {
    if (ref.count() > static_cast<std::size_t>(kMaxArrayOffsets))
        return bitmap_bytes(ref);
    std::vector<int> offsets;
    for (int o = 0; o < kChunkBits; ++o)
        if (ref.test(o))
            offsets.push_back(o);
    return array_bytes(offsets);
}

std::vector<int> range(int from, int to) { // [from, to)
    std::vector<int> v(to - from);
    std::iota(v.begin(), v.end(), from);
    return v;
}

// n distinct offsets spread over the whole chunk, ascending.
std::vector<int> spread(int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i)
        v.push_back(static_cast<int>(static_cast<int64_t>(i) * kChunkBits / n));
    return v;
}

::testing::AssertionResult same_bits(const ChunkBits &bits, const Reference &ref) {
    for (int o = 0; o < kChunkBits; ++o)
        if (bits.test(o) != ref.test(o))
            return ::testing::AssertionFailure() << "offset " << o << ": test() is " << bits.test(o);
    if (bits.count() != static_cast<int>(ref.count()))
        return ::testing::AssertionFailure() << "count() " << bits.count() << " != " << ref.count();
    if (bits.empty() != ref.none())
        return ::testing::AssertionFailure() << "empty() is " << bits.empty();
    return ::testing::AssertionSuccess();
}

::testing::AssertionResult same_bits(const ChunkBits &a, const ChunkBits &b) {
    Reference ref;
    for (int o = 0; o < kChunkBits; ++o)
        ref[o] = b.test(o);
    return same_bits(a, ref);
}

Reference reference_of(const std::vector<int> &offsets) {
    Reference ref;
    for (int o : offsets)
        ref.set(o);
    return ref;
}

// Every query of `bits` agrees with the reference, for every `below` in 0..1024.
::testing::AssertionResult queries_match(const ChunkBits &bits, const Reference &ref) {
    auto same = same_bits(bits, ref);
    if (!same)
        return same;
    int last_set = -1, last_clear = -1; // highest set / clear offset below `below`
    for (int below = 0; below <= kChunkBits; ++below) {
        if (below > 0)
            (ref.test(below - 1) ? last_set : last_clear) = below - 1;
        if (bits.highest_set_below(below) != last_set)
            return ::testing::AssertionFailure() << "highest_set_below(" << below << ") is "
                                                 << bits.highest_set_below(below) << ", expected " << last_set;
        if (bits.highest_clear_below(below) != last_clear)
            return ::testing::AssertionFailure() << "highest_clear_below(" << below << ") is "
                                                 << bits.highest_clear_below(below) << ", expected " << last_clear;
    }
    return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
// Encode / decode round trips

TEST(ChunkBitsEncode, EmptyEncodesToNothing) {
    ChunkBits bits;
    EXPECT_TRUE(bits.empty());
    EXPECT_EQ(bits.count(), 0);
    EXPECT_TRUE(encode(bits).empty());
}

TEST(ChunkBitsDecode, EmptyInputIsEmptyChunk) {
    ChunkBits bits = ChunkBits::decode(nullptr, 0);
    EXPECT_TRUE(queries_match(bits, Reference{}));
    uint8_t unused = 0xff;
    EXPECT_TRUE(ChunkBits::decode(&unused, 0).empty());
}

TEST(ChunkBitsEncode, SingleBitIsOneLittleEndianOffset) {
    for (int o : {0, 1, 7, 8, 63, 64, 255, 256, 257, 511, 512, 1000, 1023}) {
        SCOPED_TRACE("offset " + std::to_string(o));
        ChunkBits bits = from_offsets({o});
        EXPECT_EQ(bits.count(), 1);
        Bytes enc = encode(bits);
        ASSERT_EQ(enc.size(), 2u);
        EXPECT_EQ(enc[0], o & 0xff);
        EXPECT_EQ(enc[1], o >> 8);
        EXPECT_TRUE(queries_match(decode(enc), reference_of({o})));
    }
}

TEST(ChunkBitsEncode, ArrayIsSortedWhateverTheSetOrder) {
    std::vector<int> offsets = {900, 3, 64, 1023, 0, 512, 63, 65};
    Bytes enc = encode(from_offsets(offsets));
    std::vector<int> sorted = offsets;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(enc, array_bytes(sorted));
    EXPECT_TRUE(queries_match(decode(enc), reference_of(offsets)));
}

TEST(ChunkBitsEncode, SixtyThreeBitsStayAnArray) {
    for (const auto &offsets : {range(0, 63), range(1024 - 63, 1024), spread(63)}) {
        ChunkBits bits = from_offsets(offsets);
        ASSERT_EQ(bits.count(), kMaxArrayOffsets);
        Bytes enc = encode(bits);
        EXPECT_EQ(enc.size(), 126u);
        EXPECT_EQ(enc, array_bytes(offsets));
        EXPECT_TRUE(queries_match(decode(enc), reference_of(offsets)));
    }
}

TEST(ChunkBitsEncode, SixtyFourBitsBecomeABitmap) {
    for (const auto &offsets : {range(0, 64), range(1024 - 64, 1024), spread(64)}) {
        ChunkBits bits = from_offsets(offsets);
        ASSERT_EQ(bits.count(), kMaxArrayOffsets + 1);
        Bytes enc = encode(bits);
        EXPECT_EQ(enc.size(), kBitmapBytes);
        EXPECT_EQ(enc, bitmap_bytes(reference_of(offsets)));
        EXPECT_TRUE(queries_match(decode(enc), reference_of(offsets)));
    }
}

TEST(ChunkBitsEncode, BitmapLayoutIsLittleEndianBytes) {
    // 0..63 fills word 0 (bytes 0..7); 100 is byte 12 bit 4; 1023 is byte 127 bit 7.
    std::vector<int> offsets = range(0, 64);
    offsets.push_back(100);
    offsets.push_back(1023);
    Bytes enc = encode(from_offsets(offsets));
    ASSERT_EQ(enc.size(), kBitmapBytes);
    for (int i = 0; i < 8; ++i)
        EXPECT_EQ(enc[i], 0xff) << i;
    EXPECT_EQ(enc[12], 0x10);
    EXPECT_EQ(enc[127], 0x80);
    int nonzero = static_cast<int>(std::count_if(enc.begin(), enc.end(), [](uint8_t b) { return b != 0; }));
    EXPECT_EQ(nonzero, 10);
}

TEST(ChunkBitsEncode, AllBitsAreAFullBitmap) {
    ChunkBits bits;
    for (int o = 0; o < kChunkBits; ++o)
        bits.set(o);
    EXPECT_EQ(bits.count(), kChunkBits);
    Bytes enc = encode(bits);
    EXPECT_EQ(enc, Bytes(kBitmapBytes, 0xff));
    EXPECT_TRUE(queries_match(decode(enc), Reference{}.set()));
}

TEST(ChunkBitsEncode, SizeIsTwoBytesPerOffsetUpToSixtyThreeThenTheBitmap) {
    for (int n = 0; n <= kChunkBits; ++n) {
        std::vector<int> offsets = spread(n);
        ChunkBits bits = from_offsets(offsets);
        ASSERT_EQ(bits.count(), n);
        Bytes enc = encode(bits);
        std::size_t want = n <= kMaxArrayOffsets ? 2u * n : kBitmapBytes;
        ASSERT_EQ(enc.size(), want) << n << " offsets";
        ASSERT_EQ(enc, expected_encoding(reference_of(offsets))) << n << " offsets";
        ASSERT_TRUE(same_bits(decode(enc), bits)) << n << " offsets";
        ASSERT_EQ(encode(decode(enc)), enc) << n << " offsets";
    }
}

TEST(ChunkBitsEncode, ClearingBackBelowTheThresholdReturnsToAnArray) {
    ChunkBits bits = from_offsets(range(0, 64));
    EXPECT_EQ(encode(bits).size(), kBitmapBytes);
    bits.clear(10);
    std::vector<int> remaining = range(0, 64);
    remaining.erase(remaining.begin() + 10);
    EXPECT_EQ(encode(bits), array_bytes(remaining));
    for (int o = 0; o < 64; ++o)
        bits.clear(o);
    EXPECT_TRUE(bits.empty());
    EXPECT_TRUE(encode(bits).empty());
}

// ---------------------------------------------------------------------------------------------
// Decode rejects what encode() cannot produce

void expect_corrupt(const Bytes &bytes, const std::string &what) {
    SCOPED_TRACE(what + " (" + std::to_string(bytes.size()) + " bytes)");
    EXPECT_THROW(ChunkBits::decode(bytes.data(), bytes.size()), CorruptReadState);
}

TEST(ChunkBitsDecode, CorruptReadStateIsARuntimeError) {
    Bytes odd = {1};
    try {
        ChunkBits::decode(odd.data(), odd.size());
        FAIL() << "decode of 1 byte did not throw";
    } catch (const std::runtime_error &e) {
        EXPECT_NE(dynamic_cast<const CorruptReadState *>(&e), nullptr);
        EXPECT_STRNE(e.what(), "");
    }
}

TEST(ChunkBitsDecode, RejectsOddSizes) {
    for (std::size_t size : {1u, 3u, 5u, 63u, 125u, 127u, 129u, 131u, 255u}) {
        expect_corrupt(Bytes(size, 0), "odd size, zeros");
        // Leading bytes that would be a valid sorted array, plus a dangling byte.
        Bytes b = array_bytes(range(0, static_cast<int>(size / 2)));
        b.resize(size, 0);
        if (size < kBitmapBytes)
            expect_corrupt(b, "valid array plus one byte");
    }
}

TEST(ChunkBitsDecode, RejectsArraysLongerThanSixtyThreeOffsets) {
    // 64 offsets would be 128 bytes, which is read as a bitmap, so the first too-long array
    // that cannot be a bitmap is 65 offsets.
    for (int n : {65, 66, 100, 200, 512, 1024})
        expect_corrupt(array_bytes(range(0, n)), std::to_string(n) + " ascending offsets");
    expect_corrupt(Bytes(130, 0xff), "130 bytes");
    expect_corrupt(Bytes(256, 0xff), "two bitmaps");
}

TEST(ChunkBitsDecode, AcceptsTheLongestArray) {
    std::vector<int> offsets = spread(kMaxArrayOffsets);
    Bytes enc = array_bytes(offsets);
    ASSERT_EQ(enc.size(), 126u);
    ChunkBits bits = decode(enc);
    EXPECT_TRUE(queries_match(bits, reference_of(offsets)));
    EXPECT_EQ(encode(bits), enc);
}

TEST(ChunkBitsDecode, RejectsUnsortedOffsets) {
    expect_corrupt(array_bytes({5, 3}), "descending pair");
    expect_corrupt(array_bytes({0, 1, 2, 10, 9, 11}), "one swap in the middle");
    expect_corrupt(array_bytes({1023, 0}), "last before first");
    expect_corrupt(array_bytes({256, 255}), "descending across the high byte");
    // Big-endian offsets: 1 then 256 written as (0,1),(1,0) reads as 256 then 1.
    expect_corrupt(Bytes{0, 1, 1, 0}, "big-endian offsets");
}

TEST(ChunkBitsDecode, RejectsDuplicateOffsets) {
    expect_corrupt(array_bytes({5, 5}), "pair");
    expect_corrupt(array_bytes({0, 0}), "zero twice");
    expect_corrupt(array_bytes({1, 2, 3, 3, 4}), "duplicate in the middle");
    expect_corrupt(array_bytes({1022, 1023, 1023}), "duplicate at the end");
}

TEST(ChunkBitsDecode, RejectsOffsetsOutsideTheChunk) {
    for (int o : {1024, 1025, 2047, 4096, 0x7fff, 0x8000, 0xffff}) {
        expect_corrupt(array_bytes({o}), "lone offset " + std::to_string(o));
        expect_corrupt(array_bytes({0, 17, o}), "last offset " + std::to_string(o));
    }
    EXPECT_TRUE(queries_match(decode(array_bytes({1023})), reference_of({1023})));
}

TEST(ChunkBitsDecode, AcceptsAnyDenseBitmapAndReencodesIt) {
    std::mt19937 rng(1234);
    for (int round = 0; round < 200; ++round) {
        Bytes b(kBitmapBytes);
        for (auto &byte : b)
            byte = static_cast<uint8_t>(rng());
        Reference ref;
        for (int o = 0; o < kChunkBits; ++o)
            ref[o] = (b[o / 8] >> (o % 8)) & 1;
        ASSERT_GT(ref.count(), static_cast<std::size_t>(kMaxArrayOffsets));
        ChunkBits bits = decode(b);
        ASSERT_TRUE(queries_match(bits, ref));
        ASSERT_EQ(encode(bits), b);
    }
}

// encode() writes a bitmap only for more than 63 offsets, so a 128-byte chunk with 63 or fewer
// bits set is not something encode() can produce and, per read_bits.hpp, must be rejected.
TEST(ChunkBitsDecode, RejectsBitmapsWithSixtyThreeOrFewerBits) {
    expect_corrupt(Bytes(kBitmapBytes, 0), "all-zero bitmap");
    expect_corrupt(bitmap_bytes(reference_of({5})), "bitmap with one bit");
    expect_corrupt(bitmap_bytes(reference_of(spread(kMaxArrayOffsets))), "bitmap with 63 bits");
    // The smallest bitmap encode() does produce is accepted.
    std::vector<int> offsets = spread(kMaxArrayOffsets + 1);
    EXPECT_TRUE(queries_match(decode(bitmap_bytes(reference_of(offsets))), reference_of(offsets)));
}

// ---------------------------------------------------------------------------------------------
// Bit operations and queries

TEST(ChunkBitsOps, SetClearTestCount) {
    ChunkBits bits;
    bits.set(0);
    bits.set(63);
    bits.set(64);
    bits.set(1023);
    bits.set(64); // idempotent
    EXPECT_EQ(bits.count(), 4);
    EXPECT_FALSE(bits.empty());
    for (int o = 0; o < kChunkBits; ++o)
        EXPECT_EQ(bits.test(o), o == 0 || o == 63 || o == 64 || o == 1023) << o;
    bits.clear(63);
    bits.clear(63);  // idempotent
    bits.clear(500); // clearing a clear bit is a no-op
    EXPECT_EQ(bits.count(), 3);
    EXPECT_FALSE(bits.test(63));
    EXPECT_TRUE(bits.test(64));
    bits.clear(0);
    bits.clear(64);
    bits.clear(1023);
    EXPECT_TRUE(bits.empty());
}

TEST(ChunkBitsQueries, EmptyChunk) {
    ChunkBits bits;
    for (int below = 0; below <= kChunkBits; ++below) {
        EXPECT_EQ(bits.highest_set_below(below), -1) << below;
        EXPECT_EQ(bits.highest_clear_below(below), below - 1) << below;
    }
}

TEST(ChunkBitsQueries, FullChunk) {
    ChunkBits bits;
    for (int o = 0; o < kChunkBits; ++o)
        bits.set(o);
    for (int below = 0; below <= kChunkBits; ++below) {
        EXPECT_EQ(bits.highest_set_below(below), below - 1) << below;
        EXPECT_EQ(bits.highest_clear_below(below), -1) << below;
    }
}

TEST(ChunkBitsQueries, BelowZeroFindsNothing) {
    ChunkBits set = from_offsets({0});
    EXPECT_EQ(set.highest_set_below(0), -1);
    EXPECT_EQ(set.highest_set_below(-1), -1);
    EXPECT_EQ(set.highest_set_below(1), 0);
    ChunkBits clear;
    EXPECT_EQ(clear.highest_clear_below(0), -1);
    EXPECT_EQ(clear.highest_clear_below(-1), -1);
    EXPECT_EQ(clear.highest_clear_below(1), 0);
}

TEST(ChunkBitsQueries, BelowIsExclusive) {
    ChunkBits bits = from_offsets({10});
    EXPECT_EQ(bits.highest_set_below(10), -1);
    EXPECT_EQ(bits.highest_set_below(11), 10);
    EXPECT_EQ(bits.highest_clear_below(11), 9);
    EXPECT_EQ(bits.highest_clear_below(12), 11);
}

TEST(ChunkBitsQueries, WordBoundaries) {
    for (int o : {62, 63, 64, 65, 127, 128, 191, 192, 959, 960, 1022, 1023}) {
        SCOPED_TRACE("offset " + std::to_string(o));
        ChunkBits one = from_offsets({o});
        EXPECT_EQ(one.highest_set_below(o), -1);
        EXPECT_EQ(one.highest_set_below(o + 1), o);
        EXPECT_EQ(one.highest_set_below(kChunkBits), o);
        EXPECT_EQ(one.highest_clear_below(o + 1), o - 1);
        EXPECT_EQ(one.highest_clear_below(o + 2 <= kChunkBits ? o + 2 : kChunkBits),
                  o + 1 < kChunkBits ? o + 1 : o - 1);

        ChunkBits hole;
        for (int i = 0; i < kChunkBits; ++i)
            if (i != o)
                hole.set(i);
        EXPECT_EQ(hole.highest_clear_below(o), -1);
        EXPECT_EQ(hole.highest_clear_below(o + 1), o);
        EXPECT_EQ(hole.highest_clear_below(kChunkBits), o);
        EXPECT_EQ(hole.highest_set_below(o + 1), o - 1);
    }
}

TEST(ChunkBitsQueries, ScansAcrossEmptyWords) {
    ChunkBits low = from_offsets({0});
    EXPECT_EQ(low.highest_set_below(kChunkBits), 0);
    EXPECT_EQ(low.highest_set_below(64), 0);
    EXPECT_EQ(low.highest_set_below(65), 0);

    ChunkBits high_run = from_offsets(range(1, kChunkBits)); // only 0 clear
    EXPECT_EQ(high_run.highest_clear_below(kChunkBits), 0);
    EXPECT_EQ(high_run.highest_clear_below(1), 0);
    EXPECT_EQ(high_run.highest_clear_below(0), -1);
}

TEST(ChunkBitsQueries, Boundary1024) {
    ChunkBits top = from_offsets({1023});
    EXPECT_EQ(top.highest_set_below(1024), 1023);
    EXPECT_EQ(top.highest_set_below(1023), -1);
    EXPECT_EQ(top.highest_clear_below(1024), 1022);
    ChunkBits bottom = from_offsets({1022});
    EXPECT_EQ(bottom.highest_clear_below(1024), 1023);
    EXPECT_EQ(bottom.highest_set_below(1024), 1022);
}

// ---------------------------------------------------------------------------------------------
// Position helpers

TEST(Positions, ChunkAndOffset) {
    struct Case {
        int64_t position, chunk;
        int offset;
    };
    for (Case c : std::vector<Case>{{0, 0, 0},
                                    {1, 0, 1},
                                    {1023, 0, 1023},
                                    {1024, 1, 0},
                                    {1025, 1, 1},
                                    {2047, 1, 1023},
                                    {2048, 2, 0},
                                    {int64_t{1} << 31, int64_t{1} << 21, 0},
                                    {(int64_t{1} << 40) + 777, int64_t{1} << 30, 777},
                                    {std::numeric_limits<int64_t>::max(), (int64_t{1} << 53) - 1, 1023}}) {
        SCOPED_TRACE("position " + std::to_string(c.position));
        EXPECT_EQ(chunk_of(c.position), c.chunk);
        EXPECT_EQ(offset_of(c.position), c.offset);
        EXPECT_EQ(position_at(c.chunk, c.offset), c.position);
    }
}

TEST(Positions, RoundTrip) {
    std::mt19937_64 rng(42);
    for (int i = 0; i < 10000; ++i) {
        int64_t p = static_cast<int64_t>(rng() >> 1);
        if (i % 2)
            p >>= rng() % 63;
        int64_t c = chunk_of(p);
        int o = offset_of(p);
        ASSERT_GE(o, 0);
        ASSERT_LT(o, kChunkBits);
        ASSERT_EQ(c, p / kChunkBits);
        ASSERT_EQ(o, p % kChunkBits);
        ASSERT_EQ(position_at(c, o), p);
    }
}

TEST(Positions, ConsecutiveOffsetsWithinAChunk) {
    for (int64_t chunk : {int64_t{0}, int64_t{1}, int64_t{12345}}) {
        for (int o = 0; o < kChunkBits; ++o) {
            int64_t p = position_at(chunk, o);
            ASSERT_EQ(p, chunk * kChunkBits + o);
            ASSERT_EQ(chunk_of(p), chunk);
            ASSERT_EQ(offset_of(p), o);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Randomized comparison against std::bitset

TEST(ChunkBitsRandomized, MatchesStdBitset) {
    std::mt19937 rng(20240607); // fixed: failures reproduce
    std::vector<int> all = range(0, kChunkBits);
    for (int round = 0; round < 1500; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        Reference ref;
        ChunkBits bits;
        switch (round % 3) {
        case 0: { // n distinct scattered offsets, often right around the array/bitmap threshold
            int n = round % 2 ? static_cast<int>(rng() % (kChunkBits + 1))
                              : kMaxArrayOffsets - 8 + static_cast<int>(rng() % 17);
            std::shuffle(all.begin(), all.end(), rng);
            for (int i = 0; i < n; ++i) {
                ref.set(all[i]);
                bits.set(all[i]);
            }
            break;
        }
        case 1: { // runs, as a heavy reader leaves them
            int runs = 1 + static_cast<int>(rng() % 8);
            for (int r = 0; r < runs; ++r) {
                int start = static_cast<int>(rng() % kChunkBits);
                int len = static_cast<int>(rng() % 300);
                for (int o = start; o < std::min(kChunkBits, start + len); ++o) {
                    ref.set(o);
                    bits.set(o);
                }
            }
            break;
        }
        default: // random density
            std::uniform_real_distribution<double> p(0, 1);
            double density = p(rng);
            density *= density;
            for (int o = 0; o < kChunkBits; ++o)
                if (p(rng) < density) {
                    ref.set(o);
                    bits.set(o);
                }
        }
        // Then flips, sets and clears, checking the encoding after each batch.
        for (int batch = 0; batch < 4; ++batch) {
            int ops = static_cast<int>(rng() % 40);
            for (int i = 0; i < ops; ++i) {
                int o = static_cast<int>(rng() % kChunkBits);
                switch (rng() % 3) {
                case 0:
                    ref.set(o);
                    bits.set(o);
                    break;
                case 1:
                    ref.reset(o);
                    bits.clear(o);
                    break;
                default:
                    ref.flip(o);
                    if (bits.test(o))
                        bits.clear(o);
                    else
                        bits.set(o);
                }
            }
            ASSERT_TRUE(queries_match(bits, ref));
            Bytes enc = encode(bits);
            ASSERT_EQ(enc, expected_encoding(ref)) << ref.count() << " bits";
            ChunkBits back = decode(enc);
            ASSERT_TRUE(queries_match(back, ref));
            ASSERT_EQ(encode(back), enc);
        }
    }
}

} // namespace
} // namespace pgfeed
