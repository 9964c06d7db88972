#include "housekeeping.hpp"

namespace pgfeed {

namespace {
// The generation test is in the DELETE itself, not only in the subquery that picks the rows: a
// row a mark brings back to the current generation meanwhile is re-checked, and kept.
Statement compact_chunks{"DELETE FROM pgfeed.read_chunks c USING pgfeed.readers r "
                         "WHERE c.user_id = r.user_id AND c.generation <> r.generation AND c.ctid = ANY (ARRAY("
                         "SELECT c2.ctid FROM pgfeed.read_chunks c2 JOIN pgfeed.readers r2 USING (user_id) "
                         "WHERE c2.generation <> r2.generation LIMIT $1))"};
Statement compact_nets{"DELETE FROM pgfeed.topic_nets n USING pgfeed.readers r "
                       "WHERE n.user_id = r.user_id AND n.generation <> r.generation AND n.ctid = ANY (ARRAY("
                       "SELECT n2.ctid FROM pgfeed.topic_nets n2 JOIN pgfeed.readers r2 USING (user_id) "
                       "WHERE n2.generation <> r2.generation LIMIT $1))"};
} // namespace

int64_t compact_some(Spi &spi, int limit) {
    spi.run(compact_chunks, {int4_param(limit)}, false);
    int64_t deleted = static_cast<int64_t>(spi.processed());
    spi.run(compact_nets, {int4_param(limit)}, false);
    return deleted + static_cast<int64_t>(spi.processed());
}

} // namespace pgfeed
