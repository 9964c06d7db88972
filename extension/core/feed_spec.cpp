#include "feed_spec.hpp"

namespace pgfeed {

std::string topic_error(const std::string &text) {
    if (text.size() > kMaxTopicBytes)
        return "topic is longer than " + std::to_string(kMaxTopicBytes) + " bytes";
    auto colon = text.find(':');
    if (colon == std::string::npos)
        return "topic \"" + text + "\" has no ':' between column and value";
    if (colon == 0)
        return "topic \"" + text + "\" has no column name before ':'";
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f)
            return "topic contains a control character";
    return {};
}

std::string topic_column(const std::string &topic) { return topic.substr(0, topic.find(':')); }

std::string feed_spec_error(const std::string &text) {
    if (text == "all" || text == "following")
        return {};
    if (text.find(':') == std::string::npos)
        return "unknown feed \"" + text + "\"";
    return topic_error(text);
}

FeedSpec parse_feed_spec(const std::string &text) {
    if (text == "all")
        return {FeedSpec::Kind::All, {}};
    if (text == "following")
        return {FeedSpec::Kind::Following, {}};
    return {FeedSpec::Kind::Topic, text};
}

} // namespace pgfeed
