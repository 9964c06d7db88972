#include "stream_id.hpp"

#include <charconv>
#include <limits>

namespace pgfeed::notifier {

namespace {

// Digits only, no leading zero unless the number is "0", fits in uint64.
std::optional<uint64_t> parse_canonical_u64(std::string_view text) {
    if (text.empty() || (text.size() > 1 && text[0] == '0'))
        return std::nullopt;
    for (char c : text)
        if (c < '0' || c > '9')
            return std::nullopt; // from_chars would take neither '+' nor space, but be explicit
    uint64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        return std::nullopt; // out of range
    return value;
}

} // namespace

std::optional<StreamId> parse_stream_id(std::string_view text) {
    auto dash = text.find('-');
    if (dash == std::string_view::npos)
        return std::nullopt;
    auto ms = parse_canonical_u64(text.substr(0, dash));
    auto seq = parse_canonical_u64(text.substr(dash + 1));
    if (!ms || !seq)
        return std::nullopt;
    return StreamId{*ms, *seq};
}

std::string to_string(StreamId id) { return std::to_string(id.ms) + "-" + std::to_string(id.seq); }

std::optional<StreamId> next_after(StreamId id) {
    constexpr uint64_t max = std::numeric_limits<uint64_t>::max();
    if (id.seq != max)
        return StreamId{id.ms, id.seq + 1};
    if (id.ms != max)
        return StreamId{id.ms + 1, 0};
    return std::nullopt;
}

std::string xrange_exclusive_start(StreamId id) { return "(" + to_string(id); }

} // namespace pgfeed::notifier
