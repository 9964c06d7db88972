-- Feeds, pages and counts.
INSERT INTO activities (type, mp_id, created_at)
SELECT 'stage', g % 3 + 1, timestamptz '2026-03-01' + g * interval '1 minute' FROM generate_series(1, 20) g;
CALL pgfeed.flush();

-- Keyset pagination, newest first: the pages join up without gap or overlap.
SELECT position, activity_id, topic FROM pgfeed.page('u1', 'all', 5);
SELECT position, activity_id, topic FROM pgfeed.page('u1', 'all', 5, before => 23);
SELECT count(*), min(position), max(position) FROM pgfeed.page('u1', 'all', 1000);

-- One topic, and the followed topics.
SELECT position, topic FROM pgfeed.page('u1', 'mp_id:2', 4);
SELECT pgfeed.follow('u1', 'mp_id:1'), pgfeed.follow('u1', 'mp_id:3');
SELECT pgfeed.follow('u1', 'mp_id:3');
SELECT position, topic FROM pgfeed.page('u1', 'following', 6);
SELECT pgfeed.unread_count('u1', 'all'), pgfeed.unread_count('u1', 'mp_id:1'),
       pgfeed.unread_count('u1', 'mp_id:3'), pgfeed.unread_count('u1', 'following');
SELECT pgfeed.unfollow('u1', 'mp_id:3'), pgfeed.unfollow('u1', 'mp_id:3');
SELECT pgfeed.unread_count('u1', 'following');
SELECT pgfeed.follow('u1', 'party:7');

-- A topic nobody wrote to is an empty feed; an unknown user has read nothing.
SELECT count(*) FROM pgfeed.page('u1', 'mp_id:99');
SELECT pgfeed.unread_count('nobody'), pgfeed.unread_count('nobody', 'following');
SELECT count(*) FROM pgfeed.page('nobody', 'following');

-- "N new activities": items above a cursor.
SELECT pgfeed.count_since('u1', 'all', 20), pgfeed.count_since('u1', 'mp_id:2', 20),
       pgfeed.count_since('u1', 'following', 20), pgfeed.count_since('u1', 'all', 1000);

-- NULL topics belong to the 'all' feed only.
INSERT INTO activities (type, mp_id, created_at) VALUES ('notice', NULL, '2026-03-02');
CALL pgfeed.flush();
SELECT position, activity_id, topic FROM pgfeed.page('u1', page_size => 1);
SELECT pgfeed.unread_count('u1');
