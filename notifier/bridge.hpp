// The bridge: moves committed events from PostgreSQL's outbox into the Redis stream, exactly once
// and in commit order (invariant I4).
//
// Each cycle reads the next batch with pgfeed.events_between (the PgQ snapshot technique) and
// appends it to the stream together with the new position, in one MULTI/EXEC: a crash anywhere
// leaves both or neither. The transaction runs under WATCH of the position and the stream, after
// checking that the position is the one this bridge last wrote, so even two bridges that both
// believe they lead (one about to lose its PostgreSQL session) cannot write a batch twice.
//
// One bridge moves at a time: the one that holds a PostgreSQL advisory lock on its session. The
// others stand by and try to take the lock every takeover_ms.
#pragma once

#include "bridge_position.hpp"
#include "config.hpp"
#include "event_ptr.hpp"
#include "pg_link.hpp"
#include "redis_link.hpp"

#include <cstdint>
#include <memory>
#include <string>

struct event_base;

namespace pgfeed::notifier {

class Bridge {
  public:
    Bridge(event_base *base, const Config &config);
    ~Bridge();
    Bridge(const Bridge &) = delete;
    Bridge &operator=(const Bridge &) = delete;

    void start();
    // Closes both sessions; the advisory lock goes with the PostgreSQL one.
    void stop();

  private:
    void on_pg_ready();
    void on_pg_lost();
    void on_redis_ready();
    void on_redis_lost();
    void try_to_lead();
    void take_lock();
    void load_position();
    void start_from_postgres(uint64_t cycle);
    void wake();
    void fetch();
    void on_batch(const PgResult &result, bool with_snapshot);
    void write(std::vector<OutboxEvent> events, BridgePosition next, bool full);
    void prune();
    // Gives up the current cycle: replies still in flight for it are ignored.
    void abandon_cycle();
    void fail(const std::string &what, const std::string &detail);
    static void arm(event *timer, int ms);
    bool cycle_is(uint64_t cycle) const { return cycle == cycle_ && leading_; }

    BridgeConfig settings_;
    std::string position_key_;
    PgLink pg_;
    RedisLink redis_;
    EventPtr tick_timer_, takeover_timer_, prune_timer_;

    bool leading_ = false;      // holds the advisory lock
    bool standing_by_ = false;  // said so in the log
    bool loaded_ = false;       // stored_ and cursor_ are read from Redis since the last loss
    bool busy_ = false;         // a cycle is under way
    bool wake_pending_ = false; // a NOTIFY or tick came during the cycle
    uint64_t cycle_ = 0;
    std::optional<BridgePosition> stored_; // what Redis holds, as last read or written
    BridgePosition cursor_;                // where the next batch starts; past stored_ over empty batches
    std::string pruned_at_;                // the since last reported to PostgreSQL
    std::string last_failure_;             // logged once until a cycle succeeds
};

} // namespace pgfeed::notifier
