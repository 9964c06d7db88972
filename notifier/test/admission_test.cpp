// Tests of the cross-process connection limits (notifier/admission.hpp): the registry's counting,
// then client and server over real socketpairs on one event loop, a worker in a forked child, and
// the wire format checked from a raw end of the socketpair (malformed packets, timeouts, a full
// socket).
#include "admission.hpp"

#include "event_loop.hpp"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <csignal>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace pgfeed::notifier;
using namespace std::chrono_literals;

namespace pgfeed::notifier {
void PrintTo(Admission admission, std::ostream *out) { *out << admission_name(admission); }
} // namespace pgfeed::notifier

namespace {

// ---- the registry ----

TEST(AdmissionRegistry, RefusesNonsenseLimits) {
    EXPECT_THROW(AdmissionRegistry({0, 10}), std::invalid_argument);
    EXPECT_THROW(AdmissionRegistry({3, 0}), std::invalid_argument);
    EXPECT_THROW(AdmissionRegistry({-1, 10}), std::invalid_argument);
    EXPECT_NO_THROW(AdmissionRegistry({1, 1}));
}

TEST(AdmissionRegistry, LimitsConnectionsPerUserOverAllWorkers) {
    AdmissionRegistry registry({3, 100});
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::admitted);
    EXPECT_EQ(registry.acquire(1, "alice"), Admission::admitted);
    EXPECT_EQ(registry.acquire(2, "alice"), Admission::admitted);
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::user_limit);
    EXPECT_EQ(registry.acquire(3, "alice"), Admission::user_limit);
    EXPECT_EQ(registry.acquire(0, "bob"), Admission::admitted);
    EXPECT_EQ(registry.count("alice"), 3);
    EXPECT_EQ(registry.count("bob"), 1);
    EXPECT_EQ(registry.count("carol"), 0);
    EXPECT_EQ(registry.total(), 4u);
    EXPECT_EQ(registry.users(), 2u);
}

TEST(AdmissionRegistry, LimitsTotalConnections) {
    AdmissionRegistry registry({3, 4});
    for (const char *user : {"a", "b", "c", "d"})
        EXPECT_EQ(registry.acquire(0, user), Admission::admitted) << user;
    EXPECT_EQ(registry.acquire(1, "e"), Admission::total_limit);
    EXPECT_EQ(registry.count("e"), 0);
    EXPECT_EQ(registry.users(), 4u);
    EXPECT_TRUE(registry.release(0, "a"));
    EXPECT_EQ(registry.acquire(1, "e"), Admission::admitted);
    EXPECT_EQ(registry.acquire(1, "f"), Admission::total_limit);
}

TEST(AdmissionRegistry, UserLimitWinsWhenBothAreReached) {
    AdmissionRegistry registry({2, 2});
    registry.acquire(0, "alice");
    registry.acquire(1, "alice");
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::user_limit);
    EXPECT_EQ(registry.acquire(0, "bob"), Admission::total_limit);
}

TEST(AdmissionRegistry, ReleaseFreesTheSlotAndTheEntry) {
    AdmissionRegistry registry({2, 10});
    registry.acquire(0, "alice");
    registry.acquire(1, "alice");
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::user_limit);
    EXPECT_TRUE(registry.release(1, "alice"));
    EXPECT_EQ(registry.count("alice"), 1);
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::admitted);
    EXPECT_TRUE(registry.release(0, "alice"));
    EXPECT_TRUE(registry.release(0, "alice"));
    EXPECT_EQ(registry.count("alice"), 0);
    EXPECT_EQ(registry.total(), 0u);
    EXPECT_EQ(registry.users(), 0u); // memory follows the users connected
}

