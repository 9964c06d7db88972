-- What an HTTP feed API needs beyond pages and counts (0.3.0): an item's payload as push events
-- carry it, and the topics a user follows.
\set SHOW_CONTEXT never
CREATE TABLE api_items (
    id         bigint PRIMARY KEY,
    mp_id      int,
    kind       text,
    note       text,
    created_at timestamptz NOT NULL
);
SELECT pgfeed.attach('api_items', 'mp_id', ARRAY['kind', 'note']);
CALL pgfeed.flush();
INSERT INTO api_items VALUES
    (1, 7, 'vote', 'a "quoted" note', '2026-01-01'),
    (2, 8, 'speech', NULL, '2026-01-02'),
    (3, 7, 'vote', repeat('x', 5000), '2026-01-03');
CALL pgfeed.flush();

-- The page joined to each item's payload, as pgfeed-notifier's /v1/feed asks for it: the same
-- object an activity event carries, null above 4000 bytes.
SELECT p.activity_id, p.topic, pgfeed.payload(p.source, p.activity_id)
  FROM pgfeed.page('api-user', 'all', 10) p WHERE p.source = 'api_items'::regclass ORDER BY p.position;
SELECT data::json -> 'payload' AS event_payload FROM pgfeed.events
 WHERE kind = 'activity' AND data::json ->> 'source' = 'public.api_items' AND data::json ->> 'op' = 'insert'
 ORDER BY event_id;

-- No payload: the row is gone, the table publishes no columns, or it is not attached.
SELECT pgfeed.payload('api_items', 99) AS gone;
CREATE TABLE api_bare (id bigint PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL);
SELECT pgfeed.attach('api_bare', 'mp_id');
CALL pgfeed.flush();
INSERT INTO api_bare VALUES (1, 7, '2026-01-04');
CALL pgfeed.flush();
SELECT pgfeed.payload('api_bare', 1) AS no_columns, pgfeed.payload('pg_class', 1) AS not_attached,
       pgfeed.payload(NULL, 1) AS null_source;

-- The rows are read with the caller's rights: a role that may not read the table gets an error.
CREATE ROLE api_reader;
SET ROLE api_reader;
SELECT refusal($$SELECT pgfeed.payload('api_items', 1)$$);
RESET ROLE;
GRANT SELECT ON api_items TO api_reader;
SET ROLE api_reader;
SELECT pgfeed.payload('api_items', 2) AS granted;
RESET ROLE;
REVOKE SELECT ON api_items FROM api_reader;
DROP ROLE api_reader;

-- Follows, in name order; an unknown user follows nothing.
SELECT pgfeed.follow('api-user', t) FROM unnest(ARRAY['mp_id:8', 'mp_id:7', 'mp_id:10']) t;
SELECT * FROM pgfeed.following('api-user');
SELECT pgfeed.unfollow('api-user', 'mp_id:8');
SELECT array(SELECT pgfeed.following('api-user')) AS after_unfollow,
       array(SELECT pgfeed.following('nobody')) AS unknown_user;
SELECT refusal($$SELECT * FROM pgfeed.following(NULL)$$);

SELECT pgfeed.detach('api_items'), pgfeed.detach('api_bare');
CALL pgfeed.flush();
DROP TABLE api_items, api_bare;
