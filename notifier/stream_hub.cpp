#include "stream_hub.hpp"

#include "delivery_latency.hpp"
#include "json_text.hpp"
#include "link_options.hpp"
#include "log.hpp"
#include "replay_plan.hpp"
#include "sse.hpp"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace pgfeed::notifier {

// One event's bytes, shared by every stream it is written to. Streams of HTTP/1.1 clients get the
// chunked form (evhttp frames a streamed reply in chunks); the chunk header and trailer are built
// here once, so a stream's write is one evbuffer reference and never a copy.
struct Frame {
    std::string bytes; // "<hex length>\r\n" + event + "\r\n"
    std::size_t body_offset;
};

namespace {

// Users whose replay budget is spent, kept per worker; beyond, the oldest is forgotten (rate_limit.hpp).
constexpr std::size_t kMaxReplayingUsers = 100000;

double per_second(double per_minute) { return per_minute / 60; }

FramePtr make_frame(std::string_view event) {
    char head[24];
    int head_length = std::snprintf(head, sizeof head, "%zx\r\n", event.size());
    auto frame = std::make_shared<Frame>();
    frame->bytes.reserve(static_cast<std::size_t>(head_length) + event.size() + 2);
    frame->bytes.append(head, static_cast<std::size_t>(head_length)).append(event).append("\r\n");
    frame->body_offset = static_cast<std::size_t>(head_length);
    return frame;
}

// evbuffer_add_reference's cleanup: the stream's share of the frame ends when its bytes are sent.
void release_frame(const void *, size_t, void *holder) { delete static_cast<FramePtr *>(holder); }

std::string connected_data(const std::string &user, const std::vector<std::string> &topics, bool resumed) {
    cJSON *object = cJSON_CreateObject();
    cJSON_AddStringToObject(object, "user", user.c_str());
    cJSON *list = cJSON_AddArrayToObject(object, "topics");
    for (const std::string &topic : topics)
        cJSON_AddItemToArray(list, cJSON_CreateString(topic.c_str()));
    cJSON_AddBoolToObject(object, "resumed", resumed);
    return json_text(object);
}

const std::string *field_of(const std::vector<std::pair<std::string, std::string>> &fields, std::string_view name) {
    for (const auto &[key, value] : fields)
        if (key == name)
            return &value;
    return nullptr;
}

std::int64_t wall_clock_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

timeval to_timeval(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

Counter close_counter(CloseReason reason) {
    switch (reason) {
    case CloseReason::client:
        return Counter::closed_client;
    case CloseReason::slow_client:
        return Counter::closed_slow_client;
    case CloseReason::write_timeout:
        return Counter::closed_write_timeout;
    case CloseReason::drain:
        return Counter::closed_drain;
    case CloseReason::redis_lost:
        return Counter::closed_redis_lost;
    case CloseReason::error:
        break;
    }
    return Counter::closed_error;
}

// Who may see a stream entry: activity by topic (an entry without one only under "*"-like
// patterns), read events by user only.
struct Audience {
    std::string kind, topic, user;
};

std::optional<Audience> audience_of(const std::vector<std::pair<std::string, std::string>> &fields) {
    const std::string *kind = field_of(fields, "kind");
    if (!kind)
        return std::nullopt;
    const std::string *topic = field_of(fields, "topic");
    const std::string *user = field_of(fields, "user");
    if (*kind == "read" && !user)
        return std::nullopt;
    return Audience{*kind, topic ? *topic : "", user ? *user : ""};
}

} // namespace

struct StreamHub::Stream {
    enum class State { pending, replaying, live, draining, closing };

