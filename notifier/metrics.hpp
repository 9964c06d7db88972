// Prometheus metrics shared by the supervisor and its workers. A scrape of GET /metrics lands on
// whichever worker the kernel picks (SO_REUSEPORT), so every worker must render everyone's numbers.
//
// The supervisor creates one MetricsArea before forking: a MAP_SHARED anonymous mapping that the
// workers inherit, with one fixed-size slot per worker. A worker writes only its own slot, through
// WorkerMetrics; any process reads all slots in render(). Every value is a lock-free atomic used
// with relaxed ordering: no locks, no allocation, one or two atomic operations per update. A scrape
// may see one slot a few updates ahead of another, which Prometheus tolerates.
//
// A slot outlives its worker: a replacement keeps counting where the dead one stopped, so counters
// never go backwards. Gauges describe the live process, so the supervisor clears them
// (reset_gauges) when it reaps a dead worker. The mapping survives fork() but not exec().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pgfeed::notifier {

// Each rendered series carries worker="N"; the labels below are the other ones.
enum class Counter {
    connections_opened, // pgfeed_connections_opened_total
    // pgfeed_connections_closed_total{reason}
    closed_client,        // the peer closed
    closed_slow_client,   // unsent output over the high watermark
    closed_write_timeout, // nothing could be written for write_timeout_ms
    closed_drain,         // SIGTERM
    closed_redis_lost,    // Redis unreachable for longer than StreamHub::redis_lost_grace
    closed_error,         // anything else
    // pgfeed_requests_rejected_total{status,reason}
    rejected_bad_request,        // 400
    rejected_framing,            // 400, a body framed two ways (Content-Length, Transfer-Encoding)
    rejected_request_timeout,    // 408, a request not in whole within header_timeout_ms (closed)
    rejected_unauthorized,       // 401
    rejected_forbidden,          // 403
    rejected_not_found,          // 404
    rejected_method_not_allowed, // 405
    rejected_unsupported_media,  // 415, a feed API body that is not JSON
    rejected_user_limit,         // 429, connections_per_user
    rejected_rate_limited,       // 429, new connections per IP
    rejected_address_limit,      // 429, connections_per_address (closed at once)
    rejected_api_user_calls,     // 429, api_calls_per_user (feed API)
    rejected_api_user_unsent,    // 429, api_unsent_bytes_per_user (feed API)
    rejected_replay_limit,       // 429, replays_per_minute (a stream with Last-Event-ID)
    rejected_total_limit,        // 503, max_connections
    rejected_file_limit,         // 503, a connection near the worker's file limit (closed at once)
    rejected_unavailable,        // 503, Redis not reachable
    rejected_database,           // 503, PostgreSQL not reachable, busy or too slow (feed API)
    rejected_api_unsent,         // 503, api_unsent_bytes (feed API)
    rejected_internal,           // 500, PostgreSQL refused a feed API query unexpectedly
    // pgfeed_http_requests_total{path}
    http_stream,         // /v1/stream
    http_metrics,        // /metrics
    http_healthz,        // /healthz
    http_readyz,         // /readyz
    http_api,            // the feed API: /v1/feed, /v1/read, ...
    http_static,         // files of http.static_dir
    http_other,          // any other path
    stream_entries_read, // pgfeed_stream_entries_read_total: entries this worker's reader got
    stream_bad_entries,  // pgfeed_stream_bad_entries_total: entries it could not frame
    stream_gaps,         // pgfeed_stream_gaps_total: entries were trimmed before it read them
    // pgfeed_events_sent_total{kind}: frames queued to a connection
    sent_activity,
    sent_read,
    sent_connected,
    sent_reset,
    replays,         // pgfeed_replays_total: streams that began a replay (Last-Event-ID)
    events_replayed, // pgfeed_events_replayed_total
};
constexpr std::size_t kCounters = static_cast<std::size_t>(Counter::events_replayed) + 1;

enum class Gauge {
    // Rendered from the start (0 until set).
    connections, // pgfeed_connections: open SSE streams
    replaying,   // pgfeed_replaying: streams still replaying missed events
    // Rendered once set, so a worker that does not know a value (only the bridge's worker knows
    // postgres_up) shows no series instead of a misleading 0.
    redis_up,      // pgfeed_redis_up: 0 or 1
    postgres_up,   // pgfeed_postgres_up: 0 or 1
    bridge_lag_ms, // pgfeed_bridge_lag_seconds, rendered in seconds with 3 decimals
    stream_length, // pgfeed_stream_length
};
constexpr std::size_t kGauges = static_cast<std::size_t>(Gauge::stream_length) + 1;

// The Content-Type of a render() reply.
inline constexpr const char *kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MetricsSlot; // the per-worker layout, in metrics.cpp

// One worker's writer: a pointer into the shared area, cheap to copy. Only that worker's process
// (single-threaded) may write through it.
class WorkerMetrics {
  public:
    void add(Counter counter, std::uint64_t n = 1);
    void set(Gauge gauge, std::int64_t value);
    // For counting up and down (connections, replaying).
    void add(Gauge gauge, std::int64_t delta);
    // From the stream entry's `at` to the frame being queued on the socket. A negative or NaN
    // duration (clocks of two hosts) counts as 0.
    void observe_delivery(double seconds);

  private:
    friend class MetricsArea;
    explicit WorkerMetrics(MetricsSlot *slot) : slot_(slot) {}
    MetricsSlot *slot_;
};

class MetricsArea {
  public:
    // Maps the shared area for `workers` slots. Throws std::invalid_argument unless
    // 1 <= workers <= 1024, std::system_error when mmap fails.
    static std::unique_ptr<MetricsArea> create(int workers);
    ~MetricsArea();
    MetricsArea(const MetricsArea &) = delete;
    MetricsArea &operator=(const MetricsArea &) = delete;

    int workers() const { return workers_; }
    // Throws std::out_of_range for an index outside [0, workers).
    WorkerMetrics worker(int index);

    // Supervisor: a worker died. Its gauges go back to their initial state (connections and
    // replaying 0, the others not rendered); its counters and histogram stay.
    void reset_gauges(int index);
    // Supervisor: pgfeed_worker_restarts_total, the only series without a worker label.
    void count_worker_restart();

    // A gauge summed over all workers, e.g. connections for the total limit (max_connections).
    // Two workers admitting at the same moment may each miss the other's increment, so a check
    // done as add(connections, 1) then sum() can overshoot by up to workers - 1.
    std::int64_t sum(Gauge gauge) const;

    // Every metric of every slot, Prometheus text format 0.0.4 (kMetricsContentType), with
    // # HELP and # TYPE lines. Allocates; not for the hot path.
    std::string render() const;

  private:
    struct Header;
    MetricsArea(void *base, std::size_t size, int workers);
    const MetricsSlot &slot(int index) const;

    void *base_;
    std::size_t size_;
    int workers_;
    Header *header_;
    MetricsSlot *slots_;
};

} // namespace pgfeed::notifier
