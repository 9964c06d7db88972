// Integration tests of StreamReader against a real redis-server: order, each entry once across a
// server restart, "from now on", and a gap when entries may have been trimmed before being read.
#include "stream_reader.hpp"

#include "event_loop.hpp"
#include "redis_server.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>

using namespace pgfeed::notifier;
using namespace std::chrono_literals;

namespace {

class StreamReaderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (access(kRedisServer, X_OK) != 0)
            GTEST_SKIP() << kRedisServer << " not found: install redis-server to run the StreamReader tests";
        std::signal(SIGPIPE, SIG_IGN);
        char dir[] = "/tmp/stream_reader_test.XXXXXX";
        ASSERT_NE(mkdtemp(dir), nullptr);
        dir_ = dir;
        base_ = event_base_new();
        port_ = free_loopback_port();
        server_.emplace(port_);
        start_server();
        writer_ = std::make_unique<RedisLink>(base_, options(), RedisLinkCallbacks{[] {}, [] {}});
        writer_->start();
        ASSERT_TRUE(run_until(base_, [&] { return writer_->ready(); }));
    }

    void TearDown() override {
        reader_.reset();
        writer_.reset();
        server_.reset();
        if (base_)
            event_base_free(base_);
        if (!dir_.empty())
            std::system(("rm -rf " + dir_).c_str());
    }

    // With an append-only file, so that a restart keeps the stream.
    void start_server() { server_->start({"--appendonly", "yes", "--appendfsync", "always", "--dir", dir_}); }

    RedisLinkOptions options() const {
        RedisLinkOptions options;
        options.port = port_;
        options.retry_initial = 20ms;
        options.retry_max = 100ms;
        return options;
    }

    void start_reader(std::string after, int count = 3) {
        reader_ = std::make_unique<StreamReader>(base_, options(), "s", 200ms, count,
                                                 StreamReaderCallbacks{[this](const std::vector<StreamEntry> &entries) {
                                                                           for (const StreamEntry &e : entries)
                                                                               seen_.push_back(e.fields.at(0).second);
                                                                       },
                                                                       [this] { ++gaps_; }});
        reader_->start(std::move(after));
    }

    // XADD s * n <value>, waiting for the reply.
    std::string add(const std::string &value) {
        std::optional<RedisReply> reply;
        writer_->command({"XADD", "s", "*", "n", value}, [&](const RedisReply &r) { reply = r; });
        EXPECT_TRUE(run_until(base_, [&] { return reply.has_value(); }));
        return reply ? reply->str : "";
    }

    RedisReply call(RedisLink::Argv argv) {
        std::optional<RedisReply> reply;
        writer_->command(std::move(argv), [&](const RedisReply &r) { reply = r; });
        EXPECT_TRUE(run_until(base_, [&] { return reply.has_value(); }));
        return reply.value_or(RedisReply{});
    }

    bool seen(std::size_t n) {
        return run_until(base_, [&] { return seen_.size() >= n; });
    }

    std::string dir_;
    event_base *base_ = nullptr;
    int port_ = 0;
    std::optional<RedisServer> server_;
    std::unique_ptr<RedisLink> writer_;
    std::unique_ptr<StreamReader> reader_;
    std::vector<std::string> seen_;
    int gaps_ = 0;
};

TEST_F(StreamReaderTest, FromTheStartInOrderAcrossSeveralReads) {
    for (int i = 1; i <= 7; ++i)
        add(std::to_string(i));
    start_reader("0-0", 3);
    ASSERT_TRUE(seen(7));
    add("8");
    ASSERT_TRUE(seen(8));
    EXPECT_EQ(seen_, (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8"}));
    EXPECT_EQ(gaps_, 0);
}

TEST_F(StreamReaderTest, FromNowOnSkipsWhatIsThere) {
    add("old");
    start_reader("");
    ASSERT_TRUE(run_until(base_, [&] { return reader_->last_id() != ""; }));
    add("new");
    ASSERT_TRUE(seen(1)); // "old", had it come, would have come first
    EXPECT_EQ(seen_, (std::vector<std::string>{"new"}));
}

TEST_F(StreamReaderTest, ResumesAfterARestartWithNothingLostOrRepeated) {
    start_reader("0-0");
    add("1");
    add("2");
    ASSERT_TRUE(seen(2));
    server_->kill();
    ASSERT_TRUE(run_until(base_, [&] { return !writer_->ready(); }));
    start_server();
    ASSERT_TRUE(run_until(
        base_, [&] { return writer_->ready(); }, 5s));
    add("3");
    ASSERT_TRUE(seen(3)); // a repeat of 1 or 2 would come before 3
    EXPECT_EQ(seen_, (std::vector<std::string>{"1", "2", "3"}));
    EXPECT_EQ(gaps_, 0);
}

TEST_F(StreamReaderTest, ReportsAGapWhenUnreadEntriesWereTrimmed) {
    std::string first = add("1");
    for (int i = 2; i <= 5; ++i)
        add(std::to_string(i));
    call({"XTRIM", "s", "MAXLEN", "2"}); // 2 and 3 are gone unread
    start_reader(first);
    ASSERT_TRUE(seen(2));
    EXPECT_EQ(gaps_, 1);
    EXPECT_EQ(seen_, (std::vector<std::string>{"4", "5"}));
}

TEST_F(StreamReaderTest, NoGapWhileTheLastEntryReadIsKept) {
    add("1");
    std::string second = add("2");
    add("3");
    call({"XTRIM", "s", "MAXLEN", "2"}); // only 1, read already, is gone
    start_reader(second);
    ASSERT_TRUE(seen(1)); // the check for a gap comes before the first read
    EXPECT_EQ(gaps_, 0);
    EXPECT_EQ(seen_, (std::vector<std::string>{"3"}));
}

} // namespace
