// The background workers: a launcher, and one numbering worker per database with pgfeed.
//
// The launcher starts a worker for every database at server start (as many at a time as
// max_worker_processes allows; a worker leaves at once where pgfeed is not installed) and again
// whenever a commit finds its database without one. A worker runs passes: when woken by a commit
// or a flush, or once a second in case a wake-up went to nobody, it numbers in rounds until nothing
// visible is left, answers the flush calls that were waiting, and rings the bridge for events the
// marks wrote. Every ten seconds, and before it leaves, it deletes a bounded share of the read
// state that mark_all_read retired (what pgfeed.compact() does). It leaves two seconds without
// work, so an idle database keeps no session (DROP DATABASE needs none); the next commit brings it
// back. Only on a primary: BgWorkerStart_RecoveryFinished keeps both off hot standbys.
#include "housekeeping.hpp"
#include "numbering.hpp"
#include "numbering_worker.hpp"
#include "outbox.hpp"
#include "schema_version.hpp"
#include "worker_link.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void pgfeed_launcher_main(Datum);
PGDLLEXPORT void pgfeed_worker_main(Datum);
}

#include <string>

namespace pgfeed {

namespace {

// Rounds start at least this far apart: commits arriving meanwhile share the next round.
constexpr long kRoundIntervalMs = 2;
constexpr long kPollMs = 1000;
// Shorter than the 5 s that DROP DATABASE waits for the sessions of a database to leave.
constexpr long kIdleExitMs = 2000;
constexpr long kRetryAfterErrorMs = 1000;
// Housekeeping while the worker is up: at most this much retired read state per step.
constexpr long kHousekeepingMs = 10000;
constexpr int kCompactRows = 5000;

void fill_worker(BackgroundWorker &w, const char *function, const char *name) {
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    snprintf(w.bgw_library_name, BGW_MAXLEN, "pgfeed");
    snprintf(w.bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(w.bgw_name, BGW_MAXLEN, "%s", name);
    snprintf(w.bgw_type, BGW_MAXLEN, "%s", name);
}

void launch_worker(Oid database) {
    BackgroundWorker w;
    fill_worker(w, "pgfeed_worker_main", "pgfeed numbering");
    w.bgw_restart_time = BGW_NEVER_RESTART; // the launcher starts it again when needed
    w.bgw_main_arg = ObjectIdGetDatum(database);
    if (!RegisterDynamicBackgroundWorker(&w, nullptr)) {
        ereport(LOG, (errmsg("pgfeed: no background worker slot free for the numbering worker of database %u, "
                             "retrying",
                             database),
                      errhint("Raise max_worker_processes: pgfeed needs one plus one per database using it.")));
        want_worker(database);
    }
}

void launch_for_every_database() {
    Oid databases[kMaxDatabases];
    int count = 0;
    StartTransactionCommand();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    for (HeapTuple tuple; (tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr && count < kMaxDatabases;) {
        auto *db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple));
        if (db->datallowconn && !db->datistemplate)
            databases[count++] = db->oid;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    // Launched from the loop, as many at a time as background worker slots allow.
    for (int i = 0; i < count; ++i)
        want_worker(databases[i]);
}

void set_worker_settings() {
    // A position a crash could give out twice would flip the wrong items' read state.
    SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    // Events carry created_at as JSON text: in UTC, whoever numbers them.
    SetConfigOption("TimeZone", "UTC", PGC_USERSET, PGC_S_OVERRIDE);
    // Should a round ever meet a deadlock, the worker is the one that gives way: it retries.
    SetConfigOption("deadlock_timeout", "100ms", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("application_name", "pgfeed numbering", PGC_USERSET, PGC_S_OVERRIDE);
}

bool extension_ready() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    const bool ready = schema_version_matches();
    PopActiveSnapshot();
    CommitTransactionCommand();
    return ready;
}

enum class Step { Round, Bell, Housekeeping };

const char *step_name(Step step) {
    switch (step) {
    case Step::Round:
        return "numbering round";
    case Step::Bell:
        return "bell";
    case Step::Housekeeping:
        return "housekeeping";
    }
    return "step";
}

// One transaction: a round, the bridge's bell for events the marks wrote, or housekeeping. False
// after an error, which is logged.
bool run_step(Step step, int64_t &done) {
    done = 0;
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, step_name(step));
    std::string failure;
    ErrorData *pg_error = nullptr;
    try {
        Spi spi;
        switch (step) {
        case Step::Round:
            done = number_round(spi);
            break;
        case Step::Bell:
            note_events_written();
            ring_bridge_if_published();
            break;
        case Step::Housekeeping:
            done = compact_some(spi, kCompactRows);
            break;
        }
    } catch (const PgError &e) {
        pg_error = e.data;
    } catch (const std::exception &e) {
        failure = e.what();
    }
    if (pg_error || !failure.empty()) {
        // The C++ frames are gone: report, roll back, and let the next pass try again.
        if (pg_error)
            failure = pg_error->message ? pg_error->message : "unknown error";
        ereport(WARNING, (errmsg("pgfeed: %s failed, retrying: %s", step_name(step), failure.c_str())));
        AbortCurrentTransaction();
        pgstat_report_activity(STATE_IDLE, nullptr);
        return false;
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    return true;
}

void wait_latch(long timeout_ms) {
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ConfigReloadPending) {
        ConfigReloadPending = false;
        ProcessConfigFile(PGC_SIGHUP);
        set_worker_settings();
    }
}

} // namespace

void register_launcher() {
    BackgroundWorker w;
    fill_worker(w, "pgfeed_launcher_main", "pgfeed launcher");
    w.bgw_restart_time = 5;
    RegisterBackgroundWorker(&w);
}

} // namespace pgfeed

