#include "connection_guard.hpp"

#include "http_reply.hpp"
#include "log.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace pgfeed::notifier {

namespace {

// How often deadlines are enforced and closed connections let go of.
constexpr timeval kSweepEvery{0, 100 * 1000};
// How long the listener rests after an accept() error or near the file limit, unless a
// connection closes first.
constexpr timeval kPauseFor{0, 250 * 1000};
// At most one line per this about the listener pausing, however often it does.
constexpr std::chrono::seconds kPauseLogEvery{10};

int file_ceiling() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > INT_MAX)
        return INT_MAX - ConnectionGuard::reserved_files;
    return std::max(1, static_cast<int>(limit.rlim_cur) - ConnectionGuard::reserved_files);
}

// The error callback gets the listener's argument, which is evhttp's: this finds the guard.
std::unordered_map<evconnlistener *, ConnectionGuard *> &guards() {
    static std::unordered_map<evconnlistener *, ConnectionGuard *> by_listener;
    return by_listener;
}

} // namespace

std::string address_key(const sockaddr *address) {
    auto ip = ip_address_of(address);
    return ip ? address_key(*ip) : "";
}

ConnectionGuard::ConnectionGuard(event_base *base, WorkerMetrics metrics, ConnectionLimits limits)
    : base_(base), metrics_(metrics), limits_(limits), file_ceiling_(file_ceiling()) {
    sort_event_.reset(event_new(
        base_, -1, 0, [](evutil_socket_t, short, void *self) { static_cast<ConnectionGuard *>(self)->sort_accepted(); },
        this));
    sweep_timer_.reset(event_new(
        base_, -1, EV_PERSIST,
        [](evutil_socket_t, short, void *self) { static_cast<ConnectionGuard *>(self)->sweep(); }, this));
    resume_timer_.reset(evtimer_new(
        base_, [](evutil_socket_t, short, void *self) { static_cast<ConnectionGuard *>(self)->resume(); }, this));
    event_add(sweep_timer_.get(), &kSweepEvery);
}

ConnectionGuard::~ConnectionGuard() {
    if (listener_)
        guards().erase(listener_);
    for (auto &[socket, connection] : connections_)
        bufferevent_decref(socket);
}

void ConnectionGuard::reconfigure(ConnectionLimits limits) { limits_ = limits; }

void ConnectionGuard::watch(evconnlistener *listener) {
    if (listener_)
        guards().erase(listener_);
    listener_ = listener;
    paused_ = false;
    if (listener_) {
        guards()[listener_] = this;
        evconnlistener_set_error_cb(listener_, on_accept_error);
    }
}

bufferevent *ConnectionGuard::accepted() {
    bufferevent *socket = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!socket)
        return nullptr;
    bufferevent_incref(socket);
    // Elements of an unordered_map keep their address: the callback may point at this one.
    Connection &connection =
        connections_.emplace(socket, Connection{Clock::now() + limits_.request_timeout, "", false}).first->second;
    evbuffer_add_cb(bufferevent_get_input(socket), on_input, &connection);
    // libevent accepts until the queue is empty within one callback, and evhttp gives this
    // bufferevent its socket only after we return: the one accepted before has its socket now, so
    // a burst stops at the file ceiling, one connection past it at most.
    if (!unsorted_.empty() && bufferevent_getfd(unsorted_.back()) >= file_ceiling_)
        pause("near the file limit", 0);
    unsorted_.push_back(socket);
    // Runs after this burst of accepts, before anything is read from these connections.
    event_active(sort_event_.get(), EV_TIMEOUT, 0);
    return socket;
}

// Sockets are numbered from the lowest free one, so one at or above the ceiling means the table is
// that full: it is refused, which keeps the files above the ceiling for the worker's own use.
void ConnectionGuard::sort_accepted() {
    for (bufferevent *socket : unsorted_) {
        auto found = connections_.find(socket);
        const int fd = bufferevent_getfd(socket);
        if (found == connections_.end() || fd < 0)
            continue;
        if (fd >= file_ceiling_) {
            refuse(socket, found->second, 503, "Service Unavailable", "the server is at its connection limit; retry",
                   Counter::rejected_file_limit);
            pause("near the file limit", 0);
            continue;
        }
        sockaddr_storage peer{};
        socklen_t length = sizeof peer;
        if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &length) != 0)
            continue; // already gone: evhttp will notice
        const auto ip = ip_address_of(reinterpret_cast<sockaddr *>(&peer));
        if (ip && limits_.trusted.trusts(*ip)) {
            found->second.proxied = true; // its requests name their clients
            continue;
        }
        if (!count(found->second, ip ? address_key(*ip) : ""))
            refuse(socket, found->second, 429, "Too Many Requests", "too many connections from this address",
                   Counter::rejected_address_limit);
    }
    unsorted_.clear();
}

