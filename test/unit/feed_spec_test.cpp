// Unit tests of feed-name parsing and topic validation (extension/core/feed_spec.hpp).
#include "feed_spec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgfeed {
namespace {

using namespace std::string_literals;

bool contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Feed names

TEST(FeedSpec, All) {
    EXPECT_EQ(feed_spec_error("all"), "");
    FeedSpec spec = parse_feed_spec("all");
    EXPECT_EQ(spec.kind, FeedSpec::Kind::All);
    EXPECT_EQ(spec.topic, "");
}

TEST(FeedSpec, Following) {
    EXPECT_EQ(feed_spec_error("following"), "");
    FeedSpec spec = parse_feed_spec("following");
    EXPECT_EQ(spec.kind, FeedSpec::Kind::Following);
    EXPECT_EQ(spec.topic, "");
}

TEST(FeedSpec, Topic) {
    EXPECT_EQ(feed_spec_error("mp_id:7"), "");
    FeedSpec spec = parse_feed_spec("mp_id:7");
    EXPECT_EQ(spec.kind, FeedSpec::Kind::Topic);
    EXPECT_EQ(spec.topic, "mp_id:7");
}

TEST(FeedSpec, TopicsNamedLikeTheBuiltInFeeds) {
    for (const char *text : {"all:1", "following:x", "x:all", "all:following"}) {
        SCOPED_TRACE(text);
        EXPECT_EQ(feed_spec_error(text), "");
        FeedSpec spec = parse_feed_spec(text);
        EXPECT_EQ(spec.kind, FeedSpec::Kind::Topic);
        EXPECT_EQ(spec.topic, text);
    }
}

TEST(FeedSpec, UnknownNamesWithoutAColon) {
    for (const std::string &text :
         std::vector<std::string>{"", "ALL", "All", "Following", "follow", "al", "alll", " all", "all ", "all\n",
                                  "following\0"s, "\0all"s, "mp_id", "mp_id=7", "feed"}) {
        SCOPED_TRACE("\"" + text + "\"");
        std::string error = feed_spec_error(text);
        EXPECT_NE(error, "");
        EXPECT_TRUE(contains(error, "unknown feed")) << error;
    }
}

TEST(FeedSpec, InvalidTopicsAreInvalidFeeds) {
    for (const std::string &text :
         std::vector<std::string>{":", ":7", "::", "mp_id:\n", "mp\tid:7", "mp_id:7\x7f", "mp_id:\0"s + "7",
                                  std::string(kMaxTopicBytes, 'a') + ":1"}) {
        SCOPED_TRACE("\"" + text + "\"");
        EXPECT_NE(feed_spec_error(text), "");
        EXPECT_EQ(feed_spec_error(text), topic_error(text));
    }
}

TEST(FeedSpec, ValidTopicsAreValidFeeds) {
    for (const std::string &text :
         std::vector<std::string>{"a:b", "mp_id:7", "mp_id:", "url:http://x:80/y", "a::", "tag:café", "col umn:val ue",
                                  "k:" + std::string(254, 'v')}) {
        SCOPED_TRACE("\"" + text + "\"");
        EXPECT_EQ(topic_error(text), "");
        EXPECT_EQ(feed_spec_error(text), "");
        FeedSpec spec = parse_feed_spec(text);
        EXPECT_EQ(spec.kind, FeedSpec::Kind::Topic);
        EXPECT_EQ(spec.topic, text);
    }
}

// ---------------------------------------------------------------------------------------------
// Topics

TEST(Topic, Valid) {
    EXPECT_EQ(topic_error("mp_id:7"), "");
    EXPECT_EQ(topic_error("a:b"), "");
    EXPECT_EQ(topic_error("country:NZ"), "");
    EXPECT_EQ(topic_error("name:José Ñúñez"), ""); // bytes >= 0x80 are not control characters
    EXPECT_EQ(topic_error("x:\xff\xfe"), "");
    EXPECT_EQ(topic_error("sp ace:a b"), "");
    EXPECT_EQ(topic_error("~:~"), ""); // 0x7e, just below DEL
    EXPECT_EQ(topic_error(" : "), ""); // 0x20, the lowest non-control byte
}

TEST(Topic, BuiltInFeedNamesAreNotTopics) {
    EXPECT_NE(topic_error("all"), "");
    EXPECT_NE(topic_error("following"), "");
}

TEST(Topic, NoColon) {
    for (const char *text : {"", "mp_id", "mp_id=7", "all", "a;b"}) {
        SCOPED_TRACE(text);
        std::string error = topic_error(text);
        EXPECT_NE(error, "");
        EXPECT_TRUE(contains(error, "no ':'")) << error;
    }
}

TEST(Topic, EmptyColumn) {
    for (const char *text : {":", ":7", "::", "::7", ":mp_id:7"}) {
        SCOPED_TRACE(text);
        std::string error = topic_error(text);
        EXPECT_NE(error, "");
        EXPECT_TRUE(contains(error, "no column")) << error;
    }
}

// A row whose topic column holds '' is an item of the topic 'column:', which must be reachable.
TEST(Topic, EmptyValueIsATopic) {
    for (const char *text : {"mp_id:", "a:"}) {
        SCOPED_TRACE(text);
        EXPECT_EQ(topic_error(text), "");
        EXPECT_EQ(topic_column(text), std::string(text).substr(0, std::string(text).size() - 1));
    }
}

TEST(Topic, ValuesMayContainColons) {
    EXPECT_EQ(topic_error("mp_id:7:8"), "");
    EXPECT_EQ(topic_error("a::"), "");  // value ":"
    EXPECT_EQ(topic_error("a:::"), ""); // value "::"
    EXPECT_EQ(topic_error("url:https://example.com:8443/a?b=c"), "");
    EXPECT_EQ(topic_column("url:https://example.com:8443/a?b=c"), "url");
    EXPECT_EQ(topic_column("a::"), "a");
}

TEST(Topic, ControlCharacters) {
    // Every byte below 0x20 and DEL, in the column, in the value, and at either end.
    std::vector<char> controls;
    for (int c = 0; c < 0x20; ++c)
        controls.push_back(static_cast<char>(c));
    controls.push_back('\x7f');
    for (char c : controls) {
        for (const std::string &text : {std::string(1, c) + "col:v", "co" + std::string(1, c) + "l:v",
                                        "col:" + std::string(1, c) + "v", "col:v" + std::string(1, c)}) {
            SCOPED_TRACE("byte " + std::to_string(static_cast<int>(static_cast<unsigned char>(c))));
            std::string error = topic_error(text);
            EXPECT_NE(error, "");
            EXPECT_TRUE(contains(error, "control character")) << error;
        }
    }
}

TEST(Topic, LengthLimitIsInBytes) {
    std::string at_limit = "c:" + std::string(kMaxTopicBytes - 2, 'v');
    ASSERT_EQ(at_limit.size(), 256u);
    EXPECT_EQ(topic_error(at_limit), "");
    EXPECT_EQ(feed_spec_error(at_limit), "");

    std::string over = at_limit + "v";
    EXPECT_NE(topic_error(over), "");
    EXPECT_TRUE(contains(topic_error(over), "longer than 256")) << topic_error(over);
    EXPECT_NE(feed_spec_error(over), "");

    // 128 two-byte characters fit; one more byte does not.
    std::string utf8 = "c:";
    while (utf8.size() + 2 <= kMaxTopicBytes)
        utf8 += "é";
    ASSERT_EQ(utf8.size(), 256u);
    EXPECT_EQ(topic_error(utf8), "");
    EXPECT_NE(topic_error(utf8 + "x"), "");

    EXPECT_NE(topic_error(std::string(100000, 'x') + ":y"), "");
}

TEST(Topic, LongTopicErrorDoesNotEchoTheTopic) {
    std::string huge = "c:" + std::string(10000, 'v');
    EXPECT_LT(topic_error(huge).size(), 200u);
}

TEST(Topic, Column) {
    EXPECT_EQ(topic_column("mp_id:7"), "mp_id");
    EXPECT_EQ(topic_column("a:b"), "a");
    EXPECT_EQ(topic_column("mp_id:7:8"), "mp_id");
    EXPECT_EQ(topic_column("col umn:x"), "col umn");
}

} // namespace
} // namespace pgfeed
