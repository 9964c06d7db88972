// Connection limits that hold across worker processes: connections per user (then 429) and in
// total (then 503). SO_REUSEPORT spreads one user's connections over the workers, so no worker can
// count them alone: the supervisor keeps the one exact registry, and every worker asks it over a
// socketpair of its own before admitting a stream, and tells it when a stream ends.
//
// Wire format, one message per SOCK_SEQPACKET packet, integers big-endian:
//   request  worker -> supervisor: op (1 byte: 'A' acquire, 'R' release), request id (uint32),
//            user (1..max_user_bytes bytes, the rest of the packet)
//   reply    supervisor -> worker, acquires only: request id (uint32), result (1 byte: the
//            Admission value, 0 admitted, 1 user_limit, 2 total_limit, 3 unavailable)
// Either side logs and drops a packet that breaks these rules.
#pragma once

#include "event_ptr.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct event_base;

namespace pgfeed::notifier {

struct AdmissionLimits {
    int per_user = 3;  // [limits] connections_per_user
    int total = 10000; // [limits] max_connections
};

enum class Admission {
    admitted,
    user_limit,  // the user holds per_user connections already: 429
    total_limit, // all workers together hold `total` connections: 503
    unavailable, // the supervisor is gone or did not answer in time (only AdmissionClient says so)
};

// "admitted", "user_limit", "total_limit", "unavailable": a label for logs and metrics.
const char *admission_name(Admission admission);

// The supervisor's counts: pure logic, no I/O. Each worker's connections are counted apart, so a
// dead worker's can be dropped at once. Memory is O(users connected): a user's entry disappears
// when their count reaches 0.
class AdmissionRegistry {
  public:
    // Throws std::invalid_argument unless both limits are >= 1.
    explicit AdmissionRegistry(AdmissionLimits limits);

    // Counts one more connection of `user` on `worker` if both limits allow it. When both are
    // reached, user_limit wins: it is the answer that does not depend on other users.
    Admission acquire(int worker, std::string_view user);
    // Uncounts one connection of `user` on `worker`. Returns false, changing nothing, when that
    // worker holds none for that user (a release without an acquire: never an underflow).
    bool release(int worker, std::string_view user);
    // A dead worker's connections are gone: drops all its counts. Returns how many there were.
    std::size_t forget_worker(int worker);
    // New limits (SIGHUP): connections held stay, even above the new limits; acquires see the new
    // limits. Throws std::invalid_argument like the constructor, and then changes nothing.
    void reconfigure(AdmissionLimits limits);

    const AdmissionLimits &limits() const { return limits_; }
    // Connections over all workers.
    std::size_t total() const { return total_; }
    // Connections of `user` over all workers.
    int count(std::string_view user) const;
    // Users with at least one connection (entries held).
    std::size_t users() const { return users_.size(); }

  private:
    AdmissionLimits limits_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, int> users_;                              // user -> count
    std::unordered_map<int, std::unordered_map<std::string, int>> by_worker_; // worker -> user -> count
};

// The two ends of one worker's channel: socketpair(AF_UNIX, SOCK_SEQPACKET), close-on-exec and
// non-blocking. Made by the supervisor before it forks the worker; after fork() the supervisor
// closes worker_fd and the worker closes supervisor_fd. The worker must also close every other
// supervisor_fd it inherited (close-on-exec does nothing without exec): a copy of a channel's
// supervisor end held by any other process hides the supervisor's death from that channel's worker.
// Throws std::system_error when the socketpair cannot be made (out of files).
struct AdmissionChannel {
    int supervisor_fd = -1;
    int worker_fd = -1;
};
AdmissionChannel make_admission_channel();

// The supervisor's side, on its event loop: reads the requests of every attached worker and
// answers the acquires. A worker whose channel reaches EOF or fails died: it is detached and its
// counts are dropped. Replies that would block are queued; while more than a bound wait for one
// worker, that worker's requests are left in the socket until it reads, so memory stays bounded.
class AdmissionServer {
  public:
    // base must outlive the server.
    AdmissionServer(event_base *base, AdmissionLimits limits);
    // Closes every worker's fd.
    ~AdmissionServer();
    AdmissionServer(const AdmissionServer &) = delete;
    AdmissionServer &operator=(const AdmissionServer &) = delete;

