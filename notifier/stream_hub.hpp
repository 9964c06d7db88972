// The SSE streams of one worker process (GET /v1/stream): one XREAD reader feeds every stream, each
// event is framed once and its bytes are shared by every stream that may see it (evbuffer
// references, no per-stream copy), a stream that reconnects with Last-Event-ID is replayed from
// the Redis stream (XRANGE pages) and then joins the live flow with no gap and no duplicate.
//
// A stream's life: pending (waiting for the supervisor's admission) -> replaying (when it has a
// Last-Event-ID) -> live -> closing. Live events are written only to live streams; a replaying
// stream catches up by XRANGE until it has passed what the reader already dispatched.
#pragma once

#include "admission.hpp"
#include "config.hpp"
#include "event_ptr.hpp"
#include "fanout_index.hpp"
#include "metrics.hpp"
#include "rate_limit.hpp"
#include "redis_link.hpp"
#include "stream_id.hpp"
#include "stream_reader.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

struct evhttp_request;
struct evhttp_connection;

namespace pgfeed::notifier {

struct Frame;
using FramePtr = std::shared_ptr<const Frame>;

// Why a stream ended, as metrics count it.
enum class CloseReason { client, slow_client, write_timeout, drain, redis_lost, error };

class StreamHub {
  public:
    // Answers a request the hub refuses (429, 503) in the HTTP layer's format.
    using Refuse = std::function<void(evhttp_request *, int status, const char *reason, const char *message)>;

    StreamHub(event_base *base, const Config &config, WorkerMetrics metrics, AdmissionClient &admission, Refuse refuse);
    ~StreamHub();
    StreamHub(const StreamHub &) = delete;
    StreamHub &operator=(const StreamHub &) = delete;

    void start();
    // Whether new streams can be served: the reader knows where the stream ends.
    bool ready() const;
    // Takes over GET /v1/stream of a verified `user`, following `topics`, after `last_event_id` if
    // given. The request's output headers (CORS) are already set. The hub asks the supervisor for
    // admission (per-user and total limits) and, for a replay, spends one of the user's replay
    // tokens, then starts the event stream, or answers 429/503.
    void open(evhttp_request *request, std::string user, std::vector<std::string> topics,
              std::optional<StreamId> last_event_id);
    // SIGTERM: tells every stream to come back after drain_retry_ms and ends it; `done` runs once
    // every stream is gone.
    void drain(std::function<void()> done);
    // How long Redis may be unreachable before the streams are ended (see on_redis_lost).
    static constexpr std::chrono::milliseconds redis_lost_grace{2000};
    // SIGHUP: heartbeat, watermark, timeouts and the replay budget for streams from now on. Throws
    // std::invalid_argument (replay budget) and then changes nothing.
    void reconfigure(const Config &config);
    // Streams started and not yet ended.
    std::size_t size() const { return open_streams_; }

  private:
    struct Stream;
    friend struct Stream;

    void admitted(std::uint64_t id, Admission admission);
    void answer_admission(std::uint64_t id, Admission admission);
    void start_stream(Stream &stream);
    void go_live(Stream &stream);
    void replay_page(std::uint64_t id);
    void replayed(std::uint64_t id, const RedisReply &reply);
    void replay_entries(std::uint64_t id, const RedisReply &reply);
    void reset(Stream &stream, const char *reason);
    void on_entries(const std::vector<StreamEntry> &entries);
    void on_gap();
    void heartbeat();
    bool write(Stream &stream, const FramePtr &frame);
    void flush_touched();
    void close(Stream &stream, CloseReason reason);
    void end_streams(const FramePtr &last_frame, CloseReason reason);
    void on_redis_lost();
    void forget(std::uint64_t id);
    static void on_connection_closed(evhttp_connection *connection, void *arg);

    event_base *base_;
    HttpConfig http_;
    std::string stream_key_;
    WorkerMetrics metrics_;
    AdmissionClient &admission_;
    Refuse refuse_;
    StreamReader reader_;
    // Replays per user (limits.replays_per_minute): each reads the stream from the client's id on,
    // so one token reconnecting in a loop would otherwise keep a core busy with XRANGE pages.
    TokenBuckets replay_budget_;
    RedisLink replay_link_; // XRANGE pages for every replaying stream, pipelined
    FanoutIndex<Stream> index_;
    std::unordered_map<std::uint64_t, std::unique_ptr<Stream>> streams_;
    std::size_t open_streams_ = 0;
    std::uint64_t next_id_ = 1;
    std::uint64_t dispatch_mark_ = 0;    // numbers dispatched entries, so a stream gets each once
    std::uint64_t turn_ = 0;             // numbers the loop callbacks that write to streams
    std::vector<std::uint64_t> touched_; // streams written to in this turn, to flush at its end
    FramePtr heartbeat_frame_, retry_frame_, drain_frame_;
    EventPtr heartbeat_timer_;
    EventPtr redis_lost_timer_;
    std::function<void()> drained_;
};

} // namespace pgfeed::notifier
