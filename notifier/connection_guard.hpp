// What one client may hold of a worker before its requests cost anything: every accepted
// connection is tracked from accept() to close, so that
//   - each request (its line, headers and body) must arrive within a deadline, the first on a
//     connection and every later one on a keep-alive connection alike (slowloris, trickled bodies):
//     then it gets 408 and is closed; a connection that sent nothing of it is closed quietly (an
//     idle keep-alive connection, which clients expect to see closed);
//   - one client address holds at most `per_address` connections, streams included (then 429);
//     a trusted proxy's connections are counted under the client each request names
//     (trusted_proxies.hpp), for as long as that request is answered;
//   - connections never take the worker's last files: near RLIMIT_NOFILE the listener pauses
//     (evconnlistener_disable) instead of accepting into a full table, which libevent would retry
//     at once and forever, and resumes when a connection closes or after a short timer;
//   - accept() errors are logged at a bounded rate.
//
// evhttp (libevent 2.1) offers no hook when it accepts or frees a connection, nor a deadline for a
// whole request (its timeouts bound silence only). So the bufferevent evhttp asks for (its bevcb)
// is made here, with a reference held on it: a sweep finds those evhttp has let go of (their
// callbacks are cleared then), drops the reference, which closes the socket, and enforces the
// deadlines. The peer's address is read once evhttp has given the bufferevent its socket.
#pragma once

#include "event_ptr.hpp"
#include "metrics.hpp"
#include "trusted_proxies.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>
#include <vector>

struct bufferevent;
struct evbuffer;
struct evbuffer_cb_info;
struct event_base;
struct evconnlistener;
struct sockaddr;

namespace pgfeed::notifier {

struct ConnectionLimits {
    int per_address = 256;                            // [limits] connections_per_address
    std::chrono::milliseconds request_timeout{10000}; // [http] header_timeout_ms
    TrustedProxies trusted;                           // [http] trusted_proxies
};

// address_key() of an AF_INET or AF_INET6 address (an IPv4-mapped IPv6 address counts as the
// IPv4 address); "" for anything else.
std::string address_key(const sockaddr *address);

class ConnectionGuard {
  public:
    // Files kept free below RLIMIT_NOFILE for what the worker opens besides connections: its
    // PostgreSQL and Redis sessions (reconnects included), static files, the admission channel.
    static constexpr int reserved_files = 64;

    // base must outlive the guard.
    ConnectionGuard(event_base *base, WorkerMetrics metrics, ConnectionLimits limits);
    // Drops every reference: call after evhttp_free, which lets go of every connection.
    ~ConnectionGuard();
    ConnectionGuard(const ConnectionGuard &) = delete;
    ConnectionGuard &operator=(const ConnectionGuard &) = delete;

    // SIGHUP: for connections accepted and requests started from now on.
    void reconfigure(ConnectionLimits limits);
    // The listener evhttp accepts on: its errors come here, and it is paused near the file limit.
    // nullptr before it is freed (SIGTERM).
    void watch(evconnlistener *listener);

    // evhttp's bevcb: the bufferevent of a connection just accepted, tracked from now on.
    bufferevent *accepted();
    // The request on `socket` has arrived whole: no deadline while it is answered (a stream's
    // connection never has one again). On a trusted proxy's connection it counts under `client`
    // (an address_key) until its reply is sent; false, counting nothing, when that client holds
    // per_address already: the caller answers 429 and closes.
    bool request_arrived(bufferevent *socket, const std::string &client);
    // Its reply is sent: a keep-alive connection now waits for its next request, under a deadline.
    void reply_sent(bufferevent *socket);

    // Connections evhttp holds or has just let go of.
    std::size_t size() const { return connections_.size(); }

  private:
    using Clock = std::chrono::steady_clock;
    struct Connection {
        Clock::time_point deadline;
        std::string address;  // counted under this once sorted; "" until then or when refused
        bool begun = false;   // bytes of the awaited request arrived: past the deadline, it gets 408
        bool proxied = false; // from a trusted proxy: counted per request, under the client it names
    };

    void sort_accepted();
    void sweep();
    void refuse(bufferevent *socket, Connection &connection, int status, const char *reason, const char *message,
                Counter counted);
    bool count(Connection &connection, std::string address);
    void release(Connection &connection);
    void hang_up(bufferevent *socket, Connection &connection);
    void pause(const char *why, int error);
    void resume();

    static void on_accept_error(evconnlistener *listener, void *self);
    static void on_input(evbuffer *input, const evbuffer_cb_info *info, void *connection);

    event_base *base_;
    WorkerMetrics metrics_;
    ConnectionLimits limits_;
    int file_ceiling_; // a connection's socket must be below this
    evconnlistener *listener_ = nullptr;
    bool paused_ = false;
    std::unordered_map<bufferevent *, Connection> connections_;
    std::vector<bufferevent *> unsorted_; // accepted, their address not read yet
    std::unordered_map<std::string, int> per_address_;
    EventPtr sort_event_, sweep_timer_, resume_timer_;
    Clock::time_point last_pause_log_{};
    int pauses_unlogged_ = 0;
};

} // namespace pgfeed::notifier
