-- within => LIKE patterns bound what a call sees and changes (the notifier passes a token's
-- topics): items of other topics, and items without a topic, are neither shown, counted, marked
-- nor confirmed to exist.
\set SHOW_CONTEXT never
CREATE TABLE bounded (id bigint PRIMARY KEY, mp_id text, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('bounded', 'mp_id');
-- mp_id:1 and mp_id:2 interleaved (so a merge of the two would show), mp_id:10 beside mp_id:1
-- (a pattern without a wildcard must not take it), one row without a topic, and mpxid-like values
-- that only an unescaped _ would match.
INSERT INTO bounded (id, mp_id)
    SELECT g, CASE WHEN g % 2 = 0 THEN '1' ELSE '2' END FROM generate_series(9301, 9340) g;
INSERT INTO bounded (id, mp_id) VALUES (9341, '10'), (9342, NULL), (9343, '1');
CREATE TABLE lookalike (id bigint PRIMARY KEY, mpxid text, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('lookalike', 'mpxid');
INSERT INTO lookalike VALUES (9344, '1');
CALL pgfeed.flush();
SELECT pgfeed.follow('w', t) FROM unnest(ARRAY['mp_id:1', 'mp_id:2', 'mp_id:10', 'mpxid:1']) t;

-- Reads: 'following' is the followed topics within the bound.
SELECT * FROM pgfeed.following('w', ARRAY['mp\_id:1']);
SELECT * FROM pgfeed.following('w', ARRAY['mp\_id:1%']);
SELECT array_agg(activity_id ORDER BY position DESC) AS page_one, min(position) AS cursor
FROM pgfeed.page('w', 'following', 5, within => ARRAY['mp\_id:1']) \gset
SELECT :'page_one' AS page_one,
       array(SELECT activity_id FROM pgfeed.page('w', 'following', 5, :cursor, within => ARRAY['mp\_id:1'])) AS page_two;
SELECT count(*) AS bounded_following, count(*) FILTER (WHERE topic <> 'mp_id:1') AS outside
FROM pgfeed.page('w', 'following', 1000, within => ARRAY['mp\_id:1']);
SELECT pgfeed.unread_count('w', 'following', ARRAY['mp\_id:1']) AS unread_bounded,
       pgfeed.unread_count('w', 'following') AS unread_unbounded,
       pgfeed.unread_count('w', 'mp_id:2', ARRAY['mp\_id:1']) AS topic_outside,
       pgfeed.unread_count('w', 'mp_id:1', ARRAY['mp\_id:1']) AS topic_inside,
       pgfeed.count_since('w', 'following', :cursor, ARRAY['mp\_id:1']) AS since_bounded,
       pgfeed.count_since('w', 'following', :cursor) AS since_unbounded;
SELECT count(*) AS topic_page_outside FROM pgfeed.page('w', 'mp_id:2', 10, within => ARRAY['mp\_id:1']);
SELECT count(*) AS empty_bound FROM pgfeed.page('w', 'following', 10, within => '{}');
SELECT pgfeed.unread_count('w', 'following', '{}') AS empty_bound_count;

-- Marks by id: outside the bound (another topic, no topic, a lookalike, no such id) changes
-- nothing and answers 0, as a missing id does; inside marks.
SELECT pgfeed.mark_read('w', ARRAY[9301]::bigint[], within => ARRAY['mp\_id:1']) AS other_topic,
       pgfeed.mark_read('w', ARRAY[9342]::bigint[], within => ARRAY['mp\_id:1']) AS no_topic,
       pgfeed.mark_read('w', ARRAY[9344]::bigint[], within => ARRAY['mp\_id:1']) AS lookalike,
       pgfeed.mark_read('w', ARRAY[9999]::bigint[], within => ARRAY['mp\_id:1']) AS missing;
SELECT pgfeed.is_read('w', 9301) AS other_topic_read, pgfeed.is_read('w', 9342) AS no_topic_read;
SELECT pgfeed.mark_read('w', ARRAY[9301, 9302, 9342, 9999]::bigint[], within => ARRAY['mp\_id:1']) AS mixed;
SELECT pgfeed.is_read('w', 9301) AS stays_unread, pgfeed.is_read('w', 9302) AS marked;
SELECT pgfeed.mark_read('w', ARRAY[9342]::bigint[], within => ARRAY['%']) AS no_topic_under_percent;
SELECT pgfeed.mark_unread('w', ARRAY[9302, 9342]::bigint[], within => ARRAY['mp\_id:2']) AS unread_outside,
       pgfeed.is_read('w', 9302) AS still_read;
-- An item not numbered yet (the caller's own insert): the same rule, from its pending row.
BEGIN;
INSERT INTO bounded (id, mp_id) VALUES (9345, '2'), (9346, '1');
SELECT pgfeed.mark_read('w', ARRAY[9345]::bigint[], within => ARRAY['mp\_id:1']) AS pending_outside,
       pgfeed.mark_read('w', ARRAY[9346]::bigint[], within => ARRAY['mp\_id:1']) AS pending_inside;
SELECT count(*) AS early_marks FROM pgfeed.early_marks WHERE user_key = 'w';
ROLLBACK;

-- mark_all_read of 'following' within the bound leaves the other followed topics unread.
SELECT pgfeed.mark_all_read('w', 'following', within => ARRAY['mp\_id:1']) AS marked_all_bounded;
SELECT pgfeed.unread_count('w', 'mp_id:1') AS mp1_unread, pgfeed.unread_count('w', 'mp_id:2') AS mp2_unread,
       pgfeed.unread_count('w', 'mp_id:10') AS mp10_unread;
SELECT pgfeed.mark_all_read('w', 'mp_id:2', within => ARRAY['mp\_id:1']) AS topic_outside_marks_nothing,
       pgfeed.unread_count('w', 'mp_id:2') AS mp2_still_unread;

-- Mistakes: 'all' takes no bound; NULL inside the bound, a 2-D array.
SELECT refusal($$SELECT * FROM pgfeed.page('w', 'all', 10, within => ARRAY['%'])$$);
SELECT refusal($$SELECT pgfeed.unread_count('w', 'all', ARRAY['%'])$$);
SELECT refusal($$SELECT pgfeed.mark_all_read('w', 'all', NULL, ARRAY['%'])$$);
SELECT refusal($$SELECT pgfeed.unread_count('w', 'following', ARRAY[NULL, 'mp\_id:1'])$$);
SELECT refusal($$SELECT * FROM pgfeed.following('w', ARRAY[NULL]::text[])$$);
SELECT refusal($$SELECT pgfeed.mark_read('w', ARRAY[9302]::bigint[], within => ARRAY[['a'], ['b']])$$);
-- An ordinary role's own LIKE operator, first on its search_path, is never what a bound
-- evaluates: following runs as pgfeed's owner, the others touch pgfeed's tables as it. (The
-- role pages bounded's 21 rows of mp_id:1 only: it may not read earlier tests' tables.)
CREATE ROLE w_mallory;
GRANT pgfeed_app TO w_mallory;
GRANT SELECT ON bounded TO w_mallory;
CREATE SCHEMA w_evil AUTHORIZATION w_mallory;
SET ROLE w_mallory;
CREATE FUNCTION w_evil.like_escalates(text, text) RETURNS bool LANGUAGE plpgsql AS
 $$BEGIN EXECUTE 'ALTER ROLE w_mallory SUPERUSER'; RETURN true; END$$;
CREATE OPERATOR w_evil.~~ (FUNCTION = w_evil.like_escalates, LEFTARG = text, RIGHTARG = text);
SET search_path = w_evil, pg_catalog, public;
SELECT array(SELECT pgfeed.following('w', ARRAY['mp\_id:1'])) AS following,
       pgfeed.unread_count('w', 'following', ARRAY['mp\_id:1']) AS unread,
       (SELECT count(*) FROM pgfeed.page('w', 'following', 100, within => ARRAY['mp\_id:1'])) AS paged,
       pgfeed.mark_read('w', ARRAY[9301]::bigint[], within => ARRAY['mp\_id:1']) AS marked_outside;
RESET search_path;
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'w_mallory';
DROP SCHEMA w_evil CASCADE;
REVOKE SELECT ON bounded FROM w_mallory;
DROP ROLE w_mallory;

SELECT pgfeed.detach('bounded'), pgfeed.detach('lookalike');
DROP TABLE bounded, lookalike;
