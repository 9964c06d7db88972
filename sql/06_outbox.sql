-- The event outbox: what each change writes, what a rollback leaves behind (nothing), and the
-- batches a bridge reads, including a transaction that writes early and commits late.
\set SHOW_CONTEXT never
CREATE TABLE outbox_items (
    id         bigint PRIMARY KEY,
    mp_id      int,
    kind       text,
    note       text,
    created_at timestamptz NOT NULL
);
SELECT pgfeed.attach('outbox_items', 'mp_id', ARRAY['kind', 'note']);
CALL pgfeed.flush();

-- A bridge in miniature: each call returns the events committed since the previous call.
CREATE TABLE bridge_at (since pg_snapshot NOT NULL);
INSERT INTO bridge_at SELECT pg_current_snapshot();
CALL pgfeed.flush();
CREATE FUNCTION next_batch() RETURNS TABLE (kind text, route text, data text) LANGUAGE plpgsql AS $$
DECLARE
    upto pg_snapshot := pg_current_snapshot();
BEGIN
    RETURN QUERY SELECT e.kind, coalesce(e.topic, e.user_key), e.data
                   FROM bridge_at b, pgfeed.events_between(b.since, upto, 0, 1000) e ORDER BY e.event_id;
    UPDATE bridge_at SET since = upto;
END
$$;

-- Inserts: one event per row with its payload columns; a payload over 4000 bytes is sent as null.
INSERT INTO outbox_items VALUES
    (1, 7, 'vote', 'aye', '2026-03-01 10:00+00'),
    (2, 8, 'speech', repeat('x', 5000), '2026-03-01 11:00+00'),
    (3, NULL, 'it''s "quoted"', NULL, '2026-03-01 12:00+00');
CALL pgfeed.flush();
SELECT * FROM next_batch();

-- Rolled back, whole or in part: nothing of what was undone is written.
BEGIN;
INSERT INTO outbox_items VALUES (10, 7, 'gone', NULL, now());
SELECT pgfeed.mark_read('o1', ARRAY[1], 'outbox_items');
ROLLBACK;
BEGIN;
INSERT INTO outbox_items VALUES (4, 7, 'kept', NULL, '2026-03-01 13:00+00');
SAVEPOINT s;
INSERT INTO outbox_items VALUES (11, 7, 'undone', NULL, now());
SELECT pgfeed.mark_read('o1', ARRAY[1], 'outbox_items');
ROLLBACK TO SAVEPOINT s;
COMMIT;
CALL pgfeed.flush();
SELECT * FROM next_batch();

-- A new created_at is an update; a new topic withdraws the item and publishes it again.
UPDATE outbox_items SET created_at = '2026-02-01 00:00+00' WHERE id = 1;
CALL pgfeed.flush();
UPDATE outbox_items SET mp_id = 9 WHERE id = 3;
CALL pgfeed.flush();
DELETE FROM outbox_items WHERE id = 2;
CALL pgfeed.flush();
UPDATE outbox_items SET note = 'not a watched column' WHERE id = 4;
CALL pgfeed.flush();
SELECT * FROM next_batch();

-- Read events carry what changed and the user's new unread count; a call that changes nothing
-- writes nothing.
SELECT pgfeed.mark_read('o1', ARRAY[1, 4], 'outbox_items');
SELECT pgfeed.mark_read('o1', ARRAY[1], 'outbox_items');
SELECT pgfeed.mark_unread('o1', ARRAY[4], 'outbox_items');
SELECT pgfeed.mark_all_read('o1', 'mp_id:7');
SELECT pgfeed.mark_all_read('o2');
SELECT pgfeed.mark_all_read('o2');
SELECT * FROM next_batch();

-- A transaction that takes its event id early and commits late is not skipped: the batch taken
-- while it runs leaves it out, the next one has it.
CREATE EXTENSION dblink;
SELECT dblink_connect('late', pg_catalog.format('dbname=%s port=%s host=%s', current_database(),
       current_setting('port'), split_part(current_setting('unix_socket_directories'), ',', 1)));
SELECT dblink_exec('late', 'BEGIN');
SELECT * FROM dblink('late', $$SELECT pgfeed.mark_read('late', ARRAY[1], 'outbox_items')$$) AS t(marked int);
INSERT INTO outbox_items VALUES (5, 7, 'early commit', NULL, '2026-03-01 14:00+00');
CALL pgfeed.flush();
SELECT * FROM next_batch();
SELECT dblink_exec('late', 'COMMIT');
SELECT * FROM next_batch();
SELECT dblink_disconnect('late');

-- Pages of a batch: after_event continues where the previous page ended.
SELECT count(*) = (SELECT count(*) - 1 FROM pgfeed.events) AS all_but_first,
       bool_and(event_id > (SELECT min(event_id) FROM pgfeed.events)) AS after_first
  FROM pgfeed.events_between('1:1:', pg_current_snapshot(), (SELECT min(event_id) FROM pgfeed.events), 1000);
SELECT count(*) FROM pgfeed.events_between('1:1:', pg_current_snapshot(), 0, 2);

-- Registering bridges: a bridge starts where it last recorded; recording prunes what every
-- registered bridge has moved, never goes backwards, and a bridge that lags holds pruning back.
SELECT pgfeed.bridge_start('b1') AS fresh_start;
SELECT pgfeed.bridge_moved('b1', pg_current_snapshot()) > 0 AS pruned;
SELECT count(*) AS left_after_prune FROM pgfeed.events;
SELECT pgfeed.bridge_start('b1')::text = (SELECT moved::text FROM pgfeed.bridges WHERE name = 'b1') AS resumes_at_record;
SELECT pgfeed.bridge_moved('b1', '1:1:') AS pruned_backwards,
       pgfeed.bridge_start('b1')::text <> '1:1:' AS did_not_go_back;
SELECT pgfeed.bridge_moved('b2', '1:1:');
INSERT INTO outbox_items VALUES (6, 7, 'held', NULL, '2026-03-01 15:00+00');
CALL pgfeed.flush();
SELECT pgfeed.bridge_moved('b1', pg_current_snapshot()) AS pruned_while_b2_lags;
SELECT pgfeed.drop_bridge('b2'), pgfeed.drop_bridge('b2');
SELECT pgfeed.bridge_moved('b1', pg_current_snapshot()) AS pruned_after_drop;

-- Bad arguments.
SELECT refusal(statement) FROM (VALUES
    ($$SELECT * FROM pgfeed.events_between(NULL, pg_current_snapshot())$$),
    ($$SELECT * FROM pgfeed.events_between('1:1:', pg_current_snapshot(), 0, 0)$$),
    ($$SELECT * FROM pgfeed.events_between('1:1:', pg_current_snapshot(), 0, 100001)$$),
    ($$SELECT * FROM pgfeed.events_between('5:5:', '1:1:')$$),
    ($$SELECT * FROM pgfeed.events_between('1:1:', '4000000000:4000000000:')$$),
    ($$SELECT * FROM pgfeed.events_between('1:1:', 'garbage')$$)) AS t(statement);

-- Only roles granted the bridge functions may call them; nobody but pgfeed reads the tables.
CREATE ROLE outbox_app;
SET ROLE outbox_app;
SELECT refusal($$SELECT * FROM pgfeed.events_between('1:1:', pg_current_snapshot())$$);
SELECT refusal($$SELECT pgfeed.bridge_moved('mine', pg_current_snapshot())$$);
SELECT refusal($$SELECT count(*) FROM pgfeed.events$$);
RESET ROLE;
DROP ROLE outbox_app;
