-- The demo's pulse: CALL generate_activities(1.0) inserts a random activity, commits it (so it takes
-- the next position and its event goes out), sleeps, and does it again until the session ends.
-- Random like demo/parliament.sql: any type, a bill 70% of the time; half of the activities come
-- from the three MPs alice follows (7, 12 and 42), so that her Following feed moves too.
CREATE PROCEDURE generate_activities(pause_seconds float8 DEFAULT 1.0)
LANGUAGE plpgsql AS $$
BEGIN
    LOOP
        INSERT INTO activities (type, mp_id, bill_id, created_at)
        VALUES ((ARRAY['vote', 'speech', 'bill_stage'])[1 + floor(random() * 3)::int],
                CASE WHEN random() < 0.5 THEN (ARRAY[7, 12, 42])[1 + floor(random() * 3)::int]
                     ELSE (SELECT id FROM mps ORDER BY random() LIMIT 1) END,
                CASE WHEN random() < 0.7 THEN (SELECT id FROM bills ORDER BY random() LIMIT 1) END,
                now());
        COMMIT;
        PERFORM pg_sleep(pause_seconds);
    END LOOP;
END
$$;
