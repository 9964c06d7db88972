// Unit tests of the per-address connection rate limit (notifier/rate_limit.hpp). Time is injected:
// every call gets an explicit steady_clock time point, so nothing sleeps.
#include "rate_limit.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace pgfeed::notifier {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = TokenBuckets::Clock;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1000);

TEST(TokenBuckets, RefusesNonsenseLimits) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    constexpr double inf = std::numeric_limits<double>::infinity();
    EXPECT_THROW(TokenBuckets(0, 5, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(-1, 5, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(nan, 5, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(inf, 5, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(1, 0.5, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(1, nan, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(1, inf, 10), std::invalid_argument);
    EXPECT_THROW(TokenBuckets(1, 5, 0), std::invalid_argument);
    EXPECT_NO_THROW(TokenBuckets(1e-6, 1, 1));
}

TEST(TokenBuckets, BurstThenRefused) {
    TokenBuckets buckets(1, 3, 100);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(buckets.take("10.0.0.1", t0), std::nullopt) << i;
    EXPECT_EQ(buckets.take("10.0.0.1", t0), seconds(1));
    // Refused attempts spend nothing: still one second away.
    EXPECT_EQ(buckets.take("10.0.0.1", t0), seconds(1));
}

TEST(TokenBuckets, KeysAreIndependent) {
    TokenBuckets buckets(1, 1, 100);
    EXPECT_EQ(buckets.take("a", t0), std::nullopt);
    EXPECT_NE(buckets.take("a", t0), std::nullopt);
    EXPECT_EQ(buckets.take("b", t0), std::nullopt);
    EXPECT_EQ(buckets.take("", t0), std::nullopt);
}

TEST(TokenBuckets, RefillsAtTheRate) {
    TokenBuckets buckets(2, 2, 100); // one token every 500 ms
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_NE(buckets.take("ip", t0 + milliseconds(499)), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0 + milliseconds(500)), std::nullopt);
    EXPECT_NE(buckets.take("ip", t0 + milliseconds(500)), std::nullopt);
    // After a long pause the bucket holds burst tokens, no more.
    Clock::time_point later = t0 + std::chrono::hours(1);
    EXPECT_EQ(buckets.take("ip", later), std::nullopt);
    EXPECT_EQ(buckets.take("ip", later), std::nullopt);
    EXPECT_NE(buckets.take("ip", later), std::nullopt);
}

TEST(TokenBuckets, RetryAfterIsRoundedUpAndAtLeastOneSecond) {
    TokenBuckets slow(0.1, 1, 100); // one connection per 10 s
    EXPECT_EQ(slow.take("ip", t0), std::nullopt);
    EXPECT_EQ(slow.take("ip", t0), seconds(10));
    EXPECT_EQ(slow.take("ip", t0 + milliseconds(100)), seconds(10)); // 9.9 s up to 10
    EXPECT_EQ(slow.take("ip", t0 + milliseconds(1000)), seconds(9));
    EXPECT_EQ(slow.take("ip", t0 + milliseconds(9999)), seconds(1)); // 1 ms up to a second
    EXPECT_EQ(slow.take("ip", t0 + seconds(10)), std::nullopt);

    TokenBuckets fast(1000, 1, 100);
    EXPECT_EQ(fast.take("ip", t0), std::nullopt);
    EXPECT_EQ(fast.take("ip", t0), seconds(1)); // 1 ms away, but Retry-After counts seconds
}

TEST(TokenBuckets, RetryAfterIsCappedForTinyRates) {
    TokenBuckets buckets(1e-300, 1, 10);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0), seconds(86400));
}

TEST(TokenBuckets, FractionalBurst) {
    TokenBuckets buckets(1, 1.5, 10);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt); // 0.5 left
    EXPECT_EQ(buckets.take("ip", t0), seconds(1));
    EXPECT_EQ(buckets.take("ip", t0 + milliseconds(500)), std::nullopt);
}

TEST(TokenBuckets, AClockGoingBackwardsEarnsNothing) {
    TokenBuckets buckets(1, 1, 10);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_NE(buckets.take("ip", t0 - seconds(100)), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0 + seconds(1)), std::nullopt);
}

