// Unit tests of Server-Sent Events framing (notifier/sse.hpp).
#include "sse.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <stdexcept>
#include <type_traits>

namespace pgfeed::notifier {
namespace {

// What a browser makes of a stream holding one event, by the spec's parsing rules (lines end at
// \r\n, \r or \n; one space after the colon is dropped; data lines are joined with \n).
struct Parsed {
    std::string id, event, data;
    int dispatched = 0;
    bool id_seen = false;
};

Parsed parse_like_a_browser(std::string_view stream) {
    Parsed out;
    std::string data, event;
    bool has_data = false;
    while (!stream.empty()) {
        auto brk = stream.find_first_of("\r\n");
        if (brk == stream.npos)
            break; // an unterminated line is not processed
        std::string_view line = stream.substr(0, brk);
        stream.remove_prefix(brk + (stream.compare(brk, 2, "\r\n") == 0 ? 2 : 1));
        if (line.empty()) {
            if (has_data) {
                out.data = data.substr(0, data.size() - 1);
                out.event = event;
                ++out.dispatched;
            }
            data.clear();
            event.clear();
            has_data = false;
            continue;
        }
        if (line[0] == ':')
            continue;
        auto colon = line.find(':');
        std::string_view field = line.substr(0, colon), value;
        if (colon != line.npos) {
            value = line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ')
                value.remove_prefix(1);
        }
        if (field == "data") {
            data.append(value).append("\n");
            has_data = true;
        } else if (field == "event") {
            event = value;
        } else if (field == "id") {
            out.id = value;
            out.id_seen = true;
        }
    }
    return out;
}

TEST(Sse, FramesOneEvent) {
    SseBytes bytes = sse_event("1700000000000-0", "activity", R"({"id":1})");
    EXPECT_EQ(*bytes, "id: 1700000000000-0\nevent: activity\ndata: {\"id\":1}\n\n");
    Parsed parsed = parse_like_a_browser(*bytes);
    EXPECT_EQ(parsed.dispatched, 1);
    EXPECT_EQ(parsed.id, "1700000000000-0");
    EXPECT_EQ(parsed.event, "activity");
    EXPECT_EQ(parsed.data, R"({"id":1})");
}

TEST(Sse, EveryLineBreakStartsANewDataLine) {
    EXPECT_EQ(*sse_event("1-0", "read", "a\nb"), "id: 1-0\nevent: read\ndata: a\ndata: b\n\n");
    EXPECT_EQ(*sse_event("1-0", "read", "a\r\nb"), "id: 1-0\nevent: read\ndata: a\ndata: b\n\n");
    EXPECT_EQ(*sse_event("1-0", "read", "a\rb"), "id: 1-0\nevent: read\ndata: a\ndata: b\n\n");
    // \r\r\n is two breaks, \n\r too; \r\n is one.
    EXPECT_EQ(*sse_event("", "", "a\r\r\nb\n\rc\r\nd"), "data: a\ndata: \ndata: b\ndata: \ndata: c\ndata: d\n\n");
}

TEST(Sse, MixedBreaksReachTheBrowserAsNewlines) {
    struct Case {
        std::string_view data, seen;
    };
    for (Case c : {Case{"x\r\ny\rz\nw", "x\ny\nz\nw"}, Case{"\n", "\n"}, Case{"\r\n", "\n"}, Case{"\r", "\n"},
                   Case{"a\n", "a\n"}, Case{"\na", "\na"}, Case{"\n\n\n", "\n\n\n"}, Case{"\r\n\r\n", "\n\n"},
                   Case{"\r\r", "\n\n"}, Case{"\n\r", "\n\n"}, Case{"a\r\n\rb", "a\n\nb"}}) {
        SseBytes bytes = sse_event("5-5", "activity", c.data);
        EXPECT_EQ(bytes->find('\r'), std::string::npos);
        Parsed parsed = parse_like_a_browser(*bytes);
        EXPECT_EQ(parsed.dispatched, 1);
        EXPECT_EQ(parsed.data, c.seen) << testing::PrintToString(std::string(c.data));
    }
}

TEST(Sse, EmptyDataIsStillAnEvent) {
    SseBytes bytes = sse_event("1-0", "read", "");
    EXPECT_EQ(*bytes, "id: 1-0\nevent: read\ndata: \n\n");
    Parsed parsed = parse_like_a_browser(*bytes);
    EXPECT_EQ(parsed.dispatched, 1);
    EXPECT_EQ(parsed.data, "");
}

TEST(Sse, LeadingSpacesAndColonsInDataSurvive) {
    for (std::string_view data : {" x", "  two", ":not a comment", "data: nested", "id: 9-9\nevent: reset"}) {
        Parsed parsed = parse_like_a_browser(*sse_event("1-0", "activity", data));
        EXPECT_EQ(parsed.dispatched, 1);
        EXPECT_EQ(parsed.data, data);
        EXPECT_EQ(parsed.id, "1-0");
        EXPECT_EQ(parsed.event, "activity");
    }
}

TEST(Sse, NulAndNonAsciiInDataPassThrough) {
    std::string data("a\0b\xC3\xA9", 5);
    EXPECT_EQ(*sse_event("1-0", "read", data), "id: 1-0\nevent: read\ndata: " + data + "\n\n");
}

TEST(Sse, EmptyIdAndEventAreLeftOut) {
    EXPECT_EQ(*sse_event("", "connected", "{}"), "event: connected\ndata: {}\n\n");
    EXPECT_EQ(*sse_event("1-0", "", "{}"), "id: 1-0\ndata: {}\n\n");
    EXPECT_EQ(*sse_event("", "", "{}"), "data: {}\n\n");
    EXPECT_FALSE(parse_like_a_browser(*sse_event("", "connected", "{}")).id_seen);
}

TEST(Sse, RefusesLineBreaksAndNulInIdAndEvent) {
    for (std::string_view bad : {std::string_view("1-0\n"), std::string_view("1\r0"), std::string_view("\r\n"),
                                 std::string_view("1-0\0", 4), std::string_view("\0", 1)}) {
        EXPECT_THROW(sse_event(bad, "activity", "{}"), std::invalid_argument);
        EXPECT_THROW(sse_event("1-0", bad, "{}"), std::invalid_argument);
    }
    EXPECT_THROW(sse_event("1-0", "activity\ndata: forged", "{}"), std::invalid_argument);
}

TEST(Sse, BytesAreSharedNotCopied) {
    static_assert(std::is_same_v<SseBytes::element_type, const std::string>, "shared bytes must be immutable");
    SseBytes bytes = sse_event("1-0", "activity", "{}");
    const std::string *address = bytes.get();
    std::vector<SseBytes> queues(1000, bytes); // one per connection
    EXPECT_EQ(bytes.use_count(), 1001);
    for (const SseBytes &queued : queues)
        EXPECT_EQ(queued.get(), address);
    // Each call serializes anew: callers do it once per event, not per connection.
    EXPECT_NE(sse_event("1-0", "activity", "{}").get(), address);
}

TEST(Sse, Comments) {
    EXPECT_EQ(sse_comment("heartbeat"), ": heartbeat\n\n");
    EXPECT_EQ(sse_comment(""), ":\n\n");
    // A line break cannot smuggle in a field.
    EXPECT_EQ(sse_comment("a\ndata: x\r\nb\rc"), ": a\n: data: x\n: b\n: c\n\n");
    EXPECT_EQ(parse_like_a_browser(sse_comment("a\ndata: x")).dispatched, 0);
}

TEST(Sse, Retry) {
    EXPECT_EQ(sse_retry(3000), "retry: 3000\n\n");
    EXPECT_EQ(sse_retry(0), "retry: 0\n\n");
    EXPECT_EQ(sse_retry(INT_MAX), "retry: 2147483647\n\n");
    EXPECT_THROW(sse_retry(-1), std::invalid_argument);
    EXPECT_THROW(sse_retry(INT_MIN), std::invalid_argument);
}

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST(SseFromStreamEntry, ActivityAndRead) {
    Fields activity = {{"kind", "activity"},
                       {"topic", "news"},
                       {"event_id", "17"},
                       {"at", "1700000000000123"},
                       {"data", R"({"a":1})"}};
    EXPECT_EQ(*sse_from_stream_entry("1700000000000-3", activity),
              "id: 1700000000000-3\nevent: activity\ndata: {\"a\":1}\n\n");
    Fields read = {{"data", "{}"}, {"user", "u1"}, {"kind", "read"}};
    EXPECT_EQ(*sse_from_stream_entry("9-0", read), "id: 9-0\nevent: read\ndata: {}\n\n");
}

TEST(SseFromStreamEntry, MultiLineDataIsFramed) {
    Fields fields = {{"kind", "read"}, {"data", "{\n\"a\": 1\r\n}"}};
    Parsed parsed = parse_like_a_browser(*sse_from_stream_entry("1-1", fields));
    EXPECT_EQ(parsed.data, "{\n\"a\": 1\n}");
    Fields empty = {{"kind", "read"}, {"data", ""}};
    EXPECT_EQ(*sse_from_stream_entry("1-1", empty), "id: 1-1\nevent: read\ndata: \n\n");
}

TEST(SseFromStreamEntry, RefusesIncompleteEntries) {
    EXPECT_THROW(sse_from_stream_entry("1-0", {}), std::invalid_argument);
    EXPECT_THROW(sse_from_stream_entry("1-0", {{"data", "{}"}}), std::invalid_argument);
    EXPECT_THROW(sse_from_stream_entry("1-0", {{"kind", "activity"}}), std::invalid_argument);
    EXPECT_THROW(sse_from_stream_entry("1-0", {{"Kind", "activity"}, {"DATA", "{}"}}), std::invalid_argument);
}

TEST(SseFromStreamEntry, RefusesRepeatedFields) {
    EXPECT_THROW(sse_from_stream_entry("1-0", {{"kind", "read"}, {"kind", "read"}, {"data", "{}"}}),
                 std::invalid_argument);
    EXPECT_THROW(sse_from_stream_entry("1-0", {{"kind", "read"}, {"data", "{}"}, {"data", "{}"}}),
                 std::invalid_argument);
}

TEST(SseFromStreamEntry, RefusesKindsThatAreNotEvents) {
    for (const char *kind : {"reset", "connected", "", "message", "Activity", "read\n", "activity "})
        EXPECT_THROW(sse_from_stream_entry("1-0", {{"kind", kind}, {"data", "{}"}}), std::invalid_argument) << kind;
}

TEST(SseFromStreamEntry, RefusesIdsAClientCouldNotSendBack) {
    Fields fields = {{"kind", "read"}, {"data", "{}"}};
    for (const char *id : {"", "1", "1-0\n", "01-0", "a-b", "18446744073709551616-0"})
        EXPECT_THROW(sse_from_stream_entry(id, fields), std::invalid_argument) << id;
}

TEST(SseFromStreamEntry, ErrorsNameTheEntry) {
    try {
        sse_from_stream_entry("7-1", {{"kind", "read"}});
        FAIL();
    } catch (const std::invalid_argument &error) {
        EXPECT_NE(std::string(error.what()).find("7-1"), std::string::npos);
        EXPECT_NE(std::string(error.what()).find("data"), std::string::npos);
    }
}

} // namespace
} // namespace pgfeed::notifier
