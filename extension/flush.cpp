// pgfeed.flush and pgfeed.worker_running: waiting for the numbering step, from SQL.
#include "numbering.hpp"
#include "worker_link.hpp"

PGFEED_FUNCTION(pgfeed_flush) {
    (void)fcinfo;
    bool served = false;
    pgfeed::pg_guard([&] { served = pgfeed::wait_for_round(); });
    if (served)
        PG_RETURN_VOID();
    // No worker serves this database: number here, in rounds, inside the caller's transaction.
    pgfeed::Spi spi;
    while (pgfeed::number_round(spi) > 0) {
    }
    PG_RETURN_VOID();
}

PGFEED_FUNCTION(pgfeed_worker_running) {
    (void)fcinfo;
    PG_RETURN_BOOL(pgfeed::worker_serves_database());
}
