// What the bridge reads from PostgreSQL and writes to Redis, as plain values: its position in the
// outbox, and one outbox event as a stream entry. No I/O here, so all of it is unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgfeed::notifier {

// How far the bridge has moved the outbox, kept in Redis next to the stream. Every event visible
// in `since` is in the stream; when `upto` is set, so are the events of the batch (since, upto]
// up to event id `after`, in event id order.
struct BridgePosition {
    std::string since; // pg_snapshot text, e.g. "1000:1005:1001,1003"
    std::string upto;  // empty: no batch under way
    int64_t after = 0;

    bool operator==(const BridgePosition &other) const {
        return since == other.since && upto == other.upto && after == other.after;
    }
    bool operator!=(const BridgePosition &other) const { return !(*this == other); }
};

// True for the text form of a pg_snapshot: xmin:xmax:xip,... with xmin <= each xip < xmax.
bool is_snapshot_text(std::string_view text);

// The position from the field/value list HGETALL returned. nullopt for an empty hash (no
// position yet); throws std::invalid_argument naming what is wrong otherwise.
std::optional<BridgePosition> position_from_hash(const std::vector<std::string> &fields_and_values);

// HSET key since ... upto ... after ...
std::vector<std::string> hset_position(const std::string &key, const BridgePosition &position);

// One row of pgfeed.events_between, checked.
struct OutboxEvent {
    int64_t event_id = 0;
    std::string kind; // activity | read
    std::optional<std::string> topic, user_key;
    std::string data; // JSON text, passed on untouched
    int64_t at_us = 0;
};

// From the text columns event_id, kind, topic, user_key, data, at_us; throws std::invalid_argument
// naming the bad column.
OutboxEvent outbox_event_from_row(const std::vector<std::optional<std::string>> &row);

// XADD stream MAXLEN ~ maxlen * kind .. [topic ..] [user ..] event_id .. at .. data ..
std::vector<std::string> xadd_event(const std::string &stream, int64_t maxlen, const OutboxEvent &event);

} // namespace pgfeed::notifier
