-- One row per transaction into the attached table (bench/feed/writes.sh).
\set mp random(1, 650)
\set bill random(1, 2000)
INSERT INTO activities (type, mp_id, bill_id, created_at) VALUES ('speech', :mp, :bill, now());
