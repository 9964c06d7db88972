// The event outbox: rows of pgfeed.events that pgfeed-notifier moves into a Redis stream.
//
// Each event is written by the transaction that causes it, so it commits or vanishes with it, and
// every writer rings NOTIFY pgfeed: PostgreSQL folds the rings of one transaction into one
// notification, sent only if it commits. The notification is a doorbell; the data is in the table.
#pragma once

#include "spi.hpp"

#include <string>
#include <vector>

namespace pgfeed {

// Payloads (the attached payload columns as a JSON object) larger than this are sent as null: a
// stream entry stays small, and the app fetches the row itself.
constexpr int kMaxPayloadBytes = 4000;

// The statement that writes the insert events of items from these tables, each event with its
// row's payload columns. Built before the sequencer lock is taken: it reads pgfeed.sources.
std::string insert_events_sql(Spi &spi, const std::vector<Oid> &sources);

// An insert event per new item, in position order, written by `sql` from insert_events_sql.
void publish_inserts(Spi &spi, const std::string &sql, const std::vector<int64_t> &positions);

// An activity event per item, in position order: `op` is delete or update (a new created_at).
void publish_items(Spi &spi, const char *op, const std::vector<int64_t> &positions);

// A read event for `user_key`: `op` is read or unread, with the positions that changed state.
void publish_marks(Spi &spi, const std::string &user_key, const char *op, const std::vector<int64_t> &positions);

// A read event for mark_all_read: everything in `feed` up to `up_to` is read; `changed` items changed.
void publish_read_all(Spi &spi, const std::string &user_key, const std::string &feed, int64_t up_to, int64_t changed);

} // namespace pgfeed
