#include "backoff.hpp"

#include <stdexcept>

namespace pgfeed::notifier {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : Backoff(initial, max, std::random_device{}()) {}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed)
    : initial_(initial), max_(max), ceiling_(initial), random_(seed) {
    if (initial.count() <= 0 || max < initial)
        throw std::invalid_argument("backoff: expected 0 < initial <= max");
}

std::chrono::milliseconds Backoff::next_delay() {
    std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(0, ceiling_.count());
    std::chrono::milliseconds delay(jitter(random_));
    // Doubling stops at max, so the ceiling never overflows however long the outage lasts.
    ceiling_ = ceiling_ > max_ / 2 ? max_ : ceiling_ * 2;
    return delay;
}

} // namespace pgfeed::notifier
