#include "admission.hpp"

#include "auth.hpp"
#include "log.hpp"

#include <event2/event.h>
#include <event2/util.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace pgfeed::notifier {

namespace {

constexpr const char *kComponent = "admission";

constexpr unsigned char kAcquire = 'A';
constexpr unsigned char kRelease = 'R';
constexpr std::size_t kRequestHeader = 5; // op + request id
constexpr std::size_t kReplySize = 5;     // request id + result
constexpr std::size_t kMaxRequest = kRequestHeader + max_user_bytes;

// Packets read per wakeup and channel, so one busy worker cannot starve the others (the events
// are level-triggered: the rest is read on the next round).
constexpr int kReadBudget = 64;
// Replies queued for one worker before the server stops reading its requests.
constexpr std::size_t kMaxQueuedReplies = 1024;

void check_limits(AdmissionLimits limits) {
    if (limits.per_user < 1 || limits.total < 1)
        throw std::invalid_argument("admission limits must be >= 1");
}

void put_u32(std::string &out, std::uint32_t value) {
    out.push_back(static_cast<char>(value >> 24));
    out.push_back(static_cast<char>(value >> 16));
    out.push_back(static_cast<char>(value >> 8));
    out.push_back(static_cast<char>(value));
}

std::uint32_t get_u32(const unsigned char *in) {
    return std::uint32_t(in[0]) << 24 | std::uint32_t(in[1]) << 16 | std::uint32_t(in[2]) << 8 | std::uint32_t(in[3]);
}

std::string encode_request(unsigned char op, std::uint32_t id, std::string_view user) {
    std::string packet;
    packet.reserve(kRequestHeader + user.size());
    packet.push_back(static_cast<char>(op));
    put_u32(packet, id);
    packet.append(user);
    return packet;
}

std::string encode_reply(std::uint32_t id, Admission admission) {
    std::string packet;
    packet.reserve(kReplySize);
    put_u32(packet, id);
    packet.push_back(static_cast<char>(admission));
    return packet;
}

bool valid_user(std::string_view user) { return !user.empty() && user.size() <= max_user_bytes; }

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

// One packet: its size (truncated tells it was larger than `capacity`), 0 with eof at EOF, or -1
// with errno set. SEQPACKET delivers an empty packet as a 0-byte read, like EOF: a hang-up on the
// socket tells them apart (the peer closing marks it at once).
struct Packet {
    ssize_t size;
    bool truncated = false;
    bool eof = false;
};

Packet read_packet(int fd, unsigned char *buffer, std::size_t capacity) {
    iovec vec{buffer, capacity};
    msghdr message{};
    message.msg_iov = &vec;
    message.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &message, MSG_DONTWAIT);
    Packet packet{n};
    if (n > 0) {
        packet.truncated = (message.msg_flags & MSG_TRUNC) != 0;
    } else if (n == 0) {
        pollfd hangup{fd, POLLIN | POLLRDHUP, 0};
        packet.eof = poll(&hangup, 1, 0) == 1 && (hangup.revents & (POLLHUP | POLLRDHUP)) != 0;
    }
    return packet;
}