TEST(AdmissionRegistry, ReleaseWithoutAcquireNeverUnderflows) {
    AdmissionRegistry registry({3, 10});
    EXPECT_FALSE(registry.release(0, "nobody"));
    registry.acquire(0, "alice");
    // Only the worker that holds the connection can give it back.
    EXPECT_FALSE(registry.release(1, "alice"));
    EXPECT_TRUE(registry.release(0, "alice"));
    EXPECT_FALSE(registry.release(0, "alice"));
    EXPECT_EQ(registry.count("alice"), 0);
    EXPECT_EQ(registry.total(), 0u);
    EXPECT_EQ(registry.users(), 0u);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(registry.acquire(0, "alice"), Admission::admitted);
    EXPECT_EQ(registry.acquire(0, "alice"), Admission::user_limit);
}

TEST(AdmissionRegistry, ForgetWorkerDropsOnlyItsConnections) {
    AdmissionRegistry registry({3, 10});
    registry.acquire(1, "alice");
    registry.acquire(1, "alice");
    registry.acquire(1, "bob");
    registry.acquire(2, "alice");
    EXPECT_EQ(registry.forget_worker(1), 3u);
    EXPECT_EQ(registry.count("alice"), 1);
    EXPECT_EQ(registry.count("bob"), 0);
    EXPECT_EQ(registry.total(), 1u);
    EXPECT_EQ(registry.users(), 1u);
    EXPECT_FALSE(registry.release(1, "alice")); // a late release of the dead worker
    EXPECT_EQ(registry.forget_worker(1), 0u);
    EXPECT_EQ(registry.forget_worker(7), 0u);
    EXPECT_EQ(registry.acquire(1, "alice"), Admission::admitted);
    EXPECT_EQ(registry.count("alice"), 2);
}

TEST(AdmissionRegistry, ReconfigureBelowCurrentKeepsConnectionsAndRefusesNewOnes) {
    AdmissionRegistry registry({3, 10});
    for (int i = 0; i < 3; ++i)
        registry.acquire(0, "alice");
    registry.reconfigure({1, 2});
    EXPECT_EQ(registry.count("alice"), 3);
    EXPECT_EQ(registry.total(), 3u);
    EXPECT_EQ(registry.acquire(1, "alice"), Admission::user_limit);
    EXPECT_EQ(registry.acquire(1, "bob"), Admission::total_limit);
    registry.release(0, "alice");
    registry.release(0, "alice");
    EXPECT_EQ(registry.acquire(1, "alice"), Admission::user_limit); // 1 held, limit 1
    EXPECT_EQ(registry.acquire(1, "bob"), Admission::admitted);     // 2 in total now
    registry.release(0, "alice");
    EXPECT_EQ(registry.acquire(1, "alice"), Admission::admitted);
    EXPECT_EQ(registry.acquire(1, "carol"), Admission::total_limit);
    EXPECT_THROW(registry.reconfigure({0, 5}), std::invalid_argument);
    EXPECT_EQ(registry.limits().per_user, 1);
    EXPECT_EQ(registry.limits().total, 2);
    registry.reconfigure({5, 5});
    EXPECT_EQ(registry.acquire(1, "carol"), Admission::admitted);
}

// ---- the wire, from a raw end ----

std::string u32(std::uint32_t value) {
    return {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
            static_cast<char>(value)};
}

std::string request(char op, std::uint32_t id, const std::string &user) { return op + u32(id) + user; }

std::string reply(std::uint32_t id, Admission admission) { return u32(id) + static_cast<char>(admission); }

std::uint32_t id_of_request(const std::string &packet) {
    auto byte = [&](int i) { return std::uint32_t(static_cast<unsigned char>(packet[i])); };
    return byte(1) << 24 | byte(2) << 16 | byte(3) << 8 | byte(4);
}

// One end of a channel driven by the test, standing in for a worker or for the supervisor.
class RawEnd {
  public:
    explicit RawEnd(int fd) : fd_(fd) {}
    ~RawEnd() { close(); }
    void close() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }
    // False when the socket is full.
    bool send(const std::string &packet) {
        return ::send(fd_, packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL) ==
               static_cast<ssize_t>(packet.size());
    }
    // The next packet, if one is there.
    std::optional<std::string> receive() {
        char buffer[1024];
        ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0)
            return std::nullopt;
        return std::string(buffer, static_cast<std::size_t>(n));
    }

  private:
    int fd_;
};

