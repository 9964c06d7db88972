// Capped exponential backoff with full jitter, for reconnecting to PostgreSQL and Redis.
//
// Attempt n waits a uniformly random time in [0, min(max, initial * 2^n)]: after an outage, many
// workers retrying against one server spread out instead of arriving in waves.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace pgfeed::notifier {

class Backoff {
  public:
    // Throws std::invalid_argument unless 0 < initial <= max. The seed makes the delays
    // reproducible (tests); without one they come from std::random_device.
    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed);

    // The delay before the next attempt; each call doubles the ceiling until it reaches max.
    std::chrono::milliseconds next_delay();
    // After a successful connection: the next failure starts again from initial.
    void reset() { ceiling_ = initial_; }

  private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    std::chrono::milliseconds ceiling_;
    std::mt19937_64 random_;
};

} // namespace pgfeed::notifier
