// Unit tests of what a call of the HTTP feed API asks for (notifier/feed_request.hpp) and of the
// query-string parser it shares with /v1/stream (notifier/query_params.hpp).
//
// Tests named * state the header's contract where the code does not keep it yet; run them
// with --gtest_also_run_disabled_tests.
#include "feed_request.hpp"

#include "query_params.hpp"

#include "auth.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pgfeed::notifier {
namespace {

const std::vector<FeedCall> all_calls = {FeedCall::page,   FeedCall::unread_count, FeedCall::read,
                                         FeedCall::unread, FeedCall::read_all,     FeedCall::follows,
                                         FeedCall::follow, FeedCall::unfollow};
const std::vector<FeedCall> get_calls = {FeedCall::page, FeedCall::unread_count, FeedCall::follows};
const std::vector<FeedCall> marking_calls = {FeedCall::read, FeedCall::unread};
const std::vector<FeedCall> topic_calls = {FeedCall::follow, FeedCall::unfollow};

// A body each call accepts, so that a test of the query string can run against every call.
std::string minimal_body(FeedCall call) {
    switch (call) {
    case FeedCall::read:
    case FeedCall::unread:
        return R"({"ids": [1]})";
    case FeedCall::read_all:
        return "{}";
    case FeedCall::follow:
    case FeedCall::unfollow:
        return R"({"topic": "mp_id:7"})";
    default:
        return "";
    }
}

std::string call_name(FeedCall call) {
    switch (call) {
    case FeedCall::page:
        return "page";
    case FeedCall::unread_count:
        return "unread_count";
    case FeedCall::read:
        return "read";
    case FeedCall::unread:
        return "unread";
    case FeedCall::read_all:
        return "read_all";
    case FeedCall::follows:
        return "follows";
    case FeedCall::follow:
        return "follow";
    case FeedCall::unfollow:
        return "unfollow";
    }
    return "?";
}

// Bodies and queries in failure messages, NUL bytes made visible.
std::string shown(std::string_view text) {
    std::string out;
    for (char c : text)
        out += c == '\0' ? std::string("\\0") : std::string(1, c);
    return out;
}

FeedRequest accepted(FeedCall call, std::string_view query, std::string_view body = "") {
    auto result = parse_feed_request(call, query, body);
    if (auto *error = std::get_if<std::string>(&result)) {
        ADD_FAILURE() << call_name(call) << " refused query \"" << shown(query) << "\" body \"" << shown(body)
                      << "\": " << *error;
        return {};
    }
    return std::get<FeedRequest>(result);
}

// The error message, or "" (and a failure) when the request was accepted.
std::string refused(FeedCall call, std::string_view query, std::string_view body = "") {
    auto result = parse_feed_request(call, query, body);
    if (auto *error = std::get_if<std::string>(&result))
        return *error;
    ADD_FAILURE() << call_name(call) << " accepted query \"" << shown(query) << "\" body \"" << shown(body) << "\"";
    return "";
}

bool contains(const std::string &text, std::string_view part) { return text.find(part) != std::string::npos; }

bool printable(std::string_view text) {
    for (char c : text)
        if (c < 0x20 || c >= 0x7f)
            return false;
    return true;
}

// {"ids": [first, first + 1, ...]} with `count` ids.
std::string ids_body(std::size_t count, int64_t first = 1) {
    std::string body = R"({"ids": [)";
    for (std::size_t i = 0; i < count; ++i)
        body += (i ? "," : "") + std::to_string(first + static_cast<int64_t>(i));
    return body + "]}";
}

std::string json_string(const std::string &text) { return "\"" + text + "\""; }

Grant grant(std::vector<std::string> topics) { return Grant{"alice", std::move(topics), 0}; }

// --- paths --------------------------------------------------------------------------------------

TEST(FeedCallAt, MapsEveryPathToItsCall) {
    EXPECT_EQ(feed_call_at("/v1/feed"), FeedCall::page);
    EXPECT_EQ(feed_call_at("/v1/unread_count"), FeedCall::unread_count);
    EXPECT_EQ(feed_call_at("/v1/read"), FeedCall::read);
    EXPECT_EQ(feed_call_at("/v1/unread"), FeedCall::unread);
    EXPECT_EQ(feed_call_at("/v1/read_all"), FeedCall::read_all);
    EXPECT_EQ(feed_call_at("/v1/follows"), FeedCall::follows);
    EXPECT_EQ(feed_call_at("/v1/follow"), FeedCall::follow);
    EXPECT_EQ(feed_call_at("/v1/unfollow"), FeedCall::unfollow);
}

TEST(FeedCallAt, OtherPathsAreNoCall) {
    for (std::string_view path : {"", "/", "/v1", "/v1/", "/v1/stream", "/v1/feed/", "/v1/Feed", "/V1/feed", "v1/feed",
                                  "/v1/feed?limit=1", "/v1//feed", "/v2/feed", "/v1/feeds", "/v1/read/"})
        EXPECT_FALSE(feed_call_at(path)) << path;
    EXPECT_FALSE(feed_call_at(std::string_view("/v1/feed\0", 9)));
}

TEST(FeedCallWrites, OnlyThePostCallsWrite) {
    EXPECT_FALSE(feed_call_writes(FeedCall::page));
    EXPECT_FALSE(feed_call_writes(FeedCall::unread_count));
    EXPECT_FALSE(feed_call_writes(FeedCall::follows));
    EXPECT_TRUE(feed_call_writes(FeedCall::read));
    EXPECT_TRUE(feed_call_writes(FeedCall::unread));
    EXPECT_TRUE(feed_call_writes(FeedCall::read_all));
    EXPECT_TRUE(feed_call_writes(FeedCall::follow));
    EXPECT_TRUE(feed_call_writes(FeedCall::unfollow));
}

// --- defaults -----------------------------------------------------------------------------------

TEST(FeedRequestDefaults, AnEmptyPageRequestTakesTheDefaults) {
    FeedRequest request = accepted(FeedCall::page, "");
    EXPECT_FALSE(request.access_token);
    EXPECT_EQ(request.feed, "all");
    EXPECT_EQ(request.limit, default_page_size);
    EXPECT_EQ(request.limit, 20);
    EXPECT_FALSE(request.before);
    EXPECT_FALSE(request.unread_only);
    EXPECT_FALSE(request.after);
    EXPECT_TRUE(request.ids.empty());
    EXPECT_FALSE(request.up_to);
    EXPECT_TRUE(request.topic.empty());
}

TEST(FeedRequestDefaults, UnreadCountAndFollowsTakeAnEmptyRequest) {
    FeedRequest count = accepted(FeedCall::unread_count, "");
    EXPECT_EQ(count.feed, "all");
    EXPECT_FALSE(count.after);
    FeedRequest follows = accepted(FeedCall::follows, "");
    EXPECT_EQ(follows.feed, "all");
    EXPECT_FALSE(follows.access_token);
}

TEST(FeedRequestDefaults, ReadAllWithAnEmptyObjectMarksTheWholeFeedAll) {
    FeedRequest request = accepted(FeedCall::read_all, "", "{}");
    EXPECT_EQ(request.feed, "all");
    EXPECT_FALSE(request.up_to);
}

// --- limit --------------------------------------------------------------------------------------

TEST(FeedRequestLimit, AcceptsOneToTheMaximum) {
    EXPECT_EQ(accepted(FeedCall::page, "limit=1").limit, 1);
    EXPECT_EQ(accepted(FeedCall::page, "limit=50").limit, 50);
    EXPECT_EQ(accepted(FeedCall::page, "limit=1000").limit, 1000);
    EXPECT_EQ(max_page_size, 1000);
}

TEST(FeedRequestLimit, RefusesWhatIsNotADecimalFromOneToTheMaximum) {
    // "+5" in a query is " 5" once decoded; %2B5 is "+5".
    for (std::string_view value :
         {"0", "1001", "abc", "-1", "+5", "%2B5", "%205", "5%20", "", "1.0", "1e3", "0x10", "5a", "1000000000000000000",
          "9223372036854775807", "99999999999999999999", "18446744073709551617"}) {
        std::string error = refused(FeedCall::page, "limit=" + std::string(value));
        EXPECT_TRUE(contains(error, "limit")) << value << ": " << error;
    }
}

// --- before / after -----------------------------------------------------------------------------

TEST(FeedRequestPositions, ReadsBefore) {
    EXPECT_EQ(accepted(FeedCall::page, "before=0").before, 0);
    EXPECT_EQ(accepted(FeedCall::page, "before=123").before, 123);
    EXPECT_EQ(accepted(FeedCall::page, "before=9007199254740993").before, 9007199254740993);
    EXPECT_EQ(accepted(FeedCall::page, "before=999999999999999999").before, 999999999999999999);
}

TEST(FeedRequestPositions, ReadsAfter) {
    EXPECT_EQ(accepted(FeedCall::unread_count, "after=0").after, 0);
    EXPECT_EQ(accepted(FeedCall::unread_count, "after=42").after, 42);
    EXPECT_EQ(accepted(FeedCall::unread_count, "after=999999999999999999").after, 999999999999999999);
}

const std::vector<std::string> bad_positions = {
    "-1", "-0", "abc", "", "1.5", "1e3", "+1", "%2B1", "%201", "1%20", "0x1", "12a",
    // Far beyond 2^63: must be refused, not wrapped around.
    "99999999999999999999", "18446744073709551616", "123456789012345678901234567890"};

TEST(FeedRequestPositions, RefusesABeforeThatIsNotAPosition) {
    for (const std::string &value : bad_positions) {
        std::string error = refused(FeedCall::page, "before=" + value);
        EXPECT_TRUE(contains(error, "before")) << value << ": " << error;
    }
}

TEST(FeedRequestPositions, RefusesAnAfterThatIsNotAPosition) {
    for (const std::string &value : bad_positions) {
        std::string error = refused(FeedCall::unread_count, "after=" + value);
        EXPECT_TRUE(contains(error, "after")) << value << ": " << error;
    }
}

TEST(FeedRequestPositions, QuotesOnlyAShortPrintablePrefixOfABadValue) {
    std::string error = refused(FeedCall::page, "before=" + std::string(5000, 'x') + "%01%FF");
    EXPECT_LT(error.size(), 200u) << error;
    EXPECT_TRUE(printable(error)) << error;
    error = refused(FeedCall::unread_count, "after=%0A%1B%7F%22%5C");
    EXPECT_TRUE(printable(error)) << error;
}

// --- unread_only --------------------------------------------------------------------------------

TEST(FeedRequestUnreadOnly, ReadsTheFourBooleanForms) {
    EXPECT_TRUE(accepted(FeedCall::page, "unread_only=true").unread_only);
    EXPECT_TRUE(accepted(FeedCall::page, "unread_only=1").unread_only);
    EXPECT_FALSE(accepted(FeedCall::page, "unread_only=false").unread_only);
    EXPECT_FALSE(accepted(FeedCall::page, "unread_only=0").unread_only);
}

TEST(FeedRequestUnreadOnly, RefusesOtherForms) {
    for (std::string_view value : {"", "TRUE", "True", "yes", "no", "on", "2", "t", "f", "01", "true%20", "+true"}) {
        std::string error = refused(FeedCall::page, "unread_only=" + std::string(value));
        EXPECT_TRUE(contains(error, "unread_only")) << value << ": " << error;
    }
}

// --- feed in the query --------------------------------------------------------------------------

TEST(FeedRequestFeed, ReadsTheFeedOfPageAndUnreadCount) {
    for (FeedCall call : {FeedCall::page, FeedCall::unread_count}) {
        EXPECT_EQ(accepted(call, "feed=following").feed, "following");
        EXPECT_EQ(accepted(call, "feed=all").feed, "all");
        EXPECT_EQ(accepted(call, "feed=mp_id:7").feed, "mp_id:7");
        EXPECT_EQ(accepted(call, "feed=mp_id%3A7").feed, "mp_id:7");
        EXPECT_EQ(accepted(call, "feed=" + std::string(256, 'f')).feed, std::string(256, 'f'));
    }
}

TEST(FeedRequestFeed, RefusesAnEmptyOrLongerThan256BytesFeed) {
    for (FeedCall call : {FeedCall::page, FeedCall::unread_count}) {
        EXPECT_TRUE(contains(refused(call, "feed="), "feed"));
        EXPECT_TRUE(contains(refused(call, "feed=" + std::string(257, 'f')), "feed"));
    }
}

TEST(FeedRequestFeed, TheLengthLimitCountsDecodedBytes) {
    // 256 bytes once decoded, 768 as written.
    std::string encoded;
    for (int i = 0; i < 256; ++i)
        encoded += "%41";
    EXPECT_EQ(accepted(FeedCall::page, "feed=" + encoded).feed, std::string(256, 'A'));
    EXPECT_TRUE(contains(refused(FeedCall::page, "feed=" + encoded + "%41"), "feed"));
}

// --- which call takes which parameter -----------------------------------------------------------

TEST(FeedRequestQuery, UnreadCountIgnoresThePageParameters) {
    FeedRequest request = accepted(FeedCall::unread_count, "limit=abc&before=-1&unread_only=maybe");
    EXPECT_EQ(request.limit, default_page_size);
    EXPECT_FALSE(request.before);
    EXPECT_FALSE(request.unread_only);
}

TEST(FeedRequestQuery, PageIgnoresAfter) {
    EXPECT_FALSE(accepted(FeedCall::page, "after=abc").after);
    EXPECT_FALSE(accepted(FeedCall::page, "after=5").after);
}

TEST(FeedRequestQuery, FollowsIgnoresEveryFeedParameter) {
    FeedRequest request = accepted(FeedCall::follows, "feed=&limit=0&before=x&unread_only=x&after=x");
    EXPECT_EQ(request.feed, "all");
    EXPECT_EQ(request.limit, default_page_size);
    EXPECT_FALSE(request.before);
    EXPECT_FALSE(request.after);
}

TEST(FeedRequestQuery, WritesIgnoreTheQueryParametersOfReads) {
    for (FeedCall call : {FeedCall::read, FeedCall::unread, FeedCall::read_all, FeedCall::follow, FeedCall::unfollow}) {
        SCOPED_TRACE(call_name(call));
        FeedRequest request =
            accepted(call, "feed=&limit=0&before=-1&unread_only=x&after=x&ids=1&topic=x", minimal_body(call));
        EXPECT_EQ(request.feed, "all");
        EXPECT_EQ(request.limit, default_page_size);
        EXPECT_FALSE(request.before);
        EXPECT_FALSE(request.after);
    }
}

TEST(FeedRequestQuery, ReadAllTakesItsFeedFromTheBodyOnly) {
    EXPECT_EQ(accepted(FeedCall::read_all, "feed=mp_id:7", "{}").feed, "all");
    EXPECT_EQ(accepted(FeedCall::read_all, "feed=mp_id:7", R"({"feed": "mp_id:8"})").feed, "mp_id:8");
}

TEST(FeedRequestQuery, IgnoresUnknownParameters) {
    FeedRequest request = accepted(FeedCall::page, "_=1700000000&Limit=abc&FEED=x&feed%5F=x&limit%3D=abc&limit=5");
    EXPECT_EQ(request.limit, 5);
    EXPECT_EQ(request.feed, "all");
}

TEST(FeedRequestQuery, RefusesARepeatedParameter) {
    for (std::string_view query : {"limit=1&limit=2", "limit=1&limit=1", "feed=a&feed=b", "before=1&before=2",
                                   "unread_only=1&unread_only=0", "access_token=a&access_token=b"}) {
        std::string error = refused(FeedCall::page, query);
        EXPECT_TRUE(contains(error, "more than once")) << query << ": " << error;
    }
    EXPECT_TRUE(contains(refused(FeedCall::unread_count, "after=1&after=1"), "after"));
}

TEST(FeedRequestQuery, ARepeatedUnknownParameterIsIgnored) {
    EXPECT_EQ(accepted(FeedCall::page, "_=1&_=2&limit=3").limit, 3);
}

// The header: "Each call takes only its own parameters ... unknown query parameters are ignored."
// A parameter of another call is not one of this call's, yet repeating it makes the request refused.
TEST(FeedRequestQuery, ARepeatedParameterOfAnotherCallIsIgnored) {
    accepted(FeedCall::unread_count, "limit=1&limit=2");
    accepted(FeedCall::page, "after=1&after=2");
    accepted(FeedCall::follows, "feed=a&feed=b");
    accepted(FeedCall::read, "unread_only=1&unread_only=1", R"({"ids": [1]})");
}

// --- access_token -------------------------------------------------------------------------------

TEST(FeedRequestToken, EveryCallReadsTheAccessToken) {
    for (FeedCall call : all_calls) {
        SCOPED_TRACE(call_name(call));
        EXPECT_EQ(accepted(call, "access_token=aaa.bbb.ccc", minimal_body(call)).access_token, "aaa.bbb.ccc");
    }
}

TEST(FeedRequestToken, TheTokenIsPercentDecoded) {
    EXPECT_EQ(accepted(FeedCall::page, "access_token=a%2Eb.c%2B%2F+").access_token, "a.b.c+/ ");
}

TEST(FeedRequestToken, AnEmptyTokenMeansNone) {
    EXPECT_FALSE(accepted(FeedCall::page, "access_token=").access_token);
    EXPECT_FALSE(accepted(FeedCall::page, "limit=5").access_token);
}

TEST(FeedRequestToken, TheTokenIsNeverQuotedInAnError) {
    std::string error = refused(FeedCall::page, "access_token=secret.token.value&access_token=secret.token.value");
    EXPECT_FALSE(contains(error, "secret")) << error;
}

// --- the query string as a whole ----------------------------------------------------------------

TEST(FeedRequestQuery, RefusesANulInTheQuery) {
    for (std::string_view query : {"feed=a%00b", "access_token=%00", "_=%00", "limit=1%00", "x%00=1", "feed=%%00"}) {
        std::string error = refused(FeedCall::page, query);
        EXPECT_TRUE(contains(error, "NUL")) << query << ": " << error;
    }
    EXPECT_TRUE(contains(refused(FeedCall::page, std::string_view("feed=a\0b", 8)), "NUL"));
}

TEST(FeedRequestQuery, AnEscapedPercentBeforeZerosIsNoNul) {
    EXPECT_EQ(accepted(FeedCall::page, "feed=%2500").feed, "%00");
}

TEST(FeedRequestQuery, RefusesWhatIsNotAListOfPairs) {
    for (std::string_view query : {"limit", "=5", "&limit=5", "limit=5&&feed=a", "&", "limit=5&x"})
        EXPECT_FALSE(refused(FeedCall::page, query).empty()) << query;
}

TEST(FeedRequestQuery, AcceptsATrailingAmpersand) { EXPECT_EQ(accepted(FeedCall::page, "limit=5&").limit, 5); }

TEST(FeedRequestQuery, LimitsTheQueryLength) {
    std::string query = "limit=5&_=";
    query += std::string(max_query_bytes - query.size(), 'x');
    EXPECT_EQ(accepted(FeedCall::page, query).limit, 5);
    EXPECT_FALSE(refused(FeedCall::page, query + "x").empty());
}

// --- bodies of reads ----------------------------------------------------------------------------

TEST(FeedRequestBody, ReadsTakeNoBody) {
    for (FeedCall call : get_calls) {
        for (std::string_view body : {"{}", R"({"ids": [1]})", "x", "null", " {} "}) {
            std::string error = refused(call, "", body);
            EXPECT_TRUE(contains(error, "body")) << call_name(call) << " " << body << ": " << error;
        }
    }
}

TEST(FeedRequestBody, ReadsAcceptABlankBody) {
    for (FeedCall call : get_calls) {
        SCOPED_TRACE(call_name(call));
        accepted(call, "", "");
        accepted(call, "", " ");
        accepted(call, "", " \t  \t");
    }
}

TEST(FeedRequestBody, ReadsRefuseANulBody) {
    for (FeedCall call : get_calls)
        refused(call, "", std::string_view("\0", 1));
}

// --- bodies of writes: JSON -------------------------------------------------------------------

TEST(FeedRequestBody, WritesTakeAJsonObject) {
    for (FeedCall call : {FeedCall::read, FeedCall::unread, FeedCall::read_all, FeedCall::follow, FeedCall::unfollow}) {
        for (std::string_view body : {"", " ", "[]", "[1]", "1", "\"x\"", "null", "true"}) {
            std::string error = refused(call, "", body);
            EXPECT_TRUE(contains(error, "JSON object")) << call_name(call) << " " << body << ": " << error;
        }
    }
}

TEST(FeedRequestBody, RefusesInvalidJson) {
    for (std::string_view body :
         {"{", "{\"ids\": [1]", "{ids: [1]}", "{'ids': [1]}", "{\"ids\": [1],}", "{\"ids\": [1,]}", "{\"ids\" [1]}",
          "not json", "{\"ids\": [NaN]}", "{\"ids\": [0x10]}", "{\"ids\": [+1]}", "{\"ids\": [.5]}"})
        EXPECT_FALSE(refused(FeedCall::read, "", body).empty()) << body;
}

TEST(FeedRequestBody, AcceptsWhitespaceAroundTheObject) {
    EXPECT_EQ(accepted(FeedCall::read, "", " \n\t{ \"ids\" :\r\n[ 1 , 2 ] }\n ").ids, (std::vector<int64_t>{1, 2}));
}

// The header: the body must be "a JSON object". Text after the object makes it no JSON at all,
// yet cJSON_ParseWithLength (not null-terminated mode) stops at the end of the first value.
TEST(FeedRequestBody, RefusesTextAfterTheObject) {
    refused(FeedCall::read, "", R"({"ids": [1]} garbage)");
    refused(FeedCall::read, "", R"({"ids": [1]}})");
    refused(FeedCall::read, "", R"({"ids": [1]}{"ids": [2]})");
    refused(FeedCall::follow, "", R"({"topic": "mp_id:7"}, {"topic": "mp_id:8"})");
    refused(FeedCall::read, "", std::string_view("{\"ids\": [1]}\0", 13));
}

TEST(FeedRequestBody, RefusesAnEscapedNulInAnyString) {
    for (std::string_view body : {R"({"topic": "mp_id:7\u0000x"})", R"({"topic": "\u0000"})",
                                  R"({"topic\u0000": "mp_id:7"})", R"({"topic": "mp_id:7", "x": "\u0000"})"}) {
        std::string error = refused(FeedCall::follow, "", body);
        EXPECT_TRUE(contains(error, "NUL")) << body << ": " << error;
    }
    EXPECT_TRUE(contains(refused(FeedCall::read_all, "", R"({"feed": "all\u0000"})"), "NUL"));
}

// cJSON's strings end at a NUL, so a raw NUL byte in a string (invalid JSON: control characters
// must be escaped) cuts the value or key short unseen, just what the \u0000 check guards against.
TEST(FeedRequestBody, RefusesARawNulByteInAString) {
    using namespace std::string_view_literals;
    refused(FeedCall::follow, "", "{\"topic\": \"mp_id:7\0junk\"}"sv);  // accepted as topic "mp_id:7"
    refused(FeedCall::read_all, "", "{\"feed\": \"mp_id:7\0junk\"}"sv); // accepted as feed "mp_id:7"
    refused(FeedCall::read, "", "{\"ids\0whatever\": [1]}"sv);          // accepted as key "ids"
}

// --- ids of read and unread ---------------------------------------------------------------------

TEST(FeedRequestIds, ReadsTheIds) {
    for (FeedCall call : marking_calls) {
        SCOPED_TRACE(call_name(call));
        EXPECT_EQ(accepted(call, "", R"({"ids": [101]})").ids, (std::vector<int64_t>{101}));
        EXPECT_EQ(accepted(call, "", R"({"ids": [101, 102, 7]})").ids, (std::vector<int64_t>{101, 102, 7}));
        EXPECT_EQ(accepted(call, "", R"({"ids": [0]})").ids, (std::vector<int64_t>{0}));
    }
}

TEST(FeedRequestIds, KeepsRepeatedIdsInOrder) {
    EXPECT_EQ(accepted(FeedCall::read, "", R"({"ids": [3, 1, 3]})").ids, (std::vector<int64_t>{3, 1, 3}));
}

TEST(FeedRequestIds, AcceptsUpToTheMaximumNumberOfIds) {
    EXPECT_EQ(max_ids_per_call, 1000u);
    for (FeedCall call : marking_calls) {
        FeedRequest request = accepted(call, "", ids_body(1000));
        ASSERT_EQ(request.ids.size(), 1000u);
        EXPECT_EQ(request.ids.front(), 1);
        EXPECT_EQ(request.ids.back(), 1000);
    }
}

TEST(FeedRequestIds, RefusesNoIdsOrTooMany) {
    for (FeedCall call : marking_calls) {
        EXPECT_TRUE(contains(refused(call, "", R"({"ids": []})"), "ids")) << call_name(call);
        EXPECT_TRUE(contains(refused(call, "", ids_body(1001)), "ids")) << call_name(call);
    }
}

TEST(FeedRequestIds, AcceptsIntegersBelow2To53InMagnitude) {
    EXPECT_EQ(accepted(FeedCall::read, "", R"({"ids": [9007199254740991]})").ids,
              (std::vector<int64_t>{9007199254740991}));
    EXPECT_TRUE(contains(refused(FeedCall::read, "", R"({"ids": [9007199254740992]})"), "2^53"));
}

// "ids ... below 2^53 in magnitude": only positions are never negative, so a negative id is taken
// (it matches no activity).
TEST(FeedRequestIds, NegativeIdsWithinTheMagnitudeAreTaken) {
    EXPECT_EQ(accepted(FeedCall::read, "", R"({"ids": [-5]})").ids, (std::vector<int64_t>{-5}));
    EXPECT_EQ(accepted(FeedCall::unread, "", R"({"ids": [-9007199254740991]})").ids,
              (std::vector<int64_t>{-9007199254740991}));
}

// The double cJSON keeps cannot tell 1e3 from 1000, nor 4503599627370496.5 from a whole number.
TEST(FeedRequestIds, RefusesNumbersWithAFractionOrExponent) {
    for (std::string_view ids : {"[1.0]", "[1e3]", "[2E+1]", "[1, 0.5]", "[4503599627370496.5]"})
        EXPECT_TRUE(contains(refused(FeedCall::read, "", "{\"ids\": " + std::string(ids) + "}"), "whole number"))
            << ids;
}

TEST(FeedRequestIds, RefusesWhatIsNotAnIntegerBelow2To53) {
    for (std::string_view ids :
         {"[1.5]", "[0.1]", "[1, 2.5]", "[\"1\"]", "[\"abc\"]", "[null]", "[true]", "[[1]]", "[{\"id\": 1}]",
          "[9007199254740994]", "[-9007199254740994]", "[18446744073709551616]", "[1e19]", "[1e400]", "[-1e400]"}) {
        std::string error = refused(FeedCall::read, "", "{\"ids\": " + std::string(ids) + "}");
        EXPECT_TRUE(contains(error, "whole number")) << ids << ": " << error;
    }
}

TEST(FeedRequestIds, RefusesIdsThatAreNotAnArray) {
    for (std::string_view ids : {"1", "\"1,2\"", "null", "{}", "{\"0\": 1}", "true"}) {
        std::string error = refused(FeedCall::unread, "", "{\"ids\": " + std::string(ids) + "}");
        EXPECT_TRUE(contains(error, "ids")) << ids << ": " << error;
    }
}

// The check runs on the double cJSON made of the number, after rounding: 9007199254740993 (2^53 + 1)
// becomes 2^53 and passes, and so does a fraction above 2^52, where doubles are whole numbers. The
// request goes on with a value the client did not send.
TEST(FeedRequestIds, RefusesNumbersThatOnlyRoundToAnAcceptedInteger) {
    refused(FeedCall::read, "", R"({"ids": [9007199254740993]})");       // taken as 9007199254740992
    refused(FeedCall::read, "", R"({"ids": [-9007199254740993]})");      // taken as -9007199254740992
    refused(FeedCall::read, "", R"({"ids": [9007199254740992.5]})");     // taken as 9007199254740992
    refused(FeedCall::read, "", R"({"ids": [4503599627370496.5]})");     // taken as 4503599627370496
    refused(FeedCall::read_all, "", R"({"up_to": 9007199254740993})");   // taken as 9007199254740992
    refused(FeedCall::read_all, "", R"({"up_to": 4503599627370497.5})"); // taken as 4503599627370498
}

TEST(FeedRequestIds, RefusesABodyWithoutIds) {
    for (FeedCall call : marking_calls) {
        EXPECT_TRUE(contains(refused(call, "", "{}"), "ids")) << call_name(call);
        EXPECT_TRUE(contains(refused(call, "", "  {  }  "), "ids")) << call_name(call);
    }
}

// --- keys ---------------------------------------------------------------------------------------

TEST(FeedRequestKeys, TheUserNeverComesFromTheBody) {
    for (FeedCall call : {FeedCall::read, FeedCall::unread, FeedCall::read_all, FeedCall::follow, FeedCall::unfollow}) {
        std::string body = minimal_body(call);
        body.insert(1, body == "{}" ? R"("user": "bob")" : R"("user": "bob", )");
        std::string error = refused(call, "", body);
        EXPECT_TRUE(contains(error, "unknown key")) << call_name(call) << ": " << error;
        EXPECT_TRUE(contains(error, "user")) << error;
    }
}

TEST(FeedRequestKeys, RefusesUnknownKeys) {
    for (std::string_view body : {R"({"id": 1})", R"({"ids": [1], "id": 1})", R"({"IDS": [1]})", R"({"": [1]})",
                                  R"({"ids": [1], "sub": "bob"})", R"({"ids": [1], "extra": null})"}) {
        std::string error = refused(FeedCall::read, "", body);
        EXPECT_TRUE(contains(error, "unknown key")) << body << ": " << error;
    }
}

TEST(FeedRequestKeys, RefusesTheKeysOfAnotherCall) {
    EXPECT_TRUE(contains(refused(FeedCall::read, "", R"({"ids": [1], "topic": "a"})"), "topic"));
    EXPECT_TRUE(contains(refused(FeedCall::unread, "", R"({"ids": [1], "feed": "all"})"), "feed"));
    EXPECT_TRUE(contains(refused(FeedCall::read, "", R"({"ids": [1], "up_to": 5})"), "up_to"));
    EXPECT_TRUE(contains(refused(FeedCall::read_all, "", R"({"ids": [1]})"), "ids"));
    EXPECT_TRUE(contains(refused(FeedCall::read_all, "", R"({"topic": "a"})"), "topic"));
    EXPECT_TRUE(contains(refused(FeedCall::follow, "", R"({"topic": "a", "ids": [1]})"), "ids"));
    EXPECT_TRUE(contains(refused(FeedCall::unfollow, "", R"({"topic": "a", "feed": "all"})"), "feed"));
}

TEST(FeedRequestKeys, RefusesARepeatedKey) {
    const std::vector<std::pair<FeedCall, std::string>> cases = {
        {FeedCall::read, R"({"ids": [1], "ids": [2]})"},
        {FeedCall::unread, R"({"ids": [1], "ids": [1]})"},
        {FeedCall::read_all, R"({"feed": "all", "feed": "following"})"},
        {FeedCall::read_all, R"({"up_to": null, "up_to": 5})"},
        {FeedCall::follow, R"({"topic": "a", "topic": "b"})"},
        {FeedCall::unfollow, R"({"topic": "a", "topic": "a"})"},
        // Even when the second one would be refused anyway.
        {FeedCall::read, R"({"ids": [1], "ids": "x"})"},
    };
    for (const auto &[call, body] : cases) {
        std::string error = refused(call, "", body);
        EXPECT_TRUE(contains(error, "more than once")) << call_name(call) << " " << body << ": " << error;
    }
}

TEST(FeedRequestKeys, QuotesOnlyAShortPrintablePrefixOfAKey) {
    std::string error = refused(FeedCall::read, "", "{\"" + std::string(3000, 'k') + "\\n\\u0001\": 1}");
    EXPECT_LT(error.size(), 200u) << error;
    EXPECT_TRUE(printable(error)) << error;
    error = refused(FeedCall::read, "", "{\"\\\"\\n\\u00e9\": 1}");
    EXPECT_TRUE(printable(error)) << error;
}

// --- read_all -----------------------------------------------------------------------------------

TEST(FeedRequestReadAll, ReadsTheFeed) {
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"feed": "following"})").feed, "following");
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"feed": "mp_id:7"})").feed, "mp_id:7");
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"feed": "all"})").feed, "all");
    EXPECT_EQ(accepted(FeedCall::read_all, "", "{\"feed\": \"" + std::string(256, 'f') + "\"}").feed,
              std::string(256, 'f'));
}

