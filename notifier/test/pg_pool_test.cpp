// Integration tests of PgPool against a throwaway PostgreSQL 15 (pg_server.hpp): refusals before
// any session is connected and past max_waiting, the settings every session runs with, queries
// spread over the sessions, terminated backends reconnected, and the pool destroyed with queries
// waiting.
#include "pg_pool.hpp"

#include "event_loop.hpp"
#include "pg_server.hpp"

#include <event2/event.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace pgfeed::notifier;
using namespace std::chrono_literals;

namespace {

const char *const kApplicationName = "pg_pool_test";

PgServer cluster(kApplicationName);
std::string skip_reason;

class PgPoolTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { skip_reason = cluster.start(); }
    static void TearDownTestSuite() { cluster.stop(); }

    void SetUp() override {
        if (!skip_reason.empty())
            GTEST_SKIP() << skip_reason;
        base_ = event_base_new();
        // Named apart (the later keyword wins), so that pool_backends() leaves it out.
        admin_ = PQconnectdb((cluster.conninfo() + " application_name=pg_pool_test_admin").c_str());
        ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
        // Quiet: terminating a backend that is exiting already warns "is not a PostgreSQL backend".
        PQsetNoticeProcessor(
            admin_, [](void *, const char *) {}, nullptr);
    }

    void TearDown() override {
        pool_.reset(); // before the loop it runs on
        if (admin_) {
            // A closed session's backend goes on with the query it was running (pg_sleep does not
            // notice the client left): ended here, so that no test sees another's backends.
            PQclear(PQexec(admin_, (std::string("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                                "application_name = '") +
                                    kApplicationName + "'")
                                       .c_str()));
            EXPECT_TRUE(run_until(base_, [&] { return pool_backends().empty(); }));
            PQfinish(admin_);
        }
        if (base_)
            event_base_free(base_);
    }

    static PgPoolOptions options(int sessions) {
        PgPoolOptions options;
        options.link.conninfo = cluster.conninfo();
        options.link.connect_timeout = 2000ms;
        options.link.retry_initial = 20ms;
        options.link.retry_max = 100ms;
        options.sessions = sessions;
        return options;
    }

    // A started pool whose every session is connected.
    void start_pool(PgPoolOptions options) {
        std::size_t sessions = static_cast<std::size_t>(options.sessions);
        pool_ = std::make_unique<PgPool>(base_, std::move(options));
        pool_->start();
        ASSERT_TRUE(run_until(base_, [&] { return pool_->ready_sessions() == sessions; }))
            << pool_->ready_sessions() << " of " << sessions << " sessions ready";
    }

    // Destroys the pool when a test leaves its scope. Declared after the test's variables that done
    // callbacks write to: a failed wait or ASSERT leaves queries pending, and their callbacks, which
    // run from the pool's destructor, must find those variables still there.
    struct DestroyPoolFirst {
        std::unique_ptr<PgPool> &pool;
        ~DestroyPoolFirst() { pool.reset(); }
    };

    // Runs sql on the pool and waits for its result. The result lives on the heap, for a callback
    // still pending when the wait fails.
    PgResult query(const std::string &sql, PgLink::Params params = {}) {
        auto result = std::make_shared<std::optional<PgResult>>();
        pool_->query(sql, std::move(params), [result](const PgResult &r) { *result = r; });
        EXPECT_TRUE(run_until(base_, [&] { return result->has_value(); })) << sql;
        return result->value_or(PgResult{});
    }

    // Queues sql count times in one turn of the loop and waits for every result.
    std::vector<PgResult> burst(const std::string &sql, int count) {
        auto results = std::make_shared<std::vector<PgResult>>();
        for (int i = 0; i < count; ++i)
            pool_->query(sql, {}, [results](const PgResult &r) { results->push_back(r); });
        EXPECT_TRUE(run_until(base_, [&] { return results->size() == static_cast<std::size_t>(count); })) << sql;
        return *results;
    }

    // The first column of the first row of sql on the test's own blocking connection; "" on failure.
    std::string admin_value(const std::string &sql) {
        PGresult *res = PQexec(admin_, sql.c_str());
        std::string value;
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1)
            value = PQgetvalue(res, 0, 0);
        else
            ADD_FAILURE() << sql << ": " << PQerrorMessage(admin_);
        PQclear(res);
        return value;
    }

