#include "metrics.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iterator>
#include <new>
#include <stdexcept>
#include <system_error>

namespace pgfeed::notifier {

// The area is shared between processes: only lock-free atomics are address-free, so an atomic
// that needed a lock would be silently broken across fork().
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

struct LatencyBucket {
    const char *le;
    std::uint64_t micros;
};
constexpr LatencyBucket kLatencyBuckets[] = {
    {"0.001", 1'000},   {"0.0025", 2'500}, {"0.005", 5'000},   {"0.01", 10'000}, {"0.025", 25'000},
    {"0.05", 50'000},   {"0.1", 100'000},  {"0.25", 250'000},  {"0.5", 500'000}, {"1", 1'000'000},
    {"2.5", 2'500'000}, {"5", 5'000'000},  {"10", 10'000'000},
};
constexpr std::size_t kBuckets = std::size(kLatencyBuckets);

// Longer latencies are counted as this, so the sum (in microseconds) cannot overflow: 2^64 µs
// still holds a million such observations.
constexpr double kMaxLatencySeconds = 1e6;

constexpr std::uint64_t gauge_bit(Gauge gauge) { return std::uint64_t{1} << static_cast<unsigned>(gauge); }
constexpr std::uint64_t kGaugesAlwaysRendered = gauge_bit(Gauge::connections) | gauge_bit(Gauge::replaying);
static_assert(kGauges <= 64);

} // namespace

// One worker's numbers. Aligned to a cache line so two workers never write the same line.
struct alignas(64) MetricsSlot {
    std::atomic<std::uint64_t> counters[kCounters];
    std::atomic<std::int64_t> gauges[kGauges];
    std::atomic<std::uint64_t> gauges_set; // a bit per gauge: render it
    // Per bucket, not cumulative, the last one being (10, +Inf): an observation is one increment.
    // render() adds them up, and _count is their total, so _count always equals the +Inf bucket.
    std::atomic<std::uint64_t> latency_buckets[kBuckets + 1];
    std::atomic<std::uint64_t> latency_sum_micros;
};

struct alignas(64) MetricsArea::Header {
    std::atomic<std::uint64_t> worker_restarts;
};

void WorkerMetrics::add(Counter counter, std::uint64_t n) {
    slot_->counters[static_cast<std::size_t>(counter)].fetch_add(n, relaxed);
}

namespace {

// Only this worker writes its slot, so a load before the read-modify-write keeps the common case
// to a plain load.
void mark_set(MetricsSlot *slot, Gauge gauge) {
    if (!(slot->gauges_set.load(relaxed) & gauge_bit(gauge)))
        slot->gauges_set.fetch_or(gauge_bit(gauge), relaxed);
}

} // namespace

void WorkerMetrics::set(Gauge gauge, std::int64_t value) {
    slot_->gauges[static_cast<std::size_t>(gauge)].store(value, relaxed);
    mark_set(slot_, gauge);
}

void WorkerMetrics::add(Gauge gauge, std::int64_t delta) {
    slot_->gauges[static_cast<std::size_t>(gauge)].fetch_add(delta, relaxed);
    mark_set(slot_, gauge);
}

void WorkerMetrics::observe_delivery(double seconds) {
    // !(x >= 0) also catches NaN.
    if (!(seconds >= 0))
        seconds = 0;
    if (seconds > kMaxLatencySeconds)
        seconds = kMaxLatencySeconds;
    auto micros = static_cast<std::uint64_t>(std::llround(seconds * 1e6));
    std::size_t bucket = 0;
    while (bucket < kBuckets && micros > kLatencyBuckets[bucket].micros)
        ++bucket;
    slot_->latency_buckets[bucket].fetch_add(1, relaxed);
    slot_->latency_sum_micros.fetch_add(micros, relaxed);
}

std::unique_ptr<MetricsArea> MetricsArea::create(int workers) {
    if (workers < 1 || workers > 1024)
        throw std::invalid_argument("metrics: the number of workers must be between 1 and 1024");
    std::size_t size = sizeof(Header) + sizeof(MetricsSlot) * static_cast<std::size_t>(workers);
    // Anonymous memory is zeroed: every counter starts at 0. MAP_SHARED makes the children's writes
    // visible to every process that inherited the mapping.
    void *base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        throw std::system_error(errno, std::generic_category(), "metrics: mmap of the shared area");
    return std::unique_ptr<MetricsArea>(new MetricsArea(base, size, workers));
}

MetricsArea::MetricsArea(void *base, std::size_t size, int workers) : base_(base), size_(size), workers_(workers) {
    static_assert(sizeof(Header) % alignof(MetricsSlot) == 0);
    header_ = new (base) Header();
    slots_ = static_cast<MetricsSlot *>(static_cast<void *>(static_cast<char *>(base) + sizeof(Header)));
    for (int i = 0; i < workers; ++i) {
        new (&slots_[i]) MetricsSlot();
        slots_[i].gauges_set.store(kGaugesAlwaysRendered, relaxed);
    }
}

MetricsArea::~MetricsArea() { munmap(base_, size_); }

WorkerMetrics MetricsArea::worker(int index) {
    if (index < 0 || index >= workers_)
        throw std::out_of_range("metrics: no slot for worker " + std::to_string(index));
    return WorkerMetrics(&slots_[index]);
}

const MetricsSlot &MetricsArea::slot(int index) const { return slots_[index]; }

void MetricsArea::reset_gauges(int index) {
    if (index < 0 || index >= workers_)
        throw std::out_of_range("metrics: no slot for worker " + std::to_string(index));
    MetricsSlot &slot = slots_[index];
    for (auto &gauge : slot.gauges)
        gauge.store(0, relaxed);
    slot.gauges_set.store(kGaugesAlwaysRendered, relaxed);
}

void MetricsArea::count_worker_restart() { header_->worker_restarts.fetch_add(1, relaxed); }

std::int64_t MetricsArea::sum(Gauge gauge) const {
    std::int64_t total = 0;
    for (int i = 0; i < workers_; ++i)
        total += slot(i).gauges[static_cast<std::size_t>(gauge)].load(relaxed);
    return total;
}

// Rendering.

namespace {

// Indexed by Counter: the sample name and the labels besides worker. render() lists a family's
// series in this order.
struct CounterSeries {
    const char *name;
    const char *labels;
};
constexpr CounterSeries kCounterSeries[] = {
    {"pgfeed_connections_opened_total", ""},
    {"pgfeed_connections_closed_total", "reason=\"client\""},
    {"pgfeed_connections_closed_total", "reason=\"slow_client\""},
    {"pgfeed_connections_closed_total", "reason=\"write_timeout\""},
    {"pgfeed_connections_closed_total", "reason=\"drain\""},
    {"pgfeed_connections_closed_total", "reason=\"redis_lost\""},
    {"pgfeed_connections_closed_total", "reason=\"error\""},
    {"pgfeed_requests_rejected_total", "status=\"400\",reason=\"bad_request\""},
    {"pgfeed_requests_rejected_total", "status=\"400\",reason=\"framing\""},
    {"pgfeed_requests_rejected_total", "status=\"408\",reason=\"request_timeout\""},
    {"pgfeed_requests_rejected_total", "status=\"401\",reason=\"unauthorized\""},
    {"pgfeed_requests_rejected_total", "status=\"403\",reason=\"forbidden\""},
    {"pgfeed_requests_rejected_total", "status=\"404\",reason=\"not_found\""},
    {"pgfeed_requests_rejected_total", "status=\"405\",reason=\"method_not_allowed\""},
    {"pgfeed_requests_rejected_total", "status=\"415\",reason=\"unsupported_media_type\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"user_limit\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"rate_limited\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"address_limit\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"api_user_calls\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"api_user_unsent\""},
    {"pgfeed_requests_rejected_total", "status=\"429\",reason=\"replay_limit\""},
    {"pgfeed_requests_rejected_total", "status=\"503\",reason=\"total_limit\""},
    {"pgfeed_requests_rejected_total", "status=\"503\",reason=\"file_limit\""},
    {"pgfeed_requests_rejected_total", "status=\"503\",reason=\"unavailable\""},
    {"pgfeed_requests_rejected_total", "status=\"503\",reason=\"database\""},
    {"pgfeed_requests_rejected_total", "status=\"503\",reason=\"api_unsent\""},
    {"pgfeed_requests_rejected_total", "status=\"500\",reason=\"internal\""},
    {"pgfeed_http_requests_total", "path=\"stream\""},
    {"pgfeed_http_requests_total", "path=\"metrics\""},
    {"pgfeed_http_requests_total", "path=\"healthz\""},
    {"pgfeed_http_requests_total", "path=\"readyz\""},
    {"pgfeed_http_requests_total", "path=\"api\""},
    {"pgfeed_http_requests_total", "path=\"static\""},
    {"pgfeed_http_requests_total", "path=\"other\""},
    {"pgfeed_stream_entries_read_total", ""},
    {"pgfeed_stream_bad_entries_total", ""},
    {"pgfeed_stream_gaps_total", ""},
    {"pgfeed_events_sent_total", "kind=\"activity\""},
    {"pgfeed_events_sent_total", "kind=\"read\""},
    {"pgfeed_events_sent_total", "kind=\"connected\""},
    {"pgfeed_events_sent_total", "kind=\"reset\""},
    {"pgfeed_replays_total", ""},
    {"pgfeed_events_replayed_total", ""},
};
static_assert(std::size(kCounterSeries) == kCounters, "one entry per Counter, in the enum's order");

enum class Kind { counter, gauge, histogram, restarts };

// In the order rendered. HELP text must not hold a backslash or a line break (they would need
// escaping).
struct Family {
    const char *name;
    Kind kind;
    const char *help;
    Gauge gauge; // for Kind::gauge
};
constexpr Family kFamilies[] = {
    {"pgfeed_connections", Kind::gauge, "Open SSE streams.", Gauge::connections},
    {"pgfeed_replaying", Kind::gauge, "SSE streams still replaying missed events.", Gauge::replaying},
    {"pgfeed_connections_opened_total", Kind::counter, "SSE streams opened.", {}},
    {"pgfeed_connections_closed_total",
     Kind::counter,
     "SSE streams closed, by reason: client (the peer closed), slow_client (unsent output over the high "
     "watermark), write_timeout, drain (SIGTERM), redis_lost (Redis unreachable), error.",
     {}},
    {"pgfeed_requests_rejected_total",
     Kind::counter,
     "Requests refused with an error status, by status and reason.",
     {}},
    {"pgfeed_http_requests_total",
     Kind::counter,
     "HTTP requests, by path: stream, metrics, healthz, readyz, api (the feed API), static, other.",
     {}},
    {"pgfeed_stream_entries_read_total", Kind::counter, "Stream entries this worker's reader got from Redis.", {}},
    {"pgfeed_stream_bad_entries_total", Kind::counter, "Stream entries this worker could not frame as an event.", {}},
    {"pgfeed_stream_gaps_total",
     Kind::counter,
     "Times this worker's reader found entries trimmed from the stream before it read them.",
     {}},
    {"pgfeed_events_sent_total",
     Kind::counter,
     "Event frames queued to connections, by kind: activity, read, connected, reset.",
     {}},
    {"pgfeed_replays_total", Kind::counter, "SSE streams that began a replay after their Last-Event-ID.", {}},
    {"pgfeed_events_replayed_total", Kind::counter, "Missed events queued to connections by replay.", {}},
    {"pgfeed_delivery_latency_seconds",
     Kind::histogram,
     "Seconds from an event being written in PostgreSQL (the stream entry's at) to its bytes being queued on the "
     "client's socket.",
     {}},
    {"pgfeed_redis_up", Kind::gauge, "1 while this worker's Redis connection is up, else 0.", Gauge::redis_up},
    {"pgfeed_postgres_up", Kind::gauge, "1 while the bridge's PostgreSQL connection is up, else 0 (bridge worker).",
     Gauge::postgres_up},
    {"pgfeed_bridge_lag_seconds", Kind::gauge, "How far the bridge is behind PostgreSQL (bridge worker).",
     Gauge::bridge_lag_ms},
    {"pgfeed_stream_length", Kind::gauge, "Entries in the Redis stream, as last seen by this worker.",
     Gauge::stream_length},
    {"pgfeed_worker_restarts_total", Kind::restarts, "Workers the supervisor restarted after they died.", {}},
};

// Integers only: no locale, no float formatting, exact output.
void append_fixed(std::string &out, bool negative, std::uint64_t magnitude, std::uint64_t scale, int decimals) {
    if (negative)
        out += '-';
    out += std::to_string(magnitude / scale);
    out += '.';
    std::string fraction = std::to_string(magnitude % scale);
    out.append(static_cast<std::size_t>(decimals) - fraction.size(), '0');
    out += fraction;
}

void append_millis_as_seconds(std::string &out, std::int64_t millis) {
    bool negative = millis < 0;
    // Through unsigned arithmetic, so INT64_MIN negates without overflow.
    std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(millis) : static_cast<std::uint64_t>(millis);
    append_fixed(out, negative, magnitude, 1000, 3);
}

// name{worker="N",labels} value
void append_sample(std::string &out, const char *name, const char *suffix, const std::string &worker,
                   const char *labels, const std::string &value) {
    out += name;
    out += suffix;
    out += "{worker=\"";
    out += worker;
    out += '"';
    if (*labels) {
        out += ',';
        out += labels;
    }
    out += "} ";
    out += value;
    out += '\n';
}

} // namespace

std::string MetricsArea::render() const {
    std::string out;
    out.reserve(static_cast<std::size_t>(2048 + workers_ * 4096));
    for (const Family &family : kFamilies) {
        const char *type = family.kind == Kind::gauge       ? "gauge"
                           : family.kind == Kind::histogram ? "histogram"
                                                            : "counter";
        out += "# HELP ";
        out += family.name;
        out += ' ';
        out += family.help;
        out += "\n# TYPE ";
        out += family.name;
        out += ' ';
        out += type;
        out += '\n';
        if (family.kind == Kind::restarts) {
            out += family.name;
            out += ' ';
            out += std::to_string(header_->worker_restarts.load(relaxed));
            out += '\n';
            continue;
        }
        for (int w = 0; w < workers_; ++w) {
            const MetricsSlot &s = slot(w);
            std::string worker = std::to_string(w);
            switch (family.kind) {
            case Kind::counter:
                for (std::size_t c = 0; c < kCounters; ++c) {
                    if (std::strcmp(kCounterSeries[c].name, family.name) == 0)
                        append_sample(out, family.name, "", worker, kCounterSeries[c].labels,
                                      std::to_string(s.counters[c].load(relaxed)));
                }
                break;
            case Kind::gauge: {
                if (!(s.gauges_set.load(relaxed) & gauge_bit(family.gauge)))
                    break;
                std::int64_t value = s.gauges[static_cast<std::size_t>(family.gauge)].load(relaxed);
                std::string text;
                if (family.gauge == Gauge::bridge_lag_ms)
                    append_millis_as_seconds(text, value);
                else
                    text = std::to_string(value);
                append_sample(out, family.name, "", worker, "", text);
                break;
            }
            case Kind::histogram: {
                std::uint64_t cumulative = 0;
                std::string le;
                for (std::size_t b = 0; b <= kBuckets; ++b) {
                    cumulative += s.latency_buckets[b].load(relaxed);
                    le = "le=\"";
                    le += b < kBuckets ? kLatencyBuckets[b].le : "+Inf";
                    le += '"';
                    append_sample(out, family.name, "_bucket", worker, le.c_str(), std::to_string(cumulative));
                }
                std::string sum;
                append_fixed(sum, false, s.latency_sum_micros.load(relaxed), 1'000'000, 6);
                append_sample(out, family.name, "_sum", worker, "", sum);
                append_sample(out, family.name, "_count", worker, "", std::to_string(cumulative));
                break;
            }
            case Kind::restarts:
                break;
            }
        }
    }
    return out;
}

} // namespace pgfeed::notifier
