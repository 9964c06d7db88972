// One Redis connection of the notifier on the libevent loop (hiredis's async API and its libevent
// adapter). Commands go out in call order on that one connection and their replies come back in the
// same order, so a caller pipelines by issuing commands back to back (MULTI, XADD..., EXEC).
//
// hiredis writes with write(2): the process must ignore SIGPIPE, or a dying server kills it.
#pragma once

#include "backoff.hpp"
#include "event_ptr.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct event_base;
struct redisAsyncContext;

namespace pgfeed::notifier {

// One reply, copied out of hiredis (RESP2): it owns no redisReply.
struct RedisReply {
    enum class Type { string, status, error, integer, nil, array };

    // The connection was lost, stopped or not ready before a reply came: nothing else is set, and
    // whether the server ran the command is unknown.
    bool lost = false;
    Type type = Type::nil;
    std::string str;                  // string, status and error replies
    long long integer = 0;            // integer replies
    std::vector<RedisReply> elements; // array replies
};

struct RedisLinkOptions {
    std::string host = "127.0.0.1"; // a name is resolved with a blocking lookup: prefer an address
    int port = 6379;
    std::string unix_socket; // used instead of host and port when set
    std::string password;    // sent with AUTH before on_ready when set; never logged
    // hiredis's async connect has no timeout of its own; this one covers connect and AUTH.
    std::chrono::milliseconds connect_timeout{5000};
    // Delays between failed connects and after a loss; a connection that becomes ready resets them.
    std::chrono::milliseconds retry_initial{100};
    std::chrono::milliseconds retry_max{10000};
};

// Run from the event loop, never from inside start(), stop() or command(). on_ready and on_lost
// alternate, starting with on_ready; a stop() ends a connection without on_lost.
struct RedisLinkCallbacks {
    std::function<void()> on_ready; // connected, AUTH (if any) accepted: commands are sent
    std::function<void()> on_lost;  // that connection is gone; its pending commands have failed already
};

// Every callback may call command(), stop() or start(), and may destroy the link (which stops it).
class RedisLink {
  public:
    using Argv = std::vector<std::string>;
    using Done = std::function<void(const RedisReply &)>;

    // base must outlive the link.
    RedisLink(event_base *base, RedisLinkOptions options, RedisLinkCallbacks callbacks);
    // Stops the link.
    ~RedisLink();
    RedisLink(const RedisLink &) = delete;
    RedisLink &operator=(const RedisLink &) = delete;

    // Connects in the background, and again after every loss, until stop().
    void start();
    // Closes the connection and stops reconnecting; on_lost is not called. Pending commands fail
    // with lost=true: before stop() returns, or right after the reply callback that called stop().
    // start() may follow.
    void stop();
    bool ready() const { return state_ == State::ready; }

    // Sends one command (binary-safe arguments). done runs exactly once: with the reply, or with
    // lost=true when the connection drops first. When the link is not ready, done runs with
    // lost=true before command() returns: commands are never queued for a later connection. An
    // empty argv is not sent: done runs before command() returns, with the error "ERR empty command".
    void command(Argv argv, Done done);

  private:
    // dropping: hiredis is failing the pending commands of a lost connection and then frees it.
    enum class State { stopped, connecting, ready, dropping, waiting_to_retry };

    void connect();
    void handshake();
    void become_ready();
    void abandon_context();
    void attempt_failed(const std::string &reason);
    void connection_lost(const std::string &reason);
    void retry_later(std::chrono::milliseconds delay);
    std::string address() const;

    static void on_connected(const redisAsyncContext *ac, int status);
    static void on_disconnected(const redisAsyncContext *ac, int status);
    static void on_handshake_reply(redisAsyncContext *ac, void *reply, void *privdata);
    static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
    static void on_connect_timeout(int fd, short what, void *arg);
    static void on_retry_due(int fd, short what, void *arg);

    event_base *base_;
    RedisLinkOptions options_;
    RedisLinkCallbacks callbacks_;
    Backoff backoff_;
    State state_ = State::stopped;
    // Until hiredis frees it: after its disconnect callback, or after a failed connect's callback.
    redisAsyncContext *ac_ = nullptr;
    EventPtr connect_timer_, retry_timer_;
};

} // namespace pgfeed::notifier
