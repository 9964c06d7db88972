-- Baseline of mark_read.sql: the same random user and item into a plain reads table with a primary key.
\set u random(1, :users)
\set a :items + 1 - random_exponential(1, :items, 20)
INSERT INTO reads (user_id, activity_id) VALUES (:u, :a) ON CONFLICT DO NOTHING;
