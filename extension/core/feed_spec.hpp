// What a caller asked for when naming a feed: 'all', 'following', or one topic 'column:value'.
// Pure C++ so the parser is unit-tested and fuzzed without a server.
#pragma once

#include <string>

namespace pgfeed {

struct FeedSpec {
    enum class Kind { All, Following, Topic };
    Kind kind;
    std::string topic; // "column:value" when kind == Topic
};

// Empty when `text` is a valid feed name; otherwise why it is not.
std::string feed_spec_error(const std::string &text);
// Requires feed_spec_error(text) to be empty.
FeedSpec parse_feed_spec(const std::string &text);
// Empty when `text` is a well-formed topic; otherwise why it is not. The value may be empty: a row
// whose topic column holds '' belongs to the topic 'column:'.
std::string topic_error(const std::string &text);
// The column part of a well-formed topic.
std::string topic_column(const std::string &topic);

constexpr std::size_t kMaxTopicBytes = 256;
constexpr std::size_t kMaxUserKeyBytes = 256;

} // namespace pgfeed
