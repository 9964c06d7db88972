// The delivery latency of a live event: from the stream entry's `at` (microseconds since the epoch,
// written by the bridge from PostgreSQL's clock) to now. The field comes from Redis, where anything
// may have written it, so its range is checked rather than trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pgfeed::notifier {

// How far `at` may be ahead of this clock and still count (as 0): two hosts' clocks.
inline constexpr std::int64_t max_clock_skew_us = 60LL * 1000 * 1000;
// How old an event may be and still count: older than this, `at` is not a time the bridge wrote.
inline constexpr std::int64_t max_latency_us = 7LL * 24 * 3600 * 1000 * 1000;

// Seconds from `at` to now_us, or nullopt when `at` is not a canonical decimal number of
// microseconds (digits only, no sign), lies more than max_clock_skew_us in the future or more than
// max_latency_us in the past. Up to max_clock_skew_us ahead is 0. No input overflows.
std::optional<double> delivery_latency_seconds(std::string_view at, std::int64_t now_us);

} // namespace pgfeed::notifier
