// Changes of attached tables captured during a transaction, waiting for its commit to be numbered.
//
// Kept in TopTransactionContext and trimmed when a subtransaction aborts, so a rolled-back savepoint
// leaves nothing behind. Only the commit-time flush (sequencer.cpp) consumes it.
#pragma once

#include "pg_boundary.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/timestamp.h"
}

#include <cstdint>

namespace pgfeed {

struct CapturedChange {
    // Cancel undoes an earlier insert of the same key; Delete removes the key's committed item;
    // Retime changes its created_at.
    enum class Kind { Insert, Cancel, Delete, Retime };
    SubTransactionId subxact;
    Kind kind;
    Oid source;
    int64_t activity_id;
    const char *topic; // NULL: the row has no topic
    TimestampTz created;
    bool created_null;
};

// All three may ereport: call them inside pg_guard.
void capture_log_append(const CapturedChange &change);
// True when this transaction inserted the key and has not cancelled it since.
bool capture_log_has_insert(Oid source, int64_t activity_id);
// The captured changes in order; the flush empties the log.
const CapturedChange *capture_log_entries(int *count);
void capture_log_clear();

void register_capture_log_callbacks();

} // namespace pgfeed
