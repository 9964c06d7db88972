#include "replay_plan.hpp"

namespace pgfeed::notifier {

namespace {

std::optional<std::int64_t> integer_of(const RedisReply &reply) {
    if (reply.type == RedisReply::Type::integer)
        return reply.integer;
    return std::nullopt;
}

} // namespace

std::optional<StreamInfo> parse_stream_info(const RedisReply &reply) {
    if (reply.type != RedisReply::Type::array || reply.elements.size() % 2 != 0)
        return std::nullopt;
    StreamInfo info;
    bool have_length = false, have_added = false, have_last = false;
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
        const RedisReply &name = reply.elements[i];
        const RedisReply &value = reply.elements[i + 1];
        if (name.type != RedisReply::Type::string && name.type != RedisReply::Type::status)
            return std::nullopt;
        if (name.str == "length") {
            auto length = integer_of(value);
            if (!length)
                return std::nullopt;
            info.length = *length;
            have_length = true;
        } else if (name.str == "entries-added") {
            auto added = integer_of(value);
            if (!added)
                return std::nullopt;
            info.entries_added = *added;
            have_added = true;
        } else if (name.str == "last-generated-id") {
            auto id = parse_stream_id(value.str);
            if (!id)
                return std::nullopt;
            info.last_generated = *id;
            have_last = true;
        } else if (name.str == "first-entry" && value.type == RedisReply::Type::array) {
            if (value.elements.empty())
                return std::nullopt;
            auto id = parse_stream_id(value.elements[0].str);
            if (!id)
                return std::nullopt;
            info.first_entry = *id;
        }
    }
    if (!have_length || !have_added || !have_last || (info.length > 0 && !info.first_entry))
        return std::nullopt;
    return info;
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
