// The numbering step: committed changes of attached tables (pgfeed.pending) become items.
//
// A round takes what one snapshot sees as committed, nets out each row's changes, tombstones and
// retimes committed items, gives new items the next dense positions and writes their events. Only
// a round updates pgfeed.sequencer, and it locks that row first, so rounds never overlap: a
// transaction that commits after a round's snapshot is numbered by a later round, above every
// position given out before it (invariant I2 at round granularity).
#pragma once

#include "spi.hpp"

namespace pgfeed {

// Bounds one round's work, so a backlog after downtime drains in pieces of this many changes.
constexpr int kMaxChangesPerRound = 10000;

// One round inside the current transaction; returns how many pending changes it consumed (0: none
// was visible). Rings the bridge when it wrote events.
int64_t number_round(Spi &spi);

} // namespace pgfeed