// For run_until, which asks once more after the loop: receives into `packet` until it holds one.
bool received(RawEnd &end, std::optional<std::string> &packet) {
    if (!packet)
        packet = end.receive();
    return packet.has_value();
}

class AdmissionTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }
    void SetUp() override { base_ = event_base_new(); }
    void TearDown() override {
        client_.reset();
        client2_.reset();
        server_.reset();
        event_base_free(base_);
    }

    // A server with worker 1 attached, and that worker's client.
    void start(AdmissionLimits limits, std::chrono::milliseconds timeout = 1000ms) {
        server_ = std::make_unique<AdmissionServer>(base_, limits);
        AdmissionChannel channel = make_admission_channel();
        server_->attach(1, channel.supervisor_fd);
        client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd, timeout);
    }

    // The answers, in the order they come.
    AdmissionClient::Done record() {
        return [this](Admission admission) { answers_.push_back(admission); };
    }

    bool answered(std::size_t n) {
        return run_until(base_, [&] { return answers_.size() >= n; });
    }

    event_base *base_ = nullptr;
    std::unique_ptr<AdmissionServer> server_;
    std::unique_ptr<AdmissionClient> client_, client2_;
    std::vector<Admission> answers_;
};

TEST_F(AdmissionTest, AcquireAndReleaseOverASocketpair) {
    start({3, 100});
    for (int i = 0; i < 4; ++i)
        client_->acquire("alice", record());
    client_->acquire("bob", record());
    EXPECT_TRUE(answers_.empty()); // never from inside acquire()
    ASSERT_TRUE(answered(5));
    EXPECT_EQ(answers_, (std::vector<Admission>{Admission::admitted, Admission::admitted, Admission::admitted,
                                                Admission::user_limit, Admission::admitted}));
    EXPECT_EQ(server_->registry().count("alice"), 3);
    client_->release("alice");
    client_->release("bob");
    ASSERT_TRUE(run_until(base_, [&] { return server_->registry().total() == 2; }));
    EXPECT_EQ(server_->registry().count("alice"), 2);
    EXPECT_EQ(client_->pending(), 0u);
    client_->acquire("alice", record());
    ASSERT_TRUE(answered(6));
    EXPECT_EQ(answers_.back(), Admission::admitted);
}

TEST_F(AdmissionTest, WorkersShareTheLimits) {
    start({3, 4});
    AdmissionChannel second = make_admission_channel();
    server_->attach(2, second.supervisor_fd);
    client2_ = std::make_unique<AdmissionClient>(base_, second.worker_fd);
    client_->acquire("alice", record());
    client2_->acquire("alice", record());
    client_->acquire("alice", record());
    client2_->acquire("alice", record());
    ASSERT_TRUE(answered(4));
    EXPECT_EQ(std::count(answers_.begin(), answers_.end(), Admission::admitted), 3);
    EXPECT_EQ(std::count(answers_.begin(), answers_.end(), Admission::user_limit), 1);
    client2_->acquire("bob", record());
    client_->acquire("carol", record());
    ASSERT_TRUE(answered(6));
    EXPECT_EQ(std::count(answers_.begin(), answers_.end(), Admission::total_limit), 1);
    EXPECT_EQ(server_->registry().total(), 4u);
}

TEST_F(AdmissionTest, ReconfigureAppliesToNewAcquires) {
    start({3, 100});
    for (int i = 0; i < 3; ++i)
        client_->acquire("alice", record());
    ASSERT_TRUE(answered(3));
    server_->reconfigure({1, 100});
    EXPECT_THROW(server_->reconfigure({1, 0}), std::invalid_argument);
    client_->acquire("alice", record());
    client_->acquire("bob", record());
    ASSERT_TRUE(answered(5));
    EXPECT_EQ(answers_[3], Admission::user_limit);
    EXPECT_EQ(answers_[4], Admission::admitted);
    EXPECT_EQ(server_->registry().count("alice"), 3);
}

