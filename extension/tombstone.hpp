// Removing an item from the feed: it stays as a tombstone so positions stay dense, and every
// user's bit on it is withdrawn so that no count includes it.
#pragma once

#include "spi.hpp"

#include <vector>

namespace pgfeed {

struct Tombstone {
    int64_t position;
    int32_t topic_id; // 0: none
};

// Marks the live items of these activities deleted, locking them in position order; activities
// without a live item are skipped.
std::vector<Tombstone> tombstone_items(Spi &spi, const std::vector<int64_t> &activity_ids,
                                       const std::vector<Oid> &sources);
// Withdraws every user's bits on these tombstones, locking their reader rows in user order.
void withdraw_marks(Spi &spi, const std::vector<Tombstone> &tombstones);

} // namespace pgfeed
