// Integration tests of RedisLink against a real redis-server on a loopback port: replies in order
// through a pipeline, binary-safe arguments, AUTH, loss and reconnection when the server is killed
// and restarted, and callbacks that stop or destroy the link.
#include "redis_link.hpp"

#include "event_loop.hpp"
#include "redis_server.hpp"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <csignal>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace pgfeed::notifier;
using namespace std::chrono_literals;

namespace {

class RedisLinkTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // hiredis writes with write(2); a killed server must not take the test process with it.
        std::signal(SIGPIPE, SIG_IGN);
    }

    void SetUp() override {
        if (access(kRedisServer, X_OK) != 0)
            GTEST_SKIP() << kRedisServer << " not found: install redis-server to run the RedisLink tests";
        base_ = event_base_new();
        port_ = free_loopback_port();
        server_.emplace(port_);
    }

    void TearDown() override {
        observer_.reset();
        server_.reset();
        if (base_)
            event_base_free(base_);
    }

    RedisLinkOptions options() const {
        RedisLinkOptions options;
        options.port = port_;
        options.connect_timeout = 1000ms;
        options.retry_initial = 20ms;
        options.retry_max = 100ms;
        return options;
    }

    // True once the server holds a client blocked in a command (BLPOP sent and waiting). Asked
    // with a connection of its own, as the link under test is the one blocked.
    bool client_blocked() {
        if (!observer_) {
            observer_ = std::make_unique<RedisLink>(base_, options(), RedisLinkCallbacks{[] {}, [] {}});
            observer_->start();
        }
        if (!observer_->ready())
            return false;
        std::optional<RedisReply> info;
        observer_->command({"INFO", "clients"}, [&](const RedisReply &reply) { info = reply; });
        return run_until(base_, [&] { return info.has_value(); }) &&
               info->str.find("blocked_clients:1") != std::string::npos;
    }

    // A link that counts its on_ready and on_lost calls.
    std::unique_ptr<RedisLink> make_link(RedisLinkOptions options) {
        RedisLinkCallbacks callbacks;
        callbacks.on_ready = [this] { ++readies_; };
        callbacks.on_lost = [this] {
            ++losses_;
            events_.push_back("on_lost");
        };
        return std::make_unique<RedisLink>(base_, std::move(options), std::move(callbacks));
    }

    event_base *base_ = nullptr;
    int port_ = 0;
    std::optional<RedisServer> server_;
    std::unique_ptr<RedisLink> observer_;
    int readies_ = 0;
    int losses_ = 0;
    std::vector<std::string> events_;
};

TEST_F(RedisLinkTest, PipelinedRepliesArriveInOrderAndKeepTheirTypes) {
    server_->start();
    auto link = make_link(options());
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    EXPECT_EQ(readies_, 1);

    std::vector<RedisReply> replies;
    auto keep = [&](const RedisReply &reply) { replies.push_back(reply); };
    const std::string binary("a\0b\r\nc", 6);
    link->command({"MULTI"}, keep);
    link->command({"XADD", "s", "*", "f", "1"}, keep);
    link->command({"XADD", "s", "*", "f", "2"}, keep);
    link->command({"HSET", "h", "pos", "7"}, keep);
    link->command({"EXEC"}, keep);
    link->command({"WATCH", "h"}, keep);
    link->command({"HGETALL", "h"}, keep);
    link->command({"SET", binary, binary}, keep);
    link->command({"GET", binary}, keep);
    link->command({"GET", "missing"}, keep);
    link->command({"INCRBY", "n", "5"}, keep);
    link->command({"NO_SUCH_COMMAND"}, keep);
    ASSERT_TRUE(run_until(base_, [&] { return replies.size() == 12; }));

    for (const RedisReply &reply : replies)
        EXPECT_FALSE(reply.lost);
    EXPECT_EQ(replies[0].type, RedisReply::Type::status);
    EXPECT_EQ(replies[0].str, "OK");
    for (int queued : {1, 2, 3})
        EXPECT_EQ(replies[queued].str, "QUEUED");
    ASSERT_EQ(replies[4].type, RedisReply::Type::array);
    ASSERT_EQ(replies[4].elements.size(), 3u);
    EXPECT_EQ(replies[4].elements[0].type, RedisReply::Type::string); // an entry id
    EXPECT_EQ(replies[4].elements[2].type, RedisReply::Type::integer);
    EXPECT_EQ(replies[4].elements[2].integer, 1);
    EXPECT_EQ(replies[5].str, "OK");
    ASSERT_EQ(replies[6].elements.size(), 2u);
    EXPECT_EQ(replies[6].elements[0].str, "pos");
    EXPECT_EQ(replies[6].elements[1].str, "7");
    EXPECT_EQ(replies[8].type, RedisReply::Type::string);
    EXPECT_EQ(replies[8].str, binary);
    EXPECT_EQ(replies[9].type, RedisReply::Type::nil);
    EXPECT_EQ(replies[10].type, RedisReply::Type::integer);
    EXPECT_EQ(replies[10].integer, 5);
    EXPECT_EQ(replies[11].type, RedisReply::Type::error);
    EXPECT_NE(replies[11].str.find("unknown command"), std::string::npos) << replies[11].str;

    // Redis would not answer an empty command at all, so it is refused before anything is sent.
    std::optional<RedisReply> empty;
    link->command({}, [&](const RedisReply &reply) { empty = reply; });
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->type, RedisReply::Type::error);
    EXPECT_EQ(empty->str, "ERR empty command");
}