    // The pool's backends, as the server sees them.
    std::set<int> pool_backends() {
        PGresult *res = PQexec(admin_, (std::string("SELECT pid FROM pg_stat_activity WHERE application_name = '") +
                                        kApplicationName + "'")
                                           .c_str());
        std::set<int> pids;
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            for (int r = 0; r < PQntuples(res); ++r)
                pids.insert(std::stoi(PQgetvalue(res, r, 0)));
        else
            ADD_FAILURE() << PQerrorMessage(admin_);
        PQclear(res);
        return pids;
    }

    // The pid of the pool's backend running a query with marker in its text; 0 while there is none.
    int backend_running(const std::string &marker) {
        std::string pid = admin_value(std::string("SELECT coalesce(min(pid), 0) FROM pg_stat_activity WHERE "
                                                  "application_name = '") +
                                      kApplicationName + "' AND state = 'active' AND query LIKE '%" + marker + "%'");
        return pid.empty() ? 0 : std::stoi(pid);
    }

    static int pid_of(const PgResult &result) {
        return result.ok && !result.rows.empty() && result.rows[0].at(0) ? std::stoi(*result.rows[0][0]) : 0;
    }

    event_base *base_ = nullptr;
    PGconn *admin_ = nullptr;
    std::unique_ptr<PgPool> pool_;
};

TEST_F(PgPoolTest, QueryBeforeAnySessionIsConnectedFailsBeforeReturning) {
    pool_ = std::make_unique<PgPool>(base_, options(2));
    std::vector<PgResult> results;
    pool_->query("SELECT 1", {}, [&](const PgResult &r) { results.push_back(r); });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_FALSE(results[0].ok);
    EXPECT_EQ(results[0].error, "not connected");

    // start() connects in the background: until the loop has run, still no session.
    pool_->start();
    EXPECT_EQ(pool_->ready_sessions(), 0u);
    pool_->query("SELECT 1", {}, [&](const PgResult &r) { results.push_back(r); });
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[1].error, "not connected");
    // Through the whole connect: a second call of a refused query's callback would come meanwhile.
    ASSERT_TRUE(run_until(base_, [&] { return pool_->ready_sessions() == 2; }));
    EXPECT_EQ(results.size(), 2u) << "a refused query's done callback runs once";
}

TEST_F(PgPoolTest, StartConnectsTheConfiguredNumberOfSessions) {
    start_pool(options(3));
    EXPECT_EQ(pool_backends().size(), 3u);
    burst("SELECT 1", 3); // a round trip on every session
    EXPECT_EQ(pool_->ready_sessions(), 3u);
    EXPECT_EQ(pool_backends().size(), 3u) << "no extra sessions";
}

TEST_F(PgPoolTest, EverySessionRunsWithStatementTimeoutAndPinnedSearchPath) {
    PgPoolOptions three = options(3);
    three.statement_timeout = 250ms;
    start_pool(three);
    // Queued in one turn, so they go to the three sessions, each after its session's setup query.
    std::vector<PgResult> results = burst("SELECT current_setting('statement_timeout'), "
                                          "current_setting('search_path'), pg_backend_pid()",
                                          3);
    std::set<std::string> pids;
    for (const PgResult &r : results) {
        ASSERT_TRUE(r.ok) << r.error;
        EXPECT_EQ(r.rows.at(0).at(0), "250ms");
        EXPECT_EQ(r.rows.at(0).at(1), "pg_catalog, pg_temp");
        pids.insert(r.rows.at(0).at(2).value_or(""));
    }
    EXPECT_EQ(pids.size(), 3u);

    PgResult shown = query("SHOW statement_timeout");
    EXPECT_EQ(shown.rows.at(0).at(0), "250ms");
    shown = query("SHOW search_path");
    EXPECT_EQ(shown.rows.at(0).at(0), "pg_catalog, pg_temp");
}

TEST_F(PgPoolTest, QueryLongerThanStatementTimeoutFailsWith57014) {
    PgPoolOptions one = options(1);
    one.statement_timeout = 200ms;
    start_pool(one);
    auto began = std::chrono::steady_clock::now();
    PgResult result = query("SELECT pg_sleep(2)");
    auto took = std::chrono::steady_clock::now() - began;
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.sqlstate, "57014") << result.error;
    EXPECT_LT(took, 1500ms);

    // A cancelled statement leaves the session usable.
    result = query("SELECT 1");
    EXPECT_TRUE(result.ok) << result.error;
    EXPECT_EQ(pool_->ready_sessions(), 1u);
}