bool ConnectionGuard::request_arrived(bufferevent *socket, const std::string &client) {
    auto found = connections_.find(socket);
    if (found == connections_.end())
        return true;
    found->second.deadline = Clock::time_point::max();
    if (!found->second.proxied)
        return true;
    release(found->second); // a reply evhttp never completed
    return count(found->second, client);
}

void ConnectionGuard::reply_sent(bufferevent *socket) {
    if (auto found = connections_.find(socket); found != connections_.end()) {
        if (found->second.proxied)
            release(found->second); // the proxy's next request may come from anybody
        found->second.deadline = Clock::now() + limits_.request_timeout;
        found->second.begun = evbuffer_get_length(bufferevent_get_input(socket)) > 0; // pipelined
    }
}

void ConnectionGuard::on_input(evbuffer *, const evbuffer_cb_info *info, void *connection) {
    if (info->n_added > 0)
        static_cast<Connection *>(connection)->begun = true;
}

void ConnectionGuard::sweep() {
    const auto now = Clock::now();
    bool closed = false;
    for (auto it = connections_.begin(); it != connections_.end();) {
        bufferevent *socket = it->first;
        bufferevent_event_cb on_event = nullptr;
        bufferevent_getcb(socket, nullptr, nullptr, &on_event, nullptr);
        if (!on_event) { // evhttp let go of it: our reference is the last, and closes the socket
            release(it->second);
            bufferevent_decref(socket);
            it = connections_.erase(it);
            closed = true;
            continue;
        }
        if (now >= it->second.deadline && it->second.begun)
            refuse(socket, it->second, 408, "Request Timeout", "the request took too long to arrive",
                   Counter::rejected_request_timeout);
        else if (now >= it->second.deadline)
            hang_up(socket, it->second);
        ++it;
    }
    if (closed)
        resume();
}

// Nothing of a reply is in flight while a request is awaited, so the answer is written straight to
// the socket, best effort, and the socket shut down: evhttp reads the end of the stream and frees
// the connection. The client may see a reset rather than the answer if it was still sending.
void ConnectionGuard::refuse(bufferevent *socket, Connection &connection, int status, const char *reason,
                             const char *message, Counter counted) {
    metrics_.add(counted);
    const std::string body = error_json(message);
    const std::string reply = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                              "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: " +
                              std::to_string(body.size()) + (status == 408 ? "" : "\r\nRetry-After: 1") +
                              "\r\nConnection: close\r\n\r\n" + body;
    const int fd = bufferevent_getfd(socket);
    [[maybe_unused]] ssize_t sent = send(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    hang_up(socket, connection);
}

void ConnectionGuard::hang_up(bufferevent *socket, Connection &connection) {
    shutdown(bufferevent_getfd(socket), SHUT_RDWR);
    connection.deadline = Clock::time_point::max();
    release(connection);
}

bool ConnectionGuard::count(Connection &connection, std::string address) {
    int &held = per_address_[address];
    if (held >= limits_.per_address)
        return false;
    ++held;
    connection.address = std::move(address);
    return true;
}

void ConnectionGuard::release(Connection &connection) {
    if (connection.address.empty())
        return;
    if (auto held = per_address_.find(connection.address); held != per_address_.end() && --held->second <= 0)
        per_address_.erase(held);
    connection.address.clear();
}

// Disabling the listener leaves new connections in the kernel's queue: they are accepted, not
// refused, once the worker has files again.
void ConnectionGuard::pause(const char *why, int error) {
    if (!listener_)
        return;
    if (!paused_) {
        evconnlistener_disable(listener_);
        paused_ = true;
        event_add(resume_timer_.get(), &kPauseFor);
    }
    ++pauses_unlogged_;
    const auto now = Clock::now();
    if (now - last_pause_log_ < kPauseLogEvery)
        return;
    log_warn("http", "not accepting connections for a moment",
             {{"why", why},
              {"error", error ? std::strerror(error) : ""},
              {"connections", connections_.size()},
              {"file_ceiling", file_ceiling_},
              {"pauses", pauses_unlogged_}});
    last_pause_log_ = now;
    pauses_unlogged_ = 0;
}

void ConnectionGuard::resume() {
    if (!paused_ || !listener_)
        return;
    event_del(resume_timer_.get());
    paused_ = false;
    evconnlistener_enable(listener_);
}

// Without this callback libevent logs the error and returns, and the listening socket, still
// readable, brings it straight back: a busy loop writing a line per turn (EMFILE).
void ConnectionGuard::on_accept_error(evconnlistener *listener, void *) {
    const int error = EVUTIL_SOCKET_ERROR();
    if (auto found = guards().find(listener); found != guards().end())
        found->second->pause("accept failed", error);
}

} // namespace pgfeed::notifier