TEST_F(AdmissionTest, ClosedClientFreesItsWorkersConnections) {
    start({3, 100});
    client_->acquire("alice", record());
    client_->acquire("bob", record());
    ASSERT_TRUE(answered(2));
    EXPECT_EQ(server_->registry().total(), 2u);
    client_.reset(); // EOF on the server's end, as when the worker process dies
    ASSERT_TRUE(run_until(base_, [&] { return !server_->attached(1); }));
    EXPECT_EQ(server_->registry().total(), 0u);
    EXPECT_EQ(server_->registry().users(), 0u);
}

TEST_F(AdmissionTest, AttachReplacesARestartedWorker) {
    start({3, 100});
    client_->acquire("alice", record());
    ASSERT_TRUE(answered(1));
    AdmissionChannel restarted = make_admission_channel();
    server_->attach(1, restarted.supervisor_fd);
    EXPECT_EQ(server_->registry().total(), 0u);
    client2_ = std::make_unique<AdmissionClient>(base_, restarted.worker_fd);
    client2_->acquire("alice", record());
    ASSERT_TRUE(answered(2));
    EXPECT_EQ(answers_[1], Admission::admitted);
    // The old client lost its supervisor end.
    ASSERT_TRUE(run_until(base_, [&] { return !client_->connected(); }));
}

TEST_F(AdmissionTest, SupervisorGoneMeansUnavailable) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd);
    client_->acquire("alice", record());
    client_->acquire("bob", record());
    ASSERT_TRUE(run_until(base_, [&] { return client_->queued() == 0; }));
    supervisor.close();
    ASSERT_TRUE(answered(2));
    EXPECT_EQ(answers_, (std::vector<Admission>{Admission::unavailable, Admission::unavailable}));
    EXPECT_FALSE(client_->connected());
    EXPECT_EQ(client_->pending(), 0u);
    client_->acquire("carol", record());
    EXPECT_EQ(answers_.size(), 2u); // still not from inside acquire()
    ASSERT_TRUE(answered(3));
    EXPECT_EQ(answers_[2], Admission::unavailable);
    client_->release("alice"); // ignored, no crash
}

TEST_F(AdmissionTest, NoAnswerTimesOutAndALateAdmissionIsReleased) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd, 50ms);
    client_->acquire("alice", record());
    std::optional<std::string> sent;
    ASSERT_TRUE(run_until(base_, [&] { return received(supervisor, sent); }));
    ASSERT_EQ(sent->size(), 10u);
    EXPECT_EQ((*sent)[0], 'A');
    EXPECT_EQ(sent->substr(5), "alice");
    ASSERT_TRUE(answered(1));
    EXPECT_EQ(answers_[0], Admission::unavailable);
    EXPECT_EQ(client_->pending(), 1u); // kept for the late reply
    ASSERT_TRUE(supervisor.send(reply(id_of_request(*sent), Admission::admitted)));
    std::optional<std::string> released;
    ASSERT_TRUE(run_until(base_, [&] { return received(supervisor, released); }));
    EXPECT_EQ((*released)[0], 'R');
    EXPECT_EQ(released->substr(5), "alice");
    EXPECT_EQ(client_->pending(), 0u);
    EXPECT_EQ(answers_.size(), 1u); // done ran once only
}

TEST_F(AdmissionTest, DestroyedClientNeverCallsBack) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd, 20ms);
    client_->acquire("alice", record());
    client_.reset();
    run_for(base_, 100ms);
    EXPECT_TRUE(answers_.empty());
}

TEST_F(AdmissionTest, CallbackMayDestroyTheClient) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd);
    int calls = 0;
    for (int i = 0; i < 3; ++i)
        client_->acquire("alice", [&](Admission) {
            ++calls;
            client_.reset();
        });
    supervisor.close();
    ASSERT_TRUE(run_until(base_, [&] { return calls > 0; }));
    run_for(base_, 50ms);
    EXPECT_EQ(calls, 1);
}

