#include "delivery_latency.hpp"

#include <charconv>

namespace pgfeed::notifier {

std::optional<double> delivery_latency_seconds(std::string_view at, std::int64_t now_us) {
    if (at.empty() || at[0] < '0' || at[0] > '9' || now_us < 0)
        return std::nullopt;
    std::int64_t written_us = 0;
    auto [end, error] = std::from_chars(at.data(), at.data() + at.size(), written_us);
    if (error != std::errc() || end != at.data() + at.size())
        return std::nullopt;
    // Both are in [0, 2^63), so their difference fits in int64.
    const std::int64_t waited_us = now_us - written_us;
    if (waited_us < -max_clock_skew_us || waited_us > max_latency_us)
        return std::nullopt;
    return waited_us < 0 ? 0.0 : static_cast<double>(waited_us) / 1e6;
}

} // namespace pgfeed::notifier
