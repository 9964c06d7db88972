// What only pgfeed.sources can tell about an argument: whether a feed's topic column or a source
// table is attached. A typo there would otherwise read as an empty feed or an unknown id.
#pragma once

#include "core/feed_spec.hpp"
#include "spi.hpp"

namespace pgfeed {

// 42704 unless some attached table has the topic's column as its topic column.
void require_topic_column(Spi &spi, const std::string &topic);
// The same for a topic feed; 'all' and 'following' pass.
void require_known_feed(Spi &spi, const FeedSpec &feed);
// 42704, naming the attached tables, unless `source` (InvalidOid: not given) is attached.
void require_attached_source(Spi &spi, Oid source);

} // namespace pgfeed
