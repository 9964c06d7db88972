-- Run by test/upgrade/run.sh on a server with the 0.3.0 library: a database as 0.3.0 left it.
-- Positions are given at commit (0.3.0's sequencer trigger); every statement below that changes
-- the feed commits on its own (psql autocommit), as an app's would.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION pgfeed VERSION '0.3.0';

CREATE TABLE public.activities (
    id         bigint PRIMARY KEY,
    mp_id      int,
    kind       text   NOT NULL,
    bill_id    int,
    created_at timestamptz NOT NULL
);

-- Rows id first..last, 300 a transaction; ids are positions while nothing is deleted.
CREATE PROCEDURE public.add_activities(first bigint, last bigint) LANGUAGE plpgsql AS $$
BEGIN
    FOR lo IN first..last BY 300 LOOP
        INSERT INTO public.activities
        SELECT g, CASE WHEN g % 50 = 0 THEN NULL ELSE g % 7 END, (ARRAY['vote', 'speech', 'question'])[1 + g % 3],
               g % 40, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
          FROM generate_series(lo, least(lo + 299, last)) g;
        COMMIT;
    END LOOP;
END
$$;

-- 600 rows before attach: backfilled, in (created_at, id) order, without events.
CALL public.add_activities(1, 600);
SELECT pgfeed.attach('public.activities', topic_column => 'mp_id', payload_columns => ARRAY['kind', 'bill_id']);

-- 3,900 more in 13 transactions: positions up to 4,500, five 1024-position chunks. A bridge
-- moved the events of the first six; the others, and every later one, wait in pgfeed.events.
CALL public.add_activities(601, 2400);
SELECT pgfeed.bridge_moved('redis', pg_current_snapshot());
CALL public.add_activities(2401, 4500);

-- Follows.
SELECT pgfeed.follow('alice', 'mp_id:1'), pgfeed.follow('alice', 'mp_id:3'), pgfeed.follow('carol', 'mp_id:2'),
       pgfeed.follow('dave', 'mp_id:4'), pgfeed.follow('erin', 'mp_id:3');

-- alice: scattered marks (sparse chunks) and a dense run (bitmap chunks), one of which is deleted below.
SELECT pgfeed.mark_read('alice', ARRAY(SELECT g FROM generate_series(11, 4500, 11) g));
SELECT pgfeed.mark_read('alice', ARRAY(SELECT g FROM generate_series(3001, 3600) g));
-- bob: marks, then everything up to 2500 read (a new generation), then unread again below the
-- horizon, and read above it.
SELECT pgfeed.mark_read('bob', ARRAY(SELECT g FROM generate_series(17, 4500, 17) g));
SELECT pgfeed.mark_all_read('bob', 'all', up_to => 2500);
SELECT pgfeed.mark_unread('bob', ARRAY(SELECT g FROM generate_series(97, 2400, 97) g));
SELECT pgfeed.mark_read('bob', ARRAY(SELECT g FROM generate_series(4000, 4050) g));
-- carol: one topic read item by item, a run, one of it unread again.
SELECT pgfeed.mark_all_read('carol', 'mp_id:3');
SELECT pgfeed.mark_read('carol', ARRAY(SELECT g FROM generate_series(1, 100) g));
SELECT pgfeed.mark_unread('carol', ARRAY[50, 1003]);
-- erin: everything read, then a few unread again.
SELECT pgfeed.mark_all_read('erin', 'all');
SELECT pgfeed.mark_unread('erin', ARRAY[10, 1500, 1234, 4490]);
-- dave reads nothing.

-- A deleted row (a tombstone; alice and erin had it read, bob and carol not), and a row moved to
-- another topic (a tombstone and a new position, unread).
DELETE FROM public.activities WHERE id = 1234;
DELETE FROM public.activities WHERE id = 2222;
UPDATE public.activities SET mp_id = 3 WHERE id = 2000;

-- Walks every unread page of a feed, for a count that does not trust the counters.
CREATE FUNCTION public.walk_unread(user_key text, feed text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    total  bigint := 0;
    n      bigint;
    last   bigint;
    before bigint := NULL;
BEGIN
    LOOP
        SELECT count(*), min(p.position) INTO n, last
          FROM pgfeed.page(user_key, feed, 1000, before, unread_only => true) p;
        EXIT WHEN n = 0;
        total := total + n;
        before := last;
    END LOOP;
    RETURN total;
END
$$;

-- The app's role: at 0.3.0 the feed functions are SECURITY DEFINER and executable by PUBLIC.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'app_user') THEN
        CREATE ROLE app_user LOGIN;
    END IF;
END
$$;
GRANT SELECT, INSERT, DELETE ON public.activities TO app_user;
