// What the feed API lets one user, and all users of a worker, hold at once, so that one token
// cannot take the API from everybody else:
//   - calls in flight per user: a flood from one token would otherwise fill api.max_waiting and
//     make every other user's call wait behind it (then 429);
//   - bytes of replies their clients have not read yet, per user and per worker: a client that
//     never reads keeps each reply it asked for in memory (then 429 for the user, 503 for all).
// Counted per worker process, like the token bucket: with N workers a user may hold N times this.
//
// Unsent bytes are counted without a copy and without watching sockets: a reply's body goes into
// the connection's output as an evbuffer reference, whose cleanup runs once the bytes are written
// or dropped with the connection, and gives them back. The budget is shared with those cleanups,
// which may run after the API itself is gone (evhttp frees connections last).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

struct evbuffer;

namespace pgfeed::notifier {

struct ApiLimits {
    int calls_per_user = 8;                        // [limits] api_calls_per_user
    std::int64_t unsent_bytes_per_user = 16 << 20; // [limits] api_unsent_bytes_per_user
    std::int64_t unsent_bytes = 256 << 20;         // [limits] api_unsent_bytes, per worker
};

enum class ApiAdmission {
    admitted,
    user_calls,    // the user has calls_per_user in flight: 429
    user_unsent,   // the user's unread replies hold unsent_bytes_per_user: 429
    worker_unsent, // every user's together hold unsent_bytes: 503
};

class ApiBudget : public std::enable_shared_from_this<ApiBudget> {
  public:
    static std::shared_ptr<ApiBudget> create(ApiLimits limits) {
        return std::shared_ptr<ApiBudget>(new ApiBudget(limits));
    }
    ApiBudget(const ApiBudget &) = delete;
    ApiBudget &operator=(const ApiBudget &) = delete;

    // SIGHUP: calls and replies held stay, even above the new limits.
    void reconfigure(ApiLimits limits) { limits_ = limits; }

    // Whether `user` may start a call now. A user's own limits are judged first: they are the
    // answers that do not depend on other users.
    ApiAdmission admit(const std::string &user) const;
    // An admitted call starts, and later finishes (exactly once each).
    void call_started(const std::string &user);
    void call_finished(const std::string &user);

    // Appends `body` to `buffer` without copying it; its bytes count against `user` until they are
    // written or the buffer is freed.
    void add_reply(evbuffer *buffer, const std::string &user, std::string body);

    int calls(const std::string &user) const;
    std::int64_t unsent(const std::string &user) const;
    std::int64_t unsent() const { return unsent_; }

  private:
    struct Reply;
    struct Usage {
        int calls = 0;
        std::int64_t unsent = 0;
    };

    explicit ApiBudget(ApiLimits limits) : limits_(limits) {}
    void release(const std::string &user, std::int64_t bytes);
    static void on_reply_gone(const void *data, std::size_t length, void *reply);

    ApiLimits limits_;
    std::unordered_map<std::string, Usage> users_; // only users holding something
    std::int64_t unsent_ = 0;
};

} // namespace pgfeed::notifier