TEST(TokenBuckets, RefilledBucketsAreDropped) {
    TokenBuckets buckets(1, 2, 100);
    for (int i = 0; i < 50; ++i)
        EXPECT_EQ(buckets.take("ip" + std::to_string(i), t0), std::nullopt);
    EXPECT_EQ(buckets.size(), 50u);
    // One token each to earn back: after a second all are full, and the next call drops them.
    EXPECT_EQ(buckets.take("new", t0 + milliseconds(999)), std::nullopt);
    EXPECT_EQ(buckets.size(), 51u);
    EXPECT_EQ(buckets.take("new", t0 + seconds(3)), std::nullopt);
    EXPECT_EQ(buckets.size(), 1u);
}

TEST(TokenBuckets, ForgettingARefilledBucketChangesNothing) {
    TokenBuckets buckets(1, 2, 1);
    EXPECT_EQ(buckets.take("a", t0), std::nullopt);
    EXPECT_EQ(buckets.take("a", t0), std::nullopt);
    EXPECT_EQ(buckets.take("b", t0 + seconds(2)), std::nullopt); // a is full again: dropped, not evicted
    EXPECT_EQ(buckets.take("a", t0 + seconds(2)), std::nullopt);
    EXPECT_EQ(buckets.take("a", t0 + seconds(2)), std::nullopt);
    EXPECT_NE(buckets.take("a", t0 + seconds(2)), std::nullopt);
}

TEST(TokenBuckets, NeverHoldsMoreThanMaxKeys) {
    TokenBuckets buckets(0.001, 1, 64);
    for (int i = 0; i < 10000; ++i) {
        EXPECT_EQ(buckets.take("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t0 + milliseconds(i)),
                  std::nullopt);
        ASSERT_LE(buckets.size(), 64u);
    }
    EXPECT_EQ(buckets.size(), 64u);
}

TEST(TokenBuckets, EvictsTheStalestWhenFull) {
    TokenBuckets buckets(0.001, 1, 3);
    EXPECT_EQ(buckets.take("a", t0), std::nullopt);
    EXPECT_EQ(buckets.take("b", t0 + seconds(1)), std::nullopt);
    EXPECT_EQ(buckets.take("c", t0 + seconds(2)), std::nullopt);
    EXPECT_NE(buckets.take("a", t0 + seconds(3)), std::nullopt); // touching a makes b the stalest
    EXPECT_EQ(buckets.take("d", t0 + seconds(4)), std::nullopt); // evicts b
    EXPECT_EQ(buckets.size(), 3u);
    EXPECT_NE(buckets.take("a", t0 + seconds(5)), std::nullopt); // a and c kept their debt
    EXPECT_NE(buckets.take("c", t0 + seconds(5)), std::nullopt);
    EXPECT_NE(buckets.take("d", t0 + seconds(5)), std::nullopt);
    // The documented trade-off: b was forgotten, so it has a fresh burst (evicting d, the stalest).
    EXPECT_EQ(buckets.take("b", t0 + seconds(6)), std::nullopt);
    EXPECT_EQ(buckets.size(), 3u);
}

TEST(TokenBuckets, ReconfigureTakesEffectAtOnce) {
    TokenBuckets buckets(1, 10, 100);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    // 5 tokens left, capped to the new burst of 2.
    buckets.reconfigure(0.5, 2);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0), seconds(2)); // new rate: a token every 2 s
    EXPECT_EQ(buckets.take("other", t0), std::nullopt);
    EXPECT_EQ(buckets.take("other", t0), std::nullopt);
    EXPECT_NE(buckets.take("other", t0), std::nullopt);
}

TEST(TokenBuckets, ReconfigureRefusesNonsenseAndKeepsTheOldLimits) {
    TokenBuckets buckets(1, 1, 10);
    EXPECT_THROW(buckets.reconfigure(0, 5), std::invalid_argument);
    EXPECT_THROW(buckets.reconfigure(5, 0), std::invalid_argument);
    EXPECT_EQ(buckets.take("ip", t0), std::nullopt);
    EXPECT_EQ(buckets.take("ip", t0), seconds(1));
}

} // namespace
} // namespace pgfeed::notifier
