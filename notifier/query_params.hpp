// The named parameters of a URL's query string, for the endpoints that take some. Pure parsing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pgfeed::notifier {

// Longer query strings are refused before anything parses them.
inline constexpr std::size_t max_query_bytes = 16384;

// The value of each of `names` in `query` (the raw text after '?', possibly empty), in the order of
// `names`: nullopt when absent. Or a short message for the client's 400 body.
//
// The query is split by libevent's evhttp_parse_query_str, which
//   - splits on '&' (not ';') and each pair at its first '=' ("a=b=c" is a -> "b=c"); a pair
//     without '=' ("?x"), an empty name ("?=x"), or an empty pair ("?&a=1", "?a=1&&b=2") makes it
//     refuse the whole query, which is then refused here; a trailing '&' is accepted;
//   - decodes values only: '+' becomes a space, %XX with two hex digits becomes that byte (%2B is
//     '+'); a malformed escape ("%", "%4", "%zz") is kept literally, not refused;
//   - leaves names undecoded and case-sensitive: "access%5Ftoken" or "Topics" are unknown names;
//   - would silently cut a value at a decoded %00, so a query containing "%00" (or a NUL byte) is
//     refused here before it is parsed.
// Each known name may appear once. Other names are ignored (cache busters such as `_=1700000000`).
std::variant<std::vector<std::optional<std::string>>, std::string>
parse_query_params(std::string_view query, const std::vector<std::string_view> &names);

} // namespace pgfeed::notifier
