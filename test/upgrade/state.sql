-- Every user's read state as the feed functions report it, one line per fact; run.sh records it
-- at 0.3.0 and compares it after ALTER EXTENSION pgfeed UPDATE.
\set ON_ERROR_STOP 1
SET TimeZone = 'UTC';
CREATE TEMP TABLE users(u) AS VALUES ('alice'), ('bob'), ('carol'), ('dave'), ('erin'), ('nobody');
CREATE TEMP TABLE feeds(f) AS VALUES ('all'), ('mp_id:3'), ('following');
CREATE TEMP TABLE ids(id) AS
    SELECT unnest(ARRAY[1, 10, 11, 22, 23, 50, 97, 100, 1003, 1234, 1500, 2000, 2222, 2499, 2500, 2501, 2522,
                        3000, 3001, 3300, 3600, 3601, 4000, 4025, 4050, 4051, 4490, 4500, 99999]::bigint[]);

SELECT 'unread_count', u, f, pgfeed.unread_count(u, f) FROM users, feeds ORDER BY u, f;
SELECT 'count_since', u, pgfeed.count_since(u, 'all', 4000), pgfeed.count_since(u, 'mp_id:3', 2000)
  FROM users ORDER BY u;
SELECT 'is_read', u, string_agg(id || '=' || coalesce(pgfeed.is_read(u, id)::text, 'null'), ' ' ORDER BY id)
  FROM users, ids GROUP BY u ORDER BY u;
SELECT 'following', u, string_agg(t, ' ') FROM users, pgfeed.following(u) t GROUP BY u ORDER BY u;
-- First and second pages of unread items, a topic's and 'following', and a mixed page of 'all'.
SELECT 'page1', u, p.* FROM users, pgfeed.page(u, 'all', 30, NULL, unread_only => true) p ORDER BY u, p.position DESC;
SELECT 'page2', u, p.* FROM users,
       pgfeed.page(u, 'all', 30, (SELECT min(q.position) FROM pgfeed.page(u, 'all', 30, NULL, unread_only => true) q),
                   unread_only => true) p
 ORDER BY u, p.position DESC;
SELECT 'page_topic', u, p.* FROM users, pgfeed.page(u, 'mp_id:3', 20, NULL, unread_only => true) p
 ORDER BY u, p.position DESC;
SELECT 'page_following', u, p.* FROM users, pgfeed.page(u, 'following', 20, NULL, unread_only => true) p
 ORDER BY u, p.position DESC;
SELECT 'page_low', u, p.* FROM users, pgfeed.page(u, 'all', 40, 2510, unread_only => false) p
 ORDER BY u, p.position DESC;
