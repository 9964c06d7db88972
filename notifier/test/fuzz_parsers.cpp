// libFuzzer target over the notifier's text parsers and framers: Last-Event-ID parsing
// (stream_id.hpp), SSE framing (sse.hpp) and a stream entry's `at` (delivery_latency.hpp). Built
// and run by notifier/test/fuzz.sh.
//
// Every input is tried both ways:
// - as a stream id: whenever it parses, it is canonical (to_string gives the input back) and the
//   value round-trips; next_after is strictly greater;
// - as an event: byte 0 and byte 1 give the lengths of id and event, the rest is data. The frame
//   must read back like a browser would: every line ends in \n, is a known field or empty, one
//   blank line ends it, and the data lines joined with \n are the data with its breaks normalized;
// - as an `at` field: a latency, when there is one, lies between 0 and the week allowed, whatever
//   the clock says (UBSan reports any overflow).
#include "delivery_latency.hpp"
#include "sse.hpp"
#include "stream_id.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

using namespace pgfeed::notifier;

namespace {

void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_parsers: %s\n", what);
        std::abort();
    }
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

std::string normalize_breaks(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            out += '\n';
            if (i + 1 < text.size() && text[i + 1] == '\n')
                ++i;
        } else {
            out += text[i];
        }
    }
    return out;
}

void fuzz_stream_id(std::string_view text) {
    auto id = parse_stream_id(text);
    if (!id)
        return;
    std::string printed = to_string(*id);
    check(printed == text, "a parsed stream id is not canonical");
    check(parse_stream_id(printed) == id, "stream id round trip");
    if (auto next = next_after(*id))
        check(*next > *id && parse_stream_id(to_string(*next)) == next, "next_after");
}

void fuzz_sse_event(std::string_view input) {
    if (input.size() < 2)
        return;
    std::size_t id_size = static_cast<unsigned char>(input[0]) % 32;
    std::size_t event_size = static_cast<unsigned char>(input[1]) % 32;
    input.remove_prefix(2);
    std::string_view id = input.substr(0, id_size);
    input.remove_prefix(id.size());
    std::string_view event = input.substr(0, event_size);
    input.remove_prefix(event.size());
    std::string_view data = input;

    const std::string_view forbidden("\r\n\0", 3);
    bool refusable = id.find_first_of(forbidden) != id.npos || event.find_first_of(forbidden) != event.npos;
    SseBytes bytes;
    try {
        bytes = sse_event(id, event, data);
    } catch (const std::invalid_argument &) {
        check(refusable, "sse_event refused a valid id and event");
        return;
    }
    check(!refusable, "sse_event accepted a line break or NUL in id or event");
    check(bytes != nullptr, "sse_event returned null");

    std::string_view frame = *bytes;
    check(frame.find('\r') == frame.npos, "a \\r in the frame");
    check(frame.size() >= 2 && frame.substr(frame.size() - 2) == "\n\n", "the frame does not end in a blank line");
    frame.remove_suffix(1); // the blank line
    std::string got_id, got_event, got_data;
    bool id_seen = false, event_seen = false, data_seen = false;
    while (!frame.empty()) {
        auto end = frame.find('\n');
        check(end != frame.npos, "an unterminated line");
        std::string_view line = frame.substr(0, end);
        frame.remove_prefix(end + 1);
        check(!line.empty(), "a blank line inside the frame");
        if (starts_with(line, "data: ")) {
            got_data.append(line.substr(6)).append("\n");
            data_seen = true;
        } else if (starts_with(line, "id: ")) {
            check(!id_seen && !data_seen, "id: repeated or after data:");
            got_id = line.substr(4);
            id_seen = true;
        } else if (starts_with(line, "event: ")) {
            check(!event_seen && !data_seen, "event: repeated or after data:");
            got_event = line.substr(7);
            event_seen = true;
        } else {
            check(false, "a line that is not id:, event: or data:");
        }
    }
    check(data_seen, "no data: line");
    got_data.pop_back();
    check(got_id == id && id_seen == !id.empty(), "the id does not read back");
    check(got_event == event && event_seen == !event.empty(), "the event does not read back");
    check(got_data == normalize_breaks(data), "the data does not read back");
}

void fuzz_comment(std::string_view text) {
    std::string comment = sse_comment(text);
    std::string_view rest = comment;
    check(rest.size() >= 2 && rest.substr(rest.size() - 2) == "\n\n", "a comment does not end in a blank line");
    rest.remove_suffix(2);
    while (true) {
        auto end = rest.find('\n');
        check(starts_with(rest, ":"), "a comment line that does not start with ':'");
        check(rest.substr(0, end).find('\r') == rest.npos, "a \\r in a comment");
        if (end == rest.npos)
            break;
        rest.remove_prefix(end + 1);
    }
}

} // namespace

void fuzz_delivery_latency(std::string_view at) {
    for (std::int64_t now : {std::int64_t{0}, std::int64_t{1795439240264714}, INT64_MAX}) {
        auto seconds = delivery_latency_seconds(at, now);
        check(!seconds || (*seconds >= 0 && *seconds <= max_latency_us / 1e6), "a latency out of range");
    }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
    std::string_view input(reinterpret_cast<const char *>(bytes), size);
    fuzz_stream_id(input);
    fuzz_sse_event(input);
    fuzz_comment(input);
    fuzz_delivery_latency(input);
    return 0;
}
