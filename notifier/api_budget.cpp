#include "api_budget.hpp"

#include <event2/buffer.h>

#include <utility>

namespace pgfeed::notifier {

// A reply's body while it waits to be written, and who it counts against.
struct ApiBudget::Reply {
    std::shared_ptr<ApiBudget> budget;
    std::string user;
    std::string body;
};

ApiAdmission ApiBudget::admit(const std::string &user) const {
    auto found = users_.find(user);
    if (found != users_.end() && found->second.calls >= limits_.calls_per_user)
        return ApiAdmission::user_calls;
    if (found != users_.end() && found->second.unsent >= limits_.unsent_bytes_per_user)
        return ApiAdmission::user_unsent;
    if (unsent_ >= limits_.unsent_bytes)
        return ApiAdmission::worker_unsent;
    return ApiAdmission::admitted;
}

void ApiBudget::call_started(const std::string &user) { ++users_[user].calls; }

void ApiBudget::call_finished(const std::string &user) {
    auto found = users_.find(user);
    if (found == users_.end())
        return;
    if (--found->second.calls <= 0 && found->second.unsent == 0)
        users_.erase(found);
}

void ApiBudget::add_reply(evbuffer *buffer, const std::string &user, std::string body) {
    auto *reply = new Reply{shared_from_this(), user, std::move(body)};
    const auto bytes = static_cast<std::int64_t>(reply->body.size());
    if (bytes == 0 ||
        evbuffer_add_reference(buffer, reply->body.data(), reply->body.size(), on_reply_gone, reply) != 0) {
        evbuffer_add(buffer, reply->body.data(), reply->body.size());
        delete reply;
        return;
    }
    users_[user].unsent += bytes;
    unsent_ += bytes;
}

void ApiBudget::release(const std::string &user, std::int64_t bytes) {
    unsent_ -= bytes;
    auto found = users_.find(user);
    if (found == users_.end())
        return;
    found->second.unsent -= bytes;
    if (found->second.unsent <= 0 && found->second.calls == 0)
        users_.erase(found);
}

void ApiBudget::on_reply_gone(const void *, std::size_t, void *arg) {
    auto *reply = static_cast<Reply *>(arg);
    reply->budget->release(reply->user, static_cast<std::int64_t>(reply->body.size()));
    delete reply;
}

int ApiBudget::calls(const std::string &user) const {
    auto found = users_.find(user);
    return found == users_.end() ? 0 : found->second.calls;
}

std::int64_t ApiBudget::unsent(const std::string &user) const {
    auto found = users_.find(user);
    return found == users_.end() ? 0 : found->second.unsent;
}

} // namespace pgfeed::notifier