TEST(FeedRequestReadAll, RefusesAFeedThatIsNotA1To256ByteString) {
    for (std::string_view feed : {"7", "null", "true", "[\"all\"]", "{}", "\"\""}) {
        std::string error = refused(FeedCall::read_all, "", "{\"feed\": " + std::string(feed) + "}");
        EXPECT_TRUE(contains(error, "feed")) << feed << ": " << error;
    }
    EXPECT_TRUE(
        contains(refused(FeedCall::read_all, "", "{\"feed\": " + json_string(std::string(257, 'f')) + "}"), "feed"));
}

TEST(FeedRequestReadAll, ReadsUpTo) {
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"up_to": 0})").up_to, 0);
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"up_to": 12345})").up_to, 12345);
    EXPECT_EQ(accepted(FeedCall::read_all, "", R"({"up_to": 9007199254740991})").up_to, 9007199254740991);
}

TEST(FeedRequestReadAll, ANullUpToMeansNone) {
    EXPECT_FALSE(accepted(FeedCall::read_all, "", R"({"up_to": null})").up_to);
}

TEST(FeedRequestReadAll, ReadsFeedAndUpToTogether) {
    FeedRequest request = accepted(FeedCall::read_all, "", R"({"up_to": 77, "feed": "mp_id:7"})");
    EXPECT_EQ(request.feed, "mp_id:7");
    EXPECT_EQ(request.up_to, 77);
}

