// How a request's body is delimited (RFC 9112 section 6), checked before a request is served.
// evhttp reads the body by the first Content-Length and ignores any other, and lets a
// Transfer-Encoding override a Content-Length; a proxy in front of us may pick the other one, and
// what one of us takes for body the other takes for a second request (request smuggling). So a
// request whose framing can be read two ways is refused with 400 and its connection closed.
#pragma once

#include <optional>
#include <string>

struct evkeyvalq;

namespace pgfeed::notifier {

// Why the headers frame the body ambiguously, or nullopt when they do not:
//   - Content-Length more than once, even with the same value (RFC 9110 section 8.6 allows
//     accepting repeats of one value; refusing them costs no real client anything), or a list;
//   - Transfer-Encoding together with Content-Length;
//   - a Transfer-Encoding other than exactly "chunked" (evhttp would read such a body as if it had
//     no encoding at all) or given more than once.
std::optional<std::string> ambiguous_framing(const evkeyvalq *headers);

} // namespace pgfeed::notifier
