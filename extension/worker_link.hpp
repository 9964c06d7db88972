// How backends and the numbering workers find each other: one shared-memory slot per database,
// holding its worker's latch, whether work waits, and the flush tickets.
//
// Backends never wait for the worker on their commit path: a committing transaction that wrote
// pending changes or events only sets its database's flags and latch (a spinlock and a signal).
// Plain C-style functions over shared memory: none of them throws, and only wait_for_round and
// the launcher's may ereport (call those inside pg_guard or outside C++ frames).
#pragma once

extern "C" {
#include "postgres.h"

#include "storage/latch.h"
}

#include <cstdint>

namespace pgfeed {

// Hooks for shared_preload_libraries: shmem_request_hook and shmem_startup_hook.
void request_worker_shmem();
void attach_worker_shmem();
// False when pgfeed is not preloaded: there are no workers, and flush numbers by itself.
bool workers_enabled();

// What the current transaction wrote; at commit the worker of its database is woken.
void note_pending_written();
void note_events_written();
// True once if this transaction wrote events; the numbering step rings the bridge itself then.
bool take_events_written();
void register_commit_wakeup();

// flush: true once the worker finished a pass that began after this call; false when no worker
// serves this database (then the caller numbers by itself). May ereport (query cancel).
bool wait_for_round();
bool worker_serves_database();

// The worker's side, MyDatabaseId's slot. claim_slot is false when another worker serves it.
bool claim_slot();
void release_slot();
struct PassStart {
    uint64_t ticket;     // flush requests this pass serves once it has drained what it sees
    bool work_requested; // a commit wrote pending changes since the last pass began
    bool events_written; // a commit wrote events (marks): ring the bridge
};
PassStart begin_pass();
void end_pass(uint64_t ticket);

// The launcher's side: databases that asked for a worker while none ran, at most kMaxDatabases.
// Taking them clears the wish; a launch that finds no free background worker wishes again.
constexpr int kMaxDatabases = 64;
void set_launcher_latch(Latch *latch);
int take_wanted_databases(Oid *out);
void want_worker(Oid database);
// A worker in a database without pgfeed frees its database's slot.
void forget_database();

} // namespace pgfeed