TEST(FeedRequestReadAll, RefusesAnUpToThatIsNotAPosition) {
    for (std::string_view up_to :
         {"-1", "-9007199254740992", "1.5", "\"5\"", "true", "[5]", "{}", "9007199254740992", "1e400"}) {
        std::string error = refused(FeedCall::read_all, "", "{\"up_to\": " + std::string(up_to) + "}");
        EXPECT_TRUE(contains(error, "up_to") || contains(error, "whole number")) << up_to << ": " << error;
    }
}

// --- follow / unfollow --------------------------------------------------------------------------

TEST(FeedRequestTopic, ReadsTheTopic) {
    for (FeedCall call : topic_calls) {
        SCOPED_TRACE(call_name(call));
        EXPECT_EQ(accepted(call, "", R"({"topic": "mp_id:7"})").topic, "mp_id:7");
        EXPECT_EQ(accepted(call, "", R"({"topic": "caf\u00e9"})").topic, "caf\xC3\xA9");
        EXPECT_EQ(accepted(call, "", "{\"topic\": " + json_string(std::string(256, 't')) + "}").topic,
                  std::string(256, 't'));
    }
}

TEST(FeedRequestTopic, RefusesABodyWithoutTopic) {
    for (FeedCall call : topic_calls) {
        std::string error = refused(call, "", "{}");
        EXPECT_TRUE(contains(error, "topic")) << call_name(call) << ": " << error;
    }
}

