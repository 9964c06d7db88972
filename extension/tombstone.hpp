// Removing an item from the feed: it stays as a tombstone so positions stay dense, and every
// user's bit on it is withdrawn so that no count includes it.
#pragma once

#include "spi.hpp"

namespace pgfeed {

// Returns false when the activity has no live item.
bool tombstone_item(Spi &spi, Oid source, int64_t activity_id);

} // namespace pgfeed
