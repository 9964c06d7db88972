#include "sse.hpp"

#include "stream_id.hpp"

#include <optional>
#include <stdexcept>

namespace pgfeed::notifier {

namespace {

bool has_break_or_nul(std::string_view text) { return text.find_first_of(std::string_view("\r\n\0", 3)) != text.npos; }

// Appends "<prefix><line>\n" for every line of `text`; \r\n, \r and \n all end a line.
void append_lines(std::string &out, std::string_view prefix, std::string_view text) {
    for (;;) {
        auto brk = text.find_first_of("\r\n");
        out += prefix;
        out += text.substr(0, brk);
        out += '\n';
        if (brk == text.npos)
            return;
        std::size_t skip = text.compare(brk, 2, "\r\n") == 0 ? 2 : 1;
        text.remove_prefix(brk + skip);
    }
}

} // namespace

SseBytes sse_event(std::string_view id, std::string_view event, std::string_view data) {
    if (has_break_or_nul(id))
        throw std::invalid_argument("sse: the event id holds a line break or NUL");
    if (has_break_or_nul(event))
        throw std::invalid_argument("sse: the event name holds a line break or NUL");
    auto out = std::make_shared<std::string>();
    out->reserve(id.size() + event.size() + data.size() + 32);
    if (!id.empty())
        out->append("id: ").append(id).append("\n");
    if (!event.empty())
        out->append("event: ").append(event).append("\n");
    // "data: " with the space: the parser drops one space after the colon, so a line that starts
    // with a space keeps it.
    append_lines(*out, "data: ", data);
    out->push_back('\n');
    return out;
}

std::string sse_comment(std::string_view text) {
    std::string out;
    append_lines(out, text.empty() ? ":" : ": ", text);
    out.push_back('\n');
    return out;
}

std::string sse_retry(int ms) {
    if (ms < 0)
        throw std::invalid_argument("sse: retry must not be negative");
    return "retry: " + std::to_string(ms) + "\n\n";
}

SseBytes sse_from_stream_entry(std::string_view stream_id,
                               const std::vector<std::pair<std::string, std::string>> &fields) {
    if (!parse_stream_id(stream_id))
        throw std::invalid_argument("stream entry: malformed id");
    const std::string *kind = nullptr, *data = nullptr;
    for (const auto &[field, value] : fields) {
        const std::string **slot = field == "kind" ? &kind : field == "data" ? &data : nullptr;
        if (!slot)
            continue; // topic, user, event_id, at: for routing, not for the browser
        if (*slot)
            throw std::invalid_argument("stream entry " + std::string(stream_id) + ": repeated field " + field);
        *slot = &value;
    }
    if (!kind)
        throw std::invalid_argument("stream entry " + std::string(stream_id) + ": no kind");
    if (!data)
        throw std::invalid_argument("stream entry " + std::string(stream_id) + ": no data");
    if (*kind != "activity" && *kind != "read")
        throw std::invalid_argument("stream entry " + std::string(stream_id) + ": unknown kind");
    return sse_event(stream_id, *kind, *data);
}

} // namespace pgfeed::notifier
