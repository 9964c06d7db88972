#include "worker_link.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace pgfeed {

namespace {

struct Slot {
    Oid database; // InvalidOid: free
    int worker_pid;
    Latch *worker_latch;
    bool wanted; // a commit found no worker: the launcher starts one
    bool work_requested;
    bool events_written;
    TimestampTz launched_at;
    uint64_t flush_requested;
    uint64_t flush_served;
    ConditionVariable served;
};

struct Shared {
    slock_t mutex; // guards everything here; held for a few instructions only
    Latch *launcher_latch;
    Slot slots[kMaxDatabases];
};

Shared *shared = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

// A launch that has not shown up in its slot within this time is tried again.
constexpr long kRelaunchMs = 2000;

bool wrote_pending = false;
bool wrote_events = false;

// Call with the mutex held.
Slot *find_slot(Oid database, bool add) {
    Slot *free_slot = nullptr;
    for (Slot &slot : shared->slots) {
        if (slot.database == database)
            return &slot;
        if (slot.database == InvalidOid && !free_slot)
            free_slot = &slot;
    }
    if (add && free_slot) {
        free_slot->database = database;
        free_slot->worker_pid = 0;
        free_slot->worker_latch = nullptr;
        free_slot->wanted = free_slot->work_requested = free_slot->events_written = false;
        free_slot->launched_at = 0;
    }
    return add ? free_slot : nullptr;
}

void wake_worker() {
    if (!shared)
        return;
    Latch *latch = nullptr;
    SpinLockAcquire(&shared->mutex);
    if (Slot *slot = find_slot(MyDatabaseId, true)) {
        slot->work_requested |= wrote_pending;
        slot->events_written |= wrote_events;
        if (slot->worker_pid) {
            latch = slot->worker_latch;
        } else {
            slot->wanted = true;
            latch = shared->launcher_latch;
        }
    }
    SpinLockRelease(&shared->mutex);
    if (latch)
        SetLatch(latch);
}

// After the commit is visible, so the woken worker sees it. Must never raise an error.
void on_xact(XactEvent event, void *) {
    if (event == XACT_EVENT_COMMIT && (wrote_pending || wrote_events))
        wake_worker();
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
        wrote_pending = wrote_events = false;
}

void on_worker_exit(int, Datum) { release_slot(); }

void startup() {
    if (previous_startup_hook)
        previous_startup_hook();
    bool found = false;
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    shared = static_cast<Shared *>(ShmemInitStruct("pgfeed numbering workers", sizeof(Shared), &found));
    if (!found) {
        SpinLockInit(&shared->mutex);
        shared->launcher_latch = nullptr;
        for (Slot &slot : shared->slots) {
            slot.database = InvalidOid;
            slot.worker_pid = 0;
            slot.worker_latch = nullptr;
            slot.flush_requested = slot.flush_served = 0;
            ConditionVariableInit(&slot.served);
        }
    }
    LWLockRelease(AddinShmemInitLock);
}

} // namespace

void request_worker_shmem() { RequestAddinShmemSpace(MAXALIGN(sizeof(Shared))); }

void attach_worker_shmem() {
    previous_startup_hook = shmem_startup_hook;
    shmem_startup_hook = startup;
}

bool workers_enabled() { return shared != nullptr; }

void note_pending_written() { wrote_pending = true; }
void note_events_written() { wrote_events = true; }
bool take_events_written() {
    bool written = wrote_events;
    wrote_events = false;
    return written;
}
void register_commit_wakeup() { RegisterXactCallback(on_xact, nullptr); }

bool worker_serves_database() {
    if (!shared)
        return false;
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    bool serves = slot && slot->worker_pid != 0;
    SpinLockRelease(&shared->mutex);
    return serves;
}

bool wait_for_round() {
    if (!shared)
        return false;
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    if (!slot || !slot->worker_pid) {
        SpinLockRelease(&shared->mutex);
        return false;
    }
    const uint64_t ticket = ++slot->flush_requested;
    slot->work_requested = true;
    Latch *latch = slot->worker_latch;
    SpinLockRelease(&shared->mutex);
    SetLatch(latch);

    ConditionVariablePrepareToSleep(&slot->served);
    for (;;) {
        SpinLockAcquire(&shared->mutex);
        const bool served = slot->database == MyDatabaseId && slot->flush_served >= ticket;
        const bool serving = slot->database == MyDatabaseId && slot->worker_pid != 0;
        SpinLockRelease(&shared->mutex);
        if (served || !serving) {
            ConditionVariableCancelSleep();
            return served;
        }
        // Timed: a worker that dies without broadcasting is noticed within a second.
        ConditionVariableTimedSleep(&slot->served, 1000, PG_WAIT_EXTENSION);
    }
}

bool claim_slot() {
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, true);
    const bool claimed = slot && (slot->worker_pid == 0 || slot->worker_pid == MyProcPid);
    if (claimed) {
        slot->worker_pid = MyProcPid;
        slot->worker_latch = MyLatch;
        slot->wanted = false;
        slot->work_requested = true; // whatever committed while no worker ran
    }
    SpinLockRelease(&shared->mutex);
    if (claimed)
        on_shmem_exit(on_worker_exit, 0);
    return claimed;
}

void release_slot() {
    Latch *launcher = nullptr;
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    const bool mine = slot && slot->worker_pid == MyProcPid;
    if (mine) {
        slot->worker_pid = 0;
        slot->worker_latch = nullptr;
        // A commit that woke this worker as it was leaving: the launcher starts another.
        if (slot->work_requested) {
            slot->wanted = true;
            launcher = shared->launcher_latch;
        }
    }
    SpinLockRelease(&shared->mutex);
    if (launcher)
        SetLatch(launcher);
    if (mine)
        ConditionVariableBroadcast(&slot->served); // flush callers stop waiting and number themselves
}

PassStart begin_pass() {
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    PassStart pass{slot->flush_requested, slot->work_requested, slot->events_written};
    slot->work_requested = slot->events_written = false;
    SpinLockRelease(&shared->mutex);
    return pass;
}

void end_pass(uint64_t ticket) {
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    if (slot->flush_served < ticket)
        slot->flush_served = ticket;
    SpinLockRelease(&shared->mutex);
    ConditionVariableBroadcast(&slot->served);
}

void set_launcher_latch(Latch *latch) {
    SpinLockAcquire(&shared->mutex);
    shared->launcher_latch = latch;
    SpinLockRelease(&shared->mutex);
}

int take_wanted_databases(Oid *out) {
    const TimestampTz now = GetCurrentTimestamp();
    int count = 0;
    SpinLockAcquire(&shared->mutex);
    for (Slot &slot : shared->slots)
        if (slot.database != InvalidOid && slot.wanted && slot.worker_pid == 0 &&
            TimestampDifferenceExceeds(slot.launched_at, now, kRelaunchMs)) {
            slot.launched_at = now;
            slot.wanted = false;
            out[count++] = slot.database;
        }
    SpinLockRelease(&shared->mutex);
    return count;
}

void want_worker(Oid database) {
    SpinLockAcquire(&shared->mutex);
    if (Slot *slot = find_slot(database, true))
        slot->wanted = true;
    SpinLockRelease(&shared->mutex);
}

void forget_database() {
    SpinLockAcquire(&shared->mutex);
    Slot *slot = find_slot(MyDatabaseId, false);
    if (slot && slot->worker_pid == 0)
        slot->database = InvalidOid;
    SpinLockRelease(&shared->mutex);
}

} // namespace pgfeed
