-- Every bad argument gets a clear error with a SQLSTATE and, where it helps, a hint.
SELECT refusal(statement) FROM (VALUES
    ($$SELECT * FROM pgfeed.page(NULL)$$),
    ($$SELECT * FROM pgfeed.page('')$$),
    ($$SELECT * FROM pgfeed.page(repeat('x', 257))$$),
    ($$SELECT * FROM pgfeed.page('u', NULL)$$),
    ($$SELECT * FROM pgfeed.page('u', 'everything')$$),
    ($$SELECT * FROM pgfeed.page('u', ':7')$$),
    ($$SELECT * FROM pgfeed.page('u', 'mp_id:')$$),
    ($$SELECT * FROM pgfeed.page('u', 'mp_id:' || repeat('9', 300))$$),
    ($$SELECT * FROM pgfeed.page('u', 'all', 0)$$),
    ($$SELECT * FROM pgfeed.page('u', 'all', 1001)$$),
    ($$SELECT * FROM pgfeed.page('u', 'all', NULL)$$),
    ($$SELECT * FROM pgfeed.page('u', 'all', 20, -1)$$),
    ($$SELECT * FROM pgfeed.page('u', 'all', 20, NULL, NULL)$$),
    ($$SELECT pgfeed.unread_count(NULL)$$),
    ($$SELECT pgfeed.unread_count('u', 'nope')$$),
    ($$SELECT pgfeed.count_since('u', 'all', NULL)$$),
    ($$SELECT pgfeed.count_since('u', 'all', -5)$$),
    ($$SELECT pgfeed.mark_read('u', NULL)$$),
    ($$SELECT pgfeed.mark_read('u', ARRAY[1, NULL])$$),
    ($$SELECT pgfeed.mark_read('u', ARRAY[[1, 2], [3, 4]])$$),
    ($$SELECT pgfeed.mark_read('u', array_agg(g)) FROM generate_series(1, 10001) g$$),
    ($$SELECT pgfeed.mark_unread(NULL, ARRAY[1])$$),
    ($$SELECT pgfeed.mark_all_read('u', 'all', -1)$$),
    ($$SELECT pgfeed.mark_all_read('u', NULL)$$),
    ($$SELECT pgfeed.is_read('u', NULL)$$),
    ($$SELECT pgfeed.follow('u', NULL)$$),
    ($$SELECT pgfeed.follow('u', 'mp_id')$$),
    ($$SELECT pgfeed.follow('u', 'all')$$),
    ($$SELECT pgfeed.unfollow('u', 'mp_id:')$$),
    ($$SELECT pgfeed._capture()$$)) AS t(statement);

-- Empty arrays and unknown ids change nothing and are not errors.
SELECT pgfeed.mark_read('u', '{}'), pgfeed.mark_unread('u', ARRAY[-1, 0, 123456789]);
SELECT pgfeed.unread_count('u'), pgfeed.is_read('u', 123456789);

-- The same activity id in two attached tables must be disambiguated with source.
CREATE TABLE speeches (id int PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL);
INSERT INTO speeches VALUES (2, 1, '2026-06-01');
CALL pgfeed.flush();
SELECT pgfeed.attach('speeches', 'mp_id');
CALL pgfeed.flush();
SELECT refusal($$SELECT pgfeed.mark_read('u', ARRAY[2])$$);
SELECT refusal($$SELECT pgfeed.is_read('u', 2)$$);
SELECT pgfeed.mark_read('u', ARRAY[2], source => 'speeches');
SELECT pgfeed.is_read('u', 2, 'speeches'), pgfeed.is_read('u', 2, 'activities');
SELECT pgfeed.detach('speeches');
CALL pgfeed.flush();
DROP TABLE speeches;

-- A NULL id in an attached table is refused; a topic value too long for a topic is refused.
SELECT refusal($$INSERT INTO activities (id, type, mp_id, created_at) VALUES (NULL, 'x', 1, now())$$);
CREATE TABLE long_topics (id int PRIMARY KEY, tag text, created_at timestamptz);
SELECT pgfeed.attach('long_topics', 'tag');
CALL pgfeed.flush();
SELECT refusal($$INSERT INTO long_topics VALUES (1, repeat('t', 300), now())$$);
INSERT INTO long_topics VALUES (2, NULL, NULL);
CALL pgfeed.flush();
SELECT position, activity_id, topic, created_at FROM pgfeed.page('u', page_size => 1);
SELECT pgfeed.detach('long_topics');
CALL pgfeed.flush();
DROP TABLE long_topics;