TEST(FeedRequestTopic, RefusesATopicThatIsNotAString) {
    for (std::string_view topic : {"7", "null", "true", "[\"mp_id:7\"]", "{}"}) {
        std::string error = refused(FeedCall::follow, "", "{\"topic\": " + std::string(topic) + "}");
        EXPECT_TRUE(contains(error, "topic")) << topic << ": " << error;
    }
}

TEST(FeedRequestTopic, RefusesAPattern) {
    for (FeedCall call : topic_calls)
        for (std::string_view topic : {"*", "mp_id:*", "*:7", "a**b"}) {
            std::string error = refused(call, "", "{\"topic\": \"" + std::string(topic) + "\"}");
            EXPECT_TRUE(contains(error, "topic")) << call_name(call) << " " << topic << ": " << error;
        }
}

TEST(FeedRequestTopic, RefusesAnInvalidTopic) {
    // Escaped in the JSON: a newline, a tab, an escape, DEL; then fnmatch's other special
    // characters, which valid_topic_pattern refuses too; then the empty topic.
    for (std::string_view topic : {"a\\nb", "a\\tb", "\\u001b[31m", "a\\u007fb", "a?b", "a[b]", "a\\\\b", ""}) {
        std::string error = refused(FeedCall::follow, "", "{\"topic\": \"" + std::string(topic) + "\"}");
        EXPECT_TRUE(contains(error, "topic")) << topic << ": " << error;
    }
}

