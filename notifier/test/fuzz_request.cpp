// libFuzzer target over what a GET /v1/stream request says (stream_request.hpp), what a call of
// the HTTP feed API asks for (feed_request.hpp) and the CORS allowlist (cors.hpp). Built and run by
// notifier/test/fuzz.sh. token_from_request and verify_token are fuzzed by fuzz_auth.
//
// Each input drives one of five checks:
// - raw: a Last-Event-ID header (or none) and a query string from the input. Whatever is accepted
//   obeys the header's rules (topics valid and bounded, the id canonical and from the header when
//   the header has one); whatever is refused has a short printable message;
// - round trip: topics, a token and an id from the input, percent-encoded into a query between
//   junk parameters, must come back as they were;
// - feed raw: a call, a query string and a body (random bytes, or pairs and JSON made of the API's
//   names, edge numbers and random text). Whatever is accepted obeys the header's bounds (limit
//   1..1000; 1..1000 ids below 2^53 in magnitude; a feed of 1..256 bytes; a topic that is a
//   valid pattern without '*'; positions not negative; only the call's own fields set; no body on a
//   read); whatever is refused has a short printable message; nothing throws;
// - feed round trip: a valid request of a random call, written as a query and a JSON body, must
//   come back as it was;
// - CORS: a comma list and an Origin. An accepted list holds only normalized http(s) origins, each
//   allowed as itself and parsed back unchanged; an allowed Origin is never "null" or a wildcard.
#include "auth.hpp"
#include "cors.hpp"
#include "feed_request.hpp"
#include "query_params.hpp"
#include "stream_request.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace pgfeed::notifier;

namespace {

void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_request: %s\n", what);
        std::abort();
    }
}

std::string_view trim(std::string_view text) {
    std::size_t begin = text.find_first_not_of(" \t");
    if (begin == std::string_view::npos)
        return {};
    return text.substr(begin, text.find_last_not_of(" \t") - begin + 1);
}

bool printable(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// Random bytes seldom spell a parameter's name: pairs with known names and random values, now and
// then without '=' or with an empty value, joined by '&' or (rarely) something else.
std::string structured_query(FuzzedDataProvider &input) {
    const char *names[] = {"topics", "access_token", "lastEventId", "_", "Topics", ""};
    std::string query;
    for (int count = input.ConsumeIntegralInRange(0, 6); count > 0; --count) {
        if (!query.empty())
            query += input.ConsumeIntegralInRange(0, 15) == 0 ? input.ConsumeRandomLengthString(2) : "&";
        const char *name = names[input.ConsumeIntegralInRange(0, 5)];
        query += *name ? name : input.ConsumeRandomLengthString(8);
        if (input.ConsumeIntegralInRange(0, 15) != 0)
            query += "=";
        query += input.ConsumeRandomLengthString(input.ConsumeBool() ? 64 : max_query_bytes / 2);
    }
    return query;
}

void fuzz_raw(FuzzedDataProvider &input) {
    std::optional<std::string> header;
    if (input.ConsumeBool())
        header = input.ConsumeRandomLengthString(64);
    std::string query =
        input.ConsumeBool() ? input.ConsumeRandomLengthString(max_query_bytes + 64) : structured_query(input);
    std::optional<std::string_view> header_view;
    if (header)
        header_view = *header;

    auto result = parse_stream_request(query, header_view);
    if (auto *error = std::get_if<std::string>(&result)) {
        check(!error->empty() && error->size() <= 200, "an error message empty or too long");
        check(printable(*error), "an error message with unprintable bytes");
        return;
    }
    const StreamRequest &request = std::get<StreamRequest>(result);
    check(query.size() <= max_query_bytes, "an oversized query accepted");
    check(query.find('\0') == std::string::npos, "a NUL byte accepted");
    check(!request.access_token || !request.access_token->empty(), "an empty token kept");
    check(request.topics.size() <= max_granted_topics, "too many topics");
    for (const std::string &topic : request.topics)
        check(valid_topic_pattern(topic) && topic.find(',') == std::string::npos, "an invalid topic accepted");
    std::string_view header_id = header ? trim(*header) : std::string_view();
    if (!header_id.empty())
        check(request.last_event_id && to_string(*request.last_event_id) == header_id,
              "the header's id not taken as it is");
    if (request.last_event_id)
        check(parse_stream_id(to_string(*request.last_event_id)) == request.last_event_id, "an id that does not "
                                                                                           "round-trip");
}

// A NUL is the one byte a query may not carry, even escaped (libevent would cut the value there).
std::string without_nul(std::string text) {
    text.erase(std::remove(text.begin(), text.end(), '\0'), text.end());
    return text;
}

// Every byte but unreserved ones as %XX, with upper or lower case hex, and a space as '+' or %20.
std::string encode(std::string_view text, FuzzedDataProvider &input) {
    const char *hex = input.ConsumeBool() ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out += c;
        } else if (c == ' ' && input.ConsumeBool()) {
            out += '+';
        } else {
            out += '%';
            out += hex[byte >> 4];
            out += hex[byte & 15];
        }
    }
    return out;
}

