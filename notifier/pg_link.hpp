// One PostgreSQL session of the notifier, driven by the libevent loop: it LISTENs on the configured
// channels, runs queries one at a time in FIFO order and reports when the session is lost.
//
// libpq runs in non-blocking mode so that a slow or dead server never stalls the loop that also serves
// Redis and the SSE clients. The session holds the caller's session-level advisory locks, so it never
// reconnects silently: every new session is announced by on_ready, and every lost one by on_lost.
#pragma once

#include "backoff.hpp"
#include "event_ptr.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct event_base;
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace pgfeed::notifier {

// The outcome of one query, copied out of libpq: it owns no PGresult and outlives the session.
struct PgResult {
    bool ok = false;
    std::string error;    // when !ok: the server's message, "not connected" or "connection lost: ..."
    std::string sqlstate; // when the server reported the error, e.g. "42P01"; empty otherwise
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows; // text format; nullopt is SQL NULL
};

struct PgLinkOptions {
    // libpq connection string; never logged, it may hold a password. libpq resolves a host name
    // with a blocking lookup: a unix socket directory or hostaddr keeps the loop free of it.
    std::string conninfo;
    std::vector<std::string> channels; // LISTENed to before on_ready
    // libpq ignores connect_timeout in PQconnectPoll, so the link times out connect and LISTEN itself.
    std::chrono::milliseconds connect_timeout{10000};
    // Delays between failed connects and after a loss; a session that becomes ready resets them.
    std::chrono::milliseconds retry_initial{100};
    std::chrono::milliseconds retry_max{10000};
};

// Run from the event loop, never from inside start(), stop() or query(). on_ready and on_lost
// alternate, starting with on_ready; a stop() ends a session without on_lost. on_notify comes only
// while the session is ready.
struct PgLinkCallbacks {
    // A new session LISTENs and takes queries. NOTIFYs sent while no session listened are lost, so
    // this is where the caller catches up.
    std::function<void()> on_ready;
    // That session is gone, with its advisory locks; its queries have failed already.
    std::function<void()> on_lost;
    // A NOTIFY arrived on a LISTENed channel: a wake-up, the payload is not passed on.
    std::function<void(const std::string &channel)> on_notify;
};

// Every callback may call query(), stop() or start(), and may destroy the link (which stops it).
class PgLink {
  public:
    using Params = std::vector<std::optional<std::string>>;
    using Done = std::function<void(const PgResult &)>;

    // base must outlive the link.
    PgLink(event_base *base, PgLinkOptions options, PgLinkCallbacks callbacks);
    // Stops the link: pending queries' done callbacks run from here.
    ~PgLink();
    PgLink(const PgLink &) = delete;
    PgLink &operator=(const PgLink &) = delete;

    // Connects in the background, and again after every loss, until stop().
    void start();
    // Closes the session and stops reconnecting; pending queries fail with "link stopped" before
    // stop() returns, and on_lost is not called. start() may follow.
    void stop();
    bool ready() const { return state_ == State::ready; }

    // Runs sql with text parameters $1..$n (nullopt is NULL) after every query queued before it.
    // done runs exactly once: with the result, or failed when the session is lost or stopped first.
    // When the link is not ready it fails before query() returns, with "not connected": a query is
    // never carried over to another session, where the caller's locks would not be held.
    // One statement per query; COPY is not supported.
    void query(std::string sql, Params params, Done done);

  private:
    enum class State { stopped, connecting, listening, ready, waiting_to_retry };
    struct Pending {
        std::string sql;
        Params params;
        Done done;
    };
    // Taken before running a callback, which may stop, restart or destroy the link: afterwards,
    // intact() says whether the link and the session it was working on still exist.
    struct Checkpoint {
        const PgLink *link;
        std::shared_ptr<const bool> alive;
        uint64_t session;
        bool intact() const { return *alive && link->session_ == session; }
    };

    Checkpoint checkpoint() const { return {this, alive_, session_}; }
    void connect();
    void poll_connect();
    void listen_channels();
    void become_ready();
    void watch_socket(short what);
    void on_readable();
    void send_next();
    void flush();
    bool read_results();
    bool collect(const PGresult *res);
    bool drain_notifies();
    void drop(const std::string &reason);
    std::deque<Pending> close_session();
    static void fail(std::deque<Pending> pending, const std::string &error);
    void log_connect_failure(const std::string &reason, std::chrono::milliseconds retry_in) const;

    static void on_socket_event(int fd, short what, void *arg);
    static void on_write_ready(int fd, short what, void *arg);
    static void on_send_due(int fd, short what, void *arg);
    static void on_connect_timeout(int fd, short what, void *arg);
    static void on_retry_due(int fd, short what, void *arg);

    event_base *base_;
    PgLinkOptions options_;
    PgLinkCallbacks callbacks_;
    Backoff backoff_;
    State state_ = State::stopped;
    PGconn *conn_ = nullptr;
    uint64_t session_ = 0;                                       // bumped whenever a session closes
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true); // cleared by the destructor
    std::deque<Pending> queue_;                                  // the front one is on the wire when in_flight_
    bool in_flight_ = false;
    PgResult current_; // the in-flight query's result, collected from libpq's results
    EventPtr socket_ev_, write_ev_, send_ev_, connect_timer_, retry_timer_;
};

} // namespace pgfeed::notifier