// MSG_NOSIGNAL: a dead peer must be an EPIPE, not a SIGPIPE that kills the process.
ssize_t send_packet(int fd, const std::string &packet) {
    return send(fd, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

} // namespace

const char *admission_name(Admission admission) {
    switch (admission) {
    case Admission::admitted:
        return "admitted";
    case Admission::user_limit:
        return "user_limit";
    case Admission::total_limit:
        return "total_limit";
    case Admission::unavailable:
        return "unavailable";
    }
    return "unknown";
}

// ---- AdmissionRegistry ----

AdmissionRegistry::AdmissionRegistry(AdmissionLimits limits) : limits_(limits) { check_limits(limits); }

Admission AdmissionRegistry::acquire(int worker, std::string_view user) {
    std::string key(user);
    auto found = users_.find(key);
    int held = found == users_.end() ? 0 : found->second;
    if (held >= limits_.per_user)
        return Admission::user_limit;
    if (total_ >= static_cast<std::size_t>(limits_.total))
        return Admission::total_limit;
    ++by_worker_[worker][key];
    if (found != users_.end())
        ++found->second;
    else
        users_.emplace(std::move(key), 1);
    ++total_;
    return Admission::admitted;
}

bool AdmissionRegistry::release(int worker, std::string_view user) {
    auto worker_counts = by_worker_.find(worker);
    if (worker_counts == by_worker_.end())
        return false;
    std::string key(user);
    auto count = worker_counts->second.find(key);
    if (count == worker_counts->second.end())
        return false;
    if (--count->second == 0) {
        worker_counts->second.erase(count);
        if (worker_counts->second.empty())
            by_worker_.erase(worker_counts);
    }
    // Every count of a worker is also in users_ and total_.
    auto total_count = users_.find(key);
    if (--total_count->second == 0)
        users_.erase(total_count);
    --total_;
    return true;
}

std::size_t AdmissionRegistry::forget_worker(int worker) {
    auto worker_counts = by_worker_.find(worker);
    if (worker_counts == by_worker_.end())
        return 0;
    std::size_t dropped = 0;
    for (const auto &[user, held] : worker_counts->second) {
        auto total_count = users_.find(user);
        if ((total_count->second -= held) == 0)
            users_.erase(total_count);
        dropped += static_cast<std::size_t>(held);
    }
    total_ -= dropped;
    by_worker_.erase(worker_counts);
    return dropped;
}

void AdmissionRegistry::reconfigure(AdmissionLimits limits) {
    check_limits(limits);
    limits_ = limits;
}

int AdmissionRegistry::count(std::string_view user) const {
    auto found = users_.find(std::string(user));
    return found == users_.end() ? 0 : found->second;
}

// ---- the channel ----

AdmissionChannel make_admission_channel() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
        throw std::system_error(errno, std::generic_category(), "admission socketpair");
    return AdmissionChannel{fds[0], fds[1]};
}

// ---- AdmissionServer ----

AdmissionServer::Worker::~Worker() {
    read_event.reset();
    write_event.reset();
    close(fd);
}

AdmissionServer::AdmissionServer(event_base *base, AdmissionLimits limits) : base_(base), registry_(limits) {}

AdmissionServer::~AdmissionServer() = default;

void AdmissionServer::attach(int worker, int fd) {
    if (attached(worker))
        detach(worker);
    evutil_make_socket_nonblocking(fd);
    auto entry = std::make_unique<Worker>();
    entry->server = this;
    entry->id = worker;
    entry->fd = fd;
    entry->read_event.reset(event_new(base_, fd, EV_READ | EV_PERSIST, on_readable, entry.get()));
    entry->write_event.reset(event_new(base_, fd, EV_WRITE | EV_PERSIST, on_writable, entry.get()));
    event_add(entry->read_event.get(), nullptr);
    workers_[worker] = std::move(entry);
}

void AdmissionServer::detach(int worker) {
    workers_.erase(worker);
    std::size_t dropped = registry_.forget_worker(worker);
    if (dropped > 0)
        log_info(kComponent, "dropped a worker's connections",
                 {{"worker", worker}, {"connections", dropped}, {"total", registry_.total()}});
}

void AdmissionServer::reconfigure(AdmissionLimits limits) {
    registry_.reconfigure(limits);
    log_info(kComponent, "limits set", {{"per_user", limits.per_user}, {"total", limits.total}});
}

bool AdmissionServer::handle_request(Worker &worker, const unsigned char *packet, std::size_t size) {
    const char *problem = nullptr;
    if (size < kRequestHeader + 1)
        problem = "too short";
    else if (size > kMaxRequest)
        problem = "too long";
    else if (packet[0] != kAcquire && packet[0] != kRelease)
        problem = "unknown op";
    if (problem) {
        log_warn(kComponent, "malformed request dropped", {{"worker", worker.id}, {"bytes", size}, {"error", problem}});
        return true;
    }
    std::uint32_t id = get_u32(packet + 1);
    std::string_view user(reinterpret_cast<const char *>(packet) + kRequestHeader, size - kRequestHeader);
    if (packet[0] == kRelease) {
        if (!registry_.release(worker.id, user))
            log_warn(kComponent, "release without an acquire ignored", {{"worker", worker.id}, {"user", user}});
        return true;
    }
    return send_reply(worker, encode_reply(id, registry_.acquire(worker.id, user)));
}

bool AdmissionServer::send_reply(Worker &worker, std::string reply) {
    if (worker.replies.empty()) {
        if (send_packet(worker.fd, reply) >= 0)
            return true;
        if (!would_block(errno)) {
            channel_failed(worker, "send", errno);
            return false;
        }
        event_add(worker.write_event.get(), nullptr);
    }
    worker.replies.push_back(std::move(reply));
    if (worker.reading && worker.replies.size() >= kMaxQueuedReplies) {
        // The worker is not reading its replies: leave its requests in the socket until it does.
        worker.reading = false;
        event_del(worker.read_event.get());
    }
    return true;
}