void fuzz_round_trip(FuzzedDataProvider &input) {
    std::vector<std::string> topics;
    for (int count = input.ConsumeIntegralInRange(0, 4); count > 0; --count) {
        std::string topic = input.ConsumeRandomLengthString(40);
        if (valid_topic_pattern(topic) && topic.find(',') == std::string::npos)
            topics.push_back(topic);
    }
    std::string token = without_nul(input.ConsumeRandomLengthString(64));
    std::optional<StreamId> id;
    if (input.ConsumeBool())
        id = StreamId{input.ConsumeIntegral<uint64_t>(), input.ConsumeIntegral<uint64_t>()};

    std::string list;
    for (const std::string &topic : topics)
        list += (list.empty() ? "" : ",") + topic;
    std::vector<std::string> pairs = {"topics=" + encode(list, input), "access_token=" + encode(token, input)};
    if (id)
        pairs.push_back("lastEventId=" + encode(to_string(*id), input));
    for (int count = input.ConsumeIntegralInRange(0, 3); count > 0; --count)
        pairs.push_back("_" + std::to_string(count) + "=" +
                        encode(without_nul(input.ConsumeRandomLengthString(16)), input));
    std::string query;
    for (const std::string &pair : pairs)
        query += (query.empty() ? "" : "&") + pair;

    auto result = parse_stream_request(query, std::nullopt);
    if (auto *error = std::get_if<std::string>(&result)) {
        std::fprintf(stderr, "query %s refused: %s\n", query.c_str(), error->c_str());
        check(false, "a well-formed query refused");
    }
    const StreamRequest &request = std::get<StreamRequest>(result);
    check(request.topics == topics, "the topics do not come back");
    check(request.access_token.value_or("") == token, "the token does not come back");
    check(request.last_event_id == id, "the id does not come back");
}

// --- the HTTP feed API ----------------------------------------------------------------------------

constexpr FeedCall feed_calls[] = {FeedCall::page,     FeedCall::unread_count, FeedCall::read,   FeedCall::unread,
                                   FeedCall::read_all, FeedCall::follows,      FeedCall::follow, FeedCall::unfollow};
constexpr int64_t max_exact_id = (int64_t(1) << 53) - 1; // the largest magnitude accepted

FeedCall pick_call(FuzzedDataProvider &input) {
    return feed_calls[input.ConsumeIntegralInRange<std::size_t>(0, std::size(feed_calls) - 1)];
}

