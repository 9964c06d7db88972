// Unit tests of Redis stream ids (notifier/stream_id.hpp).
#include "stream_id.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace pgfeed::notifier {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(StreamId, ParsesTheFullForm) {
    EXPECT_EQ(parse_stream_id("1700000000000-0"), (StreamId{1700000000000, 0}));
    EXPECT_EQ(parse_stream_id("1-2"), (StreamId{1, 2}));
    EXPECT_EQ(parse_stream_id("0-0"), (StreamId{0, 0}));
    EXPECT_EQ(parse_stream_id("0-1"), (StreamId{0, 1}));
}

TEST(StreamId, ParsesTheLargestValues) {
    EXPECT_EQ(parse_stream_id("18446744073709551615-18446744073709551615"), (StreamId{kMax, kMax}));
    EXPECT_EQ(parse_stream_id("18446744073709551615-0"), (StreamId{kMax, 0}));
}

TEST(StreamId, RefusesOverflow) {
    EXPECT_FALSE(parse_stream_id("18446744073709551616-0"));
    EXPECT_FALSE(parse_stream_id("0-18446744073709551616"));
    EXPECT_FALSE(parse_stream_id("99999999999999999999999-1"));
    EXPECT_FALSE(parse_stream_id("1-" + std::string(400, '9')));
}

TEST(StreamId, RefusesTheShortFormAndRedisSpecialIds) {
    // Redis takes these in XRANGE/XREAD, but we never send them as an event id.
    for (const char *text : {"1700000000000", "0", "-", "+", "$", ">", "*", "1-*", "(1-0"})
        EXPECT_FALSE(parse_stream_id(text)) << text;
}

TEST(StreamId, RefusesMalformedText) {
    for (const char *text : {"",      "-0",   "0-",    "--",   "1--1",  "1-2-3", "-1-0", "1--0", "+1-0",  "1-+0",
                             " 1-0",  "1-0 ", "1 -0",  "1- 0", "1-0\n", "1-0\r", "a-0",  "0-b",  "0x1-0", "1.5-0",
                             "1e3-0", "١-٠",  "1_0-0", "01-0", "1-00",  "00-0",  "1-01", "1,0",  "1:0",   "\t1-0"})
        EXPECT_FALSE(parse_stream_id(text)) << '"' << text << '"';
    EXPECT_FALSE(parse_stream_id(std::string_view("1-0\0", 4)));
    EXPECT_FALSE(parse_stream_id(std::string_view("1\0-0", 4)));
}

TEST(StreamId, ToStringIsTheParsedForm) {
    for (StreamId id : {StreamId{0, 0}, StreamId{1, 0}, StreamId{0, 1}, StreamId{1700000000000, 42},
                        StreamId{kMax, kMax}, StreamId{kMax, 0}, StreamId{10, 10}}) {
        std::string text = to_string(id);
        EXPECT_EQ(parse_stream_id(text), id) << text;
    }
    EXPECT_EQ(to_string({1700000000000, 7}), "1700000000000-7");
    EXPECT_EQ(to_string({kMax, kMax}), "18446744073709551615-18446744073709551615");
}

TEST(StreamId, OrdersByMillisecondsThenSequence) {
    std::vector<StreamId> ids = {{2, 0}, {1, 5}, {kMax, 0}, {0, kMax}, {1, 0}, {0, 0}, {2, 1}};
    std::sort(ids.begin(), ids.end());
    std::vector<StreamId> expected = {{0, 0}, {0, kMax}, {1, 0}, {1, 5}, {2, 0}, {2, 1}, {kMax, 0}};
    EXPECT_EQ(ids, expected);

    StreamId a{1, 9}, b{2, 0};
    EXPECT_TRUE(a < b);
    EXPECT_TRUE(a <= b);
    EXPECT_TRUE(b > a);
    EXPECT_TRUE(b >= a);
    EXPECT_TRUE(a != b);
    EXPECT_FALSE(a == b);
    EXPECT_TRUE(a <= a);
    EXPECT_TRUE(a >= a);
    EXPECT_FALSE(a < a);
}

TEST(StreamId, NextAfterIsTheSmallestGreaterId) {
    EXPECT_EQ(next_after({0, 0}), (StreamId{0, 1}));
    EXPECT_EQ(next_after({5, 7}), (StreamId{5, 8}));
    EXPECT_EQ(next_after({5, kMax}), (StreamId{6, 0}));
    EXPECT_EQ(next_after({kMax, kMax - 1}), (StreamId{kMax, kMax}));
    EXPECT_FALSE(next_after({kMax, kMax}));
    for (StreamId id : {StreamId{0, 0}, StreamId{3, kMax}, StreamId{kMax, 0}})
        EXPECT_GT(*next_after(id), id);
}

TEST(StreamId, ExclusiveXrangeStart) {
    EXPECT_EQ(xrange_exclusive_start({1700000000000, 3}), "(1700000000000-3");
    EXPECT_EQ(xrange_exclusive_start({0, 0}), "(0-0");
}

} // namespace
} // namespace pgfeed::notifier
