// libFuzzer target for pgfeed's pure C++ core: ChunkBits::decode/encode and feed-name parsing.
// Built and run by test/unit/run.sh with
//   clang++ -std=c++17 -fsanitize=fuzzer,address,undefined -Iextension/core extension/core/*.cpp <this>
// Every input is used three ways:
//   1. as a stored chunk: decode either throws CorruptReadState or yields bits whose re-encoding is
//      byte-for-byte the input (decode accepts exactly what encode produces) and whose queries all
//      agree with test();
//   2. as a sequence of little-endian uint16 offsets to flip: the resulting chunk must survive
//      encode -> decode -> encode unchanged;
//   3. as a feed name: feed_spec_error / parse_feed_spec / topic_error / topic_column must agree.
#include "feed_spec.hpp"
#include "read_bits.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace pgfeed;

namespace {

[[noreturn]] void fail(const char *what, int detail = -1) {
    std::fprintf(stderr, "fuzz_read_bits: %s (%d)\n", what, detail);
    std::abort();
}

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            fail("check failed: " #cond, ##__VA_ARGS__);                                                               \
    } while (0)

// All queries agree with test(), for every `below` in 0..1024.
void check_queries(const ChunkBits &bits) {
    int count = 0, last_set = -1, last_clear = -1;
    for (int below = 0; below <= kChunkBits; ++below) {
        if (below > 0) {
            bool on = bits.test(below - 1);
            count += on;
            (on ? last_set : last_clear) = below - 1;
        }
        CHECK(bits.highest_set_below(below) == last_set, below);
        CHECK(bits.highest_clear_below(below) == last_clear, below);
    }
    CHECK(bits.count() == count, count);
    CHECK(bits.empty() == (count == 0), count);
}

// encode() produces the canonical form: a sorted offset array when at most 63 bits are set,
// else the little-endian bitmap; and it is read back as the same bits.
void check_encoding(const ChunkBits &bits, const uint8_t *expected, std::size_t expected_size) {
    uint8_t out[kMaxEncodedBytes + 16];
    std::memset(out, 0xA5, sizeof out);
    std::size_t size = bits.encode(out);
    for (std::size_t i = kMaxEncodedBytes; i < sizeof out; ++i)
        CHECK(out[i] == 0xA5, static_cast<int>(i));
    CHECK(size <= kMaxEncodedBytes, static_cast<int>(size));
    int n = bits.count();
    CHECK(size == (n > kMaxArrayOffsets ? kBitmapBytes : static_cast<std::size_t>(2 * n)), n);
    if (expected)
        CHECK(size == expected_size && std::memcmp(out, expected, size) == 0, static_cast<int>(size));

    ChunkBits back = ChunkBits::decode(out, size); // must not throw
    for (int o = 0; o < kChunkBits; ++o)
        CHECK(back.test(o) == bits.test(o), o);
    uint8_t again[kMaxEncodedBytes];
    std::size_t again_size = back.encode(again);
    CHECK(again_size == size && std::memcmp(again, out, size) == 0, static_cast<int>(again_size));
}

void fuzz_decode(const uint8_t *data, std::size_t size) {
    ChunkBits bits;
    try {
        bits = ChunkBits::decode(data, size);
    } catch (const CorruptReadState &) {
        return;
    }
    check_queries(bits);
    if (size == kBitmapBytes && bits.count() <= kMaxArrayOffsets)
        fail("decode accepted a 128-byte bitmap with <= 63 bits set, which encode() never produces", bits.count());
    // Accepted input must be exactly what encode() produces for these bits.
    check_encoding(bits, data, size);
}

void fuzz_flips(const uint8_t *data, std::size_t size) {
    ChunkBits bits;
    for (std::size_t i = 0; i + 1 < size; i += 2) {
        int offset = (data[i] | (data[i + 1] << 8)) & (kChunkBits - 1);
        if (data[i + 1] & 0x80)
            bits.clear(offset);
        else if (bits.test(offset))
            bits.clear(offset);
        else
            bits.set(offset);
    }
    check_queries(bits);
    check_encoding(bits, nullptr, 0);
}

void fuzz_feed_spec(const uint8_t *data, std::size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    std::string spec_error = feed_spec_error(text);
    std::string t_error = topic_error(text);
    bool builtin = text == "all" || text == "following";

    if (t_error.empty()) {
        // A well-formed topic: column:value, the column non-empty (the value may be empty), short, no
        // control characters.
        CHECK(!builtin);
        CHECK(size <= kMaxTopicBytes, static_cast<int>(size));
        std::string column = topic_column(text);
        CHECK(!column.empty());
        CHECK(column.find(':') == std::string::npos);
        CHECK(column.size() + 1 <= size, static_cast<int>(column.size()));
        CHECK(text.compare(0, column.size() + 1, column + ":") == 0);
        for (unsigned char c : text)
            CHECK(c >= 0x20 && c != 0x7f, c);
        CHECK(spec_error.empty());
    }
    if (spec_error.empty()) {
        FeedSpec spec = parse_feed_spec(text);
        if (text == "all") {
            CHECK(spec.kind == FeedSpec::Kind::All);
        } else if (text == "following") {
            CHECK(spec.kind == FeedSpec::Kind::Following);
        } else {
            CHECK(spec.kind == FeedSpec::Kind::Topic);
            CHECK(spec.topic == text);
            CHECK(t_error.empty());
        }
        if (spec.kind != FeedSpec::Kind::Topic)
            CHECK(spec.topic.empty());
    } else {
        CHECK(!builtin);
        CHECK(!t_error.empty() || text.find(':') == std::string::npos);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
    fuzz_decode(data, size);
    fuzz_flips(data, size);
    fuzz_feed_spec(data, size);
    return 0;
}