    StreamHub *hub;
    std::uint64_t id;
    evhttp_request *request;       // null once evhttp owns it again (refused, drained, freed)
    evhttp_connection *connection; // null once the connection is gone
    bufferevent *socket = nullptr; // the connection's, owned by evhttp
    evbuffer *output = nullptr;    // its unsent bytes
    std::string user;
    std::vector<std::string> topics;
    std::optional<StreamId> resume_after;
    CloseReason ended_by = CloseReason::drain; // while draining: why the server ended it
    StreamId last_sent;                        // the last entry this stream has passed, delivered or not
    State state = State::pending;
    bool admitted = false;
    bool indexed = false;
    bool chunked = false;
    bool overflowing = false;
    std::uint64_t mark = 0;                  // the last dispatched entry written here
    std::uint64_t turn = 0;                  // the last turn of the loop that wrote here (see write())
    evbuffer_cb_entry *drain_wait = nullptr; // a replay waiting for the client to read

    void stop_waiting_for_drain() {
        if (drain_wait)
            evbuffer_remove_cb_entry(output, drain_wait);
        drain_wait = nullptr;
    }

    bool may_see(const Audience &audience) const {
        if (audience.kind == "read")
            return audience.user == user;
        return topic_allowed(topics, audience.topic);
    }
};

StreamHub::StreamHub(event_base *base, const Config &config, WorkerMetrics metrics, AdmissionClient &admission,
                     Refuse refuse)
    : base_(base), http_(config.http), stream_key_(config.bridge.stream), metrics_(metrics), admission_(admission),
      refuse_(std::move(refuse)),
      reader_(base, redis_link_options(config), config.bridge.stream, std::chrono::milliseconds(5000), 1000,
              StreamReaderCallbacks{[this](const std::vector<StreamEntry> &entries) { on_entries(entries); },
                                    [this] { on_gap(); }}),
      replay_budget_(per_second(config.limits.replays_per_minute), config.limits.replays_burst, kMaxReplayingUsers),
      replay_link_(base, redis_link_options(config),
                   RedisLinkCallbacks{[this] { event_del(redis_lost_timer_.get()); },
                                      [this] {
                                          const timeval grace = to_timeval(static_cast<int>(redis_lost_grace.count()));
                                          event_add(redis_lost_timer_.get(), &grace);
                                      }}) {
    heartbeat_frame_ = make_frame(sse_comment(""));
    redis_lost_timer_.reset(evtimer_new(
        base_, [](evutil_socket_t, short, void *hub) { static_cast<StreamHub *>(hub)->on_redis_lost(); }, this));
    reconfigure(config);
}

StreamHub::~StreamHub() {
    for (auto &[id, stream] : streams_)
        if (stream->connection) {
            evhttp_connection_set_closecb(stream->connection, nullptr, nullptr);
            stream->stop_waiting_for_drain();
        }
}

void StreamHub::reconfigure(const Config &config) {
    replay_budget_.reconfigure(per_second(config.limits.replays_per_minute), config.limits.replays_burst);
    http_ = config.http;
    retry_frame_ = make_frame(sse_retry(http_.retry_ms));
    drain_frame_ = make_frame(sse_retry(http_.drain_retry_ms));
    heartbeat_timer_.reset(event_new(
        base_, -1, EV_PERSIST, [](evutil_socket_t, short, void *hub) { static_cast<StreamHub *>(hub)->heartbeat(); },
        this));
    timeval every = to_timeval(http_.heartbeat_ms);
    event_add(heartbeat_timer_.get(), &every);
}

void StreamHub::start() {
    reader_.start();
    replay_link_.start();
}

bool StreamHub::ready() const { return replay_link_.ready() && parse_stream_id(reader_.last_id()).has_value(); }

void StreamHub::open(evhttp_request *request, std::string user, std::vector<std::string> topics,
                     std::optional<StreamId> last_event_id) {
    auto stream = std::make_unique<Stream>();
    Stream &s = *stream;
    s.hub = this;
    s.id = next_id_++;
    s.request = request;
    s.connection = evhttp_request_get_connection(request);
    s.user = std::move(user);
    s.topics = std::move(topics);
    s.resume_after = last_event_id;
    // From here on a client that goes away while admission is asked is noticed.
    evhttp_connection_set_closecb(s.connection, on_connection_closed, &s);
    streams_.emplace(s.id, std::move(stream));
    admission_.acquire(s.user, [this, id = s.id](Admission admission) { admitted(id, admission); });
}

void StreamHub::admitted(std::uint64_t id, Admission admission) {
    ++turn_;
    answer_admission(id, admission);
    flush_touched();
}

void StreamHub::answer_admission(std::uint64_t id, Admission admission) {
    auto found = streams_.find(id);
    if (found == streams_.end())
        return;
    Stream &s = *found->second;
    s.admitted = admission == Admission::admitted;
    if (!s.connection || s.state != Stream::State::pending) { // gone or drained meanwhile
        if (s.admitted)
            admission_.release(s.user);
        return forget(id);
    }
    // Judged after admission, so a stream refused for other reasons spends no replay token.
    std::optional<std::chrono::seconds> replay_in;
    if (s.admitted && ready() && s.resume_after)
        replay_in = replay_budget_.take(s.user, TokenBuckets::Clock::now());
    if (s.admitted && ready() && !replay_in)
        return start_stream(s);
    if (s.admitted)
        admission_.release(s.user);
    evhttp_connection_set_closecb(s.connection, nullptr, nullptr);
    if (replay_in) {
        metrics_.add(Counter::rejected_replay_limit);
        log_info("stream", "replay refused", {{"user", s.user}, {"retry_after", replay_in->count()}});
        evhttp_add_header(evhttp_request_get_output_headers(s.request), "Retry-After",
                          std::to_string(replay_in->count()).c_str());
        refuse_(s.request, 429, "Too Many Requests", "too many replays for this user; retry later");
        return forget(id);
    }
    switch (admission) {
    case Admission::user_limit:
        metrics_.add(Counter::rejected_user_limit);
        refuse_(s.request, 429, "Too Many Requests", "too many streams for this user");
        break;
    case Admission::total_limit:
        metrics_.add(Counter::rejected_total_limit);
        refuse_(s.request, 503, "Service Unavailable", "too many streams");
        break;
    case Admission::admitted:
    case Admission::unavailable:
        metrics_.add(Counter::rejected_unavailable);
        refuse_(s.request, 503, "Service Unavailable", "events are unavailable; poll the feed");
        break;
    }
    forget(id);
}

void StreamHub::start_stream(Stream &s) {
    evkeyvalq *headers = evhttp_request_get_output_headers(s.request);
    evhttp_add_header(headers, "Content-Type", "text/event-stream");
    evhttp_add_header(headers, "Cache-Control", "no-cache");
    evhttp_add_header(headers, "X-Accel-Buffering", "no");
    // Ends the connection with the stream, so drain's end of reply closes it.
    evhttp_add_header(headers, "Connection", "close");
    evhttp_send_reply_start(s.request, 200, "OK");
    s.chunked = evhttp_find_header(headers, "Transfer-Encoding") != nullptr;
    bufferevent *socket = evhttp_connection_get_bufferevent(s.connection);
    s.socket = socket;
    s.output = bufferevent_get_output(socket);
    // Frames go out whole, once per turn of the loop (flush_touched): Nagle's algorithm would only
    // hold an event back behind the client's delayed acknowledgement of the previous one.
    const int on = 1;
    setsockopt(bufferevent_getfd(socket), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    // The header timeout applied while the request was read; a stream only needs its writes to move.
    timeval write_timeout = to_timeval(http_.write_timeout_ms);
    bufferevent_set_timeouts(socket, nullptr, &write_timeout);
    // Headers sent or read are not needed any more: 100,000 idle streams should not keep them.
    // Connection: close stays, for evhttp to close the connection when drain ends the reply.
    evhttp_clear_headers(evhttp_request_get_input_headers(s.request));
    evhttp_clear_headers(headers);
    evhttp_add_header(headers, "Connection", "close");
    metrics_.add(Counter::connections_opened);
    metrics_.set(Gauge::connections, static_cast<std::int64_t>(++open_streams_));

    write(s, retry_frame_);
    bool resumed = s.resume_after.has_value();
    s.last_sent = resumed ? *s.resume_after : *parse_stream_id(reader_.last_id());
    write(s, make_frame(*sse_event(to_string(s.last_sent), "connected", connected_data(s.user, s.topics, resumed))));
    metrics_.add(Counter::sent_connected);
    if (!resumed)
        return go_live(s);
    s.state = Stream::State::replaying;
    metrics_.add(Counter::replays);
    metrics_.add(Gauge::replaying, 1);
    replay_page(s.id);
}

void StreamHub::go_live(Stream &s) {
    if (s.state == Stream::State::replaying)
        metrics_.add(Gauge::replaying, -1);
    s.state = Stream::State::live;
    index_.add(&s, s.user, s.topics);
    s.indexed = true;
}

void StreamHub::replay_page(std::uint64_t id) {
    const Stream &s = *streams_.at(id);
    // One transaction, so no trimming falls between judging X and reading after it.
    auto queued = [](const RedisReply &) {};
    replay_link_.command({"MULTI"}, queued);
    replay_link_.command({"XINFO", "STREAM", stream_key_}, queued);
    replay_link_.command(
        {"XRANGE", stream_key_, xrange_exclusive_start(s.last_sent), "+", "COUNT", std::to_string(http_.replay_page)},
        queued);
    replay_link_.command({"EXEC"}, [this, id](const RedisReply &reply) { replayed(id, reply); });
}

void StreamHub::replayed(std::uint64_t id, const RedisReply &reply) {
    ++turn_;
    replay_entries(id, reply);
    flush_touched();
}

void StreamHub::replay_entries(std::uint64_t id, const RedisReply &reply) {
    auto found = streams_.find(id);
    if (found == streams_.end())
        return;
    Stream &s = *found->second;
    if (s.state != Stream::State::replaying)
        return;
    if (reply.lost || reply.type != RedisReply::Type::array || reply.elements.size() != 2) {
        log_warn("stream", "cannot replay, closing the stream so that the client retries",
                 {{"error", reply.lost ? "connection lost" : reply.str}});
        return close(s, CloseReason::error);
    }
    const RedisReply &info_reply = reply.elements[0];
    std::optional<StreamInfo> info;
    if (info_reply.type != RedisReply::Type::error) {
        info = parse_stream_info(info_reply);
        if (!info) {
            log_warn("stream", "unexpected XINFO STREAM reply, closing the stream");
            return close(s, CloseReason::error);
        }
    }
    // Judged before the page is looked at: Redis refuses the XRANGE after the largest id there is,
    // which a client may send (a lost stream, a forged header); that is a reset, not an error.
    ReplayVerdict verdict = judge_replay(s.last_sent, info);
    if (verdict != ReplayVerdict::replay)
        return reset(s, replay_verdict_name(verdict));
    if (!next_after(s.last_sent))
        return go_live(s); // nothing can come after the largest id
    if (reply.elements[1].type != RedisReply::Type::array) {
        log_warn("stream", "cannot replay, closing the stream so that the client retries",
                 {{"error", reply.elements[1].str}});
        return close(s, CloseReason::error);
    }

    const std::vector<RedisReply> &entries = reply.elements[1].elements;
    // Past half the watermark the rest of the page waits for the client to read: a replay never
    // closes a client that reads, however large the events.
    const std::size_t pause_above = static_cast<std::size_t>(http_.high_watermark_bytes) / 2;
    bool paused = false;
    for (const RedisReply &entry : entries) {
        if (evbuffer_get_length(s.output) > pause_above) {
            paused = true;
            break;
        }
        auto stream_id = entry.elements.size() == 2 ? parse_stream_id(entry.elements[0].str) : std::nullopt;
        if (!stream_id || entry.elements[1].elements.size() % 2 != 0) {
            metrics_.add(Counter::stream_bad_entries);
            continue;
        }
        std::vector<std::pair<std::string, std::string>> fields;
        const auto &flat = entry.elements[1].elements;
        for (std::size_t i = 0; i + 1 < flat.size(); i += 2)
            fields.emplace_back(flat[i].str, flat[i + 1].str);
        s.last_sent = *stream_id;
        auto audience = audience_of(fields);
        if (!audience || !s.may_see(*audience))
            continue;
        try {
            write(s, make_frame(*sse_from_stream_entry(entry.elements[0].str, fields)));
        } catch (const std::invalid_argument &) {
            metrics_.add(Counter::stream_bad_entries);
            continue;
        }
        metrics_.add(Counter::events_replayed);
        metrics_.add(audience->kind == "read" ? Counter::sent_read : Counter::sent_activity);
    }
    if (s.overflowing)
        return close(s, CloseReason::slow_client);
    const bool more = paused || static_cast<int>(entries.size()) == http_.replay_page;
    auto live_position = parse_stream_id(reader_.last_id());
    if (!more && live_position && *live_position <= s.last_sent)
        return go_live(s);
    if (evbuffer_get_length(s.output) <= pause_above)
        return replay_page(id);
    s.drain_wait = evbuffer_add_cb(
        s.output,
        [](evbuffer *output, const evbuffer_cb_info *, void *arg) {
            auto &stream = *static_cast<Stream *>(arg);
            if (evbuffer_get_length(output) > static_cast<std::size_t>(stream.hub->http_.high_watermark_bytes) / 4)
                return;
            stream.stop_waiting_for_drain();
            stream.hub->replay_page(stream.id);
        },
        &s);
}

// The client must refetch its feed; live events continue after the reader's position.
void StreamHub::reset(Stream &s, const char *reason) {
    cJSON *object = cJSON_CreateObject();
    cJSON_AddStringToObject(object, "reason", reason);
    s.last_sent = *parse_stream_id(reader_.last_id());
    write(s, make_frame(*sse_event(to_string(s.last_sent), "reset", json_text(object))));
    metrics_.add(Counter::sent_reset);
    log_info("stream", "reset", {{"user", s.user}, {"reason", reason}});
    go_live(s);
}

void StreamHub::on_entries(const std::vector<StreamEntry> &entries) {
    ++turn_;
    metrics_.add(Counter::stream_entries_read, entries.size());
    const std::int64_t now_us = wall_clock_us();
    std::vector<Stream *> overflowing;
    for (const StreamEntry &entry : entries) {
        auto id = parse_stream_id(entry.id);
        auto audience = audience_of(entry.fields);
        FramePtr frame;
        try {
            if (id && audience)
                frame = make_frame(*sse_from_stream_entry(entry.id, entry.fields));
        } catch (const std::invalid_argument &error) {
            log_warn("stream", "skipping an entry that cannot be sent", {{"id", entry.id}, {"error", error.what()}});
        }
        if (!frame) {
            metrics_.add(Counter::stream_bad_entries);
            continue;
        }
        const std::string *at = field_of(entry.fields, "at");
        const double latency = at ? delivery_latency_seconds(*at, now_us).value_or(-1) : -1;
        const Counter sent = audience->kind == "read" ? Counter::sent_read : Counter::sent_activity;
        const std::uint64_t mark = ++dispatch_mark_;
        auto deliver = [&](Stream *s) {
            if (s->mark == mark || s->overflowing || !(*id > s->last_sent))
                return;
            s->mark = mark;
            s->last_sent = *id;
            if (!write(*s, frame))
                overflowing.push_back(s);
            metrics_.add(sent);
            if (latency >= 0)
                metrics_.observe_delivery(latency);
        };
        if (audience->kind == "read")
            index_.for_user(audience->user, deliver);
        else
            index_.for_topic(audience->topic, deliver);
    }
    flush_touched();
    for (Stream *s : overflowing)
        close(*s, CloseReason::slow_client);
}

// The reader fell behind the stream's retention: live streams may have missed entries.
void StreamHub::on_gap() {
    ++turn_;
    metrics_.add(Counter::stream_gaps);
    log_warn("stream", "entries were trimmed before this worker read them; live streams are reset");
    std::vector<Stream *> live;
    for (auto &[id, stream] : streams_)
        if (stream->state == Stream::State::live)
            live.push_back(stream.get());
    for (Stream *s : live) {
        index_.remove(s, s->user, s->topics);
        s->indexed = false;
        reset(*s, "trimmed");
    }
    flush_touched();
}

void StreamHub::heartbeat() {
    ++turn_;
    std::vector<Stream *> overflowing;
    for (auto &[id, stream] : streams_) {
        Stream &s = *stream;
        if ((s.state == Stream::State::live || s.state == Stream::State::replaying) && !write(s, heartbeat_frame_))
            overflowing.push_back(&s);
    }
    flush_touched();
    for (Stream *s : overflowing)
        close(*s, CloseReason::slow_client);
}

// False when the stream is too slow: the caller closes it, outside any walk of the index. Slow means
// that what the client had not taken before this turn of the loop passes the high watermark; a
// burst written in one turn (one XREAD batch) does not count against a client that keeps up.
bool StreamHub::write(Stream &s, const FramePtr &frame) {
    if (s.overflowing)
        return false;
    if (s.turn != turn_) {
        s.turn = turn_;
        touched_.push_back(s.id);
        const std::size_t unsent = evbuffer_get_length(s.output);
        if (unsent > static_cast<std::size_t>(http_.high_watermark_bytes))
            s.overflowing = true;
        else if (unsent == 0 && (bufferevent_get_enabled(s.socket) & EV_WRITE))
            bufferevent_disable(s.socket, EV_WRITE); // caught up: back to writing directly (flush)
    }
    if (s.overflowing)
        return false;
    const std::string &bytes = frame->bytes;
    const char *data = s.chunked ? bytes.data() : bytes.data() + frame->body_offset;
    const std::size_t length = s.chunked ? bytes.size() : bytes.size() - frame->body_offset - 2;
    auto *holder = new FramePtr(frame);
    if (evbuffer_add_reference(s.output, data, length, release_frame, holder) != 0) {
        delete holder;
        s.overflowing = true;
    }
    return !s.overflowing;
}

// Writes what each stream written to in this turn of the loop has queued, with one writev each,
// straight away. libevent would instead watch every socket for writability and write on the next
// turn: two epoll_ctl calls and a wakeup per stream and event, which is most of the cost of a
// broadcast. Only a socket that cannot take everything is left to the bufferevent, which writes
// the rest when it can (and applies the write timeout meanwhile).
void StreamHub::flush_touched() {
    for (std::uint64_t id : touched_) {
        auto found = streams_.find(id);
        if (found == streams_.end())
            continue;
        Stream &s = *found->second;
        if (!s.connection || s.overflowing || evbuffer_get_length(s.output) == 0 ||
            (bufferevent_get_enabled(s.socket) & EV_WRITE))
            continue;
        evbuffer_write(s.output, bufferevent_getfd(s.socket));
        // The rest, or an error, which the bufferevent then reports to evhttp (closecb).
        if (evbuffer_get_length(s.output) > 0)
            bufferevent_enable(s.socket, EV_WRITE);
    }
    touched_.clear();
}

void StreamHub::close(Stream &s, CloseReason reason) {
    s.stop_waiting_for_drain();
    evhttp_connection *connection = s.connection;
    s.connection = nullptr;
    s.request = nullptr;
    if (s.state != Stream::State::draining)
        metrics_.add(close_counter(reason));
    s.state = Stream::State::closing;
    if (connection) {
        evhttp_connection_set_closecb(connection, nullptr, nullptr);
        evhttp_connection_free(connection); // frees the request, which is still attached
    }
    forget(s.id);
}

// Drops a stream the connection of which is gone or no longer ours.
void StreamHub::forget(std::uint64_t id) {
    auto found = streams_.find(id);
    if (found == streams_.end())
        return;
    Stream &s = *found->second;
    if (s.indexed)
        index_.remove(&s, s.user, s.topics);
    if (s.state == Stream::State::replaying)
        metrics_.add(Gauge::replaying, -1);
    const bool was_open = s.output != nullptr;
    if (s.admitted && was_open)
        admission_.release(s.user);
    streams_.erase(found);
    if (was_open)
        metrics_.set(Gauge::connections, static_cast<std::int64_t>(--open_streams_));
    if (drained_ && streams_.empty())
        std::exchange(drained_, nullptr)();
}

void StreamHub::on_connection_closed(evhttp_connection *, void *arg) {
    Stream &s = *static_cast<Stream *>(arg);
    StreamHub &hub = *s.hub;
    // A client that went away mid-reply leaves its request to us: ending the reply frees it.
    if (s.request && !evhttp_request_get_connection(s.request))
        evhttp_send_reply_end(s.request);
    s.request = nullptr;
    s.connection = nullptr;
    s.drain_wait = nullptr; // the output buffer, and its callback, go with the connection
    if (s.state == Stream::State::pending)
        return; // admitted() releases and forgets it when the supervisor answers
    hub.metrics_.add(close_counter(s.state == Stream::State::draining ? s.ended_by : CloseReason::client));
    hub.forget(s.id);
}

void StreamHub::drain(std::function<void()> done) {
    drained_ = std::move(done);
    end_streams(drain_frame_, CloseReason::drain);
    if (streams_.empty() && drained_)
        std::exchange(drained_, nullptr)();
}

// Redis is still unreachable after the grace: no event can come, so the streams end, with the
// usual retry: hint. Clients come back to 503 and poll the feed API (/readyz says so) until Redis
// returns, then resume with Last-Event-ID: nothing is lost, and the page keeps updating meanwhile.
// A shorter outage (a Redis restart) costs the streams nothing: the reader resumes where it was.
void StreamHub::on_redis_lost() {
    if (replay_link_.ready() || streams_.empty())
        return;
    log_warn("stream", "redis unreachable: ending the streams, clients poll", {{"streams", streams_.size()}});
    end_streams(retry_frame_, CloseReason::redis_lost);
}

// Ends every stream with `last_frame` as its last words; the connections close once it is sent.
void StreamHub::end_streams(const FramePtr &last_frame, CloseReason reason) {
    ++turn_;
    std::vector<Stream *> all;
    for (auto &[id, stream] : streams_)
        all.push_back(stream.get());
    for (Stream *s : all) {
        if (s->state == Stream::State::pending) {
            if (s->connection) {
                evhttp_connection_set_closecb(s->connection, nullptr, nullptr);
                refuse_(s->request, 503, "Service Unavailable",
                        reason == CloseReason::drain ? "shutting down; retry"
                                                     : "events are unavailable; poll the feed");
                s->connection = nullptr;
                s->request = nullptr;
            }
            continue; // forgotten when admission answers
        }
        if (s->state != Stream::State::live && s->state != Stream::State::replaying)
            continue;
        if (s->state == Stream::State::replaying)
            metrics_.add(Gauge::replaying, -1);
        if (s->indexed)
            index_.remove(s, s->user, s->topics);
        s->indexed = false;
        s->stop_waiting_for_drain();
        s->state = Stream::State::draining;
        s->ended_by = reason;
        write(*s, last_frame);
        // The reply's end goes out after what is queued; Connection: close then closes it.
        evhttp_send_reply_end(s->request);
        s->request = nullptr;
    }
    touched_.clear(); // evhttp writes what is left, then closes
}

} // namespace pgfeed::notifier