TEST(FeedRequestTopic, RefusesATopicOf257Bytes) {
    for (FeedCall call : topic_calls)
        EXPECT_TRUE(contains(refused(call, "", "{\"topic\": \"" + std::string(257, 't') + "\"}"), "topic"));
}

// --- may_use_feed / may_follow ------------------------------------------------------------------

TEST(MayUseFeed, AllNeedsTheStarPattern) {
    EXPECT_TRUE(may_use_feed(grant({"*"}), "all"));
    EXPECT_TRUE(may_use_feed(grant({"mp_id:7", "*"}), "all"));
    EXPECT_FALSE(may_use_feed(grant({}), "all"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:*"}), "all"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:*", "user:*"}), "all"));
    // Patterns that would match the word "all" as a topic are not the star.
    EXPECT_FALSE(may_use_feed(grant({"a*"}), "all"));
    EXPECT_FALSE(may_use_feed(grant({"all"}), "all"));
    EXPECT_FALSE(may_use_feed(grant({"**"}), "all"));
}

TEST(MayUseFeed, FollowingIsAlwaysAllowed) {
    EXPECT_TRUE(may_use_feed(grant({}), "following"));
    EXPECT_TRUE(may_use_feed(grant({"mp_id:7"}), "following"));
    EXPECT_TRUE(may_use_feed(grant({"*"}), "following"));
}