// Numbers at the edges of what the API takes, other integers, and random text.
std::string number_text(FuzzedDataProvider &input) {
    static const char *edges[] = {"0",
                                  "1",
                                  "-1",
                                  "20",
                                  "1000",
                                  "1001",
                                  "9007199254740991",
                                  "9007199254740992",
                                  "9007199254740993",
                                  "9007199254740994",
                                  "-9007199254740992",
                                  "-9007199254740993",
                                  "999999999999999999",
                                  "9223372036854775807",
                                  "18446744073709551616",
                                  "1.5",
                                  "1.0",
                                  "1e3",
                                  "1e400",
                                  "-0",
                                  "01",
                                  "+5",
                                  " 5",
                                  "0x10",
                                  "NaN",
                                  ""};
    switch (input.ConsumeIntegralInRange(0, 3)) {
    case 0:
        return edges[input.ConsumeIntegralInRange<std::size_t>(0, std::size(edges) - 1)];
    case 1:
        return std::to_string(input.ConsumeIntegral<int64_t>());
    case 2:
        return std::to_string(input.ConsumeIntegralInRange<int64_t>(-max_exact_id, max_exact_id));
    default:
        return input.ConsumeRandomLengthString(24);
    }
}

// Pairs with the feed calls' names (and a few near misses), values numbers, flags or random text,
// sometimes percent-encoded.
std::string feed_query(FuzzedDataProvider &input) {
    static const char *names[] = {"access_token", "feed", "limit", "before", "unread_only", "after", "_", "Limit", ""};
    static const char *flags[] = {"true", "false", "1", "0", "TRUE", "yes", ""};
    std::string query;
    for (int count = input.ConsumeIntegralInRange(0, 7); count > 0; --count) {
        if (!query.empty())
            query += input.ConsumeIntegralInRange(0, 15) == 0 ? input.ConsumeRandomLengthString(2) : "&";
        const char *name = names[input.ConsumeIntegralInRange<std::size_t>(0, std::size(names) - 1)];
        query += *name ? name : input.ConsumeRandomLengthString(8);
        if (input.ConsumeIntegralInRange(0, 15) != 0)
            query += "=";
        std::string value;
        switch (input.ConsumeIntegralInRange(0, 3)) {
        case 0:
            value = number_text(input);
            break;
        case 1:
            value = flags[input.ConsumeIntegralInRange<std::size_t>(0, std::size(flags) - 1)];
            break;
        case 2:
            value = std::string(input.ConsumeIntegralInRange(255, 258), 'f');
            break;
        default:
            value = input.ConsumeRandomLengthString(input.ConsumeBool() ? 64 : max_query_bytes / 2);
            break;
        }
        query += input.ConsumeBool() ? encode(without_nul(value), input) : value;
    }
    return query;
}

// A JSON string's text: random bytes, sometimes with escapes (\u0000 among them), or a topic-like
// name, or one at the length limit.
std::string json_string_text(FuzzedDataProvider &input) {
    static const char *samples[] = {"mp_id:7", "mp_id:*", "*",        "all",       "following",  "",
                                    "a\\nb",   "\\u0000", "a\\u0000", "\\\\u0000", "caf\\u00e9", "\\ud800",
                                    "a?b",     "a[b",     "a\\\\b",   "\\u007f",   "\\\"",       "user"};
    switch (input.ConsumeIntegralInRange(0, 3)) {
    case 0:
        return samples[input.ConsumeIntegralInRange<std::size_t>(0, std::size(samples) - 1)];
    case 1:
        return std::string(input.ConsumeIntegralInRange(255, 258), 't');
    default:
        return input.ConsumeRandomLengthString(48);
    }
}

std::string json_value(FuzzedDataProvider &input, int depth);

// An array, at times of about max_ids_per_call numbers (made, not consumed, to keep inputs short).
std::string json_array(FuzzedDataProvider &input, int depth) {
    std::string out = "[";
    if (input.ConsumeIntegralInRange(0, 7) == 0) {
        std::size_t count = max_ids_per_call - 2 + input.ConsumeIntegralInRange<std::size_t>(0, 3);
        int64_t first = input.ConsumeIntegralInRange<int64_t>(-max_exact_id, max_exact_id);
        for (std::size_t i = 0; i < count; ++i)
            out += (i ? "," : "") + std::to_string(first / 2 + static_cast<int64_t>(i));
    } else {
        for (int count = input.ConsumeIntegralInRange(0, 5), i = 0; i < count; ++i)
            out += (i ? "," : "") + json_value(input, depth + 1);
    }
    return out + "]";
}

