// What a GET /v1/stream request asks for, read from its query string and Last-Event-ID header.
// Pure parsing, no I/O: the gateway hands in the raw query and the header, and gets back either
// the request or a short message for the client's 400 body. The token is only carried here; it is
// chosen among the sources by token_from_request and checked by verify_token (auth.hpp).
#pragma once

#include "stream_id.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgfeed::notifier {

struct StreamRequest {
    // ?access_token=, percent-decoded; nullopt when absent or empty.
    std::optional<std::string> access_token;
    // ?topics=a,b as given (order and duplicates kept), each a valid_topic_pattern; empty when the
    // parameter is absent or empty, which means every topic the token grants (narrow_topics).
    std::vector<std::string> topics;
    // Where to resume: the Last-Event-ID header, else ?lastEventId=; nullopt when neither has one.
    std::optional<StreamId> last_event_id;
};

// `query` is the raw query string after '?' (may be empty), split as parse_query_params says
// (query_params.hpp); `last_event_id_header` the header's value if the request has one. Known
// names: access_token, topics, lastEventId.
//
// topics: comma-separated, at most max_granted_topics entries, each a valid_topic_pattern
// (auth.hpp); an empty entry ("a,,b", "a,") is refused; "topics=" asks for nothing in particular.
//
// Last-Event-ID: a non-empty header (spaces and tabs around it ignored) wins over ?lastEventId=,
// since EventSource sends the header when it reconnects while the query form survives a page
// reload; ?lastEventId= is then not looked at. An empty header, or an empty ?lastEventId=, counts
// as none. The one used must be a strict "<ms>-<seq>" (parse_stream_id), else the request is
// refused.
//
// The error messages say what is wrong in a sentence and quote at most a short prefix of the
// input, with anything but printable ASCII replaced by '?'; they never quote the token.
std::variant<StreamRequest, std::string> parse_stream_request(std::string_view query,
                                                              std::optional<std::string_view> last_event_id_header);

} // namespace pgfeed::notifier