TEST_F(RedisLinkTest, CommandWhileNotReadyFailsBeforeReturning) {
    auto link = make_link(options());
    bool failed = false;
    link->command({"PING"}, [&](const RedisReply &reply) { failed = reply.lost; });
    EXPECT_TRUE(failed);

    link->start(); // nothing listens on the port yet
    failed = false;
    link->command({"PING"}, [&](const RedisReply &reply) { failed = reply.lost; });
    EXPECT_TRUE(failed);
}

TEST_F(RedisLinkTest, KilledServerFailsPendingThenReportsLossAndReconnects) {
    auto link = make_link(options());
    link->start();
    run_for(base_, 100ms); // failed connects before the server exists: neither ready nor lost
    EXPECT_EQ(readies_, 0);
    EXPECT_EQ(losses_, 0);

    server_->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));

    std::optional<RedisReply> blocked;
    link->command({"BLPOP", "never", "10"}, [&](const RedisReply &reply) {
        blocked = reply;
        events_.push_back("command failed");
        EXPECT_FALSE(link->ready());
    });
    ASSERT_TRUE(run_until(base_, [&] { return client_blocked(); }));
    observer_.reset();
    server_->kill();
    ASSERT_TRUE(run_until(base_, [&] { return losses_ == 1; }));
    ASSERT_TRUE(blocked);
    EXPECT_TRUE(blocked->lost);
    EXPECT_EQ(events_, (std::vector<std::string>{"command failed", "on_lost"}));
    EXPECT_FALSE(link->ready());

    server_->start(); // the same port
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    EXPECT_EQ(readies_, 2);
    EXPECT_EQ(losses_, 1);
    std::optional<RedisReply> pong;
    link->command({"PING"}, [&](const RedisReply &reply) { pong = reply; });
    ASSERT_TRUE(run_until(base_, [&] { return pong.has_value(); }));
    EXPECT_EQ(pong->str, "PONG");
}

TEST_F(RedisLinkTest, AuthenticatesWithThePasswordAndRetriesWhenRefused) {
    server_->start({"--requirepass", "s3cret"});
    RedisLinkOptions wrong = options();
    wrong.password = "wrong";
    auto refused = make_link(wrong);
    refused->start();
    RedisLinkOptions none = options();
    auto unauthenticated = make_link(none);
    unauthenticated->start();
    run_for(base_, 300ms);
    EXPECT_FALSE(refused->ready());
    EXPECT_FALSE(unauthenticated->ready());
    EXPECT_EQ(readies_, 0);
    EXPECT_EQ(losses_, 0);

    RedisLinkOptions right = options();
    right.password = "s3cret";
    auto link = make_link(right);
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    std::optional<RedisReply> reply;
    link->command({"SET", "k", "v"}, [&](const RedisReply &r) { reply = r; });
    ASSERT_TRUE(run_until(base_, [&] { return reply.has_value(); }));
    EXPECT_EQ(reply->str, "OK");
}

