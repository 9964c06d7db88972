#include "stream_request.hpp"

#include "auth.hpp"
#include "query_params.hpp"
#include "text.hpp"

namespace pgfeed::notifier {

namespace {

// At most this much of a client's input goes back into an error message.
constexpr std::size_t quoted_bytes = 40;

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
    auto parsed = parse_query_params(query, {"access_token", "topics", "lastEventId"});
    if (auto *error = std::get_if<std::string>(&parsed))
        return std::move(*error);
    enum { token_param, topics_param, last_event_id_param };
    const auto &values = std::get<std::vector<std::optional<std::string>>>(parsed);

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