TEST(MayUseFeed, ATopicNeedsAMatchingPattern) {
    EXPECT_TRUE(may_use_feed(grant({"mp_id:*"}), "mp_id:7"));
    EXPECT_TRUE(may_use_feed(grant({"mp_id:7"}), "mp_id:7"));
    EXPECT_TRUE(may_use_feed(grant({"user:1", "mp_id:7"}), "mp_id:7"));
    EXPECT_TRUE(may_use_feed(grant({"*"}), "mp_id:7"));
}

TEST(MayUseFeed, ATopicNotMatchedIsRefused) {
    EXPECT_FALSE(may_use_feed(grant({}), "mp_id:7"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:7"}), "mp_id:8"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:7"}), "mp_id:70"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:*"}), "user:1"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:7"}), "MP_ID:7"));
    EXPECT_FALSE(may_use_feed(grant({"mp_id:7"}), "mp_id:*"));
}

TEST(MayFollow, NeedsAPatternThatMatchesTheTopic) {
    EXPECT_TRUE(may_follow(grant({"mp_id:*"}), "mp_id:7"));
    EXPECT_TRUE(may_follow(grant({"mp_id:7"}), "mp_id:7"));
    EXPECT_TRUE(may_follow(grant({"*"}), "user:1"));
    EXPECT_TRUE(may_follow(grant({"user:1", "mp_id:*"}), "mp_id:7"));
}