TEST_F(AdmissionTest, RequestsWaitForAFullSocketInOrder) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd);
    constexpr int kReleases = 2000;
    for (int i = 0; i < kReleases; ++i)
        client_->release("user" + std::to_string(i));
    client_->acquire("last", record());
    EXPECT_GT(client_->queued(), 0u); // the socket took only part of them
    std::vector<std::string> got;
    ASSERT_TRUE(run_until(base_, [&] {
        while (auto packet = supervisor.receive())
            got.push_back(*packet);
        return got.size() == kReleases + 1;
    }));
    for (int i = 0; i < kReleases; ++i)
        ASSERT_EQ(got[i], request('R', 0, "user" + std::to_string(i))) << i;
    EXPECT_EQ(got.back()[0], 'A');
    EXPECT_EQ(got.back().substr(5), "last");
    EXPECT_EQ(client_->queued(), 0u);
}

TEST_F(AdmissionTest, InvalidUsersAreRefusedByTheClient) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd);
    client_->acquire("", record());
    client_->acquire(std::string(257, 'u'), record());
    client_->release("");
    ASSERT_TRUE(answered(2));
    EXPECT_EQ(answers_, (std::vector<Admission>{Admission::unavailable, Admission::unavailable}));
    EXPECT_FALSE(supervisor.receive().has_value());
    EXPECT_TRUE(client_->connected());
}

TEST_F(AdmissionTest, ServerDropsMalformedRequestsAndKeepsServing) {
    server_ = std::make_unique<AdmissionServer>(base_, AdmissionLimits{3, 100});
    AdmissionChannel channel = make_admission_channel();
    server_->attach(1, channel.supervisor_fd);
    RawEnd worker(channel.worker_fd);
    const std::string malformed[] = {
        "",                                      // empty: must not pass for EOF
        "A",                                     // no id
        std::string("A\0\0\0", 4),               // short id
        request('A', 2, ""),                     // no user
        request('X', 3, "alice"),                // unknown op
        request('a', 4, "alice"),                // ops are case-sensitive
        request('A', 5, std::string(257, 'u')),  // user too long
        request('A', 6, std::string(5000, 'u')), // far too long
        request('R', 7, "nobody"),               // release without acquire
    };
    for (const std::string &packet : malformed)
        ASSERT_TRUE(worker.send(packet));
    ASSERT_TRUE(worker.send(request('A', 42, std::string(256, 'u'))));
    std::optional<std::string> answer;
    ASSERT_TRUE(run_until(base_, [&] { return received(worker, answer); }));
    EXPECT_EQ(*answer, reply(42, Admission::admitted));
    run_for(base_, 50ms);
    EXPECT_FALSE(worker.receive().has_value()); // nothing for the malformed ones
    EXPECT_TRUE(server_->attached(1));
    EXPECT_EQ(server_->registry().total(), 1u);
    EXPECT_EQ(server_->registry().count(std::string(256, 'u')), 1);
}

TEST_F(AdmissionTest, ClientDropsMalformedReplies) {
    AdmissionChannel channel = make_admission_channel();
    RawEnd supervisor(channel.supervisor_fd);
    client_ = std::make_unique<AdmissionClient>(base_, channel.worker_fd);
    client_->acquire("alice", record());
    std::optional<std::string> sent;
    ASSERT_TRUE(run_until(base_, [&] { return received(supervisor, sent); }));
    std::uint32_t id = id_of_request(*sent);
    for (const std::string &packet : {std::string(), u32(id), reply(id, Admission::admitted) + "x",
                                      u32(id) + static_cast<char>(9), reply(id + 1, Admission::admitted)})
        ASSERT_TRUE(supervisor.send(packet));
    run_for(base_, 50ms);
    EXPECT_TRUE(answers_.empty());
    EXPECT_TRUE(client_->connected());
    ASSERT_TRUE(supervisor.send(reply(id, Admission::user_limit)));
    ASSERT_TRUE(answered(1));
    EXPECT_EQ(answers_[0], Admission::user_limit);
}

