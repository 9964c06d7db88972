// A few PostgreSQL sessions of one worker for the HTTP feed API, driven by its event loop. Each
// session runs one query at a time (PgLink), so the pool spreads queries over the sessions that
// are connected, to the one with the fewest waiting.
//
// Sessions run with statement_timeout, so a query stuck behind a lock answers in bounded time,
// and with search_path pinned to pg_catalog, so that every name is schema-qualified and regclass
// values print as in the extension's events ("public.activities").
#pragma once

#include "pg_link.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

struct event_base;

namespace pgfeed::notifier {

struct PgPoolOptions {
    PgLinkOptions link;
    int sessions = 2;
    std::chrono::milliseconds statement_timeout{5000};
    // Queries waiting over all sessions; one more fails at once with "busy".
    std::size_t max_waiting = 256;
};

class PgPool {
  public:
    // base must outlive the pool.
    PgPool(event_base *base, PgPoolOptions options);
    // Stops every session: the done callbacks of waiting queries run from here.
    ~PgPool();
    PgPool(const PgPool &) = delete;
    PgPool &operator=(const PgPool &) = delete;

    // Connects every session in the background, and again after each loss.
    void start();
    // How many sessions are connected.
    std::size_t ready_sessions() const;

    // Runs sql with parameters $1..$n on a connected session. done runs exactly once: with the
    // result, or failed before query() returns, with "not connected" when no session is, or
    // "busy" when max_waiting queries wait already.
    void query(std::string sql, PgLink::Params params, PgLink::Done done);

  private:
    struct Session {
        std::unique_ptr<PgLink> link;
        std::size_t waiting = 0;
    };

    PgPoolOptions options_;
    std::vector<std::unique_ptr<Session>> sessions_;
    std::size_t waiting_ = 0;
};

} // namespace pgfeed::notifier