bool AdmissionServer::flush_replies(Worker &worker) {
    while (!worker.replies.empty()) {
        if (send_packet(worker.fd, worker.replies.front()) < 0) {
            if (would_block(errno))
                return true;
            channel_failed(worker, "send", errno);
            return false;
        }
        worker.replies.pop_front();
    }
    event_del(worker.write_event.get());
    if (!worker.reading) {
        worker.reading = true;
        event_add(worker.read_event.get(), nullptr);
    }
    return true;
}

void AdmissionServer::channel_failed(Worker &worker, const char *what, int error) {
    int id = worker.id;
    if (error == 0)
        log_warn(kComponent, "worker channel closed", {{"worker", id}});
    else
        log_warn(kComponent, "worker channel failed",
                 {{"worker", id}, {"call", what}, {"error", std::strerror(error)}});
    detach(id); // frees `worker`
}

void AdmissionServer::on_readable(int, short, void *arg) {
    auto &worker = *static_cast<Worker *>(arg);
    unsigned char buffer[kMaxRequest + 1];
    for (int i = 0; i < kReadBudget && worker.reading; ++i) {
        Packet packet = read_packet(worker.fd, buffer, sizeof buffer);
        if (packet.size < 0) {
            if (!would_block(errno))
                worker.server->channel_failed(worker, "recv", errno);
            return;
        }
        if (packet.eof) {
            worker.server->channel_failed(worker, "recv", 0);
            return;
        }
        std::size_t size = packet.truncated ? sizeof buffer : static_cast<std::size_t>(packet.size);
        if (!worker.server->handle_request(worker, buffer, size))
            return;
    }
}

void AdmissionServer::on_writable(int, short, void *arg) {
    auto &worker = *static_cast<Worker *>(arg);
    worker.server->flush_replies(worker);
}

// ---- AdmissionClient ----

AdmissionClient::AdmissionClient(event_base *base, int fd, std::chrono::milliseconds timeout)
    : fd_(fd), timeout_(timeout), alive_(std::make_shared<bool>(true)),
      read_event_(event_new(base, fd, EV_READ | EV_PERSIST, on_readable, this)),
      write_event_(event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, this)),
      timer_(evtimer_new(base, on_timer, this)), deliver_event_(event_new(base, -1, 0, on_deliver, this)) {
    evutil_make_socket_nonblocking(fd);
    event_add(read_event_.get(), nullptr);
}

AdmissionClient::~AdmissionClient() {
    *alive_ = false;
    read_event_.reset();
    write_event_.reset();
    timer_.reset();
    deliver_event_.reset();
    close(fd_);
}

