// Integration tests of PgLink against a throwaway PostgreSQL 15 listening on a unix socket in a
// temporary directory (settings as in test/pg_cluster.sh): queries with parameters, SQL errors,
// NOTIFY, a terminated backend, and callbacks that stop or destroy the link.
#include "pg_link.hpp"

#include "event_loop.hpp"
#include "pg_server.hpp"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace pgfeed::notifier;
using namespace std::chrono_literals;

namespace {

PgServer cluster("pg_link_test");
std::string skip_reason;

class PgLinkTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { skip_reason = cluster.start(); }
    static void TearDownTestSuite() { cluster.stop(); }

    void SetUp() override {
        if (!skip_reason.empty())
            GTEST_SKIP() << skip_reason;
        base_ = event_base_new();
        admin_ = PQconnectdb(cluster.conninfo().c_str());
        ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
    }

    void TearDown() override {
        if (admin_)
            PQfinish(admin_);
        if (base_)
            event_base_free(base_);
    }

    PgLinkOptions options() const {
        PgLinkOptions options;
        options.conninfo = cluster.conninfo();
        options.channels = {"pgfeed", "second channel"};
        options.connect_timeout = 2000ms;
        options.retry_initial = 20ms;
        options.retry_max = 100ms;
        return options;
    }

    // A link that records its callbacks in events_.
    std::unique_ptr<PgLink> make_link(PgLinkOptions options) {
        PgLinkCallbacks callbacks;
        callbacks.on_ready = [this] {
            ++readies_;
            events_.push_back("on_ready");
        };
        callbacks.on_lost = [this] {
            ++losses_;
            events_.push_back("on_lost");
        };
        callbacks.on_notify = [this](const std::string &channel) { events_.push_back("notify " + channel); };
        return std::make_unique<PgLink>(base_, std::move(options), std::move(callbacks));
    }

    std::unique_ptr<PgLink> ready_link() {
        auto link = make_link(options());
        link->start();
        EXPECT_TRUE(run_until(base_, [&] { return link->ready(); }));
        return link;
    }

    // Runs sql on the link and waits for its result.
    PgResult query(PgLink &link, const std::string &sql, PgLink::Params params = {}) {
        std::optional<PgResult> result;
        link.query(sql, std::move(params), [&](const PgResult &r) { result = r; });
        EXPECT_TRUE(run_until(base_, [&] { return result.has_value(); })) << sql;
        return result.value_or(PgResult{});
    }

    // Runs sql on the test's own blocking connection.
    void admin(const std::string &sql) {
        PGresult *res = PQexec(admin_, sql.c_str());
        ExecStatusType status = PQresultStatus(res);
        EXPECT_TRUE(status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) << sql << ": " << PQerrorMessage(admin_);
        PQclear(res);
    }

    // True once the backend `pid` is running pg_sleep: a query the link sent, still in flight.
    bool sleeping(int pid) {
        PGresult *res = PQexec(admin_, ("SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(pid) +
                                        " AND state = 'active' AND query LIKE '%pg_sleep%'")
                                           .c_str());
        bool found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        PQclear(res);
        return found;
    }

    int backend_pid(PgLink &link) {
        PgResult result = query(link, "SELECT pg_backend_pid()");
        return result.ok ? std::stoi(*result.rows.at(0).at(0)) : 0;
    }

    event_base *base_ = nullptr;
    PGconn *admin_ = nullptr;
    int readies_ = 0;
    int losses_ = 0;
    std::vector<std::string> events_;
};

TEST_F(PgLinkTest, QueryWithParamsReturnsRows) {
    auto link = ready_link();
    PgResult result = query(*link, "SELECT $1::int + 1 AS n, $2::text AS word, $3::text AS nothing",
                            {"41", std::string("caf\xc3\xa9 'quoted'"), std::nullopt});
    ASSERT_TRUE(result.ok) << result.error;
    EXPECT_EQ(result.columns, (std::vector<std::string>{"n", "word", "nothing"}));
    ASSERT_EQ(result.rows.size(), 1u);
    EXPECT_EQ(result.rows[0][0], "42");
    EXPECT_EQ(result.rows[0][1], "caf\xc3\xa9 'quoted'");
    EXPECT_EQ(result.rows[0][2], std::nullopt);

    result = query(*link, "SELECT g FROM generate_series(1, 3) g");
    ASSERT_EQ(result.rows.size(), 3u);
    EXPECT_EQ(result.rows[2][0], "3");

    result = query(*link, "CREATE TEMP TABLE t (x int)");
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_TRUE(result.rows.empty());
}

