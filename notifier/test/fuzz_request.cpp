// libFuzzer target over what a GET /v1/stream request says (stream_request.hpp) and the CORS
// allowlist (cors.hpp). Built and run by notifier/test/fuzz.sh. token_from_request and verify_token
// are fuzzed by fuzz_auth.
//
// Each input drives three checks:
// - raw: a Last-Event-ID header (or none) and a query string from the input. Whatever is accepted
//   obeys the header's rules (topics valid and bounded, the id canonical and from the header when
//   the header has one); whatever is refused has a short printable message;
// - round trip: topics, a token and an id from the input, percent-encoded into a query between
//   junk parameters, must come back as they were;
// - CORS: a comma list and an Origin. An accepted list holds only normalized http(s) origins, each
//   allowed as itself and parsed back unchanged; an allowed Origin is never "null" or a wildcard.
#include "auth.hpp"
#include "cors.hpp"
#include "query_params.hpp"
#include "stream_request.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

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
    switch (input.ConsumeIntegralInRange(0, 2)) {
    case 0:
        fuzz_raw(input);
        break;
    case 1:
        fuzz_round_trip(input);
        break;
    default:
        fuzz_cors(input);
        break;
    }
    return 0;
}