void AdmissionClient::acquire(std::string user, Done done) {
    if (!connected_) {
        finish(std::move(done), Admission::unavailable);
        return;
    }
    if (!valid_user(user)) {
        log_warn(kComponent, "acquire for an invalid user refused", {{"bytes", user.size()}});
        finish(std::move(done), Admission::unavailable);
        return;
    }
    if (pending_.size() >= max_pending) {
        log_warn(kComponent, "too many acquires in flight", {{"pending", pending_.size()}});
        finish(std::move(done), Admission::unavailable);
        return;
    }
    // Ids wrap after 2^32 requests; skip one still waiting for a late reply.
    while (next_id_ == 0 || pending_.count(next_id_))
        ++next_id_;
    std::uint32_t id = next_id_++;
    std::string packet = encode_request(kAcquire, id, user);
    pending_.emplace(id, Pending{std::move(user), std::move(done)});
    Clock::time_point deadline = Clock::now() + timeout_;
    deadlines_.emplace_back(deadline, id);
    if (deadlines_.size() == 1) {
        timeval delay = {static_cast<time_t>(timeout_.count() / 1000),
                         static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
        evtimer_add(timer_.get(), &delay);
    }
    send_request(std::move(packet));
}

void AdmissionClient::release(std::string_view user) {
    if (!connected_)
        return;
    if (!valid_user(user)) {
        log_warn(kComponent, "release for an invalid user ignored", {{"bytes", user.size()}});
        return;
    }
    send_request(encode_request(kRelease, 0, user));
}

void AdmissionClient::send_request(std::string packet) {
    if (outbox_.empty()) {
        if (send_packet(fd_, packet) >= 0)
            return;
        if (!would_block(errno)) {
            channel_lost("send", errno);
            return;
        }
        event_add(write_event_.get(), nullptr);
    }
    // Releases here are bounded by the connections this worker holds, acquires by max_pending.
    outbox_.push_back(std::move(packet));
}

bool AdmissionClient::flush_outbox() {
    while (!outbox_.empty()) {
        if (send_packet(fd_, outbox_.front()) < 0) {
            if (would_block(errno))
                return true;
            channel_lost("send", errno);
            return false;
        }
        outbox_.pop_front();
    }
    event_del(write_event_.get());
    return true;
}

void AdmissionClient::read_replies() {
    unsigned char buffer[kReplySize + 1];
    for (int i = 0; i < kReadBudget && connected_; ++i) {
        Packet packet = read_packet(fd_, buffer, sizeof buffer);
        if (packet.size < 0) {
            if (!would_block(errno))
                channel_lost("recv", errno);
            return;
        }
        if (packet.eof) {
            channel_lost("recv", 0);
            return;
        }
        handle_reply(buffer, packet.truncated ? sizeof buffer : static_cast<std::size_t>(packet.size));
    }
}

void AdmissionClient::handle_reply(const unsigned char *packet, std::size_t size) {
    if (size != kReplySize || packet[4] > static_cast<unsigned char>(Admission::unavailable)) {
        log_warn(kComponent, "malformed reply dropped", {{"bytes", size}});
        return;
    }
    std::uint32_t id = get_u32(packet);
    auto admission = static_cast<Admission>(packet[4]);
    auto found = pending_.find(id);
    if (found == pending_.end()) {
        log_warn(kComponent, "reply to no request dropped", {{"request", id}});
        return;
    }
    Pending entry = std::move(found->second);
    pending_.erase(found);
    if (entry.done) {
        finish(std::move(entry.done), admission);
    } else if (admission == Admission::admitted) {
        // Reported unavailable on timeout, so nobody will release this one: give it back now.
        log_warn(kComponent, "late admission released", {{"request", id}});
        send_request(encode_request(kRelease, 0, entry.user));
    }
}

void AdmissionClient::expire(Clock::time_point now) {
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
        auto found = pending_.find(deadlines_.front().second);
        deadlines_.pop_front();
        if (found == pending_.end() || !found->second.done)
            continue;
        log_warn(kComponent, "acquire timed out", {{"request", found->first}, {"timeout_ms", timeout_.count()}});
        finish(std::move(found->second.done), Admission::unavailable);
        found->second.done = nullptr; // kept with its user until the late reply, if any
    }
    if (!deadlines_.empty()) {
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadlines_.front().first - now);
        timeval delay = {static_cast<time_t>(left.count() / 1000000), static_cast<suseconds_t>(left.count() % 1000000)};
        evtimer_add(timer_.get(), &delay);
    }
}

void AdmissionClient::channel_lost(const char *what, int error) {
    if (!connected_)
        return;
    connected_ = false;
    if (error == 0)
        log_error(kComponent, "supervisor channel closed", {{"pending", pending_.size()}});
    else
        log_error(kComponent, "supervisor channel failed",
                  {{"call", what}, {"error", std::strerror(error)}, {"pending", pending_.size()}});
    event_del(read_event_.get());
    event_del(write_event_.get());
    event_del(timer_.get());
    // In request order, so callers see their answers in the order they asked.
    for (const auto &deadline : deadlines_) {
        auto found = pending_.find(deadline.second);
        if (found != pending_.end() && found->second.done)
            finish(std::move(found->second.done), Admission::unavailable);
    }
    pending_.clear();
    deadlines_.clear();
    outbox_.clear();
}

void AdmissionClient::finish(Done done, Admission admission) {
    results_.emplace_back(std::move(done), admission);
    event_active(deliver_event_.get(), EV_TIMEOUT, 0);
}

void AdmissionClient::deliver() {
    std::vector<std::pair<Done, Admission>> ready;
    ready.swap(results_);
    std::shared_ptr<bool> alive = alive_;
    for (auto &[done, admission] : ready) {
        done(admission);
        if (!*alive)
            return; // a callback destroyed the client: the others never run
    }
}

void AdmissionClient::on_readable(int, short, void *arg) { static_cast<AdmissionClient *>(arg)->read_replies(); }

void AdmissionClient::on_writable(int, short, void *arg) { static_cast<AdmissionClient *>(arg)->flush_outbox(); }

void AdmissionClient::on_timer(int, short, void *arg) { static_cast<AdmissionClient *>(arg)->expire(Clock::now()); }

void AdmissionClient::on_deliver(int, short, void *arg) { static_cast<AdmissionClient *>(arg)->deliver(); }

} // namespace pgfeed::notifier
