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

// A read event for the reader: `op` is read or unread, with the positions that changed state.
void publish_marks(Spi &spi, const Reader &reader, const std::string &user_key, const char *op,
                   const std::vector<int64_t> &positions);

// A read event for mark_all_read: everything in `feed` up to `up_to` is read; `changed` items changed.
void publish_read_all(Spi &spi, const Reader &reader, const std::string &user_key, const std::string &feed,
                      int64_t up_to, int64_t changed);

// The numbering step: NOTIFY pgfeed once, at this transaction's commit, if it wrote events.
void ring_bridge_if_published();

} // namespace pgfeed
