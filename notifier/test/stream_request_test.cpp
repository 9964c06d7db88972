// Unit tests of GET /v1/stream request parsing (notifier/stream_request.hpp), including what
// libevent's query parser does with '+', escapes and malformed pairs.
#include "stream_request.hpp"

#include "query_params.hpp"

#include "auth.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pgfeed::notifier {
namespace {

using Header = std::optional<std::string_view>;

StreamRequest parsed(std::string_view query, Header header = std::nullopt) {
    auto result = parse_stream_request(query, header);
    if (auto *error = std::get_if<std::string>(&result)) {
        ADD_FAILURE() << "refused " << query << ": " << *error;
        return {};
    }
    return std::get<StreamRequest>(result);
}

// The error message, or "" (and a failure) when the request was accepted.
std::string refused(std::string_view query, Header header = std::nullopt) {
    auto result = parse_stream_request(query, header);
    if (auto *error = std::get_if<std::string>(&result))
        return *error;
    ADD_FAILURE() << "accepted " << query;
    return "";
}

std::vector<std::string> topics(std::initializer_list<const char *> names) { return {names.begin(), names.end()}; }

TEST(StreamRequest, EmptyQueryAsksForNothingInParticular) {
    StreamRequest request = parsed("");
    EXPECT_FALSE(request.access_token);
    EXPECT_TRUE(request.topics.empty());
    EXPECT_FALSE(request.last_event_id);
}

TEST(StreamRequest, ReadsEveryParameter) {
    StreamRequest request = parsed("access_token=aaa.bbb.ccc&topics=mp_id:7,mp_id:*&lastEventId=1700000000000-3");
    EXPECT_EQ(request.access_token, "aaa.bbb.ccc");
    EXPECT_EQ(request.topics, topics({"mp_id:7", "mp_id:*"}));
    EXPECT_EQ(request.last_event_id, (StreamId{1700000000000, 3}));
}

TEST(StreamRequest, IgnoresUnknownParameters) {
    StreamRequest request = parsed("_=1700000000&topics=a&v=2&callback=");
    EXPECT_EQ(request.topics, topics({"a"}));
    // Names are case-sensitive and not decoded: these are unknown, not the real parameters.
    request = parsed("Topics=a&access%5Ftoken=t&LASTEVENTID=1-0");
    EXPECT_TRUE(request.topics.empty());
    EXPECT_FALSE(request.access_token);
    EXPECT_FALSE(request.last_event_id);
}

TEST(StreamRequest, PercentDecodesValues) {
    EXPECT_EQ(parsed("topics=mp_id%3A7%2Cmp_id%3a8").topics, topics({"mp_id:7", "mp_id:8"}));
    EXPECT_EQ(parsed("topics=caf%C3%A9").topics, topics({"caf\xC3\xA9"}));
    EXPECT_EQ(parsed("access_token=a%2Eb.c").access_token, "a.b.c");
    EXPECT_EQ(parsed("lastEventId=1700000000000%2D0").last_event_id, (StreamId{1700000000000, 0}));
}

TEST(StreamRequest, PlusIsASpaceAndEscapedPlusIsAPlus) {
    EXPECT_EQ(parsed("topics=a+b").topics, topics({"a b"}));
    EXPECT_EQ(parsed("topics=a%2Bb").topics, topics({"a+b"}));
}

TEST(StreamRequest, MalformedEscapesAreKeptLiterally) {
    // libevent leaves a '%' that is not followed by two hex digits as it is.
    EXPECT_EQ(parsed("topics=%zz").topics, topics({"%zz"}));
    EXPECT_EQ(parsed("topics=a%4").topics, topics({"a%4"}));
    EXPECT_EQ(parsed("topics=a%").topics, topics({"a%"}));
    EXPECT_EQ(parsed("topics=%%41").topics, topics({"%A"}));
}

TEST(StreamRequest, RefusesNulBytes) {
    // libevent would cut the value at a decoded %00: "mp_id:7%00x" would read as "mp_id:7".
    for (std::string_view query : {"topics=mp_id:7%00x", "topics=a,%00", "_=%00", "access_token=a%00"})
        EXPECT_EQ(refused(query), "the query string contains a NUL byte (%00)") << query;
    EXPECT_EQ(refused(std::string_view("topics=a\0b", 10)), "the query string contains a NUL byte (%00)");
    EXPECT_EQ(parsed("topics=%0%30").topics, topics({"%00"})); // an escaped '0' after a literal '%'
}

TEST(StreamRequest, RefusesWhatLibeventRefuses) {
    const std::string message = "the query string is not a list of name=value pairs separated by &";
    for (std::string_view query : {"topics", "=a", "&topics=a", "topics=a&&_=1", "&", "1700000000"})
        EXPECT_EQ(refused(query), message) << query;
}

TEST(StreamRequest, AcceptsWhatLibeventAccepts) {
    EXPECT_EQ(parsed("topics=a&").topics, topics({"a"}));        // a trailing '&'
    EXPECT_EQ(parsed("topics=a=b").topics, topics({"a=b"}));     // split at the first '='
    EXPECT_EQ(parsed("topics=a;_=1").topics, topics({"a;_=1"})); // ';' separates nothing
}

TEST(StreamRequest, RefusesARepeatedParameter) {
    EXPECT_EQ(refused("topics=a&topics=b"), "the parameter topics is given more than once");
    EXPECT_EQ(refused("topics=&topics="), "the parameter topics is given more than once");
    EXPECT_EQ(refused("access_token=x&_=1&access_token=x"), "the parameter access_token is given more than once");
    EXPECT_EQ(refused("lastEventId=1-0&lastEventId=2-0"), "the parameter lastEventId is given more than once");
    EXPECT_EQ(parsed("_=1&_=2&topics=a").topics, topics({"a"})); // unknown ones may repeat
}

TEST(StreamRequest, AnEmptyValueMeansNone) {
    StreamRequest request = parsed("access_token=&topics=&lastEventId=");
    EXPECT_FALSE(request.access_token);
    EXPECT_TRUE(request.topics.empty());
    EXPECT_FALSE(request.last_event_id);
}

TEST(StreamRequest, RefusesEmptyTopicEntries) {
    for (std::string_view query : {"topics=a,,b", "topics=a,", "topics=,a", "topics=,", "topics=%2C"})
        EXPECT_EQ(refused(query), "topics has an empty entry (separate topics with single commas)") << query;
}

TEST(StreamRequest, RefusesInvalidTopics) {
    EXPECT_EQ(refused("topics=ok,mp_id:%3F"),
              "topic \"mp_id:?\" is not valid (1 to 256 bytes, no control characters, no ?, [ or \\)");
    EXPECT_NE(refused("topics=a%5Bb").find("topic \"a[b\""), std::string::npos);
    EXPECT_NE(refused("topics=a%5Cb").find("topic \"a?b\""), std::string::npos); // '\' quoted as '?'
    EXPECT_NE(refused("topics=a%0Ab").find("topic \"a?b\""), std::string::npos);
    EXPECT_NE(refused("topics=a%7Fb").find("topic \"a?b\""), std::string::npos);
    EXPECT_FALSE(refused("topics=" + std::string(max_topic_bytes + 1, 'x')).empty());
    EXPECT_EQ(parsed("topics=" + std::string(max_topic_bytes, 'x')).topics.size(), 1u);
}

TEST(StreamRequest, QuotesOnlyAShortPrintablePrefix) {
    std::string error = refused("topics=%01" + std::string(max_topic_bytes, 'y'));
    EXPECT_EQ(error, "topic \"?" + std::string(39, 'y') +
                         "...\" is not valid (1 to 256 bytes, no control characters, no ?, [ or \\)");
}

TEST(StreamRequest, LimitsTheNumberOfTopics) {
    std::string list = "t0";
    for (std::size_t i = 1; i < max_granted_topics; ++i)
        list += ",t" + std::to_string(i);
    EXPECT_EQ(parsed("topics=" + list).topics.size(), max_granted_topics);
    EXPECT_EQ(refused("topics=" + list + ",one-more"), "topics names more than 256 topics");
}

TEST(StreamRequest, LimitsTheQueryLength) {
    std::string query = "topics=a&_=";
    query += std::string(max_query_bytes - query.size(), 'x');
    EXPECT_EQ(parsed(query).topics, topics({"a"}));
    EXPECT_EQ(refused(query + "x"), "the query string is longer than 16384 bytes");
}

TEST(StreamRequest, ReadsTheLastEventIdHeader) {
    EXPECT_EQ(parsed("", "1700000000000-0").last_event_id, (StreamId{1700000000000, 0}));
    EXPECT_EQ(parsed("", "0-0").last_event_id, (StreamId{0, 0}));
    EXPECT_EQ(parsed("", " 5-6\t").last_event_id, (StreamId{5, 6})); // optional whitespace around it
}

TEST(StreamRequest, TheHeaderWinsOverTheQuery) {
    EXPECT_EQ(parsed("lastEventId=1-0", "2-0").last_event_id, (StreamId{2, 0}));
    // Once the header is there, the query form is not looked at, even if it is damaged.
    EXPECT_EQ(parsed("lastEventId=junk", "2-0").last_event_id, (StreamId{2, 0}));
    EXPECT_EQ(refused("lastEventId=1-0", "junk"), "Last-Event-ID is not a stream id such as 1700000000000-0");
}

TEST(StreamRequest, AnEmptyHeaderMeansNone) {
    EXPECT_FALSE(parsed("", "").last_event_id);
    EXPECT_FALSE(parsed("", "  ").last_event_id);
    EXPECT_EQ(parsed("lastEventId=1-0", "").last_event_id, (StreamId{1, 0}));
    EXPECT_EQ(parsed("lastEventId=1-0", std::nullopt).last_event_id, (StreamId{1, 0}));
}

TEST(StreamRequest, RefusesMalformedIds) {
    const std::string header_message = "Last-Event-ID is not a stream id such as 1700000000000-0";
    const std::string query_message = "lastEventId is not a stream id such as 1700000000000-0";
    for (std::string_view id : {"1700000000000", "01-0", "1-01", "-1-0", "+1-0", "1-0-0", "1 -0", "$", ">", "1.5-0",
                                "18446744073709551616-0", "abc", "1-0\r\n"}) {
        EXPECT_EQ(refused("", id), header_message) << id;
        EXPECT_EQ(refused("lastEventId=" + std::string(id)), query_message) << id;
    }
    EXPECT_EQ(refused("lastEventId=1-0%0A"), query_message);
    EXPECT_EQ(refused("lastEventId=1+-0"), query_message); // '+' is a space
}

TEST(StreamRequest, TheTokenIsNeverQuoted) {
    std::string error = refused("access_token=secret.token.value&access_token=secret.token.value");
    EXPECT_EQ(error.find("secret"), std::string::npos) << error;
}

TEST(StreamRequest, TheTokenFeedsTokenFromRequest) {
    // The query token is the last resort: a Bearer header wins over it.
    StreamRequest request = parsed("access_token=from.the.query");
    std::optional<std::string_view> param = request.access_token;
    EXPECT_EQ(token_from_request(std::nullopt, std::nullopt, param), "from.the.query");
    EXPECT_EQ(token_from_request("Bearer from.the.header", std::nullopt, param), "from.the.header");
}

} // namespace
} // namespace pgfeed::notifier
