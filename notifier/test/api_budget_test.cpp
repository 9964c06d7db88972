// Unit tests of the feed API's per-user and per-worker budget (notifier/api_budget.hpp), with
// evbuffers standing in for connections' output.
#include "api_budget.hpp"

#include <event2/buffer.h>

#include <gtest/gtest.h>

#include <string>

namespace pgfeed::notifier {
namespace {

ApiLimits limits(int calls, std::int64_t per_user, std::int64_t total) { return ApiLimits{calls, per_user, total}; }

TEST(ApiBudget, CallsInFlightPerUser) {
    auto budget = ApiBudget::create(limits(2, 1000, 10000));
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::admitted);
    budget->call_started("alice");
    budget->call_started("alice");
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::user_calls);
    EXPECT_EQ(budget->admit("bob"), ApiAdmission::admitted);
    budget->call_finished("alice");
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::admitted);
    budget->call_finished("alice");
    EXPECT_EQ(budget->calls("alice"), 0);
    budget->call_finished("alice"); // one too many changes nothing
    EXPECT_EQ(budget->calls("alice"), 0);
}

TEST(ApiBudget, UnsentBytesUntilWritten) {
    auto budget = ApiBudget::create(limits(100, 1000, 10000));
    evbuffer *output = evbuffer_new();
    budget->add_reply(output, "alice", std::string(600, 'a'));
    EXPECT_EQ(budget->unsent("alice"), 600);
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::admitted);
    budget->add_reply(output, "alice", std::string(400, 'b'));
    EXPECT_EQ(budget->unsent("alice"), 1000);
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::user_unsent);
    EXPECT_EQ(budget->admit("bob"), ApiAdmission::admitted);
    EXPECT_EQ(evbuffer_get_length(output), 1000u);
    EXPECT_EQ(evbuffer_drain(output, 600), 0); // the first reply written
    EXPECT_EQ(budget->unsent("alice"), 400);
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::admitted);
    evbuffer_free(output); // the connection is gone with the rest
    EXPECT_EQ(budget->unsent("alice"), 0);
    EXPECT_EQ(budget->unsent(), 0);
}

TEST(ApiBudget, MovedRepliesStayCounted) {
    auto budget = ApiBudget::create(limits(100, 1000, 10000));
    evbuffer *reply = evbuffer_new();
    evbuffer *connection = evbuffer_new();
    budget->add_reply(reply, "alice", "{\"items\": []}");
    evbuffer_add_buffer(connection, reply); // what evhttp_send_reply does with the body
    evbuffer_free(reply);
    EXPECT_EQ(budget->unsent("alice"), 13);
    char text[32] = {};
    ASSERT_EQ(evbuffer_remove(connection, text, sizeof text), 13);
    EXPECT_STREQ(text, "{\"items\": []}");
    EXPECT_EQ(budget->unsent("alice"), 0);
    evbuffer_free(connection);
}

TEST(ApiBudget, EveryUserTogether) {
    auto budget = ApiBudget::create(limits(100, 1000, 1500));
    evbuffer *output = evbuffer_new();
    budget->add_reply(output, "alice", std::string(900, 'a'));
    EXPECT_EQ(budget->admit("bob"), ApiAdmission::admitted);
    budget->add_reply(output, "bob", std::string(700, 'b'));
    EXPECT_EQ(budget->unsent(), 1600);
    EXPECT_EQ(budget->admit("carol"), ApiAdmission::worker_unsent);
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::worker_unsent);
    evbuffer_drain(output, 900);
    EXPECT_EQ(budget->admit("carol"), ApiAdmission::admitted);
    evbuffer_free(output);
}

TEST(ApiBudget, RepliesOutliveTheirOwner) {
    auto budget = ApiBudget::create(limits(100, 1000, 10000));
    evbuffer *output = evbuffer_new();
    budget->add_reply(output, "alice", "late");
    budget.reset(); // the API is gone; evhttp frees the connection later
    evbuffer_free(output);
}

TEST(ApiBudget, ReloadKeepsWhatIsHeld) {
    auto budget = ApiBudget::create(limits(3, 1000, 10000));
    for (int i = 0; i < 3; ++i)
        budget->call_started("alice");
    budget->reconfigure(limits(1, 1000, 10000));
    EXPECT_EQ(budget->calls("alice"), 3);
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::user_calls);
    budget->reconfigure(limits(10, 1000, 10000));
    EXPECT_EQ(budget->admit("alice"), ApiAdmission::admitted);
}

} // namespace
} // namespace pgfeed::notifier
