#include "bridge.hpp"

#include "extension_version.hpp"
#include "link_options.hpp"
#include "log.hpp"

#include <event2/event.h>

#include <stdexcept>

namespace pgfeed::notifier {

namespace {

constexpr const char *kComponent = "bridge";

// The next batch with a fresh upper snapshot taken in the same statement; one row of NULLs when
// there is nothing to move.
constexpr const char *kFirstPage = "SELECT s::text, e.event_id, e.kind, e.topic, e.user_key, e.data, e.at_us "
                                   "FROM pg_catalog.pg_current_snapshot() s "
                                   "LEFT JOIN LATERAL pgfeed.events_between($1, s, 0, $2) e ON true";
// A further page of a batch too large for one round trip.
constexpr const char *kNextPage = "SELECT event_id, kind, topic, user_key, data, at_us "
                                  "FROM pgfeed.events_between($1, $2, $3, $4)";

std::vector<std::string> strings_of(const RedisReply &reply) {
    std::vector<std::string> out;
    for (const RedisReply &element : reply.elements)
        out.push_back(element.str);
    return out;
}

std::string describe(const RedisReply &reply) {
    if (reply.lost)
        return "connection lost";
    if (reply.type == RedisReply::Type::error)
        return reply.str;
    return "unexpected reply type";
}

} // namespace

Bridge::Bridge(event_base *base, const Config &config)
    : settings_(config.bridge), position_key_(config.bridge.stream + ":bridge"),
      pg_(base, pg_link_options(config, {"pgfeed"}),
          {[this] { on_pg_ready(); }, [this] { on_pg_lost(); }, [this](const std::string &) { wake(); }}),
      redis_(base, redis_link_options(config), {[this] { on_redis_ready(); }, [this] { on_redis_lost(); }}) {
    tick_timer_.reset(event_new(
        base, -1, EV_PERSIST,
        [](evutil_socket_t, short, void *self) {
            Bridge &bridge = *static_cast<Bridge *>(self);
            if (bridge.leading_ && !bridge.loaded_ && !bridge.busy_)
                bridge.load_position();
            else
                bridge.wake();
        },
        this));
    takeover_timer_.reset(event_new(
        base, -1, 0, [](evutil_socket_t, short, void *self) { static_cast<Bridge *>(self)->try_to_lead(); }, this));
    prune_timer_.reset(event_new(
        base, -1, EV_PERSIST, [](evutil_socket_t, short, void *self) { static_cast<Bridge *>(self)->prune(); }, this));
}

Bridge::~Bridge() { stop(); }

void Bridge::arm(event *timer, int ms) {
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    event_add(timer, &tv);
}

void Bridge::start() {
    log_info(kComponent, "starting", {{"stream", settings_.stream}, {"name", settings_.name}});
    arm(tick_timer_.get(), settings_.tick_ms);
    arm(prune_timer_.get(), settings_.prune_interval_ms);
    pg_.start();
    redis_.start();
}

void Bridge::stop() {
    event_del(tick_timer_.get());
    event_del(prune_timer_.get());
    event_del(takeover_timer_.get());
    abandon_cycle();
    leading_ = false;
    pg_.stop();
    redis_.stop();
}

void Bridge::fail(const std::string &what, const std::string &detail) {
    // One line per distinct failure: a bridge that retries every tick must not flood the log.
    if (last_failure_ == what + detail)
        return;
    last_failure_ = what + detail;
    log_error(kComponent, what, {{"error", detail}});
}

void Bridge::abandon_cycle() {
    ++cycle_;
    busy_ = false;
}

void Bridge::on_pg_ready() { try_to_lead(); }

void Bridge::on_pg_lost() {
    if (!leading_)
        return;
    log_warn(kComponent, "PostgreSQL session lost: no longer the bridge until the lock is taken again");
    leading_ = false;
    loaded_ = false;
    abandon_cycle();
}

void Bridge::on_redis_ready() {
    if (leading_)
        load_position();
}

void Bridge::on_redis_lost() {
    // The position is read again from Redis, which may or may not have applied the last EXEC.
    loaded_ = false;
    abandon_cycle();
}

void Bridge::try_to_lead() {
    if (leading_ || !pg_.ready())
        return;
    // The bridge's SQL calls belong to one extension release: another one is never called, and the
    // takeover timer checks again, so an ALTER EXTENSION pgfeed UPDATE is picked up.
    pg_.query(kExtensionVersionQuery, {}, [this](const PgResult &result) {
        if (leading_ || !pg_.ready())
            return;
        const std::optional<std::string> version = result.ok && !result.rows.empty() ? result.rows[0][0] : std::nullopt;
        const ExtensionFit fit = extension_fit(version);
        if (!result.ok)
            fail("cannot read the version of extension pgfeed", result.error);
        else if (fit != ExtensionFit::supported)
            fail("not moving events", describe_extension_fit(fit, version));
        else
            return take_lock();
        arm(takeover_timer_.get(), settings_.takeover_ms);
    });
}

void Bridge::take_lock() {
    pg_.query("SELECT pg_catalog.pg_try_advisory_lock($1)", {std::to_string(settings_.lock_key)},
              [this](const PgResult &result) {
                  if (leading_ || !pg_.ready())
                      return;
                  if (!result.ok) {
                      fail("cannot take the bridge lock", result.error);
                  } else if (result.rows.size() == 1 && result.rows[0][0] == std::optional<std::string>("t")) {
                      leading_ = true;
                      standing_by_ = false;
                      last_failure_.clear();
                      log_info(kComponent, "leading: this instance moves events", {{"lock_key", settings_.lock_key}});
                      load_position();
                      return;
                  } else if (!standing_by_) {
                      log_info(kComponent, "standing by: another instance holds the bridge lock",
                               {{"lock_key", settings_.lock_key}});
                  }
                  standing_by_ = true;
                  arm(takeover_timer_.get(), settings_.takeover_ms);
              });
}

void Bridge::load_position() {
    if (!leading_ || !redis_.ready())
        return;
    abandon_cycle();
    busy_ = true;
    const uint64_t cycle = cycle_;
    redis_.command({"HGETALL", position_key_}, [this, cycle](const RedisReply &reply) {
        if (!cycle_is(cycle))
            return;
        if (reply.lost || reply.type != RedisReply::Type::array) {
            busy_ = false;
            return fail("cannot read the bridge position from Redis", describe(reply));
        }
        std::optional<BridgePosition> position;
        try {
            position = position_from_hash(strings_of(reply));
        } catch (const std::invalid_argument &e) {
            // Never guess: moving from a wrong position would skip or repeat events.
            busy_ = false;
            return fail("the bridge position in Redis is damaged; delete key " + position_key_ +
                            " to restart from PostgreSQL's record",
                        e.what());
        }
        if (!position)
            return start_from_postgres(cycle);
        stored_ = position;
        cursor_ = *position;
        loaded_ = true;
        busy_ = false;
        log_info(kComponent, "resuming from the position in Redis",
                 {{"since", cursor_.since}, {"upto", cursor_.upto}, {"after", cursor_.after}});
        wake();
    });
}

void Bridge::start_from_postgres(uint64_t cycle) {
    pg_.query("SELECT pgfeed.bridge_start($1)::text", {settings_.name}, [this, cycle](const PgResult &result) {
        if (!cycle_is(cycle))
            return;
        busy_ = false;
        if (!result.ok || result.rows.size() != 1 || !result.rows[0][0] || !is_snapshot_text(*result.rows[0][0]))
            return fail("cannot read where the bridge starts (pgfeed.bridge_start)",
                        result.ok ? "unexpected result" : result.error);
        stored_.reset();
        cursor_ = {*result.rows[0][0], "", 0};
        loaded_ = true;
        log_info(kComponent, "no position in Redis: starting where PostgreSQL's record says",
                 {{"since", cursor_.since}});
        wake();
    });
}

void Bridge::wake() {
    if (!leading_ || !loaded_)
        return;
    if (busy_) {
        wake_pending_ = true;
        return;
    }
    fetch();
}

void Bridge::fetch() {
    busy_ = true;
    wake_pending_ = false;
    const uint64_t cycle = ++cycle_;
    const bool first_page = cursor_.upto.empty();
    PgLink::Params params = first_page ? PgLink::Params{cursor_.since, std::to_string(settings_.batch_size)}
                                       : PgLink::Params{cursor_.since, cursor_.upto, std::to_string(cursor_.after),
                                                        std::to_string(settings_.batch_size)};
    pg_.query(first_page ? kFirstPage : kNextPage, std::move(params),
              [this, cycle, first_page](const PgResult &result) {
                  if (cycle_is(cycle))
                      on_batch(result, first_page);
              });
}

void Bridge::on_batch(const PgResult &result, bool with_snapshot) {
    if (!result.ok) {
        busy_ = false;
        return fail("cannot read the outbox",
                    result.error + (result.sqlstate.empty() ? "" : " (SQLSTATE " + result.sqlstate + ")"));
    }
    std::string upto = cursor_.upto;
    std::vector<OutboxEvent> events;
    try {
        for (const auto &row : result.rows) {
            if (!with_snapshot) {
                events.push_back(outbox_event_from_row(row));
                continue;
            }
            if (row.size() != 7 || !row[0] || !is_snapshot_text(*row[0]))
                throw std::invalid_argument("no snapshot in the first column");
            upto = *row[0];
            if (row[1])
                events.push_back(outbox_event_from_row({row.begin() + 1, row.end()}));
        }
        if (upto.empty())
            throw std::invalid_argument("no rows");
    } catch (const std::invalid_argument &e) {
        busy_ = false;
        return fail("refusing a malformed outbox batch", e.what());
    }
    if (events.empty()) {
        // Nothing committed in between: move on without a write. Redis keeps the older position,
        // which is as good, since no event lies between the two.
        cursor_ = {upto, "", 0};
        busy_ = false;
        last_failure_.clear();
        if (wake_pending_)
            fetch();
        return;
    }
    const bool full = events.size() == static_cast<std::size_t>(settings_.batch_size);
    BridgePosition next =
        full ? BridgePosition{cursor_.since, upto, events.back().event_id} : BridgePosition{upto, "", 0};
    write(std::move(events), std::move(next), full);
}

// Two round trips: WATCH, then a check that Redis holds the position this bridge expects, then
// the batch and the new position in MULTI/EXEC. The WATCH makes EXEC fail if anyone touched the
// position or the stream in between.
void Bridge::write(std::vector<OutboxEvent> events, BridgePosition next, bool full) {
    const uint64_t cycle = cycle_;
    auto position = std::make_shared<RedisReply>();
    redis_.command({"WATCH", position_key_, settings_.stream}, [](const RedisReply &) {});
    redis_.command({"HGETALL", position_key_}, [position](const RedisReply &reply) { *position = reply; });
    redis_.command({"TYPE", settings_.stream}, [this, cycle, position, events = std::move(events),
                                                next = std::move(next), full](const RedisReply &type) {
        if (!cycle_is(cycle) || type.lost || position->lost)
            return;
        std::optional<BridgePosition> found = BridgePosition{"unreadable", "", 0};
        try {
            if (position->type == RedisReply::Type::array)
                found = position_from_hash(strings_of(*position));
        } catch (const std::invalid_argument &) {
        }
        if (found != stored_) {
            redis_.command({"UNWATCH"}, [](const RedisReply &) {});
            log_warn(kComponent, "the position in Redis changed under this bridge: reading it again");
            loaded_ = false;
            return load_position();
        }
        if (type.str != "stream" && type.str != "none") {
            redis_.command({"UNWATCH"}, [](const RedisReply &) {});
            busy_ = false;
            return fail("cannot append to " + settings_.stream, "the key holds a " + type.str + ", not a stream");
        }
        redis_.command({"MULTI"}, [](const RedisReply &) {});
        for (const OutboxEvent &event : events)
            redis_.command(xadd_event(settings_.stream, settings_.maxlen, event), [](const RedisReply &) {});
        redis_.command(hset_position(position_key_, next), [](const RedisReply &) {});
        redis_.command({"EXEC"}, [this, cycle, next, full, count = events.size()](const RedisReply &reply) {
            if (!cycle_is(cycle) || reply.lost)
                return;
            if (reply.type == RedisReply::Type::nil) {
                log_warn(kComponent, "another writer touched the position or the stream: reading it again");
                loaded_ = false;
                return load_position();
            }
            if (reply.type != RedisReply::Type::array) {
                // EXECABORT (e.g. OOM when queueing): nothing was applied; try again later.
                busy_ = false;
                return fail("Redis refused the batch", describe(reply));
            }
            for (const RedisReply &result : reply.elements)
                if (result.type == RedisReply::Type::error) {
                    // Redis does not roll back: what did apply is known only from the position.
                    loaded_ = false;
                    busy_ = false;
                    return fail("Redis failed a command inside the batch; reading the position again", result.str);
                }
            stored_ = next;
            cursor_ = next;
            busy_ = false;
            last_failure_.clear();
            log_debug(kComponent, "moved events", {{"events", count}, {"since", next.since}});
            if (full || wake_pending_)
                fetch();
        });
    });
}

void Bridge::prune() {
    if (!leading_ || !loaded_ || !pg_.ready() || cursor_.since == pruned_at_)
        return;
    // Every event visible in cursor_.since is in the stream (or there was none), so PostgreSQL
    // may delete it once every registered bridge has moved it.
    std::string since = cursor_.since;
    pg_.query("SELECT pgfeed.bridge_moved($1, $2)", {settings_.name, since}, [this, since](const PgResult &result) {
        if (!result.ok)
            return fail("cannot record the bridge position in PostgreSQL", result.error);
        pruned_at_ = since;
        if (!result.rows.empty() && result.rows[0][0] && *result.rows[0][0] != "0")
            log_debug(kComponent, "pruned moved events", {{"events", *result.rows[0][0]}});
    });
}

} // namespace pgfeed::notifier
