#include "rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace pgfeed::notifier {

namespace {

void check_limits(double rate_per_second, double burst) {
    if (!std::isfinite(rate_per_second) || !(rate_per_second > 0))
        throw std::invalid_argument("rate limit: the rate must be a positive number");
    if (!std::isfinite(burst) || !(burst >= 1))
        throw std::invalid_argument("rate limit: the burst must be at least 1");
}

constexpr double kMaxRetrySeconds = 86400;

} // namespace

TokenBuckets::TokenBuckets(double rate_per_second, double burst, std::size_t max_keys)
    : rate_(rate_per_second), burst_(burst), max_keys_(max_keys) {
    check_limits(rate_per_second, burst);
    if (max_keys == 0)
        throw std::invalid_argument("rate limit: max_keys must be at least 1");
}

void TokenBuckets::reconfigure(double rate_per_second, double burst) {
    check_limits(rate_per_second, burst);
    rate_ = rate_per_second;
    burst_ = burst;
    for (Bucket &bucket : buckets_)
        bucket.tokens = std::min(bucket.tokens, burst_);
}

double TokenBuckets::tokens_at(const Bucket &bucket, Clock::time_point now) const {
    // A clock that seems to go backwards (it should not, with steady_clock) earns nothing.
    double elapsed = std::max(0.0, std::chrono::duration<double>(now - bucket.updated).count());
    return std::min(burst_, bucket.tokens + elapsed * rate_);
}

// The list is in order of last touch, so the oldest buckets, the likeliest to be full again, are
// at the back. Stopping at the first one still in debt keeps each call O(1) amortized; a full
// bucket behind it waits for a later call, and max_keys bounds them meanwhile.
void TokenBuckets::drop_refilled(Clock::time_point now) {
    while (!buckets_.empty() && tokens_at(buckets_.back(), now) >= burst_) {
        index_.erase(buckets_.back().key);
        buckets_.pop_back();
    }
}

std::optional<std::chrono::seconds> TokenBuckets::take(const std::string &key, Clock::time_point now) {
    drop_refilled(now);
    auto found = index_.find(key);
    if (found == index_.end()) {
        if (index_.size() >= max_keys_) {
            index_.erase(buckets_.back().key);
            buckets_.pop_back();
        }
        buckets_.push_front(Bucket{key, burst_, now});
        found = index_.emplace(key, buckets_.begin()).first;
    } else {
        buckets_.splice(buckets_.begin(), buckets_, found->second);
    }
    Bucket &bucket = *found->second;
    bucket.tokens = tokens_at(bucket, now);
    bucket.updated = std::max(bucket.updated, now);
    if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return std::nullopt;
    }
    double wait = std::ceil((1 - bucket.tokens) / rate_);
    return std::chrono::seconds(static_cast<long long>(std::clamp(wait, 1.0, kMaxRetrySeconds)));
}

} // namespace pgfeed::notifier
