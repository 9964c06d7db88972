// What a call of the HTTP feed API asks for (GET /v1/feed, POST /v1/read, ...), read from its
// query string and JSON body. Pure parsing, no I/O: the gateway hands in the raw text and gets back
// the request or a short message for the client's 400 body. Which user it concerns is never read
// from here: that is the token's `sub`.
#pragma once

#include "auth.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgfeed::notifier {

enum class FeedCall {
    page,         // GET  /v1/feed?feed=&limit=&before=&unread_only=
    unread_count, // GET  /v1/unread_count?feed=&after=
    read,         // POST /v1/read      {"ids": [...]}
    unread,       // POST /v1/unread    {"ids": [...]}
    read_all,     // POST /v1/read_all  {"feed": ..., "up_to": ...}
    follows,      // GET  /v1/follows
    follow,       // POST /v1/follow    {"topic": ...}
    unfollow,     // POST /v1/unfollow  {"topic": ...}
};

// The call served at `path`, if any.
std::optional<FeedCall> feed_call_at(std::string_view path);
// Whether the call changes state (POST with a JSON body) or reads it (GET, no body).
bool feed_call_writes(FeedCall call);

inline constexpr int default_page_size = 20;
inline constexpr int max_page_size = 1000;
inline constexpr std::size_t max_ids_per_call = 1000;

struct FeedRequest {
    std::optional<std::string> access_token; // ?access_token=, as for /v1/stream
    std::string feed = "all";                // 'all', 'following' or a topic; pgfeed checks its syntax
    int limit = default_page_size;           // page: 1..max_page_size
    std::optional<int64_t> before;           // page: positions below this
    bool unread_only = false;                // page
    std::optional<int64_t> after;            // unread_count: also count the items above this
    std::vector<int64_t> ids;                // read, unread: 1..max_ids_per_call activity ids
    std::optional<int64_t> up_to;            // read_all: a position
    std::string topic;                       // follow, unfollow
};

// `query` is the raw query string (query_params.hpp); `body` the request body, which must be empty
// for reads and a JSON object for writes. Each call takes only its own parameters and keys: an
// unknown key in a body is refused (it is usually a mistake, such as {"id": 1} or {"user": ...});
// unknown query parameters are ignored, as for /v1/stream.
//
// Numbers: positions and limits in the query are decimal digits only; numbers in a body are
// integers written without fraction or exponent, below 2^53 in magnitude (beyond, a JSON number
// loses digits in most clients). Positions are never negative. Booleans in the query are
// true/false/1/0. A body holds one JSON object (blanks around it), no NUL character (escaped or
// raw), and feeds hold no control characters.
std::variant<FeedRequest, std::string> parse_feed_request(FeedCall call, std::string_view query, std::string_view body);

// Whether the token may read or mark `feed`: a topic its patterns match; 'all' (every topic) only
// with the pattern "*"; 'following' always, bounded by the grant (see grant_bound).
bool may_use_feed(const Grant &grant, const std::string &feed);
// Whether the token grants `topic`, to follow or unfollow.
bool may_follow(const Grant &grant, const std::string &topic);
// The grant as pgfeed's `within` argument, a text[] literal of LIKE patterns (`*` is `%`, `%` and
// `_` escaped), so that every call sees and changes only topics of the grant ('following' too,
// which the user may have been given through SQL); nullopt for a grant of "*".
std::optional<std::string> grant_bound(const Grant &grant);

} // namespace pgfeed::notifier
