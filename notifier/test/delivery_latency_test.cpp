// Unit tests of the delivery latency of a stream entry's `at` (notifier/delivery_latency.hpp).
#include "delivery_latency.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pgfeed::notifier {
namespace {

constexpr std::int64_t kNow = 1795439240264714; // microseconds, a 2026 date

TEST(DeliveryLatency, TimesWhatTheBridgeWrote) {
    EXPECT_DOUBLE_EQ(*delivery_latency_seconds(std::to_string(kNow - 1500), kNow), 0.0015);
    EXPECT_DOUBLE_EQ(*delivery_latency_seconds(std::to_string(kNow), kNow), 0.0);
    EXPECT_DOUBLE_EQ(*delivery_latency_seconds(std::to_string(kNow - max_latency_us), kNow), max_latency_us / 1e6);
}

TEST(DeliveryLatency, ASkewedClockCountsAsZero) {
    EXPECT_DOUBLE_EQ(*delivery_latency_seconds(std::to_string(kNow + 1000), kNow), 0.0);
    EXPECT_DOUBLE_EQ(*delivery_latency_seconds(std::to_string(kNow + max_clock_skew_us), kNow), 0.0);
}

TEST(DeliveryLatency, RefusesTimesTheBridgeCannotHaveWritten) {
    EXPECT_FALSE(delivery_latency_seconds(std::to_string(kNow + max_clock_skew_us + 1), kNow));
    EXPECT_FALSE(delivery_latency_seconds(std::to_string(kNow - max_latency_us - 1), kNow));
    EXPECT_FALSE(delivery_latency_seconds("0", kNow));
    EXPECT_FALSE(delivery_latency_seconds("9223372036854775807", kNow));
}

// Each of these overflowed int64 arithmetic before (UBSan: signed integer overflow).
TEST(DeliveryLatency, NoValueOverflows) {
    for (const char *at : {"-9223372036854775808", "-9223372036854775807", "-1000000000000000000",
                           "9223372036854775808", "99999999999999999999999", "18446744073709551615"})
        EXPECT_FALSE(delivery_latency_seconds(at, kNow)) << at;
    EXPECT_FALSE(delivery_latency_seconds("1", -9223372036854775807LL - 1));
    EXPECT_FALSE(delivery_latency_seconds("9223372036854775807", 0));
}

TEST(DeliveryLatency, RefusesTextThatIsNotANumber) {
    for (const char *at : {"", " 1", "1 ", "+1", "-1", "1.5", "1e6", "0x10", "abc", "12abc"})
        EXPECT_FALSE(delivery_latency_seconds(at, kNow)) << '"' << at << '"';
}

} // namespace
} // namespace pgfeed::notifier
