// Server-Sent Events framing (HTML Living Standard, "Server-sent events", event stream format).
// Pure functions: the gateway serializes each event once and writes the same bytes to every
// connection that may see it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgfeed::notifier {

// One serialized event, immutable and shared by all the connections it is queued on.
using SseBytes = std::shared_ptr<const std::string>;

// "id: <id>\nevent: <event>\ndata: <line>\n...\n" and a blank line.
//
// Each line of `data` becomes its own data: line, whatever its break (\r\n, \r or \n), so a
// browser's event.data is `data` with every break normalized to \n. Empty data still sends one
// "data: " line, so the event is dispatched. An empty `id` or `event` leaves the line out: an
// empty id: would reset the client's Last-Event-ID and lose its place; no event: means "message".
//
// Throws std::invalid_argument when `id` or `event` holds \r, \n or NUL. They come from Redis and
// our own constants, so that is a bug or a damaged reply; sanitizing would silently send an id the
// client could not hand back (Last-Event-ID), or inject fields, so refuse rather than guess.
SseBytes sse_event(std::string_view id, std::string_view event, std::string_view data);

// A comment, ": <text>\n\n", e.g. the heartbeat that keeps proxies from timing out the stream.
// Line breaks in `text` start new comment lines, so it can never inject a field.
std::string sse_comment(std::string_view text);

// "retry: <ms>\n\n": how long the browser waits before reconnecting. Throws std::invalid_argument
// for a negative value (the spec wants digits only).
std::string sse_retry(int ms);

// The frame for one entry of the pgfeed:events stream, as written by the bridge: event: is the
// entry's kind ("activity" or "read"), id: the stream id, data: the data field.
//
// Throws std::invalid_argument, naming the problem, when the stream id is not a canonical
// "<ms>-<seq>" (the client could not send it back), kind or data is missing or repeated, or kind is
// anything else: a kind of "reset" or "connected" would pass for one of the gateway's own events.
SseBytes sse_from_stream_entry(std::string_view stream_id,
                               const std::vector<std::pair<std::string, std::string>> &fields);

} // namespace pgfeed::notifier
