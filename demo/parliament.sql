-- A sample parliament: MPs, bills, activities, and users with read history.
-- Deterministic (setseed), so the demo prints the same feed every time.
SELECT setseed(0.42);

CREATE TABLE parties (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO parties VALUES (1, 'Green'), (2, 'Labour'), (3, 'Liberal'), (4, 'Conservative'), (5, 'Independent');

CREATE TABLE mps (id int PRIMARY KEY, name text NOT NULL, party_id int REFERENCES parties);
INSERT INTO mps
SELECT g,
       (ARRAY['Ada','Brook','Cato','Dara','Emre','Fien','Gwen','Hugo','Ines','Jonas','Kira','Luca'])[1 + g % 12]
       || ' ' ||
       (ARRAY['Okafor','Lindqvist','Moreau','Novak','Patel','Quint','Rossi','Sato','Tanaka','Varga'])[1 + (g / 12) % 10],
       1 + g % 5
FROM generate_series(1, 120) g;

CREATE TABLE bills (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO bills
SELECT g, (ARRAY['Clean Air','Housing','Rail Fares','Data Protection','Fisheries','Energy Prices','Schools'])[1 + g % 7]
          || ' Bill ' || (2020 + g % 6)
FROM generate_series(1, 40) g;

CREATE TABLE activities (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL CHECK (type IN ('vote', 'speech', 'bill_stage')),
    mp_id      int NOT NULL REFERENCES mps,
    bill_id    int REFERENCES bills,
    created_at timestamptz NOT NULL
);
INSERT INTO activities (type, mp_id, bill_id, created_at)
SELECT (ARRAY['vote', 'speech', 'bill_stage'])[1 + floor(random() * 3)::int],
       1 + floor(random() * 120)::int,
       CASE WHEN random() < 0.7 THEN 1 + floor(random() * 40)::int END,
       timestamptz '2026-01-01' + g * interval '7 minutes'
FROM generate_series(1, 20000) g;

-- The feed: every activity belongs to the topic of its MP, e.g. 'mp_id:7'.
CREATE EXTENSION pgfeed;
SELECT pgfeed.attach('activities', topic_column => 'mp_id', payload_columns => ARRAY['type', 'bill_id']);
-- Rows become items after commit, in the numbering worker's next round: wait for it.
CALL pgfeed.flush();

-- Users: alice follows three MPs and read most of her feed; bob read everything once, then a bit more.
SELECT pgfeed.follow('alice', 'mp_id:' || m) FROM unnest(ARRAY[7, 12, 42]) m;
SELECT pgfeed.mark_read('alice', array_agg(id)) FROM activities WHERE mp_id IN (7, 12, 42) AND id < 19000;
SELECT pgfeed.mark_all_read('bob', up_to => 15000);
SELECT pgfeed.mark_read('bob', array_agg(id)) FROM activities WHERE id BETWEEN 15001 AND 19900 AND id % 3 = 0;
