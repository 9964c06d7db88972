// The event outbox: rows of pgfeed.events that pgfeed-notifier moves into a Redis stream.
//
// Each event is written by the transaction that causes it, so it commits or vanishes with it:
// activity events by the numbering round, read events by the marking transaction. Nobody calls
// NOTIFY on the commit path (its commit-time lock is cluster-wide): a marking transaction wakes
// the numbering worker at commit, and only the worker, once per round, rings NOTIFY pgfeed. The
// notification is a doorbell; the data is in the table.
#pragma once

#include "read_state.hpp"
#include "spi.hpp"

#include <string>
#include <vector>

namespace pgfeed {

// Payloads (the attached payload columns as a JSON object) larger than this are sent as null: a
// stream entry stays small, and the app fetches the row itself.
constexpr int kMaxPayloadBytes = 4000;

// An insert event per new item, in position order; `payloads` are JSON texts ("" for null).
void publish_inserts(Spi &spi, const std::vector<int64_t> &positions, const std::vector<std::string> &payloads);

// An activity event per item, in position order: `op` is delete or update (a new created_at).
void publish_items(Spi &spi, const char *op, const std::vector<int64_t> &positions);

// The user's unread count after the change, from the reader row just saved: the items above the
// horizon ($3) plus the net of flipped bits ($4), with no second pass over the read state.
#define PGFEED_UNREAD_AFTER                                                                                            \
    "(SELECT s.last_position FROM pgfeed.sequencer s) - $3 "                                                           \
    "- (SELECT count(*) FROM pgfeed.items d WHERE d.deleted AND d.position > $3) + $4"

// The INSERT of a read event: $1 the user key, $2 the op (read, unread), $3 and $4 the reader's
// horizon and net_total after the change, $5 the positions that changed. A statement that also
// writes the change (read_state.cpp) puts its own WITH in front.
#define PGFEED_INSERT_READ_EVENT                                                                                       \
    "INSERT INTO pgfeed.events (kind, user_key, data) "                                                                \
    "SELECT 'read', $1, json_build_object('op', $2::text, 'user', $1, 'positions', $5::int8[], "                       \
    "'activity_ids', (SELECT array_agg(i.activity_id ORDER BY i.position) FROM pgfeed.items i "                        \
    "WHERE i.position = ANY($5)), 'unread', " PGFEED_UNREAD_AFTER ")::text"

// A read event for the reader: `op` is read or unread, with the positions that changed state.
void publish_marks(Spi &spi, const Reader &reader, const std::string &user_key, const char *op,
                   const std::vector<int64_t> &positions);

// A read event for mark_all_read: everything in `feed` up to `up_to` is read; `changed` items changed.
void publish_read_all(Spi &spi, const Reader &reader, const std::string &user_key, const std::string &feed,
                      int64_t up_to, int64_t changed);

// The numbering step: NOTIFY pgfeed once, at this transaction's commit, if it wrote events.
void ring_bridge_if_published();

} // namespace pgfeed
