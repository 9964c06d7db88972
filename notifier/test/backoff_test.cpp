// Unit tests of the reconnection backoff (notifier/backoff.hpp).
#include "backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace pgfeed::notifier {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, DelaysStayUnderTheDoublingCeilingAndTheCap) {
    Backoff backoff(milliseconds(100), milliseconds(5000), 1);
    milliseconds ceiling(100);
    for (int attempt = 0; attempt < 200; ++attempt) {
        milliseconds delay = backoff.next_delay();
        EXPECT_GE(delay.count(), 0) << attempt;
        EXPECT_LE(delay, ceiling) << attempt;
        ceiling = std::min(ceiling * 2, milliseconds(5000));
    }
}

TEST(Backoff, FullJitterSpreadsDelaysAcrossTheWholeRange) {
    Backoff backoff(milliseconds(1000), milliseconds(1000), 7);
    std::vector<milliseconds> delays;
    for (int attempt = 0; attempt < 1000; ++attempt)
        delays.push_back(backoff.next_delay());
    auto [lowest, highest] = std::minmax_element(delays.begin(), delays.end());
    EXPECT_LT(*lowest, milliseconds(100));
    EXPECT_GT(*highest, milliseconds(900));
}

TEST(Backoff, SameSeedSameDelays) {
    Backoff first(milliseconds(10), milliseconds(10000), 42);
    Backoff second(milliseconds(10), milliseconds(10000), 42);
    for (int attempt = 0; attempt < 50; ++attempt)
        EXPECT_EQ(first.next_delay(), second.next_delay()) << attempt;
}

TEST(Backoff, ResetStartsOverFromInitial) {
    Backoff backoff(milliseconds(10), milliseconds(1 << 20), 3);
    for (int attempt = 0; attempt < 30; ++attempt)
        backoff.next_delay();
    backoff.reset();
    for (int trial = 0; trial < 20; ++trial) {
        EXPECT_LE(backoff.next_delay(), milliseconds(10));
        backoff.reset();
    }
}

TEST(Backoff, CeilingNeverOverflows) {
    Backoff backoff(milliseconds(1), milliseconds::max(), 5);
    for (int attempt = 0; attempt < 200; ++attempt)
        EXPECT_GE(backoff.next_delay().count(), 0) << attempt;
}

TEST(Backoff, UnseededDelaysAreInRange) {
    Backoff backoff(milliseconds(5), milliseconds(5));
    for (int attempt = 0; attempt < 20; ++attempt)
        EXPECT_LE(backoff.next_delay(), milliseconds(5));
}

TEST(Backoff, RejectsBadBounds) {
    EXPECT_THROW(Backoff(milliseconds(0), milliseconds(10), 1), std::invalid_argument);
    EXPECT_THROW(Backoff(milliseconds(-1), milliseconds(10), 1), std::invalid_argument);
    EXPECT_THROW(Backoff(milliseconds(20), milliseconds(10), 1), std::invalid_argument);
}

} // namespace
} // namespace pgfeed::notifier
