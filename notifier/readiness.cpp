#include "readiness.hpp"

#include "extension_version.hpp"
#include "json_text.hpp"
#include "link_options.hpp"
#include "log.hpp"

#include <cjson/cJSON.h>
#include <event2/event.h>

#include <utility>

namespace pgfeed::notifier {

namespace {

// The age of the oldest event still in the outbox; 0 when it is empty. Ordered by event_id, the
// primary key, so the probe costs one index probe however long the backlog.
constexpr const char *kLagQuery =
    "SELECT coalesce((extract(epoch FROM clock_timestamp() - min(written_at)) * 1000)::bigint, 0) "
    "FROM (SELECT written_at FROM pgfeed.events ORDER BY event_id LIMIT 1) AS oldest";

constexpr const char *kComponent = "readiness";

} // namespace

Readiness::Readiness(event_base *base, const Config &config, WorkerMetrics metrics, std::function<bool()> streams_ready)
    : config_(config), metrics_(metrics), streams_ready_(std::move(streams_ready)),
      postgres_(base, pg_link_options(config), {}), redis_(base, redis_link_options(config), {}) {
    timer_.reset(event_new(
        base, -1, EV_PERSIST, [](evutil_socket_t, short, void *self) { static_cast<Readiness *>(self)->probe(); },
        this));
}

void Readiness::start() {
    postgres_.start();
    redis_.start();
    reconfigure(config_);
}

void Readiness::reconfigure(const Config &config) {
    config_ = config;
    int ms = config_.ready.probe_interval_ms;
    timeval every{ms / 1000, (ms % 1000) * 1000};
    event_add(timer_.get(), &every);
}

void Readiness::probe() {
    if (!probing_postgres_) {
        probing_postgres_ = true;
        postgres_.query(kExtensionVersionQuery, {}, [this](const PgResult &result) {
            if (!result.ok)
                return postgres_answered(false, std::nullopt);
            note_extension(result.rows.empty() ? std::nullopt : result.rows[0][0]);
            if (extension_fit_ != ExtensionFit::supported)
                return postgres_answered(true, std::nullopt);
            postgres_.query(kLagQuery, {}, [this](const PgResult &result) {
                const bool answered =
                    result.ok && result.rows.size() == 1 && result.rows[0].size() == 1 && result.rows[0][0];
                postgres_answered(answered, answered ? std::optional<std::int64_t>(std::stoll(*result.rows[0][0]))
                                                     : std::nullopt);
            });
        });
    }
    if (!probing_redis_) {
        probing_redis_ = true;
        redis_.command({"XLEN", config_.bridge.stream}, [this](const RedisReply &reply) {
            probing_redis_ = false;
            redis_up_ = !reply.lost && reply.type == RedisReply::Type::integer;
            metrics_.set(Gauge::redis_up, redis_up_ && streams_ready_());
            if (redis_up_)
                metrics_.set(Gauge::stream_length, reply.integer);
        });
    }
}

void Readiness::postgres_answered(bool up, std::optional<std::int64_t> lag_ms) {
    probing_postgres_ = false;
    postgres_up_ = up;
    lag_ms_ = lag_ms;
    metrics_.set(Gauge::postgres_up, postgres_up_);
    if (lag_ms_)
        metrics_.set(Gauge::bridge_lag_ms, *lag_ms_);
}

void Readiness::note_extension(const std::optional<std::string> &version) {
    const ExtensionFit fit = extension_fit(version);
    const bool changed = !extension_checked_ || fit != extension_fit_ || version != extension_version_;
    const bool was_supported = extension_checked_ && extension_fit_ == ExtensionFit::supported;
    extension_checked_ = true;
    extension_fit_ = fit;
    extension_version_ = version;
    if (!changed)
        return;
    if (fit != ExtensionFit::supported)
        log_error(kComponent, describe_extension_fit(fit, version) + "; /readyz says poll until then");
    else if (!was_supported)
        log_info(kComponent, describe_extension_fit(fit, version));
}

bool Readiness::ready() const {
    return redis_up_ && streams_ready_() && postgres_up_ && extension_fit_ == ExtensionFit::supported && lag_ms_ &&
           *lag_ms_ <= config_.ready.max_bridge_lag_ms;
}

std::string Readiness::json() const {
    const bool push = ready();
    cJSON *object = cJSON_CreateObject();
    cJSON_AddStringToObject(object, "status", push ? "ready" : "degraded");
    cJSON_AddStringToObject(object, "mode", push ? "push" : "poll");
    cJSON_AddBoolToObject(object, "redis", redis_up_ && streams_ready_());
    cJSON_AddBoolToObject(object, "postgres", postgres_up_);
    if (extension_version_)
        cJSON_AddStringToObject(object, "extension", extension_version_->c_str());
    else
        cJSON_AddNullToObject(object, "extension");
    cJSON_AddBoolToObject(object, "extension_supported", extension_fit_ == ExtensionFit::supported);
    if (lag_ms_)
        cJSON_AddNumberToObject(object, "bridge_lag_ms", static_cast<double>(*lag_ms_));
    else
        cJSON_AddNullToObject(object, "bridge_lag_ms");
    return json_text(object);
}

} // namespace pgfeed::notifier