std::string json_object(FuzzedDataProvider &input, int depth) {
    static const char *keys[] = {"ids", "ids", "feed", "up_to", "topic", "topic", "user", "id", "", "ids\\u0000"};
    std::string out = input.ConsumeBool() ? "{" : " \n{ ";
    for (int count = input.ConsumeIntegralInRange(0, 3), i = 0; i < count; ++i) {
        const char *key = keys[input.ConsumeIntegralInRange<std::size_t>(0, std::size(keys) - 1)];
        out += i ? "," : "";
        out += "\"" + (*key ? std::string(key) : json_string_text(input)) + "\":" + json_value(input, depth + 1);
    }
    return out + (input.ConsumeBool() ? "}" : " }\n");
}

std::string json_value(FuzzedDataProvider &input, int depth) {
    switch (input.ConsumeIntegralInRange(0, depth > 3 ? 3 : 6)) {
    case 0:
        return number_text(input);
    case 1:
        return "\"" + json_string_text(input) + "\"";
    case 2: {
        static const char *literals[] = {"null", "true", "false"};
        return literals[input.ConsumeIntegralInRange(0, 2)];
    }
    case 3:
        return input.ConsumeRandomLengthString(8);
    case 4:
    case 5:
        return json_array(input, depth);
    default:
        return json_object(input, depth);
    }
}

// A JSON object of the API's keys, now and then followed or preceded by junk.
std::string feed_body(FuzzedDataProvider &input) {
    std::string body = json_object(input, 0);
    switch (input.ConsumeIntegralInRange(0, 7)) {
    case 0:
        return body + input.ConsumeRandomLengthString(8);
    case 1:
        return input.ConsumeRandomLengthString(4) + body;
    case 2:
        return body.substr(0, input.ConsumeIntegralInRange<std::size_t>(0, body.size()));
    default:
        return body;
    }
}

// What holds of every accepted request, whatever its call.
void check_accepted(FeedCall call, std::string_view query, std::string_view body, const FeedRequest &request) {
    check(query.size() <= max_query_bytes, "feed: an oversized query accepted");
    check(query.find('\0') == std::string::npos, "feed: a NUL byte in the query accepted");
    check(!request.access_token || !request.access_token->empty(), "feed: an empty token kept");
    check(!request.feed.empty() && request.feed.size() <= 256, "feed: a feed name empty or too long");
    check(request.limit >= 1 && request.limit <= max_page_size, "feed: a limit out of 1..1000");
    check(call == FeedCall::page || request.limit == default_page_size, "feed: a limit set on another call");
    check(call == FeedCall::page || !request.unread_only, "feed: unread_only set on another call");
    check(!request.before || (call == FeedCall::page && *request.before >= 0), "feed: a bad before");
    check(!request.after || (call == FeedCall::unread_count && *request.after >= 0), "feed: a bad after");
    check(!request.up_to || (call == FeedCall::read_all && *request.up_to >= 0 && *request.up_to <= max_exact_id),
          "feed: a bad up_to");
    if (call == FeedCall::read || call == FeedCall::unread) {
        check(!request.ids.empty() && request.ids.size() <= max_ids_per_call, "feed: ids count out of 1..1000");
        for (int64_t id : request.ids)
            check(id >= -max_exact_id && id <= max_exact_id, "feed: an id of 2^53 or beyond");
    } else {
        check(request.ids.empty(), "feed: ids set on another call");
    }
    if (call == FeedCall::follow || call == FeedCall::unfollow)
        check(valid_topic_pattern(request.topic) && request.topic.find('*') == std::string::npos,
              "feed: an invalid topic accepted");
    else
        check(request.topic.empty(), "feed: a topic set on another call");
    if (!feed_call_writes(call))
        check(trim(body).empty(), "feed: a body accepted on a read");
    else
        check(!trim(body).empty(), "feed: a blank body accepted on a write");
}

