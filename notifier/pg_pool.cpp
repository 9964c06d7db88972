#include "pg_pool.hpp"

#include "log.hpp"

namespace pgfeed::notifier {

PgPool::PgPool(event_base *base, PgPoolOptions options) : options_(std::move(options)) {
    for (int i = 0; i < options_.sessions; ++i) {
        auto session = std::make_unique<Session>();
        Session *raw = session.get();
        session->link = std::make_unique<PgLink>(
            base, options_.link,
            PgLinkCallbacks{[this, raw] {
                                // First in the session's queue, so every query of the pool runs after it.
                                raw->link->query(
                                    "SELECT pg_catalog.set_config('statement_timeout', $1, false), "
                                    "pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)",
                                    {std::to_string(options_.statement_timeout.count())}, [](const PgResult &result) {
                                        // A lost or stopped session has no setup to report.
                                        if (!result.ok && !result.sqlstate.empty())
                                            log_warn("pg_pool", "cannot set up a session", {{"error", result.error}});
                                    });
                            },
                            nullptr, nullptr});
        sessions_.push_back(std::move(session));
    }
}

PgPool::~PgPool() {
    // Stopped before any is destroyed: a failing query's callback may still ask the pool.
    for (auto &session : sessions_)
        session->link->stop();
}

void PgPool::start() {
    for (auto &session : sessions_)
        session->link->start();
}

std::size_t PgPool::ready_sessions() const {
    std::size_t ready = 0;
    for (const auto &session : sessions_)
        ready += session->link->ready();
    return ready;
}

void PgPool::query(std::string sql, PgLink::Params params, PgLink::Done done) {
    Session *chosen = nullptr;
    for (auto &session : sessions_)
        if (session->link->ready() && (!chosen || session->waiting < chosen->waiting))
            chosen = session.get();
    PgResult refused;
    if (!chosen) {
        refused.error = "not connected";
        return done(refused);
    }
    if (waiting_ >= options_.max_waiting) {
        refused.error = "busy";
        return done(refused);
    }
    ++chosen->waiting;
    ++waiting_;
    chosen->link->query(std::move(sql), std::move(params),
                        [this, chosen, done = std::move(done)](const PgResult &result) {
                            --chosen->waiting;
                            --waiting_;
                            done(result);
                        });
}

} // namespace pgfeed::notifier
