// Token buckets keyed by client address: the "new connections per IP per interval" limit. A
// refused client gets 429 with the Retry-After this computes.
//
// Each key starts with `burst` tokens and earns `rate_per_second` more, up to `burst`; a new
// connection spends one. Buckets live in this process only: with N workers sharing the port
// (SO_REUSEPORT) a client may get up to N times the configured rate, as the kernel spreads its
// connections over the workers. The caller chooses the key; for IPv6 a /64 prefix, not the full
// address, since one host usually owns the whole /64.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace pgfeed::notifier {

class TokenBuckets {
  public:
    using Clock = std::chrono::steady_clock;

    // Throws std::invalid_argument unless rate_per_second > 0, burst >= 1 (both finite) and
    // max_keys >= 1.
    TokenBuckets(double rate_per_second, double burst, std::size_t max_keys);

    // Spends a token of `key` at `now`: nullopt when allowed, otherwise how long until a token is
    // there, rounded up to whole seconds, at least 1 s (and at most a day, so a tiny rate cannot
    // overflow the header). A refused attempt spends nothing.
    //
    // Memory: buckets that have refilled to `burst` are dropped, since a fresh one is identical.
    // When max_keys buckets are still in debt, a new key evicts the one touched longest ago. That
    // fails open: a client spraying connections from more than max_keys addresses can make the
    // limiter forget another address's debt, handing it a fresh burst. Failing closed (refusing
    // unknown keys when full) would lock out every new visitor instead; the total connection limit
    // (503) still caps what an attacker gets, so we prefer that.
    std::optional<std::chrono::seconds> take(const std::string &key, Clock::time_point now);

    // New limits (SIGHUP). Existing buckets keep their tokens, capped at the new burst. Throws
    // std::invalid_argument like the constructor, and then changes nothing.
    void reconfigure(double rate_per_second, double burst);

    // Buckets currently held (never more than max_keys).
    std::size_t size() const { return index_.size(); }

  private:
    struct Bucket {
        std::string key;
        double tokens;
        Clock::time_point updated;
    };
    using List = std::list<Bucket>;

    double tokens_at(const Bucket &bucket, Clock::time_point now) const;
    void drop_refilled(Clock::time_point now);

    double rate_;
    double burst_;
    std::size_t max_keys_;
    List buckets_; // most recently touched first
    std::unordered_map<std::string, List::iterator> index_;
};

} // namespace pgfeed::notifier