void fuzz_feed_raw(FuzzedDataProvider &input) {
    const FeedCall call = pick_call(input);
    std::string query = input.ConsumeIntegralInRange(0, 3) == 0 ? input.ConsumeRandomLengthString(max_query_bytes + 64)
                                                                : feed_query(input);
    std::string body;
    switch (input.ConsumeIntegralInRange(0, 4)) {
    case 0:
        body = input.ConsumeRandomLengthString(4096);
        break;
    case 1:
        body = std::string(input.ConsumeIntegralInRange(0, 3), input.ConsumeBool() ? ' ' : '\t');
        break;
    default:
        body = feed_body(input);
        break;
    }

    auto result = parse_feed_request(call, query, body);
    if (auto *error = std::get_if<std::string>(&result)) {
        check(!error->empty() && error->size() <= 200, "feed: an error message empty or too long");
        check(printable(*error), "feed: an error message with unprintable bytes");
        return;
    }
    check_accepted(call, query, body, std::get<FeedRequest>(result));
}

// A feed name that may be refused only by pgfeed: no control characters, and no backslash, since
// the body check refuses the six characters \u0000 even when their backslash is escaped
// ("\\u0000", no NUL at all), a false refusal left out here.
std::string feed_name(FuzzedDataProvider &input, const char *if_empty) {
    std::string feed = input.ConsumeRandomLengthString(256);
    feed.erase(std::remove_if(feed.begin(), feed.end(),
                              [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\'; }),
               feed.end());
    return feed.empty() ? if_empty : feed;
}

// `text` as the inside of a JSON string: quotes, backslashes and control characters escaped.
std::string json_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char escape[8];
            std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
            out += escape;
        } else {
            out += c;
        }
    }
    return out;
}

// lo, hi or anything between: the bounds come up far more often than by chance.
template <typename T> T bound_or_between(FuzzedDataProvider &input, T lo, T hi) {
    switch (input.ConsumeIntegralInRange(0, 3)) {
    case 0:
        return lo;
    case 1:
        return hi;
    default:
        return input.ConsumeIntegralInRange<T>(lo, hi);
    }
}

