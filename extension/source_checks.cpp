#include "source_checks.hpp"

namespace pgfeed {

namespace {
Statement topic_column_attached{"SELECT 1 FROM pgfeed.sources WHERE topic_column = $1 LIMIT 1"};
Statement source_attached{"SELECT 1 FROM pgfeed.sources WHERE source = $1::pg_catalog.regclass"};
Statement attached_names{"SELECT coalesce(pg_catalog.string_agg(source::text, ', ' ORDER BY source::text), 'none') "
                         "FROM pgfeed.sources"};
} // namespace

void require_topic_column(Spi &spi, const std::string &topic) {
    if (!spi.run_one(topic_column_attached, {text_param(topic_column(topic))}, true))
        throw FeedError(ERRCODE_UNDEFINED_OBJECT,
                        "no attached table has the topic column \"" + topic_column(topic) + "\"",
                        "pgfeed.sources lists the topic column of each attached table.");
}

void require_known_feed(Spi &spi, const FeedSpec &feed) {
    if (feed.kind == FeedSpec::Kind::Topic)
        require_topic_column(spi, feed.topic);
}

void require_attached_source(Spi &spi, Oid source) {
    if (source == InvalidOid || spi.run_one(source_attached, {oid_or_null(source)}, true))
        return;
    throw FeedError(ERRCODE_UNDEFINED_OBJECT, "source is not an attached table",
                    "Attached tables: " + spi.run_one(attached_names, {}, true)->text(1) + ".");
}

} // namespace pgfeed
