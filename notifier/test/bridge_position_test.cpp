#include "bridge_position.hpp"

#include <gtest/gtest.h>

using namespace pgfeed::notifier;

TEST(SnapshotText, AcceptsPostgresForms) {
    EXPECT_TRUE(is_snapshot_text("1:1:"));
    EXPECT_TRUE(is_snapshot_text("1000:1005:1001,1003"));
    EXPECT_TRUE(is_snapshot_text("1000:1005:1000"));
}

TEST(SnapshotText, RefusesEverythingElse) {
    for (const char *bad : {"", "1", "1:1", "a:1:", "1:b:", "5:4:", "1:5:5", "1:5:0", "1:5:2,", "1:5:,2", "1:5:2,,3",
                            "-1:1:", "1:5:2 ", " 1:5:", "99999999999999999999:1:"})
        EXPECT_FALSE(is_snapshot_text(bad)) << bad;
}

TEST(Position, RoundTripsThroughTheHash) {
    BridgePosition batch{"10:20:12", "15:30:", 77};
    std::vector<std::string> hset = hset_position("k", batch);
    ASSERT_EQ(hset.size(), 8u);
    EXPECT_EQ(hset[0], "HSET");
    EXPECT_EQ(hset[1], "k");
    std::vector<std::string> hash(hset.begin() + 2, hset.end());
    EXPECT_EQ(position_from_hash(hash), batch);

    BridgePosition idle{"10:20:12", "", 0};
    hset = hset_position("k", idle);
    EXPECT_EQ(position_from_hash({hset.begin() + 2, hset.end()}), idle);
}

TEST(Position, EmptyHashMeansNoPositionYet) { EXPECT_EQ(position_from_hash({}), std::nullopt); }

TEST(Position, RefusesDamagedHashes) {
    using Hash = std::vector<std::string>;
    auto message = [](const Hash &hash) {
        try {
            position_from_hash(hash);
        } catch (const std::invalid_argument &e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(message({"since", "1:1:", "upto"}), "an odd number of fields and values");
    EXPECT_EQ(message({"since", "1:1:", "upto", ""}), "fields since, upto and after are required");
    EXPECT_EQ(message({"since", "x", "upto", "", "after", "0"}), "since \"x\" is not a snapshot");
    EXPECT_EQ(message({"since", "1:1:", "upto", "2", "after", "0"}), "upto \"2\" is not a snapshot");
    EXPECT_EQ(message({"since", "1:1:", "upto", "", "after", "5"}), "after \"5\" is not an event id of the batch");
    EXPECT_EQ(message({"since", "1:1:", "upto", "1:2:", "after", "-1"}),
              "after \"-1\" is not an event id of the batch");
    EXPECT_EQ(message({"since", "1:1:", "upto", "", "after", "0", "extra", "1"}), "unknown field \"extra\"");
}

TEST(OutboxEvent, ReadsARow) {
    OutboxEvent e = outbox_event_from_row({"42", "activity", "mp_id:7", std::nullopt, "{\"op\":\"insert\"}", "123"});
    EXPECT_EQ(e.event_id, 42);
    EXPECT_EQ(e.kind, "activity");
    EXPECT_EQ(e.topic, "mp_id:7");
    EXPECT_EQ(e.user_key, std::nullopt);
    EXPECT_EQ(e.at_us, 123);
}

TEST(OutboxEvent, RefusesBadRows) {
    using Cells = std::vector<std::optional<std::string>>;
    for (const Cells &bad : {Cells{"1", "activity"}, Cells{"x", "activity", {}, {}, "{}", "1"},
                             Cells{"0", "activity", {}, {}, "{}", "1"}, Cells{{}, "activity", {}, {}, "{}", "1"},
                             Cells{"1", "gossip", {}, {}, "{}", "1"}, Cells{"1", "read", {}, {}, "{}", "1"},
                             Cells{"1", "activity", {}, {}, "", "1"}, Cells{"1", "activity", {}, {}, "{}", "soon"}})
        EXPECT_THROW(outbox_event_from_row(bad), std::invalid_argument);
}

TEST(OutboxEvent, BecomesAnXaddWithOnlyItsRoutingFields) {
    OutboxEvent activity{7, "activity", std::string("mp_id:7"), std::nullopt, "{}", 99};
    EXPECT_EQ(xadd_event("s", 1000, activity),
              (std::vector<std::string>{"XADD", "s", "MAXLEN", "~", "1000", "*", "kind", "activity", "topic", "mp_id:7",
                                        "event_id", "7", "at", "99", "data", "{}"}));
    OutboxEvent read{8, "read", std::nullopt, std::string("u 1"), "{\"a\":\"b c\"}", 100};
    EXPECT_EQ(xadd_event("s", 5, read),
              (std::vector<std::string>{"XADD", "s", "MAXLEN", "~", "5", "*", "kind", "read", "user", "u 1", "event_id",
                                        "8", "at", "100", "data", "{\"a\":\"b c\"}"}));
}
