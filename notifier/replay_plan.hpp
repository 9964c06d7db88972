// Whether a client that last saw stream entry X can be replayed the entries after X, or must start
// over (`event: reset`, invariant I5: never a silent loss). Pure logic over what XINFO STREAM says,
// read in the same MULTI as the XRANGE page, so trimming cannot slip in between.
#pragma once

#include "redis_link.hpp"
#include "stream_id.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace pgfeed::notifier {

// The fields of XINFO STREAM that matter here.
struct StreamInfo {
    std::int64_t length = 0;
    std::int64_t entries_added = 0; // every entry ever added (Redis 7.0)
    StreamId last_generated;
    std::optional<StreamId> first_entry; // absent when the stream is empty
};

// XINFO STREAM's reply; nullopt when it is not the expected shape. A missing key is an error reply
// ("ERR no such key"), which the caller tells apart before calling this.
std::optional<StreamInfo> parse_stream_info(const RedisReply &reply);

enum class ReplayVerdict {
    replay,      // every entry after X is still in the stream
    stream_gone, // X is after anything the stream has generated: the stream was lost or replaced
    trimmed,     // entries after X may have been trimmed
};

// `info` is nullopt when the stream does not exist. Trimming removes the oldest entries first, so
// while X is at or after the first entry nothing after X is gone; before it, only a stream that
// never removed anything (entries_added == length) proves nothing is missing.
ReplayVerdict judge_replay(StreamId after, const std::optional<StreamInfo> &info);

const char *replay_verdict_name(ReplayVerdict verdict);

} // namespace pgfeed::notifier
