-- The edges of the SQL API: every item reachable, every mistake a clear error.
\set SHOW_CONTEXT never
CREATE TABLE tagged (id bigint PRIMARY KEY, grp text, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('tagged', 'grp');
INSERT INTO tagged (id, grp) VALUES (9201, ''), (9202, 'news'), (9203, NULL);
CALL pgfeed.flush();

-- An empty topic value is a topic like any other: 'grp:'.
SELECT activity_id, topic FROM pgfeed.page('edge', 'all', 3) ORDER BY activity_id;
SELECT pgfeed.follow('edge', 'grp:') AS followed;
SELECT activity_id FROM pgfeed.page('edge', 'grp:', 10);
SELECT pgfeed.unread_count('edge', 'grp:') AS unread_empty, pgfeed.unread_count('edge', 'following') AS following;
SELECT pgfeed.mark_all_read('edge', 'grp:') AS marked;
SELECT pgfeed.unread_count('edge', 'grp:') AS after_mark;

-- A feed on a column no attached table has as its topic column is an error everywhere; a value
-- nobody has used yet is a valid, empty topic.
SELECT refusal($$SELECT * FROM pgfeed.page('edge', 'nosuch:1')$$);
SELECT refusal($$SELECT pgfeed.unread_count('edge', 'nosuch:1')$$);
SELECT refusal($$SELECT pgfeed.count_since('edge', 'nosuch:1', 0)$$);
SELECT refusal($$SELECT pgfeed.mark_all_read('edge', 'nosuch:1')$$);
SELECT refusal($$SELECT pgfeed.follow('edge', 'nosuch:1')$$);
SELECT count(*) AS unused_value FROM pgfeed.page('edge', 'grp:never-used');

-- source => a table that is not attached.
SELECT refusal($$SELECT pgfeed.mark_read('edge', ARRAY[9202]::bigint[], 'pg_class')$$) LIKE
       '42704: pgfeed: source is not an attached table (hint: Attached tables: %tagged%' AS mark_refused;
SELECT refusal($$SELECT pgfeed.is_read('edge', 9202, 'pg_class')$$) LIKE '42704:%' AS is_read_refused;
SELECT pgfeed.is_read('edge', 9202, 'tagged') AS with_its_source;

-- Limits: user keys of 1 to 256 bytes; positions not negative; before => 0 is below every item;
-- count_since counts items, read or not.
SELECT refusal($$SELECT pgfeed.unread_count('')$$);
SELECT refusal(format('SELECT pgfeed.unread_count(%L)', repeat('k', 257)));
SELECT pgfeed.unread_count(repeat('k', 256)) >= 0 AS longest_key;
SELECT refusal($$SELECT * FROM pgfeed.page('edge', before => -1)$$);
SELECT count(*) AS below_zero FROM pgfeed.page('edge', before => 0);
SELECT pgfeed.count_since('edge', 'grp:', 0) AS since_counts_read_items;

SELECT pgfeed.detach('tagged') > 0 AS detached;
CALL pgfeed.flush();
DROP TABLE tagged;
