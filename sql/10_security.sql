-- The attacks of the security issue, as ordinary roles: none gains anything.
\set SHOW_CONTEXT never
CREATE ROLE esc_owner;    -- owns an attached table: untrusted
CREATE ROLE esc_mallory;  -- may connect, nothing else
CREATE SCHEMA esc AUTHORIZATION esc_owner;
SET ROLE esc_owner;
CREATE TABLE esc.posts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, author int, body text,
                        created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO esc.posts (author, body) VALUES (1, 'first');
RESET ROLE;
SELECT pgfeed.attach('esc.posts', 'author', ARRAY['body']);
CALL pgfeed.flush();

-- 1. The owner's cast to json would run when the payload is built (as superuser up to 0.3.0).
SET ROLE esc_owner;
CREATE TYPE esc.mood AS ENUM ('hello');
CREATE FUNCTION esc.mood_json(esc.mood) RETURNS json LANGUAGE plpgsql AS
 $$BEGIN EXECUTE 'ALTER ROLE esc_owner SUPERUSER'; RETURN to_json($1::text); END$$;
CREATE CAST (esc.mood AS json) WITH FUNCTION esc.mood_json(esc.mood);
ALTER TABLE esc.posts ALTER COLUMN body TYPE esc.mood USING 'hello';
SELECT refusal($$INSERT INTO esc.posts (author, body) VALUES (1, 'hello')$$);
RESET ROLE;
SELECT refusal($$INSERT INTO esc.posts (author, body) VALUES (1, 'hello')$$);
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_owner';

-- attach refuses such a payload column; a topic column of such a type is read with its output
-- function, never with the owner's cast to text, by attach's backfill and by the trigger.
SET ROLE esc_owner;
CREATE FUNCTION esc.mood_text(esc.mood) RETURNS text LANGUAGE plpgsql AS
 $$BEGIN EXECUTE 'ALTER ROLE esc_owner SUPERUSER'; RETURN 'cast'; END$$;