TEST(MayFollow, RefusesATopicNotGranted) {
    EXPECT_FALSE(may_follow(grant({}), "mp_id:7"));
    EXPECT_FALSE(may_follow(grant({"mp_id:7"}), "mp_id:8"));
    EXPECT_FALSE(may_follow(grant({"mp_id:*"}), "user:1"));
    EXPECT_FALSE(may_follow(grant({"mp_id:7"}), std::string("mp_id:7\0x", 9)));
}

TEST(GrantBound, IsNoBoundForTheStarPattern) {
    EXPECT_EQ(grant_bound(grant({"*"})), std::nullopt);
    EXPECT_EQ(grant_bound(grant({"mp_id:7", "*"})), std::nullopt);
}

TEST(GrantBound, TurnsPatternsIntoEscapedLikePatterns) {
    EXPECT_EQ(grant_bound(grant({})), "{}");
    EXPECT_EQ(grant_bound(grant({"mp_id:7"})), R"({"mp\\_id:7"})");
    EXPECT_EQ(grant_bound(grant({"mp_id:*", "bill:1"})), R"({"mp\\_id:%","bill:1"})");
    EXPECT_EQ(grant_bound(grant({"a%b*"})), R"({"a\\%b%"})");
    EXPECT_EQ(grant_bound(grant({"say:\"hi\",{x}"})), R"({"say:\"hi\",{x}"})");
}