void fuzz_feed_round_trip(FuzzedDataProvider &input) {
    const FeedCall call = pick_call(input);
    FeedRequest sent;
    std::string token = without_nul(input.ConsumeRandomLengthString(64));
    if (!token.empty())
        sent.access_token = token;
    std::vector<std::string> pairs = {"access_token=" + encode(token, input)};
    std::string body;
    switch (call) {
    case FeedCall::page:
        sent.limit = bound_or_between(input, 1, max_page_size);
        sent.before = bound_or_between<int64_t>(input, 0, 999999999999999999);
        sent.unread_only = input.ConsumeBool();
        pairs.push_back("limit=" + std::to_string(sent.limit));
        pairs.push_back("before=" + std::to_string(*sent.before));
        pairs.push_back(std::string("unread_only=") + (sent.unread_only ? "true" : "0"));
        [[fallthrough]];
    case FeedCall::unread_count:
        sent.feed = feed_name(input, "all");
        pairs.push_back("feed=" + encode(sent.feed, input));
        if (call == FeedCall::unread_count) {
            sent.after = bound_or_between<int64_t>(input, 0, 999999999999999999);
            pairs.push_back("after=" + std::to_string(*sent.after));
        }
        break;
    case FeedCall::read:
    case FeedCall::unread:
        for (std::size_t count = bound_or_between<std::size_t>(input, 1, max_ids_per_call); count > 0; --count)
            sent.ids.push_back(bound_or_between(input, -max_exact_id, max_exact_id));
        for (int64_t id : sent.ids)
            body += (body.empty() ? "{\"ids\": [" : ", ") + std::to_string(id);
        body += "]}";
        break;
    case FeedCall::read_all:
        sent.feed = feed_name(input, "following");
        if (input.ConsumeBool())
            sent.up_to = bound_or_between<int64_t>(input, 0, max_exact_id);
        body = "{\"feed\": \"" + json_escape(sent.feed) +
               "\", \"up_to\": " + (sent.up_to ? std::to_string(*sent.up_to) : std::string("null")) + "}";
        break;
    case FeedCall::follow:
    case FeedCall::unfollow:
        sent.topic = input.ConsumeRandomLengthString(256);
        if (!valid_topic_pattern(sent.topic) || sent.topic.find('*') != std::string::npos)
            sent.topic = "mp_id:7";
        body = "{\"topic\": \"" + json_escape(sent.topic) + "\"}";
        break;
    case FeedCall::follows:
        break;
    }
    std::string query;
    for (const std::string &pair : pairs)
        query += (query.empty() ? "" : "&") + pair;

    auto result = parse_feed_request(call, query, body);
    if (auto *error = std::get_if<std::string>(&result)) {
        std::fprintf(stderr, "query %s body %s refused: %s\n", query.c_str(), body.c_str(), error->c_str());
        check(false, "feed: a well-formed request refused");
    }
    const FeedRequest &request = std::get<FeedRequest>(result);
    check_accepted(call, query, body, request);
    check(request.access_token == sent.access_token, "feed: the token does not come back");
    check(request.feed == sent.feed, "feed: the feed does not come back");
    check(request.limit == sent.limit, "feed: the limit does not come back");
    check(request.before == sent.before, "feed: before does not come back");
    check(request.unread_only == sent.unread_only, "feed: unread_only does not come back");
    check(request.after == sent.after, "feed: after does not come back");
    check(request.ids == sent.ids, "feed: the ids do not come back");
    check(request.up_to == sent.up_to, "feed: up_to does not come back");
    check(request.topic == sent.topic, "feed: the topic does not come back");
}

void fuzz_cors(FuzzedDataProvider &input) {
    // Random bytes seldom spell a scheme; start some inputs with one to reach the host and port rules.
    const char *schemes[] = {"", "http://", "https://", "HTTP://"};
    std::string list = schemes[input.ConsumeIntegralInRange(0, 3)] + input.ConsumeRandomLengthString(256);
    std::string origin = schemes[input.ConsumeIntegralInRange(0, 3)] + input.ConsumeRandomLengthString(128);
    std::vector<std::string> allowlist;
    try {
        allowlist = parse_cors_origins(list);
    } catch (const std::invalid_argument &e) {
        check(std::string_view(e.what()).size() < 400, "a CORS error message too long");
        // Still try the Origin against a list made by hand.
        allowlist = {"http://localhost:3000", "https://app.example.com"};
    }
    for (const std::string &entry : allowlist) {
        check(entry.rfind("http://", 0) == 0 || entry.rfind("https://", 0) == 0, "an entry with another scheme");
        check(entry.find_first_of("*/?#@ ", entry.find("://") + 3) == std::string::npos, "an entry not an origin");
        check(std::none_of(entry.begin(), entry.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
              "an entry not lowercased");
        check(origin_allowed(allowlist, entry), "an entry not allowed as itself");
        check(parse_cors_origins(entry) == std::vector<std::string>{entry}, "an entry not normalized");
    }
    if (origin_allowed(allowlist, origin)) {
        check(origin != "null" && origin.find('*') == std::string::npos, "null or a wildcard allowed");
        check(origin.find_first_of("/?#@ ", origin.find("://") + 3) == std::string::npos, "a non-origin allowed");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzedDataProvider input(data, size);
    switch (input.ConsumeIntegralInRange(0, 4)) {
    case 0:
        fuzz_raw(input);
        break;
    case 1:
        fuzz_round_trip(input);
        break;
    case 2:
        fuzz_feed_raw(input);
        break;
    case 3:
        fuzz_feed_round_trip(input);
        break;
    default:
        fuzz_cors(input);
        break;
    }
    return 0;
}
