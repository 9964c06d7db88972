#include "fanout_index.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace pgfeed::notifier;

namespace {

struct Stream {
    int id;
};

template <typename Walk> std::vector<int> visited(Walk &&walk) {
    std::vector<int> ids;
    walk([&](Stream *stream) { ids.push_back(stream->id); });
    std::sort(ids.begin(), ids.end());
    return ids;
}

} // namespace

TEST(FanoutIndex, RoutesTopicsExactlyAndByPattern) {
    FanoutIndex<Stream> index;
    Stream a{1}, b{2}, c{3}, d{4};
    index.add(&a, "alice", {"mp:7"});
    index.add(&b, "bob", {"mp:*"});
    index.add(&c, "carol", {"*"});
    index.add(&d, "dave", {"bill:1", "mp:8"});
    auto topic = [&](const std::string &name) { return visited([&](auto visit) { index.for_topic(name, visit); }); };
    EXPECT_EQ(topic("mp:7"), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(topic("mp:8"), (std::vector<int>{2, 3, 4}));
    EXPECT_EQ(topic("bill:1"), (std::vector<int>{3, 4}));
    EXPECT_EQ(topic(""), (std::vector<int>{3})); // an item without a topic: only "*"
    EXPECT_EQ(topic("other"), (std::vector<int>{3}));
}

TEST(FanoutIndex, PrivateEventsReachTheirUserOnly) {
    FanoutIndex<Stream> index;
    Stream a1{1}, a2{2}, b{3};
    index.add(&a1, "alice", {"*"});
    index.add(&a2, "alice", {});
    index.add(&b, "bob", {"*"});
    auto user = [&](const std::string &name) { return visited([&](auto visit) { index.for_user(name, visit); }); };
    EXPECT_EQ(user("alice"), (std::vector<int>{1, 2}));
    EXPECT_EQ(user("bob"), (std::vector<int>{3}));
    EXPECT_TRUE(user("mallory").empty());
}

TEST(FanoutIndex, RemoveForgetsEverything) {
    FanoutIndex<Stream> index;
    Stream a{1}, b{2};
    index.add(&a, "alice", {"mp:7", "mp:*"});
    index.add(&b, "alice", {"mp:7"});
    index.remove(&a, "alice", {"mp:7", "mp:*"});
    EXPECT_EQ(visited([&](auto visit) { index.for_topic("mp:7", visit); }), (std::vector<int>{2}));
    EXPECT_EQ(visited([&](auto visit) { index.for_user("alice", visit); }), (std::vector<int>{2}));
    index.remove(&b, "alice", {"mp:7"});
    EXPECT_TRUE(index.empty());
    EXPECT_TRUE(visited([&](auto visit) { index.for_topic("mp:7", visit); }).empty());
}

TEST(FanoutIndex, AStreamMatchingTwiceIsVisitedTwice) {
    // The hub marks delivered entries; the index only promises to visit every match.
    FanoutIndex<Stream> index;
    Stream a{1};
    index.add(&a, "alice", {"mp:7", "mp:*"});
    EXPECT_EQ(visited([&](auto visit) { index.for_topic("mp:7", visit); }), (std::vector<int>{1, 1}));
}
