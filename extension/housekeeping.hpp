// The numbering worker's housekeeping: what pgfeed.compact() does by hand, in bounded steps.
#pragma once

#include "spi.hpp"

namespace pgfeed {

// Deletes up to `limit` rows of read state retired by mark_all_read; returns how many it deleted.
int64_t compact_some(Spi &spi, int limit);

} // namespace pgfeed