TEST_F(PgPoolTest, BurstIsSpreadOverEverySession) {
    start_pool(options(3));
    std::vector<PgResult> results = burst("SELECT pg_backend_pid()", 30);
    std::map<int, int> per_pid;
    for (const PgResult &r : results) {
        ASSERT_TRUE(r.ok) << r.error;
        ++per_pid[pid_of(r)];
    }
    ASSERT_EQ(per_pid.size(), 3u);
    // Each query goes to the session with the fewest waiting: ten each.
    for (const auto &[pid, count] : per_pid)
        EXPECT_EQ(count, 10) << "backend " << pid;
    std::set<int> backends = pool_backends();
    for (const auto &[pid, count] : per_pid)
        EXPECT_EQ(backends.count(pid), 1u) << "backend " << pid << " is not one of the pool's";
}

TEST_F(PgPoolTest, QueryPastMaxWaitingFailsWithBusyUntilTheOthersFinish) {
    PgPoolOptions one = options(1);
    one.max_waiting = 2;
    start_pool(one);
    std::vector<PgResult> slow;
    pool_->query("SELECT pg_sleep(0.2)", {}, [&](const PgResult &r) { slow.push_back(r); });
    pool_->query("SELECT pg_sleep(0.2)", {}, [&](const PgResult &r) { slow.push_back(r); });
    std::optional<PgResult> refused;
    DestroyPoolFirst destroy_pool_first{pool_};
    pool_->query("SELECT 1", {}, [&](const PgResult &r) { refused = r; });
    ASSERT_TRUE(refused) << "refused before query() returns";
    EXPECT_FALSE(refused->ok);
    EXPECT_EQ(refused->error, "busy");
    EXPECT_TRUE(slow.empty());

    ASSERT_TRUE(run_until(base_, [&] { return slow.size() == 2; }));
    for (const PgResult &r : slow)
        EXPECT_TRUE(r.ok) << r.error;
    // Both slots are free again.
    std::vector<PgResult> again = burst("SELECT 1", 2);
    for (const PgResult &r : again)
        EXPECT_TRUE(r.ok) << r.error;
}

TEST_F(PgPoolTest, TerminatedSessionFailsItsQueryInFlightAndIsReconnected) {
    PgPoolOptions two = options(2);
    two.statement_timeout = 60000ms; // the sleep stays in flight until its backend is terminated
    two.max_waiting = 2;
    start_pool(two);
    std::set<int> before = pool_backends();
    ASSERT_EQ(before.size(), 2u);

    std::optional<PgResult> in_flight;
    std::size_t ready_when_failed = 0;
    DestroyPoolFirst destroy_pool_first{pool_};
    PgPool *pool = pool_.get(); // pool_ is null while the pool is destroyed
    pool->query("SELECT pg_sleep(30) AS terminated_sleep", {}, [&, pool](const PgResult &r) {
        in_flight = r;
        ready_when_failed = pool->ready_sessions();
    });
    int sleeper = 0;
    ASSERT_TRUE(run_until(base_, [&] { return (sleeper = backend_running("terminated_sleep")) != 0; }));
    EXPECT_EQ(admin_value("SELECT pg_terminate_backend(" + std::to_string(sleeper) + ")"), "t");
    ASSERT_TRUE(run_until(base_, [&] { return in_flight.has_value(); })) << "the query in flight hangs";
    EXPECT_FALSE(in_flight->ok);
    EXPECT_EQ(in_flight->error.rfind("connection lost", 0), 0u) << in_flight->error;
    EXPECT_EQ(ready_when_failed, 1u);

    ASSERT_TRUE(run_until(base_, [&] { return pool_->ready_sessions() == 2; }));
    // Two queued in one turn: both accepted (the failed query's slot was given back), one on each
    // session, the new one with the pool's settings.
    std::vector<PgResult> results =
        burst("SELECT pg_backend_pid(), current_setting('statement_timeout'), current_setting('search_path')", 2);
    std::set<int> pids;
    for (const PgResult &r : results) {
        ASSERT_TRUE(r.ok) << r.error;
        pids.insert(pid_of(r));
        EXPECT_EQ(r.rows.at(0).at(1), "1min");
        EXPECT_EQ(r.rows.at(0).at(2), "pg_catalog, pg_temp");
    }
    EXPECT_EQ(pids.size(), 2u);
    EXPECT_EQ(pids.count(sleeper), 0u);
    EXPECT_EQ(pids, pool_backends());
}