CREATE CAST (esc.mood AS text) WITH FUNCTION esc.mood_text(esc.mood);
CREATE TABLE esc.moods (id bigint PRIMARY KEY, m esc.mood, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO esc.moods VALUES (1, 'hello');
RESET ROLE;
SELECT refusal($$SELECT pgfeed.attach('esc.moods', 'id', ARRAY['m'])$$);
SELECT pgfeed.attach('esc.moods', 'm');
INSERT INTO esc.moods VALUES (2, 'hello');
CALL pgfeed.flush();
SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_owner';
SELECT DISTINCT topic FROM pgfeed.page('anyone', 'all', 1000) WHERE source = 'esc.moods'::regclass;

-- 2. Forged items: pgfeed's trigger function is not granted to PUBLIC, and even a role that has
-- it adds nothing for a table that is not attached, nor with other columns than attach gave it.
SET ROLE esc_mallory;
CREATE TEMP TABLE fake (id bigint, author int, created_at timestamptz);
SELECT refusal($$CREATE TRIGGER pgfeed_capture AFTER INSERT ON fake FOR EACH ROW
                 EXECUTE FUNCTION pgfeed._capture('id', 'author', 'created_at')$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION pgfeed._capture() TO esc_mallory;
SET ROLE esc_mallory;
CREATE TRIGGER pgfeed_capture AFTER INSERT ON fake FOR EACH ROW EXECUTE FUNCTION pgfeed._capture('id', 'author', 'created_at');
SELECT refusal($$INSERT INTO fake SELECT g, 1, now() FROM generate_series(1, 200) g$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION pgfeed._capture() FROM esc_mallory;
SET ROLE esc_owner;
ALTER TABLE esc.posts ALTER COLUMN body TYPE text USING 'restored';
DROP TRIGGER pgfeed_capture ON esc.posts;
RESET ROLE;
-- The owner recreates the trigger with another topic column, or as a BEFORE trigger (whose row
-- another trigger could still change or cancel): refused at the first row.
CREATE TRIGGER pgfeed_capture AFTER INSERT ON esc.posts FOR EACH ROW EXECUTE FUNCTION pgfeed._capture('id', 'id', 'created_at', 'body');
SELECT refusal($$INSERT INTO esc.posts (author, body) VALUES (2, 'forged')$$);
DROP TRIGGER pgfeed_capture ON esc.posts;
CREATE TRIGGER pgfeed_capture BEFORE INSERT ON esc.posts FOR EACH ROW EXECUTE FUNCTION pgfeed._capture('id', 'author', 'created_at', 'body');
SELECT refusal($$INSERT INTO esc.posts (author, body) VALUES (2, 'forged')$$);
DROP TRIGGER pgfeed_capture ON esc.posts;
SELECT pgfeed._capture_trigger_sql('esc.posts') \gexec
-- An id column that stops being an integer after attach is refused, not read as a pointer.
SET ROLE esc_owner;
DROP TRIGGER pgfeed_capture ON esc.posts;
ALTER TABLE esc.posts ALTER COLUMN id DROP IDENTITY;
ALTER TABLE esc.posts ALTER COLUMN id TYPE text;
RESET ROLE;
SELECT pgfeed._capture_trigger_sql('esc.posts') \gexec
SELECT refusal($$INSERT INTO esc.posts (id, author, body) VALUES ('x1', 3, 'text id')$$);
CALL pgfeed.flush();
SELECT count(*) AS forged_items FROM pgfeed.items WHERE NOT deleted AND source NOT IN (SELECT source FROM pgfeed.sources);

-- 3. Least privilege: a role with pgfeed_app reads through pgfeed only the tables it may read.
SELECT min(activity_id) AS esc_item FROM pgfeed.items WHERE source = 'esc.posts'::regclass AND NOT deleted \gset
GRANT pgfeed_app TO esc_mallory;
GRANT USAGE ON SCHEMA esc TO esc_mallory;
SET ROLE esc_mallory;
SELECT count(*) AS esc_items_shown FROM pgfeed.page('m', 'all', 1000) WHERE source = 'esc.posts'::regclass;
SELECT pgfeed.is_read('m', :esc_item, 'esc.posts') AS hidden;
RESET ROLE;
GRANT SELECT ON esc.posts TO esc_mallory;
SET ROLE esc_mallory;
SELECT count(*) > 0 AS esc_items_shown FROM pgfeed.page('m', 'all', 1000) WHERE source = 'esc.posts'::regclass;
RESET ROLE;

-- 4. pgfeed.user_key: set, it holds for following too, and the session cannot lift it or name
-- another user; it ends with the transaction that set it.
SET ROLE esc_mallory;
BEGIN;
SET LOCAL pgfeed.user_key = 'alice';
SELECT refusal($$SELECT * FROM pgfeed.following('bob')$$);
SELECT refusal($$SELECT pgfeed.unread_count('bob')$$);
SELECT refusal($$SET LOCAL pgfeed.user_key = 'bob'$$);
SELECT refusal($$SET LOCAL pgfeed.user_key = ''$$);
SELECT count(*) AS alice_follows FROM pgfeed.following('alice');
COMMIT;
SELECT current_setting('pgfeed.user_key') = '' AS unrestricted_after_commit;
RESET ROLE;

-- What an operator checks: PUBLIC may run payload only (it reads rows with the caller's rights).
SELECT p.proname AS public_may_run FROM pg_proc p
 WHERE p.pronamespace = 'pgfeed'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1;
SELECT p.proname AS runs_as_owner FROM pg_proc p WHERE p.pronamespace = 'pgfeed'::regnamespace AND p.prosecdef
 ORDER BY 1;

-- The owner of an attached table (an ordinary role) drops it: detached on the way, its items
-- leave every feed, though the owner has no right on pgfeed's tables.
SELECT count(*) > 0 AS moods_items FROM pgfeed.items WHERE source::oid = 'esc.moods'::regclass::oid AND NOT deleted;
SELECT 'esc.moods'::regclass::oid AS moods_oid \gset
SET ROLE esc_owner;
DROP TABLE esc.moods;
RESET ROLE;
SELECT (SELECT count(*) FROM pgfeed.sources WHERE source::oid = :moods_oid) AS moods_sources,
       (SELECT count(*) FROM pgfeed.items WHERE source::oid = :moods_oid AND NOT deleted) AS moods_live_items,
       (SELECT rolsuper FROM pg_roles WHERE rolname = 'esc_owner') AS owner_superuser;

REVOKE pgfeed_app FROM esc_mallory;
SELECT pgfeed.detach('esc.posts') >= 0;
CALL pgfeed.flush();
DROP SCHEMA esc CASCADE;
DROP TABLE pg_temp.fake;
DROP ROLE esc_owner, esc_mallory;
