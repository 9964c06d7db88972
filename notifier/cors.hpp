// Which web origins may read GET /v1/stream across origins ([http] cors_origins). Browsers send the
// token cookie along, so the gateway never answers `*`: for an allowed Origin it answers
//   Access-Control-Allow-Origin: <the request's Origin>
//   Access-Control-Allow-Credentials: true
//   Vary: Origin
// and for any other Origin no CORS headers at all (the browser then hides the response). Vary goes
// on every /v1/stream response, so that no cache serves one origin's answer to another.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgfeed::notifier {

// Parses cors_origins: origins separated by commas, spaces around them ignored; an empty or blank
// list allows no cross-origin reads. Each entry is an origin as a browser serializes it
// (RFC 6454): scheme://host[:port] with scheme http or https, host a name (letters, digits, '-',
// '_', '.'; punycode for international names) or an IP literal (IPv6 in brackets), port 1..65535
// without leading zeros. No path (not even a trailing slash), query, fragment, user info or `*`;
// "null" is refused. Throws std::invalid_argument naming the first bad entry and what is wrong.
//
// The result is normalized for origin_allowed: scheme and host lowercased, a default port (:80 for
// http, :443 for https) dropped, since browsers never send one.
std::vector<std::string> parse_cors_origins(std::string_view comma_list);

// Whether `origin` (the request's Origin header) is one of `allowlist`, as returned by
// parse_cors_origins. The comparison is RFC 6454's: scheme, host and port equal, scheme and host
// case-insensitively, an explicit default port the same as none. "null" (sandboxed frames,
// file: pages, some redirects), an empty or malformed Origin is never allowed.
bool origin_allowed(const std::vector<std::string> &allowlist, std::string_view origin);

} // namespace pgfeed::notifier