TEST_F(PgLinkTest, QueriesCompleteInTheOrderTheyWereIssued) {
    auto link = ready_link();
    std::vector<std::string> order;
    for (int i = 0; i < 5; ++i) {
        // The first sleeps, so a link that did not keep order would finish the others first.
        std::string sql = i == 0 ? "SELECT pg_sleep(0.05), $1::text" : "SELECT 1, $1::text";
        link->query(sql, {std::to_string(i)}, [&](const PgResult &r) { order.push_back(r.rows.at(0).at(1).value()); });
    }
    ASSERT_TRUE(run_until(base_, [&] { return order.size() == 5; }));
    EXPECT_EQ(order, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST_F(PgLinkTest, SqlErrorGivesItsSqlstateAndTheSessionGoesOn) {
    auto link = ready_link();
    PgResult result = query(*link, "SELECT * FROM no_such_table");
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.sqlstate, "42P01");
    EXPECT_NE(result.error.find("no_such_table"), std::string::npos) << result.error;

    result = query(*link, "SELECT 1/$1::int", {"0"});
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.sqlstate, "22012");

    result = query(*link, "SELECT 1");
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_EQ(readies_, 1);
    EXPECT_EQ(losses_, 0);
}

TEST_F(PgLinkTest, NotifyFromAnotherSessionReachesOnNotify) {
    auto link = ready_link();
    admin("NOTIFY pgfeed");
    admin("NOTIFY \"second channel\", 'the payload is not passed on'");
    admin("NOTIFY not_listened");
    ASSERT_TRUE(run_until(base_, [&] { return events_.size() >= 3; }));
    EXPECT_EQ(events_, (std::vector<std::string>{"on_ready", "notify pgfeed", "notify second channel"}));
}

TEST_F(PgLinkTest, QueryWhileNotReadyFailsBeforeReturning) {
    auto link = make_link(options());
    std::optional<PgResult> result;
    link->query("SELECT 1", {}, [&](const PgResult &r) { result = r; });
    ASSERT_TRUE(result);
    EXPECT_FALSE(result->ok);
    EXPECT_EQ(result->error, "not connected");
}

TEST_F(PgLinkTest, UnreachableServerIsRetriedWithoutOnLost) {
    PgLinkOptions nowhere = options();
    nowhere.conninfo = "host=/nonexistent port=5432 dbname=postgres user=postgres password=hunter2";
    auto link = make_link(nowhere);
    testing::internal::CaptureStderr();
    link->start();
    run_for(base_, 200ms);
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(link->ready());
    EXPECT_TRUE(events_.empty());
    EXPECT_NE(log.find("msg=\"connect failed\" component=pg host=/nonexistent port=5432"), std::string::npos) << log;
    EXPECT_NE(log.find("No such file or directory"), std::string::npos) << log;
    EXPECT_EQ(log.find("hunter2"), std::string::npos) << "the password must not be logged: " << log;
}

