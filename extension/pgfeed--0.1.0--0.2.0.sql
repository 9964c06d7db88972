-- pgfeed 0.1.0 -> 0.2.0: the event outbox that pgfeed-notifier moves into a Redis stream.
\echo Use "ALTER EXTENSION pgfeed UPDATE TO '0.2.0'" to load this file. \quit

-- Events written by the transactions that cause them, so they commit or vanish with them. txid
-- orders them into batches the way PgQ does: a batch is what one snapshot sees and an earlier one
-- did not, so a transaction that wrote early and committed late still lands in a later batch.
-- Within a batch, event_id order is commit order wherever two transactions conflict: inserts are
-- written under the sequencer lock, a user's read events under that user's reader lock.
CREATE TABLE pgfeed.events (
    event_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid       xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    kind       text        NOT NULL CHECK (kind IN ('activity', 'read')),
    topic      text,       -- activity events: the item's topic, if any
    user_key   text,       -- read events: whose read state changed
    data       text        NOT NULL, -- JSON, sent as is
    written_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
) -- A queue: rows come and go in bulk, so vacuum and analyze by row count, not by a fraction of a
  -- size that swings between empty and millions.
  WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 20000);
CREATE INDEX events_txid ON pgfeed.events (txid);

-- How far each bridge (one per Redis stream) has moved the outbox: every event visible in `moved`
-- is in its stream. Events every bridge has moved are pruned.
CREATE TABLE pgfeed.bridges (
    name     text        PRIMARY KEY,
    moved    pg_snapshot NOT NULL,
    moved_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON pgfeed.events, pgfeed.bridges FROM PUBLIC;

-- Where a bridge starts when its stream holds no position: where it last recorded, or else the
-- oldest event kept.
CREATE FUNCTION pgfeed.bridge_start(bridge text) RETURNS pg_snapshot
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT b.moved FROM pgfeed.bridges b WHERE b.name = bridge), '1:1:'::pg_snapshot)
$$;

-- The events of transactions visible in `upto` but not in `since`, in event order, after
-- `after_event`, at most `max_events` of them. at_us is written_at in microseconds since the epoch.
CREATE FUNCTION pgfeed.events_between(since pg_snapshot, upto pg_snapshot, after_event bigint DEFAULT 0,
                                      max_events int DEFAULT 1000)
    RETURNS TABLE (event_id bigint, kind text, topic text, user_key text, data text, at_us bigint)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    -- The outbox grows and empties faster than statistics follow: a planner that believes it
    -- small would read all of it for every page. Every query here has an index made for it.
    SET enable_seqscan = off
AS $$
BEGIN
    IF since IS NULL OR upto IS NULL OR after_event IS NULL OR max_events IS NULL THEN
        RAISE EXCEPTION 'pgfeed.events_between: arguments must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_events NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'pgfeed.events_between: max_events % is outside 1..100000', max_events
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_snapshot_xmax(upto) < pg_snapshot_xmax(since) THEN
        RAISE EXCEPTION 'pgfeed.events_between: upto % is older than since %', upto, since
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the snapshots in the order they were taken.';
    END IF;
    -- A snapshot from the future would see transactions this one cannot read yet.
    IF pg_snapshot_xmax(upto) > pg_snapshot_xmax(pg_current_snapshot()) THEN
        RAISE EXCEPTION 'pgfeed.events_between: upto % is newer than the current snapshot', upto
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Take upto with pg_current_snapshot().';
    END IF;
    -- EXECUTE plans each page with its values. A batch's first page finds its events through
    -- their txids; the later pages walk event ids on from the previous page, because scanning the
    -- batch's whole txid range again for every page would make a large batch cost its size squared.
    IF after_event = 0 THEN
        RETURN QUERY EXECUTE
            'SELECT e.event_id, e.kind, e.topic, e.user_key, e.data,
                    (extract(epoch FROM e.written_at) * 1000000)::bigint
               FROM pgfeed.events e
              WHERE e.txid >= pg_snapshot_xmin($1) AND e.txid < pg_snapshot_xmax($2)
                AND pg_visible_in_snapshot(e.txid, $2) AND NOT pg_visible_in_snapshot(e.txid, $1)
              ORDER BY e.event_id
              LIMIT $3'
            USING since, upto, max_events;
    ELSE
        RETURN QUERY EXECUTE
            'SELECT e.event_id, e.kind, e.topic, e.user_key, e.data,
                    (extract(epoch FROM e.written_at) * 1000000)::bigint
               FROM pgfeed.events e
              WHERE e.event_id > $3
                AND pg_visible_in_snapshot(e.txid, $2) AND NOT pg_visible_in_snapshot(e.txid, $1)
              ORDER BY e.event_id
              LIMIT $4'
            USING since, upto, after_event, max_events;
    END IF;
END
$$;

-- Records that `bridge` has moved every event visible in `moved` (never backwards), then deletes
-- the events every registered bridge has moved. Returns how many it deleted.
CREATE FUNCTION pgfeed.bridge_moved(bridge text, moved pg_snapshot) RETURNS bigint
    LANGUAGE sql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pgfeed.bridges AS b (name, moved) VALUES (bridge, moved)
        ON CONFLICT (name) DO UPDATE SET moved = EXCLUDED.moved, moved_at = now()
        WHERE pg_snapshot_xmax(b.moved) <= pg_snapshot_xmax(EXCLUDED.moved);
    -- Below a snapshot's xmin every transaction is finished, so it sees all their events.
    WITH gone AS (
        DELETE FROM pgfeed.events e
         WHERE e.txid < (SELECT min(pg_snapshot_xmin(b.moved)) FROM pgfeed.bridges b)
        RETURNING 1)
    SELECT count(*) FROM gone;
$$;

-- Forgets a bridge that will not come back, so that it no longer holds events from pruning.
CREATE FUNCTION pgfeed.drop_bridge(bridge text) RETURNS bool
    LANGUAGE sql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM pgfeed.bridges b WHERE b.name = bridge RETURNING 1)
    SELECT count(*) > 0 FROM gone;
$$;

-- The notifier's role gets these by GRANT EXECUTE; apps never need them.
REVOKE ALL ON FUNCTION pgfeed.bridge_start(text), pgfeed.events_between(pg_snapshot, pg_snapshot, bigint, int),
    pgfeed.bridge_moved(text, pg_snapshot), pgfeed.drop_bridge(text) FROM PUBLIC;