TEST_F(PgPoolTest, IdleSessionTerminatedIsReconnected) {
    start_pool(options(2));
    std::set<int> before = pool_backends();
    ASSERT_EQ(before.size(), 2u);
    int victim = *before.begin();
    EXPECT_EQ(admin_value("SELECT pg_terminate_backend(" + std::to_string(victim) + ")"), "t");
    // Two backends again, the victim not among them, and both sessions ready.
    ASSERT_TRUE(run_until(base_, [&] {
        std::set<int> now = pool_backends();
        return now.size() == 2 && now.count(victim) == 0 && pool_->ready_sessions() == 2;
    }));
    std::vector<PgResult> results = burst("SELECT pg_backend_pid()", 4);
    std::set<int> pids;
    for (const PgResult &r : results) {
        ASSERT_TRUE(r.ok) << r.error;
        pids.insert(pid_of(r));
    }
    EXPECT_EQ(pids.size(), 2u);
    EXPECT_EQ(pids.count(victim), 0u);
}

TEST_F(PgPoolTest, DestroyingThePoolRunsEveryWaitingDoneCallbackOnce) {
    PgPoolOptions two = options(2);
    two.statement_timeout = 60000ms;
    start_pool(two);
    // A sleep in flight on each session, and more queued behind them.
    const int kQueries = 10;
    std::vector<int> calls(kQueries, 0);
    std::vector<std::string> errors(kQueries);
    DestroyPoolFirst destroy_pool_first{pool_};
    for (int i = 0; i < kQueries; ++i) {
        std::string sql = i < 2 ? "SELECT pg_sleep(30) AS destroyed_sleep" : "SELECT 1";
        pool_->query(sql, {}, [&calls, &errors, i](const PgResult &r) {
            ++calls[i];
            errors[i] = r.error;
        });
    }
    ASSERT_TRUE(run_until(base_, [&] {
        return admin_value(std::string("SELECT count(*) FROM pg_stat_activity WHERE application_name = '") +
                           kApplicationName + "' AND state = 'active' AND query LIKE '%destroyed_sleep%'") == "2";
    }));
    for (int count : calls)
        ASSERT_EQ(count, 0);

    pool_.reset();
    for (int i = 0; i < kQueries; ++i) {
        EXPECT_EQ(calls[i], 1) << "query " << i;
        EXPECT_EQ(errors[i], "link stopped") << "query " << i;
    }
    // The destroyed pool freed its events: whatever is still due runs in one turn of the loop.
    event_base_loop(base_, EVLOOP_NONBLOCK);
    for (int i = 0; i < kQueries; ++i)
        EXPECT_EQ(calls[i], 1) << "query " << i;
}

TEST_F(PgPoolTest, DoneCallbackMayQueryThePoolWhileItIsDestroyed) {
    PgPoolOptions three = options(3);
    three.statement_timeout = 60000ms;
    start_pool(three);
    PgPool *pool = pool_.get(); // pool_ is null while the pool is destroyed
    int first = 0, second = 0;
    std::vector<std::string> second_errors;
    DestroyPoolFirst destroy_pool_first{pool_};
    for (int i = 0; i < 6; ++i)
        pool->query("SELECT pg_sleep(30)", {}, [&, pool](const PgResult &) {
            ++first;
            // Refused at once by a stopped session, or queued on one still to be stopped.
            pool->query("SELECT 1", {}, [&](const PgResult &r) {
                ++second;
                second_errors.push_back(r.error);
            });
        });
    pool_.reset();
    EXPECT_EQ(first, 6);
    EXPECT_EQ(second, 6);
    for (const std::string &error : second_errors)
        EXPECT_TRUE(error == "not connected" || error == "link stopped") << error;
    event_base_loop(base_, EVLOOP_NONBLOCK);
    EXPECT_EQ(first, 6);
    EXPECT_EQ(second, 6);
}

} // namespace