TEST_F(PgLinkTest, TerminatedBackendFailsPendingReportsLossAndReconnects) {
    auto link = ready_link();
    int first_pid = backend_pid(*link);
    ASSERT_GT(first_pid, 0);
    ASSERT_TRUE(query(*link, "SELECT pg_advisory_lock(42)").ok);

    // Busy: one query in flight, one queued behind it.
    std::vector<PgResult> failed;
    auto record = [&](const PgResult &r) {
        failed.push_back(r);
        events_.push_back("query failed");
        EXPECT_FALSE(link->ready());
    };
    link->query("SELECT pg_sleep(30)", {}, record);
    link->query("SELECT 1", {}, record);
    ASSERT_TRUE(run_until(base_, [&] { return sleeping(first_pid); }));
    admin("SELECT pg_terminate_backend(" + std::to_string(first_pid) + ")");
    ASSERT_TRUE(run_until(base_, [&] { return losses_ == 1; }));
    ASSERT_EQ(failed.size(), 2u);
    for (const PgResult &r : failed) {
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error.rfind("connection lost", 0), 0u) << r.error;
    }
    EXPECT_EQ(events_, (std::vector<std::string>{"on_ready", "query failed", "query failed", "on_lost"}));

    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    EXPECT_EQ(readies_, 2);
    int second_pid = backend_pid(*link);
    EXPECT_NE(second_pid, first_pid);
    // The lock went with the old session: the caller learned that through on_lost.
    PgResult lock = query(*link, "SELECT pg_try_advisory_lock(42)");
    EXPECT_EQ(lock.rows.at(0).at(0), "t");

    // Idle: the FATAL message comes while no query runs.
    admin("SELECT pg_terminate_backend(" + std::to_string(second_pid) + ")");
    ASSERT_TRUE(run_until(base_, [&] { return losses_ == 2; }));
    ASSERT_TRUE(run_until(base_, [&] { return link->ready(); }));
    EXPECT_EQ(readies_, 3);
    admin("NOTIFY pgfeed");
    EXPECT_TRUE(run_until(base_, [&] { return events_.back() == "notify pgfeed"; }))
        << "LISTEN again after reconnecting";
}

TEST_F(PgLinkTest, StopFailsPendingWithoutOnLostAndStartReconnects) {
    auto link = ready_link();
    int pid = backend_pid(*link);
    std::vector<std::string> errors;
    link->query("SELECT pg_sleep(30)", {}, [&](const PgResult &r) {
        errors.push_back(r.error);
        // A callback that queries again: the stopped link refuses at once.
        link->query("SELECT 1", {}, [&](const PgResult &again) { errors.push_back(again.error); });
    });
    ASSERT_TRUE(run_until(base_, [&] { return sleeping(pid); }));
    link->stop();
    EXPECT_EQ(errors, (std::vector<std::string>{"link stopped", "not connected"}));
    run_for(base_, 100ms);
    EXPECT_EQ(losses_, 0);

    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return readies_ == 2; }));
    EXPECT_TRUE(query(*link, "SELECT 1").ok);
}

TEST_F(PgLinkTest, CallbacksMayQueryStopOrDestroyTheLink) {
    auto link = ready_link();
    std::vector<std::string> seen;
    link->query("SELECT 'first'", {}, [&](const PgResult &r) {
        seen.push_back(r.rows.at(0).at(0).value());
        // Issued from a callback: runs after the queries already queued.
        link->query("SELECT 'chained'", {}, [&](const PgResult &chained) {
            seen.push_back(chained.rows.at(0).at(0).value());
            link.reset();
        });
    });
    link->query("SELECT 'second'", {}, [&](const PgResult &r) { seen.push_back(r.rows.at(0).at(0).value()); });
    link->query("SELECT 'third'", {}, [&](const PgResult &r) { seen.push_back(r.rows.at(0).at(0).value()); });
    ASSERT_TRUE(run_until(base_, [&] { return link == nullptr; }));
    EXPECT_EQ(seen, (std::vector<std::string>{"first", "second", "third", "chained"}));
}

TEST_F(PgLinkTest, OnNotifyMayDestroyTheLinkWithQueriesPending) {
    std::unique_ptr<PgLink> link;
    PgLinkCallbacks callbacks;
    callbacks.on_ready = [&] { ++readies_; };
    callbacks.on_notify = [&](const std::string &) { link.reset(); };
    link = std::make_unique<PgLink>(base_, options(), callbacks);
    link->start();
    ASSERT_TRUE(run_until(base_, [&] { return readies_ == 1; }));
    // A backend delivers NOTIFYs only between queries, so the link's own session notifies itself:
    // the notification comes with the first query's result, while the second one runs.
    std::optional<PgResult> pending;
    link->query("NOTIFY pgfeed", {}, [](const PgResult &) {});
    link->query("SELECT pg_sleep(30)", {}, [&](const PgResult &r) { pending = r; });
    ASSERT_TRUE(run_until(base_, [&] { return link == nullptr; }));
    ASSERT_TRUE(pending);
    EXPECT_EQ(pending->error, "link stopped");
    run_for(base_, 50ms); // no event of the destroyed link may fire
}

} // namespace
