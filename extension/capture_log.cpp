#include "capture_log.hpp"

extern "C" {
#include "utils/memutils.h"
}

namespace pgfeed {

namespace {
// A plain palloc'd array: it lives across calls, so it must not be a C++ container.
CapturedChange *entries = nullptr;
int entry_count = 0;
int entry_capacity = 0;

void forget_log() {
    entries = nullptr; // freed with TopTransactionContext
    entry_count = entry_capacity = 0;
}

void on_xact(XactEvent event, void *) {
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
        forget_log();
}

void on_subxact(SubXactEvent event, SubTransactionId subxact, SubTransactionId parent, void *) {
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        int kept = 0;
        for (int i = 0; i < entry_count; ++i)
            if (entries[i].subxact != subxact)
                entries[kept++] = entries[i];
        entry_count = kept;
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (int i = 0; i < entry_count; ++i)
            if (entries[i].subxact == subxact)
                entries[i].subxact = parent;
    }
}
} // namespace

void capture_log_append(const CapturedChange &change) {
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    if (entry_count == entry_capacity) {
        entry_capacity = entry_capacity ? entry_capacity * 2 : 64;
        entries = static_cast<CapturedChange *>(entries ? repalloc(entries, entry_capacity * sizeof(CapturedChange))
                                                        : palloc(entry_capacity * sizeof(CapturedChange)));
    }
    CapturedChange &kept = entries[entry_count++];
    kept = change;
    kept.subxact = GetCurrentSubTransactionId();
    kept.topic = change.topic ? pstrdup(change.topic) : nullptr;
    MemoryContextSwitchTo(old);
}

bool capture_log_has_insert(Oid source, int64_t activity_id) {
    for (int i = entry_count - 1; i >= 0; --i)
        if (entries[i].source == source && entries[i].activity_id == activity_id &&
            entries[i].kind != CapturedChange::Kind::Retime)
            return entries[i].kind == CapturedChange::Kind::Insert;
    return false;
}

const CapturedChange *capture_log_entries(int *count) {
    *count = entry_count;
    return entries;
}

void capture_log_clear() { entry_count = 0; }

void register_capture_log_callbacks() {
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
}

} // namespace pgfeed