TEST_F(RedisLinkTest, ConnectsOverAUnixSocket) {
    char dir[] = "/tmp/redis_link_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string socket = std::string(dir) + "/redis.sock";
    server_->start({"--unixsocket", socket});
    RedisLinkOptions over_socket = options();
    over_socket.unix_socket = socket;
    over_socket.port = 1; // ignored
    auto link = make_link(over_socket);
    link->start();
    EXPECT_TRUE(run_until(base_, [&] { return link->ready(); }));
    server_->kill();
    unlink(socket.c_str());
    rmdir(dir);
}

// A server that accepts TCP connections (the kernel's backlog does) but never answers.
TEST_F(RedisLinkTest, SilentServerTimesOutAndIsRetried) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(listener, 16), 0);
    fcntl(listener, F_SETFL, O_NONBLOCK);

    RedisLinkOptions silent = options();
    silent.connect_timeout = 100ms;
    auto link = make_link(silent);
    link->start();
    std::vector<int> accepted; // kept open: closing them would end the attempt before the timeout
    run_until(base_, [&] {
        for (int fd; (fd = accept(listener, nullptr, nullptr)) >= 0;)
            accepted.push_back(fd);
        return accepted.size() >= 2;
    });
    EXPECT_GE(accepted.size(), 2u) << "the link should give up on the silent server and connect again";
    EXPECT_FALSE(link->ready());
    EXPECT_EQ(readies_, 0);
    EXPECT_EQ(losses_, 0);
    link.reset();
    for (int fd : accepted)
        close(fd);
    close(listener);
}

TEST_F(RedisLinkTest, ReplyCallbackMayDestroyTheLink) {
    server_->start();
    auto link = make_link(options());
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));

    std::vector<std::string> outcomes;
    link->command({"PING"}, [&](const RedisReply &reply) {
        outcomes.push_back(reply.lost ? "lost" : reply.str);
        link.reset();
    });
    link->command({"PING"}, [&](const RedisReply &reply) { outcomes.push_back(reply.lost ? "lost" : reply.str); });
    ASSERT_TRUE(run_until(base_, [&] { return outcomes.size() == 2; }));
    EXPECT_EQ(outcomes, (std::vector<std::string>{"PONG", "lost"}));
    EXPECT_EQ(losses_, 0);
}

TEST_F(RedisLinkTest, StopFailsPendingWithoutOnLostAndStartReconnects) {
    server_->start();
    auto link = make_link(options());
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));

    std::optional<RedisReply> pending;
    link->command({"BLPOP", "never", "10"}, [&](const RedisReply &reply) {
        pending = reply;
        bool failed_again = false;
        link->command({"PING"}, [&](const RedisReply &again) { failed_again = again.lost; });
        EXPECT_TRUE(failed_again) << "a stopped link takes no commands";
    });
    ASSERT_TRUE(run_until(base_, [&] { return client_blocked(); }));
    link->stop();
    ASSERT_TRUE(pending);
    EXPECT_TRUE(pending->lost);
    EXPECT_FALSE(link->ready());
    run_for(base_, 100ms);
    EXPECT_EQ(losses_, 0);
    EXPECT_EQ(readies_, 1);

    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    EXPECT_EQ(readies_, 2);
}

TEST_F(RedisLinkTest, OnLostMayDestroyTheLink) {
    server_->start();
    std::unique_ptr<RedisLink> link;
    RedisLinkCallbacks callbacks;
    callbacks.on_ready = [&] { ++readies_; };
    callbacks.on_lost = [&] {
        ++losses_;
        link.reset();
    };
    link = std::make_unique<RedisLink>(base_, options(), callbacks);
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return readies_ == 1; }));
    server_->kill();
    ASSERT_TRUE(run_until(base_, [&] { return losses_ == 1; }));
    EXPECT_EQ(link, nullptr);
    run_for(base_, 50ms); // no timer of the destroyed link may fire
}

} // namespace
