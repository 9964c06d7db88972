-- The C++ boundary, per-user restriction, and search_path safety.

-- A damaged read-state row makes the C++ decoder throw: the caller gets a clean ERROR with
-- SQLSTATE XX001, the backend survives, and the same session keeps working.
SELECT pgfeed.mark_read('damaged', ARRAY[5]);
UPDATE pgfeed.read_chunks SET bits = '\x010203'
 WHERE user_id = (SELECT user_id FROM pgfeed.readers WHERE user_key = 'damaged');
CALL pgfeed.flush();
SELECT refusal($$SELECT pgfeed.is_read('damaged', 5)$$);
SELECT refusal($$SELECT pgfeed.mark_read('damaged', ARRAY[6])$$);
SELECT pg_backend_pid() = pg_backend_pid() AS same_session, pgfeed.unread_count('u2');
DELETE FROM pgfeed.read_chunks
 WHERE user_id = (SELECT user_id FROM pgfeed.readers WHERE user_key = 'damaged');
CALL pgfeed.flush();
SELECT pgfeed.is_read('damaged', 6);

-- A PostgreSQL error raised inside SPI under C++ frames reaches the caller unchanged (here a
-- CHECK constraint that refuses one user key), and the session goes on.
ALTER TABLE pgfeed.readers ADD CONSTRAINT test_refuse CHECK (user_key <> 'refused');
SELECT refusal($$SELECT pgfeed.mark_read('refused', ARRAY[1])$$);
ALTER TABLE pgfeed.readers DROP CONSTRAINT test_refuse;
SELECT pgfeed.mark_read('refused', ARRAY[1]);

-- pgfeed.user_key limits a session to one user's state.
SET pgfeed.user_key = 'u2';
SELECT pgfeed.unread_count('u2');
SELECT refusal($$SELECT pgfeed.unread_count('u3')$$);
SELECT refusal($$SELECT pgfeed.mark_read('u3', ARRAY[1])$$);
SELECT refusal($$SELECT * FROM pgfeed.page('u3')$$);
RESET pgfeed.user_key;
SELECT pgfeed.unread_count('u3') >= 0 AS any_user_again;

-- An unprivileged role reaches read state only through the functions, and those only once it
-- is granted pgfeed_reader or pgfeed_app: nothing is granted to PUBLIC.
CREATE ROLE feed_app;
GRANT SELECT ON activities TO feed_app;
SET ROLE feed_app;
SELECT refusal($$SELECT * FROM pgfeed.read_chunks$$);
SELECT refusal($$UPDATE pgfeed.readers SET horizon = 0$$);
SELECT refusal($$SELECT pgfeed.unread_count('u2')$$);
SELECT refusal($$SELECT pgfeed.mark_read('u2', ARRAY[1]::bigint[])$$);
SELECT refusal($$SELECT * FROM pgfeed.following('u2')$$);
SELECT refusal($$CALL pgfeed.flush()$$);
RESET ROLE;
GRANT pgfeed_reader TO feed_app;
SET ROLE feed_app;
SELECT pgfeed.unread_count('u2');
SELECT refusal($$SELECT pgfeed.mark_read('u2', ARRAY[1]::bigint[])$$);
RESET ROLE;
GRANT pgfeed_app TO feed_app;
SET ROLE feed_app;
SELECT pgfeed.mark_unread('u2', ARRAY[-1]::bigint[]) AS may_mark;
SELECT refusal($$SELECT pgfeed.attach('activities', 'mp_id')$$);
CALL pgfeed.flush();
RESET ROLE;
REVOKE SELECT ON activities FROM feed_app;

-- A hostile search_path cannot redirect the functions: an operator that lies about equality in
-- a schema searched first changes nothing.
CREATE SCHEMA hostile;
CREATE FUNCTION hostile.always_true(text, text) RETURNS bool LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.always_true);
SET search_path = hostile, public, pg_catalog;
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('nobody-at-all');
RESET search_path;
DROP SCHEMA hostile CASCADE;
REVOKE pgfeed_app, pgfeed_reader FROM feed_app;
DROP ROLE feed_app;
