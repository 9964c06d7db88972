-- Attaching app tables as feed sources: backfill, triggers, and every refusal.
CREATE EXTENSION pgfeed;
\set SHOW_CONTEXT never

-- Runs a statement that must fail and shows what the caller sees: SQLSTATE, message and hint.
CREATE FUNCTION refusal(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text; message text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || message || CASE WHEN hint <> '' THEN ' (hint: ' || hint || ')' ELSE '' END;
END
$$;

CREATE TABLE mps (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE activities (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL,
    mp_id      int,
    bill_id    int,
    created_at timestamptz NOT NULL
);
INSERT INTO mps VALUES (1, 'Ada'), (2, 'Brook'), (3, 'Cato');
CALL pgfeed.flush();
INSERT INTO activities (type, mp_id, created_at)
SELECT 'vote', g % 3 + 1, timestamptz '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 6) g;
CALL pgfeed.flush();

-- Existing rows are numbered in (created_at, id) order.
SELECT pgfeed.attach('activities', topic_column => 'mp_id', payload_columns => ARRAY['type', 'bill_id']);
CALL pgfeed.flush();
SELECT position, activity_id, source, topic, is_read FROM pgfeed.page('reader', page_size => 10);
SELECT * FROM pgfeed.sources;

-- New rows are numbered at commit.
INSERT INTO activities (type, mp_id, created_at) VALUES ('speech', 2, '2026-01-02');
CALL pgfeed.flush();
SELECT position, activity_id, topic FROM pgfeed.page('reader', page_size => 2);

-- Refusals.
CREATE TABLE speeches (id bigint PRIMARY KEY, mp_id int, title text, created_at timestamptz, day date);
CREATE VIEW activity_view AS SELECT * FROM activities;
SELECT refusal(statement) FROM (VALUES
    ($$SELECT pgfeed.attach('activities', 'mp_id')$$),
    ($$SELECT pgfeed.attach('speeches', 'no_such_column')$$),
    ($$SELECT pgfeed.attach('speeches', 'mp_id', id_column => 'title')$$),
    ($$SELECT pgfeed.attach('speeches', 'mp_id', created_column => 'day')$$),
    ($$SELECT pgfeed.attach('speeches', 'mp_id', payload_columns => ARRAY['nope'])$$),
    ($$SELECT pgfeed.attach(NULL, 'mp_id')$$),
    ($$SELECT pgfeed.attach('speeches', NULL)$$),
    ($$SELECT pgfeed.attach('speeches', 'mp_id', payload_columns => NULL)$$),
    ($$SELECT pgfeed.attach('no_such_table', 'mp_id')$$),
    ($$SELECT pgfeed.attach('activity_view', 'mp_id')$$),
    ($$SELECT pgfeed.detach('speeches')$$),
    ($$SELECT pgfeed.detach(NULL)$$),
    ($$TRUNCATE activities$$)) AS t(statement);
DROP TABLE speeches;

-- Detaching turns the items into tombstones and drops the triggers; attaching again backfills.
CREATE TABLE notes (id int PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL);
INSERT INTO notes VALUES (1, 3, '2026-02-01'), (2, 1, '2026-02-02');
CALL pgfeed.flush();
SELECT pgfeed.attach('notes', 'mp_id');
CALL pgfeed.flush();
SELECT pgfeed.unread_count('reader');
SELECT pgfeed.detach('notes');
CALL pgfeed.flush();
SELECT pgfeed.unread_count('reader');
INSERT INTO notes VALUES (3, 1, '2026-02-03');
CALL pgfeed.flush();
SELECT pgfeed.unread_count('reader');
SELECT pgfeed.attach('notes', 'mp_id');
CALL pgfeed.flush();
SELECT position, activity_id, source, topic FROM pgfeed.page('reader', page_size => 3);
SELECT pgfeed.detach('notes');
CALL pgfeed.flush();
DROP TABLE notes;
