#include "stream_request.hpp"

#include "text.hpp"

#include "auth.hpp"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <array>

namespace pgfeed::notifier {

namespace {

// At most this much of a client's input goes back into an error message.
constexpr std::size_t quoted_bytes = 40;

// The start of `text` in quotes, for an error message: only printable ASCII, so a client cannot
// put control characters or broken UTF-8 into our logs or JSON.
bool contains_nul_escape(std::string_view query) {
    for (std::size_t at = query.find('%'); at != std::string_view::npos; at = query.find('%', at + 1))
        if (query.substr(at + 1, 2) == "00")
            return true;
    return false;
}

// The parsed pairs, freed however parsing ends. Initialized as TAILQ_INIT would (libevent does not
// export it) so that clearing is safe even before evhttp_parse_query_str runs.
struct Query {
    evkeyvalq pairs;
    Query() {
        pairs.tqh_first = nullptr;
        pairs.tqh_last = &pairs.tqh_first;
    }
    ~Query() { evhttp_clear_headers(&pairs); }
    Query(const Query &) = delete;
    Query &operator=(const Query &) = delete;
};

std::variant<std::vector<std::string>, std::string> parse_topics(std::string_view list) {
    std::vector<std::string> topics;
    if (list.empty())
        return topics;
    for (std::string_view topic : split_commas(list)) {
        if (topic.empty())
            return std::string("topics has an empty entry (separate topics with single commas)");
        if (topics.size() == max_granted_topics)
            return "topics names more than " + std::to_string(max_granted_topics) + " topics";
        if (!valid_topic_pattern(topic))
            return "topic " + quoted_prefix(topic, quoted_bytes) +
                   " is not valid (1 to 256 bytes, no control characters, no ?, [ or \\)";
        topics.emplace_back(topic);
    }
    return topics;
}

} // namespace

std::variant<StreamRequest, std::string> parse_stream_request(std::string_view query,
                                                              std::optional<std::string_view> last_event_id_header) {
    if (query.size() > max_stream_query_bytes)
        return "the query string is longer than " + std::to_string(max_stream_query_bytes) + " bytes";
    if (query.find('\0') != std::string_view::npos || contains_nul_escape(query))
        return std::string("the query string contains a NUL byte (%00)");

    Query parsed;
    if (evhttp_parse_query_str(std::string(query).c_str(), &parsed.pairs) != 0)
        return std::string("the query string is not a list of name=value pairs separated by &");

    // Each known parameter's value, nullopt until seen, so a second one is caught.
    enum { token_param, topics_param, last_event_id_param };
    constexpr std::array<std::string_view, 3> names = {"access_token", "topics", "lastEventId"};
    std::array<std::optional<std::string_view>, 3> values;
    for (const evkeyval *pair = parsed.pairs.tqh_first; pair != nullptr; pair = pair->next.tqe_next) {
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (pair->key != names[i])
                continue;
            if (values[i])
                return "the parameter " + std::string(names[i]) + " is given more than once";
            values[i] = pair->value;
        }
    }

    StreamRequest request;
    if (values[token_param] && !values[token_param]->empty())
        request.access_token = std::string(*values[token_param]);
    if (values[topics_param]) {
        auto list = parse_topics(*values[topics_param]);
        if (auto *error = std::get_if<std::string>(&list))
            return std::move(*error);
        request.topics = std::get<std::vector<std::string>>(std::move(list));
    }

    std::string_view header = last_event_id_header ? trim_blanks(*last_event_id_header) : std::string_view();
    if (!header.empty()) {
        request.last_event_id = parse_stream_id(header);
        if (!request.last_event_id)
            return std::string("Last-Event-ID is not a stream id such as 1700000000000-0");
    } else if (values[last_event_id_param] && !values[last_event_id_param]->empty()) {
        request.last_event_id = parse_stream_id(*values[last_event_id_param]);
        if (!request.last_event_id)
            return std::string("lastEventId is not a stream id such as 1700000000000-0");
    }
    return request;
}

} // namespace pgfeed::notifier
