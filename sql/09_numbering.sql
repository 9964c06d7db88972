-- Numbering after commit (0.4.0): committed rows wait in pgfeed.pending until a round numbers them;
-- CALL pgfeed.flush() waits for that. What readers see meanwhile, marks on items not numbered yet,
-- and what a round nets out.
\set SHOW_CONTEXT never
CREATE TABLE posts (id bigint PRIMARY KEY, mp_id int, kind text, created_at timestamptz NOT NULL);
SELECT pgfeed.attach('posts', 'mp_id', ARRAY['kind']);
CALL pgfeed.flush();
SELECT coalesce(max(position), 0) AS base FROM pgfeed.page('n', 'all', 1) \gset

-- Inside the inserting transaction nothing is numbered: readers see only numbered items.
BEGIN;
INSERT INTO posts VALUES (9001, 1, 'vote', '2026-05-01'), (9002, 2, 'speech', '2026-05-02');
SELECT op, activity_id, topic, payload FROM pgfeed.pending ORDER BY change_id;
SELECT count(*) AS visible FROM pgfeed.page('n', 'all', 10) WHERE position > :base;
-- The author marks their own new item read before it has a position: recorded, applied later.
SELECT pgfeed.mark_read('author', ARRAY[9001]::bigint[]) AS recorded;
SELECT pgfeed.is_read('author', 9001) AS not_an_item_yet;
COMMIT;
CALL pgfeed.flush();
SELECT position - :base AS pos, activity_id, topic FROM pgfeed.page('n', 'all', 10) WHERE position > :base;
SELECT pgfeed.is_read('author', 9001) AS own_item_read, pgfeed.is_read('author', 9002) AS other_unread,
       pgfeed.unread_count('author') = pgfeed.unread_count('n') - 1 AS counted;
SELECT count(*) AS pending_left FROM pgfeed.pending;
SELECT count(*) AS early_marks_left FROM pgfeed.early_marks;

-- A later mark of the same item by the same user replaces an earlier one not yet applied.
BEGIN;
INSERT INTO posts VALUES (9003, 1, 'vote', '2026-05-03');
SELECT pgfeed.mark_read('changes-mind', ARRAY[9003]::bigint[]) AS recorded;
SELECT pgfeed.mark_unread('changes-mind', ARRAY[9003]::bigint[]) AS withdrawn;
COMMIT;
CALL pgfeed.flush();
SELECT pgfeed.is_read('changes-mind', 9003) AS read_after_unmark;

-- Inserted and deleted before numbering: no item, no position, no event; the mark goes too.
SELECT max(event_id) AS last_event FROM pgfeed.events \gset
BEGIN;
INSERT INTO posts VALUES (9004, 1, 'gone', '2026-05-04');
SELECT pgfeed.mark_read('author', ARRAY[9004]::bigint[]) AS recorded;
DELETE FROM posts WHERE id = 9004;
COMMIT;
CALL pgfeed.flush();
SELECT pgfeed.is_read('author', 9004) AS no_item, (SELECT count(*) FROM pgfeed.early_marks) AS early_marks_left;
SELECT count(*) AS events_of_9004 FROM pgfeed.events WHERE event_id > :last_event AND data LIKE '%"activity_id" : 9004,%';

-- A topic changed and changed back in one transaction: the item stays where it is, as it was.
SELECT position AS pos1 FROM pgfeed.page('n', 'all', 100) WHERE activity_id = 9001 \gset
BEGIN;
UPDATE posts SET mp_id = 9 WHERE id = 9001;
UPDATE posts SET mp_id = 1 WHERE id = 9001;
COMMIT;
CALL pgfeed.flush();
SELECT position = :pos1 AS same_position, topic FROM pgfeed.page('n', 'all', 100) WHERE activity_id = 9001;
SELECT pgfeed.is_read('author', 9001) AS still_read;

-- In two transactions it is news: deleted, and published again at a new position, unread.
UPDATE posts SET mp_id = 9 WHERE id = 9001;
UPDATE posts SET mp_id = 1 WHERE id = 9001;
CALL pgfeed.flush();
SELECT position > :pos1 AS moved_up, topic FROM pgfeed.page('n', 'all', 100) WHERE activity_id = 9001;
SELECT pgfeed.is_read('author', 9001) AS unread_again;