// A worker that does not read its replies: the server queues a bounded number, then leaves the
// worker's requests in the socket; nothing is lost once the worker reads again.
TEST_F(AdmissionTest, ServerQueuesRepliesBoundedly) {
    server_ = std::make_unique<AdmissionServer>(base_, AdmissionLimits{1, 2500});
    AdmissionChannel channel = make_admission_channel();
    server_->attach(1, channel.supervisor_fd);
    RawEnd worker(channel.worker_fd);
    constexpr std::uint32_t kRequests = 5000;
    std::uint32_t sent = 0;
    auto send_some = [&] {
        while (sent < kRequests && worker.send(request('A', sent, "u" + std::to_string(sent))))
            ++sent;
    };
    // Without reading: sending stops short of the end.
    for (int round = 0; round < 50; ++round) {
        send_some();
        run_for(base_, 5ms);
    }
    EXPECT_LT(sent, kRequests);
    EXPECT_LT(server_->registry().total(), kRequests);
    std::vector<std::string> replies;
    ASSERT_TRUE(run_until(base_, [&] {
        send_some();
        while (auto packet = worker.receive())
            replies.push_back(*packet);
        return replies.size() == kRequests;
    }));
    for (std::uint32_t i = 0; i < kRequests; ++i)
        ASSERT_EQ(replies[i], reply(i, i < 2500 ? Admission::admitted : Admission::total_limit)) << i;
    EXPECT_TRUE(server_->attached(1));
}

// The real layout: the supervisor serves on its loop, a forked worker acquires through its own
// loop and client. Its connections count against the limits of the parent's worker, and are freed
// when the child dies.
TEST_F(AdmissionTest, WorkerInAForkedProcess) {
    server_ = std::make_unique<AdmissionServer>(base_, AdmissionLimits{3, 100});
    AdmissionChannel channel = make_admission_channel();
    int results[2];
    ASSERT_EQ(pipe(results), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The worker: a fresh loop (the parent's is not for the child), only its end of the channel.
        ::close(channel.supervisor_fd);
        ::close(results[0]);
        alarm(30); // never outlives a parent that failed before killing it
        event_base *base = event_base_new();
        std::string answers;
        {
            AdmissionClient client(base, channel.worker_fd);
            for (int i = 0; i < 2; ++i)
                client.acquire("alice", [&](Admission admission) { answers += char('0' + int(admission)); });
            run_until(base, [&] { return answers.size() == 2; });
            if (write(results[1], answers.data(), answers.size()) != ssize_t(answers.size()))
                _exit(1);
            pause(); // holds the connections until killed
        }
        _exit(0);
    }
    ::close(channel.worker_fd);
    ::close(results[1]);
    server_->attach(1, channel.supervisor_fd);
    ASSERT_TRUE(run_until(base_, [&] { return server_->registry().count("alice") == 2; }));
    char answers[2] = {};
    ASSERT_EQ(read(results[0], answers, 2), 2);
    ::close(results[0]);
    EXPECT_EQ(std::string(answers, 2), "00"); // admitted twice

    AdmissionChannel local = make_admission_channel();
    server_->attach(2, local.supervisor_fd);
    client2_ = std::make_unique<AdmissionClient>(base_, local.worker_fd);
    client2_->acquire("alice", record());
    client2_->acquire("alice", record());
    ASSERT_TRUE(answered(2));
    EXPECT_EQ(answers_, (std::vector<Admission>{Admission::admitted, Admission::user_limit}));

    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFSIGNALED(status));
    ASSERT_TRUE(run_until(base_, [&] { return !server_->attached(1); }));
    EXPECT_EQ(server_->registry().count("alice"), 1);
    client2_->acquire("alice", record());
    ASSERT_TRUE(answered(3));
    EXPECT_EQ(answers_[2], Admission::admitted);
}

} // namespace