// --- parse_query_params on its own --------------------------------------------------------------

using Values = std::vector<std::optional<std::string>>;

Values params(std::string_view query, const std::vector<std::string_view> &names) {
    auto result = parse_query_params(query, names);
    if (auto *error = std::get_if<std::string>(&result)) {
        ADD_FAILURE() << "refused " << query << ": " << *error;
        return {};
    }
    return std::get<Values>(result);
}

TEST(QueryParams, ReturnsTheValuesInTheOrderOfTheNames) {
    EXPECT_EQ(params("b=2&a=1&c=3", {"a", "b", "z"}), (Values{"1", "2", std::nullopt}));
    EXPECT_EQ(params("", {"a"}), (Values{std::nullopt}));
    EXPECT_EQ(params("a=1", {}), Values{});
}

TEST(QueryParams, AnEmptyValueIsPresent) { EXPECT_EQ(params("a=&b=1", {"a"}), (Values{""})); }

TEST(QueryParams, SplitsEachPairAtItsFirstEquals) { EXPECT_EQ(params("a=b=c", {"a"}), (Values{"b=c"})); }

TEST(QueryParams, DecodesValuesButNotNames) {
    EXPECT_EQ(params("a=x+y%2B%3d%zz%4", {"a"}), (Values{"x y+=%zz%4"}));
    EXPECT_EQ(params("%61=1", {"a", "%61"}), (Values{std::nullopt, "1"}));
}

TEST(QueryParams, SemicolonsDoNotSeparate) {
    EXPECT_EQ(params("a=1;b=2", {"a", "b"}), (Values{"1;b=2", std::nullopt}));
}

TEST(QueryParams, RefusesARepeatedKnownName) {
    auto result = parse_query_params("a=1&a=2", {"a"});
    ASSERT_TRUE(std::holds_alternative<std::string>(result));
    EXPECT_TRUE(contains(std::get<std::string>(result), "a"));
}

TEST(QueryParams, RefusesNulAndOversizedQueries) {
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_query_params("a=%00", {"a"})));
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_query_params(std::string_view("a=\0", 3), {"a"})));
    EXPECT_TRUE(
        std::holds_alternative<std::string>(parse_query_params("a=" + std::string(max_query_bytes - 1, 'a'), {"a"})));
}

} // namespace
} // namespace pgfeed::notifier
