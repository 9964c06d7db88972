#include "redis_link.hpp"

#include "log.hpp"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <utility>

namespace pgfeed::notifier {

namespace {

constexpr const char *kComponent = "redis";

timeval to_timeval(std::chrono::milliseconds delay) {
    return {static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>(delay.count() % 1000 * 1000)};
}

RedisReply copy_reply(const redisReply &reply) {
    RedisReply out;
    switch (reply.type) {
    case REDIS_REPLY_STRING:
        out.type = RedisReply::Type::string;
        out.str.assign(reply.str, reply.len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = RedisReply::Type::status;
        out.str.assign(reply.str, reply.len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = RedisReply::Type::error;
        out.str.assign(reply.str, reply.len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = RedisReply::Type::integer;
        out.integer = reply.integer;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = RedisReply::Type::array;
        out.elements.reserve(reply.elements);
        for (size_t i = 0; i < reply.elements; ++i)
            out.elements.push_back(copy_reply(*reply.element[i]));
        break;
    default:
        out.type = RedisReply::Type::nil;
        break;
    }
    return out;
}

RedisReply lost_reply() {
    RedisReply reply;
    reply.lost = true;
    return reply;
}

// hiredis keeps the reason of a failed connect or a drop in the sync context's errstr.
std::string error_of(const redisAsyncContext *ac) {
    return ac->c.errstr[0] ? std::string(ac->c.errstr) : std::string("connection closed");
}

} // namespace

RedisLink::RedisLink(event_base *base, RedisLinkOptions options, RedisLinkCallbacks callbacks)
    : base_(base), options_(std::move(options)), callbacks_(std::move(callbacks)),
      backoff_(options_.retry_initial, options_.retry_max), connect_timer_(evtimer_new(base, on_connect_timeout, this)),
      retry_timer_(evtimer_new(base, on_retry_due, this)) {}

RedisLink::~RedisLink() { stop(); }

void RedisLink::start() {
    if (state_ != State::stopped)
        return;
    backoff_.reset();
    connect();
}

void RedisLink::stop() {
    if (state_ == State::stopped)
        return;
    event_del(connect_timer_.get());
    event_del(retry_timer_.get());
    bool hiredis_frees = state_ == State::dropping;
    state_ = State::stopped;
    redisAsyncContext *ac = std::exchange(ac_, nullptr);
    if (!ac)
        return;
    // Detached first: the pending commands' callbacks that hiredis runs now may destroy the link.
    ac->data = nullptr;
    if (!hiredis_frees)
        redisAsyncFree(ac);
}

void RedisLink::command(Argv argv, Done done) {
    if (state_ != State::ready) {
        done(lost_reply());
        return;
    }
    if (argv.empty()) {
        // Redis answers nothing to an empty command, so every later reply would go to the wrong callback.
        RedisReply refused;
        refused.type = RedisReply::Type::error;
        refused.str = "ERR empty command";
        done(refused);
        return;
    }
    std::vector<const char *> args;
    std::vector<size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const std::string &arg : argv) {
        args.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    // hiredis formats the command into its output buffer before returning, so argv may go.
    auto owned = std::make_unique<Done>(std::move(done));
    if (redisAsyncCommandArgv(ac_, on_reply, owned.get(), static_cast<int>(args.size()), args.data(), lengths.data()) !=
        REDIS_OK) {
        (*owned)(lost_reply());
        return;
    }
    owned.release(); // on_reply owns it now
}

void RedisLink::connect() {
    state_ = State::connecting;
    redisAsyncContext *ac = options_.unix_socket.empty() ? redisAsyncConnect(options_.host.c_str(), options_.port)
                                                         : redisAsyncConnectUnix(options_.unix_socket.c_str());
    if (!ac) {
        attempt_failed("out of memory");
        return;
    }
    if (ac->err) {
        std::string reason = error_of(ac);
        redisAsyncFree(ac);
        attempt_failed(reason);
        return;
    }
    ac->data = this;
    redisLibeventAttach(ac, base_);
    redisAsyncSetConnectCallback(ac, on_connected);
    redisAsyncSetDisconnectCallback(ac, on_disconnected);
    ac_ = ac;
    timeval timeout = to_timeval(options_.connect_timeout);
    evtimer_add(connect_timer_.get(), &timeout);
}

// AUTH when configured, else PING: either way on_ready runs from a reply callback, where hiredis
// allows the context to be freed (a callback of on_ready may stop or destroy the link), and only
// once the server has answered. Queueing fails only when out of memory; the connect timeout then
// gives up on this attempt (freeing the context here, in hiredis 0.14's connect callback, would
// leave hiredis using it afterwards).
void RedisLink::handshake() {
    const char *ping[] = {"PING"};
    const char *auth[] = {"AUTH", options_.password.c_str()};
    size_t auth_lengths[] = {4, options_.password.size()};
    if (options_.password.empty())
        redisAsyncCommandArgv(ac_, on_handshake_reply, nullptr, 1, ping, nullptr);
    else
        redisAsyncCommandArgv(ac_, on_handshake_reply, nullptr, 2, auth, auth_lengths);
}

void RedisLink::become_ready() {
    event_del(connect_timer_.get());
    state_ = State::ready;
    backoff_.reset();
    log_info(kComponent, "connection ready", {{"address", address()}});
    if (callbacks_.on_ready)
        callbacks_.on_ready();
}

// Gives up a context hiredis still owns: detached so its remaining callbacks find no link, then
// freed (hiredis defers that until a running reply callback returns).
void RedisLink::abandon_context() {
    redisAsyncContext *ac = std::exchange(ac_, nullptr);
    ac->data = nullptr;
    redisAsyncFree(ac);
}

// A connect that never became ready: logged, retried, not reported (there was no on_ready).
void RedisLink::attempt_failed(const std::string &reason) {
    std::chrono::milliseconds delay = backoff_.next_delay();
    log_warn(kComponent, "connect failed", {{"address", address()}, {"error", reason}, {"retry_in_ms", delay.count()}});
    retry_later(delay);
}

void RedisLink::connection_lost(const std::string &reason) {
    std::chrono::milliseconds delay = backoff_.next_delay();
    log_warn(kComponent, "connection lost",
             {{"address", address()}, {"error", reason}, {"retry_in_ms", delay.count()}});
    retry_later(delay);
    if (callbacks_.on_lost)
        callbacks_.on_lost();
}

void RedisLink::retry_later(std::chrono::milliseconds delay) {
    event_del(connect_timer_.get());
    state_ = State::waiting_to_retry;
    timeval when = to_timeval(delay);
    evtimer_add(retry_timer_.get(), &when);
}

std::string RedisLink::address() const {
    return options_.unix_socket.empty() ? options_.host + ":" + std::to_string(options_.port) : options_.unix_socket;
}

void RedisLink::on_connected(const redisAsyncContext *ac, int status) {
    auto *link = static_cast<RedisLink *>(ac->data);
    if (!link)
        return;
    if (status != REDIS_OK) {
        link->ac_ = nullptr; // hiredis frees it when this returns
        link->attempt_failed(error_of(ac));
        return;
    }
    link->handshake();
}

// Runs just before hiredis frees the context of a connection that dropped (pending commands have
// been failed by then). Contexts the link gave up itself are detached and never get here.
void RedisLink::on_disconnected(const redisAsyncContext *ac, int) {
    auto *link = static_cast<RedisLink *>(ac->data);
    if (!link)
        return;
    link->ac_ = nullptr;
    if (link->state_ == State::ready || link->state_ == State::dropping)
        link->connection_lost(error_of(ac));
    else
        link->attempt_failed(error_of(ac));
}

void RedisLink::on_handshake_reply(redisAsyncContext *ac, void *reply, void *) {
    auto *link = static_cast<RedisLink *>(ac->data);
    auto *handshake = static_cast<const redisReply *>(reply);
    // No link: given up (stopped or timed out). No reply: the connection dropped, and
    // on_disconnected reports it.
    if (!link || !handshake)
        return;
    if (handshake->type == REDIS_REPLY_ERROR) {
        std::string reason = std::string(link->options_.password.empty() ? "PING" : "AUTH") +
                             " failed: " + std::string(handshake->str, handshake->len);
        link->abandon_context();
        link->attempt_failed(reason);
        return;
    }
    link->become_ready();
}

void RedisLink::on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    std::unique_ptr<Done> done(static_cast<Done *>(privdata));
    if (!reply) {
        // hiredis fails pending commands with no reply only while it tears the connection down.
        auto *link = static_cast<RedisLink *>(ac->data);
        if (link && link->state_ == State::ready)
            link->state_ = State::dropping;
        (*done)(lost_reply());
        return;
    }
    (*done)(copy_reply(*static_cast<const redisReply *>(reply)));
}

void RedisLink::on_connect_timeout(int, short, void *arg) {
    auto *link = static_cast<RedisLink *>(arg);
    link->abandon_context();
    link->attempt_failed("timed out after " + std::to_string(link->options_.connect_timeout.count()) + " ms");
}

void RedisLink::on_retry_due(int, short, void *arg) { static_cast<RedisLink *>(arg)->connect(); }

} // namespace pgfeed::notifier