    // Serves `worker` on `fd`, which the server owns from now on (made non-blocking). A worker
    // already attached under that number (a restarted worker) is detached first.
    void attach(int worker, int fd);
    // Closes the worker's fd and drops its counts (the supervisor saw it exit). No-op for an
    // unknown worker apart from dropping counts it may hold.
    void detach(int worker);
    // Throws std::invalid_argument like AdmissionRegistry::reconfigure.
    void reconfigure(AdmissionLimits limits);

    const AdmissionRegistry &registry() const { return registry_; }
    bool attached(int worker) const { return workers_.count(worker) != 0; }

  private:
    struct Worker {
        AdmissionServer *server;
        int id;
        int fd;
        EventPtr read_event, write_event;
        std::deque<std::string> replies; // waiting for the socket to take them
        bool reading = true;
        ~Worker();
    };

    // Each returns false when it detached the worker (which is then freed).
    bool handle_request(Worker &worker, const unsigned char *packet, std::size_t size);
    bool send_reply(Worker &worker, std::string reply);
    bool flush_replies(Worker &worker);
    void channel_failed(Worker &worker, const char *what, int error);

    static void on_readable(int fd, short what, void *arg);
    static void on_writable(int fd, short what, void *arg);

    event_base *base_;
    AdmissionRegistry registry_;
    std::unordered_map<int, std::unique_ptr<Worker>> workers_;
};

// A worker's side, on its event loop. Requests go out in call order; one that would block waits in
// a queue for the socket (EV_WRITE), none is dropped while the channel lives.
//
// An acquire that times out reports unavailable; if the supervisor admits it later after all, the
// client releases that connection itself, so the supervisor's counts stay exact.
class AdmissionClient {
  public:
    using Done = std::function<void(Admission)>;

    // Acquires in flight (sent or queued, including timed out ones awaiting their late reply) are
    // capped at this; further acquires report unavailable.
    static constexpr std::size_t max_pending = 4096;

    // Owns fd (made non-blocking; closed by the destructor). base must outlive the client.
    AdmissionClient(event_base *base, int fd, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
    // Closes the channel; callbacks not yet run never run. The supervisor sees EOF and drops
    // every connection this worker held.
    ~AdmissionClient();
    AdmissionClient(const AdmissionClient &) = delete;
    AdmissionClient &operator=(const AdmissionClient &) = delete;

    // Asks for one connection of `user` (1..max_user_bytes bytes). done runs exactly once, from the
    // event loop (never inside acquire()): with the supervisor's answer, or with unavailable when
    // the channel is lost (EOF, error), no answer came within the timeout, the user is not a valid
    // one, or max_pending acquires are in flight. A connection admitted must be released once.
    // done may call acquire() or release() and may destroy the client.
    void acquire(std::string user, Done done);
    // Gives back one admitted connection of `user`; nothing comes back. Ignored once the channel
    // is lost: the supervisor dropped this worker's counts then.
    void release(std::string_view user);

    // False once the channel is lost (EOF or error on the socket): every acquire is unavailable.
    bool connected() const { return connected_; }
    // Acquires without an answer yet, timed out ones included.
    std::size_t pending() const { return pending_.size(); }
    // Requests waiting for the socket.
    std::size_t queued() const { return outbox_.size(); }

  private:
    using Clock = std::chrono::steady_clock;

    struct Pending {
        std::string user;
        Done done; // empty once it ran (timed out, the reply may still come)
    };

    void send_request(std::string packet);
    bool flush_outbox();
    void read_replies();
    void handle_reply(const unsigned char *packet, std::size_t size);
    void expire(Clock::time_point now);
    void channel_lost(const char *what, int error);
    void finish(Done done, Admission admission);
    void deliver();

    static void on_readable(int fd, short what, void *arg);
    static void on_writable(int fd, short what, void *arg);
    static void on_timer(int fd, short what, void *arg);
    static void on_deliver(int fd, short what, void *arg);

    int fd_;
    std::chrono::milliseconds timeout_;
    bool connected_ = true;
    std::uint32_t next_id_ = 1;
    std::unordered_map<std::uint32_t, Pending> pending_;
    std::deque<std::pair<Clock::time_point, std::uint32_t>> deadlines_; // in send order, so in deadline order
    std::deque<std::string> outbox_;
    std::vector<std::pair<Done, Admission>> results_; // run by on_deliver, from the loop
    // Cleared by the destructor: on_deliver stops when a callback destroyed the client.
    std::shared_ptr<bool> alive_;
    EventPtr read_event_, write_event_, timer_, deliver_event_;
};

} // namespace pgfeed::notifier
