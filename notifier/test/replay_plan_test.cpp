#include "replay_plan.hpp"

#include <gtest/gtest.h>

using namespace pgfeed::notifier;

namespace {

RedisReply text(std::string value) {
    RedisReply reply;
    reply.type = RedisReply::Type::string;
    reply.str = std::move(value);
    return reply;
}

RedisReply integer(long long value) {
    RedisReply reply;
    reply.type = RedisReply::Type::integer;
    reply.integer = value;
    return reply;
}

RedisReply array(std::vector<RedisReply> elements) {
    RedisReply reply;
    reply.type = RedisReply::Type::array;
    reply.elements = std::move(elements);
    return reply;
}

// XINFO STREAM as Redis 7.0 answers it, trimmed to what the parser reads plus a field it skips.
RedisReply xinfo(long long length, long long added, std::string last, std::optional<std::string> first) {
    RedisReply first_entry;
    if (first)
        first_entry = array({text(*first), array({text("kind"), text("activity")})});
    return array({text("length"), integer(length), text("radix-tree-keys"), integer(1), text("last-generated-id"),
                  text(std::move(last)), text("entries-added"), integer(added), text("first-entry"),
                  std::move(first_entry)});
}

StreamId id(uint64_t ms, uint64_t seq = 0) { return StreamId{ms, seq}; }

} // namespace

TEST(ReplayPlan, ParsesXinfoStream) {
    auto info = parse_stream_info(xinfo(3, 10, "100-2", "100-0"));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->length, 3);
    EXPECT_EQ(info->entries_added, 10);
    EXPECT_EQ(info->last_generated, id(100, 2));
    EXPECT_EQ(info->first_entry, id(100, 0));

    auto empty = parse_stream_info(xinfo(0, 5, "100-2", std::nullopt));
    ASSERT_TRUE(empty);
    EXPECT_FALSE(empty->first_entry);
}

TEST(ReplayPlan, RefusesDamagedReplies) {
    EXPECT_FALSE(parse_stream_info(text("OK")));
    EXPECT_FALSE(parse_stream_info(array({text("length")})));
    EXPECT_FALSE(parse_stream_info(xinfo(3, 10, "not-an-id", "100-0")));
    EXPECT_FALSE(parse_stream_info(xinfo(3, 10, "100-2", std::nullopt))); // entries but no first
    EXPECT_FALSE(parse_stream_info(
        array({text("length"), text("3"), text("entries-added"), integer(3), text("last-generated-id"), text("1-0")})));
}

TEST(ReplayPlan, ReplaysWhileNothingAfterTheIdIsGone) {
    // Nothing ever removed: even an id before the first entry loses nothing.
    StreamInfo untouched{3, 3, id(300), id(100)};
    EXPECT_EQ(judge_replay(id(0), untouched), ReplayVerdict::replay);
    EXPECT_EQ(judge_replay(id(200), untouched), ReplayVerdict::replay);
    // Trimmed, but the client's id is at or after the first entry kept.
    StreamInfo trimmed{3, 10, id(300), id(100)};
    EXPECT_EQ(judge_replay(id(100), trimmed), ReplayVerdict::replay);
    EXPECT_EQ(judge_replay(id(250), trimmed), ReplayVerdict::replay);
    EXPECT_EQ(judge_replay(id(300), trimmed), ReplayVerdict::replay);
}

TEST(ReplayPlan, ResetsWhenEntriesAfterTheIdMayBeGone) {
    StreamInfo trimmed{3, 10, id(300), id(100)};
    EXPECT_EQ(judge_replay(id(99, 5), trimmed), ReplayVerdict::trimmed);
    EXPECT_EQ(judge_replay(id(0), trimmed), ReplayVerdict::trimmed);
    // Everything trimmed: only a client that saw the last entry has missed nothing.
    StreamInfo emptied{0, 10, id(300), std::nullopt};
    EXPECT_EQ(judge_replay(id(300), emptied), ReplayVerdict::replay);
    EXPECT_EQ(judge_replay(id(200), emptied), ReplayVerdict::trimmed);
}

TEST(ReplayPlan, ResetsWhenTheStreamWasLostOrReplaced) {
    StreamInfo info{3, 3, id(300), id(100)};
    EXPECT_EQ(judge_replay(id(300, 1), info), ReplayVerdict::stream_gone);
    EXPECT_EQ(judge_replay(id(5), std::nullopt), ReplayVerdict::stream_gone);
    EXPECT_EQ(judge_replay(id(0), std::nullopt), ReplayVerdict::replay); // "from the start" of no stream
}
