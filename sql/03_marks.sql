-- Read state: marks, mark-all, horizons, deletes and re-published items.
SELECT pgfeed.mark_read('u2', ARRAY[27, 26, 25, 1, 999999]);
SELECT pgfeed.mark_read('u2', ARRAY[27]);
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u2', 'mp_id:3');
SELECT position, activity_id, is_read FROM pgfeed.page('u2', page_size => 5);
SELECT position, activity_id FROM pgfeed.page('u2', page_size => 3, unread_only => true);
SELECT pgfeed.is_read('u2', 27), pgfeed.is_read('u2', 24), pgfeed.is_read('u2', 999999);
SELECT pgfeed.mark_unread('u2', ARRAY[27, 24]);
SELECT pgfeed.unread_count('u2');

-- mark_all_read moves the horizon; mark_unread below it still works.
SELECT pgfeed.mark_all_read('u2');
SELECT pgfeed.unread_count('u2'), count(*) FROM pgfeed.page('u2', unread_only => true);
SELECT pgfeed.mark_unread('u2', ARRAY[5, 20]);
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u2', 'mp_id:1');
SELECT position, activity_id FROM pgfeed.page('u2', unread_only => true);
SELECT pgfeed.mark_all_read('u2', up_to => 10);
SELECT position, activity_id FROM pgfeed.page('u2', unread_only => true);
SELECT pgfeed.mark_all_read('u2');
SELECT pgfeed.unread_count('u2');

-- New items above the horizon are unread; a topic can be marked read on its own.
INSERT INTO activities (type, mp_id, created_at)
SELECT 'vote', g % 3 + 1, timestamptz '2026-04-01' + g * interval '1 minute' FROM generate_series(1, 6) g;
CALL pgfeed.flush();
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u2', 'mp_id:2');
SELECT pgfeed.mark_all_read('u2', 'mp_id:2');
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u2', 'mp_id:2');
SELECT pgfeed.follow('u2', 'mp_id:3');
SELECT pgfeed.mark_all_read('u2', 'following');
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u2', 'following');
SELECT position, topic FROM pgfeed.page('u2', unread_only => true);

-- A deleted item leaves every feed and count, read or not.
SELECT pgfeed.mark_read('u3', ARRAY[30, 31]);
SELECT pgfeed.unread_count('u3');
DELETE FROM activities WHERE id IN (30, 33);
CALL pgfeed.flush();
SELECT pgfeed.unread_count('u2'), pgfeed.unread_count('u3'), pgfeed.unread_count('u3', 'mp_id:1');
SELECT pgfeed.is_read('u3', 30);

-- Changing an item's topic publishes it again at the top, unread.
UPDATE activities SET mp_id = 3 WHERE id = 31;
CALL pgfeed.flush();
SELECT position, activity_id, topic, is_read FROM pgfeed.page('u3', page_size => 2);
SELECT pgfeed.unread_count('u3');
-- Other columns change nothing.
UPDATE activities SET type = 'amended' WHERE id = 31;
CALL pgfeed.flush();
SELECT position, activity_id FROM pgfeed.page('u3', page_size => 1);

-- Within one transaction: rolled-back savepoints and insert-then-delete leave no item.
BEGIN;
INSERT INTO activities (type, mp_id, created_at) VALUES ('kept', 1, '2026-05-01');
SAVEPOINT s;
INSERT INTO activities (type, mp_id, created_at) VALUES ('rolled back', 1, '2026-05-01');
ROLLBACK TO SAVEPOINT s;
INSERT INTO activities (type, mp_id, created_at) VALUES ('deleted', 2, '2026-05-01');
DELETE FROM activities WHERE type = 'deleted';
INSERT INTO activities (type, mp_id, created_at) VALUES ('moved', 2, '2026-05-01');
UPDATE activities SET mp_id = 3 WHERE type = 'moved';
COMMIT;
CALL pgfeed.flush();
SELECT p.position, a.type, p.topic FROM pgfeed.page('u3', page_size => 3) p JOIN activities a ON a.id = p.activity_id
ORDER BY p.position DESC;

-- A rolled-back transaction numbers nothing: positions stay dense.
BEGIN;
INSERT INTO activities (type, mp_id, created_at) VALUES ('never', 1, '2026-05-02');
ROLLBACK;
INSERT INTO activities (type, mp_id, created_at) VALUES ('after', 1, '2026-05-02');
CALL pgfeed.flush();
SELECT max(position) - min(position) + 1 = count(*) AS dense FROM pgfeed.items;
