// Redis stream entry ids ("<ms>-<seq>"), as sent to browsers in the SSE `id:` field and read back
// from their Last-Event-ID when they reconnect (invariant I5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgfeed::notifier {

// Ordered as Redis orders entries: by milliseconds, then by sequence number.
struct StreamId {
    uint64_t ms = 0;
    uint64_t seq = 0;

    bool operator==(const StreamId &other) const { return ms == other.ms && seq == other.seq; }
    bool operator!=(const StreamId &other) const { return !(*this == other); }
    bool operator<(const StreamId &other) const { return ms < other.ms || (ms == other.ms && seq < other.seq); }
    bool operator>(const StreamId &other) const { return other < *this; }
    bool operator<=(const StreamId &other) const { return !(other < *this); }
    bool operator>=(const StreamId &other) const { return !(*this < other); }
};

// Strict parse of the canonical full form "<ms>-<seq>": both parts decimal digits that fit in
// uint64, no sign, space or leading zero ("0" itself is fine), nothing else. Redis also accepts
// "<ms>" alone (and "+", "-", "$", ">"), but a Last-Event-ID is an id we sent, always in full
// canonical form; anything else is a forged or damaged header, and guessing what it meant could
// skip or repeat events. The strictness makes the text form unique: to_string(*parse(s)) == s.
// "0-0" parses: it sorts before every entry Redis can hold, i.e. "from the beginning".
std::optional<StreamId> parse_stream_id(std::string_view text);

// "<ms>-<seq>", the form parse_stream_id accepts.
std::string to_string(StreamId id);

// The smallest id greater than `id`, for an inclusive XRANGE start that excludes `id`; nullopt
// after the largest id. With Redis 6.2 or later (we require 7.0), prefer XRANGE's exclusive
// syntax, xrange_exclusive_start(id) == "(" + to_string(id), which says the same thing directly;
// XREAD's id is exclusive already and needs neither.
std::optional<StreamId> next_after(StreamId id);

// "(<ms>-<seq>": XRANGE's exclusive start (Redis >= 6.2).
std::string xrange_exclusive_start(StreamId id);

} // namespace pgfeed::notifier
