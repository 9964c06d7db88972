#include "replay_plan.hpp"

namespace pgfeed::notifier {

std::optional<StreamInfo> parse_stream_info(const RedisReply &reply) {
    if (reply.type != RedisReply::Type::array || reply.elements.size() % 2 != 0)
        return std::nullopt;
    std::optional<std::int64_t> length, added;
    std::optional<StreamId> last_generated, first_entry;
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const RedisReply &name = reply.elements[i];
        const RedisReply &value = reply.elements[i + 1];
        const bool integer = value.type == RedisReply::Type::integer;
        if (name.str == "length" && integer)
            length = value.integer;
        else if (name.str == "entries-added" && integer)
            added = value.integer;
        else if (name.str == "last-generated-id")
            last_generated = parse_stream_id(value.str);
        else if (name.str == "first-entry" && value.type == RedisReply::Type::array) {
            if (value.elements.empty())
                return std::nullopt;
            first_entry = parse_stream_id(value.elements[0].str);
        }
    }
    if (!length || !added || !last_generated || (*length > 0 && !first_entry))
        return std::nullopt;
    return StreamInfo{*length, *added, *last_generated, first_entry};
}

ReplayVerdict judge_replay(StreamId after, const std::optional<StreamInfo> &info) {
    if (!info)
        return after == StreamId{} ? ReplayVerdict::replay : ReplayVerdict::stream_gone;
    if (after > info->last_generated)
        return ReplayVerdict::stream_gone;
    if (info->entries_added == info->length)
        return ReplayVerdict::replay;
    if (after == info->last_generated)
        return ReplayVerdict::replay; // nothing after X was ever added
    if (info->first_entry && after >= *info->first_entry)
        return ReplayVerdict::replay;
    return ReplayVerdict::trimmed;
}

const char *replay_verdict_name(ReplayVerdict verdict) {
    switch (verdict) {
    case ReplayVerdict::replay:
        return "replay";
    case ReplayVerdict::stream_gone:
        return "stream_gone";
    case ReplayVerdict::trimmed:
        return "trimmed";
    }
    return "unknown";
}

} // namespace pgfeed::notifier
