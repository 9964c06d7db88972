// What GET /readyz answers: whether clients should use push or poll the feed. Each worker checks
// on its own, every ready.probe_interval_ms: PostgreSQL answers with a pgfeed extension of a
// supported release (extension_version.hpp), the stream is reachable (and how
// long it is), and how long the oldest event has waited in the outbox (the bridge's lag, which
// includes up to bridge.prune_interval_ms of events moved but not yet pruned).
#pragma once

#include "config.hpp"
#include "event_ptr.hpp"
#include "extension_version.hpp"
#include "metrics.hpp"
#include "pg_link.hpp"
#include "redis_link.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace pgfeed::notifier {

class Readiness {
  public:
    // `streams_ready` says whether this worker's streams can be served (its reader's Redis link).
    Readiness(event_base *base, const Config &config, WorkerMetrics metrics, std::function<bool()> streams_ready);
    Readiness(const Readiness &) = delete;
    Readiness &operator=(const Readiness &) = delete;

    void start();
    void reconfigure(const Config &config);
    bool ready() const;
    // {"status":"ready"|"degraded","mode":"push"|"poll","redis":..,"postgres":..,"extension":"0.5.0",
    //  "extension_supported":..,"bridge_lag_ms":..}
    std::string json() const;

  private:
    void probe();
    void postgres_answered(bool up, std::optional<std::int64_t> lag_ms);
    // Logs the installed extension's version when its verdict changes.
    void note_extension(const std::optional<std::string> &version);

    Config config_;
    WorkerMetrics metrics_;
    std::function<bool()> streams_ready_;
    PgLink postgres_;
    RedisLink redis_;
    bool postgres_up_ = false;
    bool redis_up_ = false;
    std::optional<std::int64_t> lag_ms_; // unknown until PostgreSQL answered, or with an unsupported extension
    bool extension_checked_ = false;
    ExtensionFit extension_fit_ = ExtensionFit::missing;
    std::optional<std::string> extension_version_;
    EventPtr timer_;
    bool probing_postgres_ = false, probing_redis_ = false;
};

} // namespace pgfeed::notifier
