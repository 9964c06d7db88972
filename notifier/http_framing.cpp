#include "http_framing.hpp"

#include "text.hpp"

#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include <cstring>
#include <string_view>

namespace pgfeed::notifier {

namespace {

bool named(const evkeyval *header, const char *name) { return evutil_ascii_strcasecmp(header->key, name) == 0; }

} // namespace

std::optional<std::string> ambiguous_framing(const evkeyvalq *headers) {
    int lengths = 0;
    int encodings = 0;
    bool chunked = true;
    for (const evkeyval *header = headers->tqh_first; header; header = header->next.tqe_next) {
        if (named(header, "Content-Length")) {
            ++lengths;
            if (std::strchr(header->value, ','))
                return "Content-Length must be one number";
        } else if (named(header, "Transfer-Encoding")) {
            ++encodings;
            const std::string_view coding = trim_blanks(header->value);
            chunked = chunked && coding.size() == 7 && evutil_ascii_strncasecmp(coding.data(), "chunked", 7) == 0;
        }
    }
    if (lengths > 1)
        return "Content-Length must be given once";
    if (encodings > 0 && lengths > 0)
        return "Content-Length and Transfer-Encoding must not be given together";
    if (encodings > 1 || !chunked)
        return "Transfer-Encoding must be chunked, given once";
    return std::nullopt;
}

} // namespace pgfeed::notifier
