// Marks on items that are not numbered yet: the app often knows an item's id before the numbering
// step gives it a position (an author marks their own new item read). Such a mark is recorded and
// applied by the round that numbers the item, under the user's reader lock; a later mark of the
// same item by the same user replaces it, so marks apply in the order the user made them.
#pragma once

#include "spi.hpp"

#include <string>
#include <vector>

namespace pgfeed {

// Of `ids`, those with a committed (or own) insert still waiting for numbering, recorded as read
// for `user_key`; returns how many were not recorded before. Ids in several sources without
// `source` are ambiguous.
int64_t record_early_marks(Spi &spi, const std::string &user_key, const std::vector<int64_t> &ids, Oid source);
// Drops the user's recorded marks of `ids`; returns how many there were.
int64_t forget_early_marks(Spi &spi, const std::string &user_key, const std::vector<int64_t> &ids, Oid source);
// The numbering step: applies every recorded mark whose item has a position now, and drops those
// whose item will never have one.
void apply_early_marks(Spi &spi);

} // namespace pgfeed
