-- Baseline of insert_attached.sql: the same insert into an identical table that is not attached.
\set mp random(1, 650)
\set bill random(1, 2000)
INSERT INTO activities_bare (type, mp_id, bill_id, created_at) VALUES ('speech', :mp, :bill, now());
