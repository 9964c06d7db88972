#include "bridge_position.hpp"

#include <charconv>
#include <stdexcept>

namespace pgfeed::notifier {

namespace {

template <typename Number> std::optional<Number> parse_number(std::string_view text) {
    Number value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::string shorten(std::string_view text) {
    return text.size() <= 80 ? std::string(text) : std::string(text.substr(0, 80)) + "...";
}

} // namespace

bool is_snapshot_text(std::string_view text) {
    auto first = text.find(':');
    auto second = first == std::string_view::npos ? first : text.find(':', first + 1);
    if (second == std::string_view::npos)
        return false;
    auto xmin = parse_number<uint64_t>(text.substr(0, first));
    auto xmax = parse_number<uint64_t>(text.substr(first + 1, second - first - 1));
    if (!xmin || !xmax || *xmin > *xmax)
        return false;
    std::string_view xips = text.substr(second + 1);
    while (!xips.empty()) {
        auto comma = xips.find(',');
        auto xip = parse_number<uint64_t>(xips.substr(0, comma));
        if (!xip || *xip < *xmin || *xip >= *xmax)
            return false;
        if (comma == std::string_view::npos)
            break;
        xips.remove_prefix(comma + 1);
        if (xips.empty())
            return false; // a trailing comma
    }
    return true;
}

std::optional<BridgePosition> position_from_hash(const std::vector<std::string> &fields_and_values) {
    if (fields_and_values.empty())
        return std::nullopt;
    if (fields_and_values.size() % 2)
        throw std::invalid_argument("an odd number of fields and values");
    std::optional<std::string> since, upto, after;
    for (std::size_t i = 0; i < fields_and_values.size(); i += 2) {
        const std::string &field = fields_and_values[i], &value = fields_and_values[i + 1];
        if (field == "since")
            since = value;
        else if (field == "upto")
            upto = value;
        else if (field == "after")
            after = value;
        else
            throw std::invalid_argument("unknown field \"" + shorten(field) + "\"");
    }
    if (!since || !upto || !after)
        throw std::invalid_argument("fields since, upto and after are required");
    if (!is_snapshot_text(*since))
        throw std::invalid_argument("since \"" + shorten(*since) + "\" is not a snapshot");
    if (!upto->empty() && !is_snapshot_text(*upto))
        throw std::invalid_argument("upto \"" + shorten(*upto) + "\" is not a snapshot");
    auto after_id = parse_number<int64_t>(*after);
    if (!after_id || *after_id < 0 || (upto->empty() && *after_id != 0))
        throw std::invalid_argument("after \"" + shorten(*after) + "\" is not an event id of the batch");
    return BridgePosition{*since, *upto, *after_id};
}

std::vector<std::string> hset_position(const std::string &key, const BridgePosition &position) {
    return {"HSET", key, "since", position.since, "upto", position.upto, "after", std::to_string(position.after)};
}

OutboxEvent outbox_event_from_row(const std::vector<std::optional<std::string>> &row) {
    if (row.size() != 6)
        throw std::invalid_argument("expected 6 columns, got " + std::to_string(row.size()));
    OutboxEvent event;
    auto id = row[0] ? parse_number<int64_t>(*row[0]) : std::nullopt;
    if (!id || *id <= 0)
        throw std::invalid_argument("event_id \"" + shorten(row[0].value_or("NULL")) + "\" is not an event id");
    event.event_id = *id;
    if (!row[1] || (*row[1] != "activity" && *row[1] != "read"))
        throw std::invalid_argument("kind \"" + shorten(row[1].value_or("NULL")) + "\" is not activity or read");
    event.kind = *row[1];
    event.topic = row[2];
    event.user_key = row[3];
    if (event.kind == "read" && !event.user_key)
        throw std::invalid_argument("a read event without user_key");
    if (!row[4] || row[4]->empty())
        throw std::invalid_argument("empty data");
    event.data = *row[4];
    auto at = row[5] ? parse_number<int64_t>(*row[5]) : std::nullopt;
    if (!at)
        throw std::invalid_argument("at_us \"" + shorten(row[5].value_or("NULL")) + "\" is not a number");
    event.at_us = *at;
    return event;
}

std::vector<std::string> xadd_event(const std::string &stream, int64_t maxlen, const OutboxEvent &event) {
    std::vector<std::string> args{"XADD", stream, "MAXLEN", "~", std::to_string(maxlen), "*", "kind", event.kind};
    if (event.topic)
        args.insert(args.end(), {"topic", *event.topic});
    if (event.user_key)
        args.insert(args.end(), {"user", *event.user_key});
    args.insert(args.end(),
                {"event_id", std::to_string(event.event_id), "at", std::to_string(event.at_us), "data", event.data});
    return args;
}

} // namespace pgfeed::notifier