-- A new created_at changes the item in place.
UPDATE posts SET created_at = '2026-06-01' WHERE id = 9002;
CALL pgfeed.flush();
SELECT created_at FROM pgfeed.page('n', 'all', 100) WHERE activity_id = 9002;

-- Rolled back to a savepoint, with the constraints made immediate (0.3.0 lost these), or in a
-- PL/pgSQL block that failed: nothing of it remains.
BEGIN;
INSERT INTO posts VALUES (9010, 1, 'kept', '2026-05-10');
SAVEPOINT s;
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO posts VALUES (9011, 1, 'rolled back', '2026-05-11');
DELETE FROM posts WHERE id = 9002;
ROLLBACK TO s;
COMMIT;
DO $$
BEGIN
    BEGIN
        INSERT INTO posts VALUES (9012, 1, 'failed block', '2026-05-12');
        DELETE FROM posts WHERE id = 9003;
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
END
$$;
CALL pgfeed.flush();
SELECT activity_id, pgfeed.is_read('n', activity_id) IS NOT NULL AS is_item
  FROM (VALUES (9002), (9003), (9010), (9011), (9012)) AS v(activity_id) ORDER BY 1;
SELECT count(*) AS items, count(DISTINCT activity_id) AS ids FROM pgfeed.page('n', 'all', 1000) p
 WHERE p.source = 'posts'::regclass;
SELECT count(*) AS rows FROM posts;

-- Positions stay dense and gap-free: tombstones keep theirs.
SELECT max(position) - min(position) + 1 = count(*) AS dense FROM pgfeed.items;

-- The numbering settings: events carry created_at in UTC whoever numbers them.
INSERT INTO posts VALUES (9020, 3, 'late', '2026-05-20 12:00+02');
CALL pgfeed.flush();
SELECT data::json ->> 'created_at' AS created_at FROM pgfeed.events WHERE data LIKE '%"activity_id" : 9020,%';

-- detach drops what still waits for numbering.
BEGIN;
INSERT INTO posts VALUES (9021, 3, 'never numbered', '2026-05-21');
COMMIT;
SELECT pgfeed.detach('posts') > 0 AS detached;
CALL pgfeed.flush();
SELECT count(*) AS pending_of_posts FROM pgfeed.pending WHERE source = 'posts'::regclass;
SELECT count(*) AS live_items_of_posts FROM pgfeed.items WHERE source = 'posts'::regclass AND NOT deleted;
DROP TABLE posts;

-- A partitioned table: its partitions' rows are items of the table that was attached.
CREATE TABLE parted (id bigint, mp_id int, created_at timestamptz NOT NULL, PRIMARY KEY (id, mp_id)) PARTITION BY LIST (mp_id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES IN (2);
SELECT pgfeed.attach('parted', 'mp_id');
INSERT INTO parted VALUES (9101, 1, '2026-05-01'), (9102, 2, '2026-05-02');
CALL pgfeed.flush();
SELECT activity_id, source, topic FROM pgfeed.page('n', 'all', 2) ORDER BY activity_id;

-- Dropped while attached: detached on the way, its items leave every feed and count.
SELECT pgfeed.unread_count('n') AS before_drop;
DROP TABLE parted;
SELECT pgfeed.unread_count('n') AS after_drop, (SELECT count(*) FROM pgfeed.sources WHERE source::oid NOT IN (SELECT oid FROM pg_class)) AS stale_sources;

-- The library serves one schema version and says what to run for any other.
SELECT extversion AS installed FROM pg_extension WHERE extname = 'pgfeed' \gset
UPDATE pg_extension SET extversion = '0.3.0' WHERE extname = 'pgfeed';
SELECT refusal($$SELECT pgfeed.unread_count('n')$$);
UPDATE pg_extension SET extversion = '9.0.0' WHERE extname = 'pgfeed';
SELECT refusal($$SELECT pgfeed.unread_count('n')$$);
UPDATE pg_extension SET extversion = :'installed' WHERE extname = 'pgfeed';
SELECT pgfeed.unread_count('nobody') AS works_again;