using namespace pgfeed;

void pgfeed_launcher_main(Datum) {
    pqsignal(SIGTERM, die);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    set_launcher_latch(MyLatch);
    launch_for_every_database();
    Oid wanted[kMaxDatabases];
    for (;;) {
        for (int i = 0, n = take_wanted_databases(wanted); i < n; ++i)
            launch_worker(wanted[i]);
        wait_latch(kPollMs);
    }
}

void pgfeed_worker_main(Datum main_arg) {
    pqsignal(SIGTERM, die);
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), InvalidOid, 0);
    set_worker_settings();
    if (!extension_ready()) {
        forget_database();
        proc_exit(0);
    }
    if (!claim_slot())
        proc_exit(0);

    TimestampTz last_work = GetCurrentTimestamp(), last_round = 0, last_poll = 0, last_housekeeping = 0;
    for (;;) {
        const TimestampTz now = GetCurrentTimestamp();
        const bool poll = TimestampDifferenceExceeds(last_poll, now, kPollMs);
        PassStart pass = begin_pass();
        // Commits wrote changes (or a flush waits): number. Marks only wrote events: ring the bridge.
        const bool number = pass.work_requested || poll;
        if (number || pass.events_written) {
            if (!TimestampDifferenceExceeds(last_round, now, kRoundIntervalMs))
                pg_usleep(kRoundIntervalMs * 1000L);
            if (poll)
                last_poll = now;
            bool failed = false, numbered = false;
            for (int64_t consumed = number ? 1 : 0; consumed > 0 && !failed;) {
                failed = !run_step(Step::Round, consumed);
                numbered |= consumed > 0;
            }
            // A round that numbered something rang already, and the bridge reads every event.
            if (!failed && pass.events_written && !numbered) {
                int64_t unused = 0;
                failed = !run_step(Step::Bell, unused);
            }
            last_round = GetCurrentTimestamp();
            if (numbered || pass.events_written)
                last_work = last_round;
            if (!failed && TimestampDifferenceExceeds(last_housekeeping, last_round, kHousekeepingMs)) {
                int64_t compacted = 0;
                failed = !run_step(Step::Housekeeping, compacted);
                last_housekeeping = GetCurrentTimestamp();
            }
            if (failed) {
                // Perhaps DROP EXTENSION, or ALTER EXTENSION to another version: then this worker goes.
                if (!extension_ready()) {
                    forget_database();
                    proc_exit(0);
                }
                wait_latch(kRetryAfterErrorMs);
                continue;
            }
        }
        end_pass(pass.ticket);
        if (TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), kIdleExitMs)) {
            int64_t compacted = 0;
            (void)run_step(Step::Housekeeping, compacted); // what the last marks retired
            proc_exit(0); // the slot is released on exit; the next commit brings a worker back
        }
        wait_latch(kPollMs);
    }
}
