// Running a test's event loop until a condition holds, with a deadline instead of sleeps.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <functional>

namespace pgfeed::notifier {

// Runs the loop until done() holds or the timeout passes; a ticking timer makes the loop come back
// to check even when nothing else happens. Returns done().
inline bool run_until(event_base *base, const std::function<bool()> &done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    event *tick = event_new(
        base, -1, EV_PERSIST, [](evutil_socket_t, short, void *) {}, nullptr);
    timeval every{0, 10000};
    event_add(tick, &every);
    while (!done() && std::chrono::steady_clock::now() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return done();
}

// Runs the loop for a while, for checking that something does not happen.
inline void run_for(event_base *base, std::chrono::milliseconds duration) {
    run_until(
        base, [] { return false; }, duration);
}

} // namespace pgfeed::notifier
