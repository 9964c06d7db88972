-- Read state at the edges of its 1024-position chunks: marks at k*1024-1, k*1024 and k*1024+1,
-- horizons inside chunks and at their edges, sparse (offset array) and dense (bitmap) chunks, and
-- page walks with before => across them. Positions start at 1 in a database of its own, so that
-- item ids are positions; pgfeed.flush() after each write numbers what it committed.
CREATE DATABASE pgfeed_chunk_boundaries;
SELECT current_database() AS regress_database \gset
\c pgfeed_chunk_boundaries
SET client_min_messages = warning;
CREATE EXTENSION pgfeed;
CREATE TABLE acts (id bigint PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('acts', topic_column => 'mp_id');

-- Every row of the 'all' feed, newest first, walked in pages of `size` with before =>.
CREATE FUNCTION walk(u text, size int, unread_only bool) RETURNS TABLE (positions bigint[], read_flags bool[])
LANGUAGE plpgsql AS $$
DECLARE
    below bigint;
    page_positions bigint[];
    page_flags bool[];
BEGIN
    positions := '{}';
    read_flags := '{}';
    LOOP
        SELECT coalesce(array_agg(p.position ORDER BY n), '{}'), coalesce(array_agg(p.is_read ORDER BY n), '{}')
          INTO page_positions, page_flags
          FROM pgfeed.page(u, 'all', size, below, unread_only) WITH ORDINALITY AS p(position, activity_id, source,
                                                                                      topic, created_at, is_read, n);
        positions := positions || page_positions;
        read_flags := read_flags || page_flags;
        EXIT WHEN cardinality(page_positions) < size OR cardinality(positions) > 100000;
        below := page_positions[size];
    END LOOP;
    RETURN NEXT;
END $$;

-- The user's unread count, and what disagrees with is_read item by item: walks in pages of
-- several sizes, unread_only both ways, and unread_count. 'ok' when nothing does.
CREATE FUNCTION check_walks(u text) RETURNS TABLE (unread int, problems text) LANGUAGE plpgsql AS $$
DECLARE
    all_ids bigint[] := ARRAY(SELECT id FROM acts ORDER BY id DESC);
    unread_ids bigint[] := ARRAY(SELECT id FROM acts WHERE NOT pgfeed.is_read(u, id) ORDER BY id DESC);
    flags bool[] := ARRAY(SELECT pgfeed.is_read(u, id) FROM acts ORDER BY id DESC);
    found text[] := '{}';
    size int;
    w record;
BEGIN
    FOREACH size IN ARRAY ARRAY[1, 3, 7, 1000] LOOP
        SELECT * INTO w FROM walk(u, size, true);
        IF w.positions IS DISTINCT FROM unread_ids THEN
            found := found || format('unread walk by %s: %s rows, expected %s; missing %s, extra %s', size,
                                     cardinality(w.positions), cardinality(unread_ids),
                                     (SELECT array_agg(x) FROM (SELECT unnest(unread_ids) EXCEPT
                                                                SELECT unnest(w.positions) ORDER BY 1 LIMIT 8) m(x)),
                                     (SELECT array_agg(x) FROM (SELECT unnest(w.positions) EXCEPT
                                                                SELECT unnest(unread_ids) ORDER BY 1 LIMIT 8) e(x)));
        END IF;
        IF size > 1 THEN -- every row, read or not: a walk by 1 is 3000 calls and jumps nothing
            SELECT * INTO w FROM walk(u, size, false);
            IF w.positions IS DISTINCT FROM all_ids OR w.read_flags IS DISTINCT FROM flags THEN
                found := found || format('full walk by %s: %s rows, %s read, expected %s rows, %s read', size,
                                         cardinality(w.positions),
                                         (SELECT count(*) FROM unnest(w.read_flags) f WHERE f),
                                         cardinality(all_ids), (SELECT count(*) FROM unnest(flags) f WHERE f));
            END IF;
        END IF;
    END LOOP;
    IF pgfeed.unread_count(u, 'all') <> cardinality(unread_ids) THEN
        found := found || format('unread_count %s, %s unread items', pgfeed.unread_count(u, 'all'),
                                 cardinality(unread_ids));
    END IF;
    unread := cardinality(unread_ids);
    problems := coalesce(nullif(array_to_string(found, '; '), ''), 'ok');
    RETURN NEXT;
END $$;

-- Two chunks and one more item: marks at the first position and at 2048, the first of chunk 2.
-- A run of read items starting at a chunk's first position once jumped the page 1024 positions
-- too far down: 1024..2047 were never shown.
INSERT INTO acts (id, mp_id) SELECT g, 1 FROM generate_series(1, 2049) g;
CALL pgfeed.flush();
SELECT count(*) AS items, bool_and(position = activity_id) AS ids_are_positions FROM pgfeed.page('u', 'all', 1000);
SELECT pgfeed.mark_read('u', ARRAY[1, 2048]::bigint[]);
SELECT pgfeed.unread_count('u', 'all');
SELECT position FROM pgfeed.page('u', 'all', 4, unread_only => true);
SELECT position FROM pgfeed.page('u', 'all', 3, before => 2049, unread_only => true);
SELECT * FROM check_walks('u');

-- More items: chunks 0..3, the last one partly filled.
INSERT INTO acts (id, mp_id) SELECT g, 1 FROM generate_series(2050, 3100) g;
CALL pgfeed.flush();

-- Single marks on either side of each edge, above a horizon of 0.
SELECT pgfeed.mark_read('edges', ARRAY[1023, 1024, 1025, 2047, 2048, 2049, 3071, 3072]::bigint[]);
SELECT position FROM pgfeed.page('edges', 'all', 3, before => 1026, unread_only => true);
SELECT position FROM pgfeed.page('edges', 'all', 3, before => 2050, unread_only => true);
SELECT position FROM pgfeed.page('edges', 'all', 3, before => 3073, unread_only => true);
SELECT position, is_read FROM pgfeed.page('edges', 'all', 4, before => 1026);
SELECT * FROM check_walks('edges');

-- Runs of read items, long enough to be jumped, that end and start at the edges: the page's first
-- unread item lies right below the run.
SELECT pgfeed.mark_read('runs', ARRAY(SELECT generate_series(1024, 2047)::bigint));    -- chunk 1 whole
SELECT pgfeed.mark_read('runs', ARRAY(SELECT generate_series(2900, 3100)::bigint));    -- the newest items
SELECT position FROM pgfeed.page('runs', 'all', 2, unread_only => true);
SELECT position FROM pgfeed.page('runs', 'all', 2, before => 2049, unread_only => true);
SELECT position FROM pgfeed.page('runs', 'all', 2, before => 2048, unread_only => true);
SELECT pgfeed.mark_read('runs', ARRAY(SELECT generate_series(990, 1023)::bigint));     -- the run now starts at 990
SELECT position FROM pgfeed.page('runs', 'all', 2, before => 2048, unread_only => true);
SELECT pgfeed.mark_unread('runs', ARRAY[1024]::bigint[]);                               -- a hole at a chunk's start
SELECT position FROM pgfeed.page('runs', 'all', 2, before => 2048, unread_only => true);
SELECT * FROM check_walks('runs');

-- Sparse and dense chunks: 63 bits are an offset array, a 64th (at the chunk's last position)
-- makes a bitmap, and one fewer an array again; the walks agree on both sides.
CREATE FUNCTION chunk_bytes(u text, chunk int) RETURNS int LANGUAGE sql AS $$
    SELECT length(c.bits) FROM pgfeed.read_chunks c JOIN pgfeed.readers r USING (user_id)
     WHERE r.user_key = u AND c.chunk_no = chunk AND c.generation = r.generation
$$;
SELECT pgfeed.mark_read('dense', ARRAY(SELECT 2048 + 2 * g FROM generate_series(0, 62) g));
SELECT chunk_bytes('dense', 2);
SELECT * FROM check_walks('dense');
SELECT pgfeed.mark_read('dense', ARRAY[3071, 2047]::bigint[]);
SELECT chunk_bytes('dense', 2), chunk_bytes('dense', 1);
SELECT position FROM pgfeed.page('dense', 'all', 3, before => 2051, unread_only => true);
SELECT position FROM pgfeed.page('dense', 'all', 3, before => 3073, unread_only => true);
SELECT * FROM check_walks('dense');
SELECT pgfeed.mark_unread('dense', ARRAY[2048]::bigint[]);
SELECT chunk_bytes('dense', 2);
SELECT * FROM check_walks('dense');

-- A horizon inside a chunk (1500), with items flipped back to unread below it at the edges and
-- read marks above it: below the horizon only the flipped items show.
SELECT pgfeed.mark_all_read('horizon', 'all', up_to => 1500);
SELECT pgfeed.mark_unread('horizon', ARRAY[1, 1023, 1024, 1025, 1499, 1500]::bigint[]);
SELECT pgfeed.mark_read('horizon', ARRAY(SELECT generate_series(1501, 1600)::bigint));
SELECT pgfeed.unread_count('horizon', 'all');
SELECT position FROM pgfeed.page('horizon', 'all', 4, before => 1700, unread_only => true);
SELECT position FROM pgfeed.page('horizon', 'all', 4, before => 1601, unread_only => true);
SELECT position FROM pgfeed.page('horizon', 'all', 4, before => 1024, unread_only => true);
SELECT * FROM check_walks('horizon');

-- Horizons at the edges of chunks: each mark_all_read keeps the bits above up_to, clears those
-- below, and the walks agree after each.
SELECT pgfeed.mark_read('edge_horizon', ARRAY[1022, 1023, 1024, 1025, 2047, 2048, 2049, 3000]::bigint[]);
SELECT pgfeed.mark_all_read('edge_horizon', 'all', up_to => 1023);
SELECT * FROM check_walks('edge_horizon');
SELECT pgfeed.mark_unread('edge_horizon', ARRAY[1023, 1]::bigint[]);
SELECT pgfeed.mark_all_read('edge_horizon', 'all', up_to => 1024);
SELECT * FROM check_walks('edge_horizon');
SELECT pgfeed.mark_all_read('edge_horizon', 'all', up_to => 2047);
SELECT position FROM pgfeed.page('edge_horizon', 'all', 3, before => 2051, unread_only => true);
SELECT * FROM check_walks('edge_horizon');
SELECT pgfeed.mark_all_read('edge_horizon', 'all', up_to => 2048);
SELECT pgfeed.mark_unread('edge_horizon', ARRAY[2048, 2047, 1024]::bigint[]);
SELECT position FROM pgfeed.page('edge_horizon', 'all', 4, before => 2050, unread_only => true);
SELECT * FROM check_walks('edge_horizon');
SELECT pgfeed.mark_all_read('edge_horizon', 'all', up_to => 3072);                     -- past the last bit
SELECT pgfeed.mark_unread('edge_horizon', ARRAY[3072]::bigint[]);
SELECT * FROM check_walks('edge_horizon');

-- Deleted items at the edges leave the walks and counts of a user who had marked them.
DELETE FROM acts WHERE id IN (1023, 1024, 2048, 3072);
CALL pgfeed.flush();
SELECT position FROM pgfeed.page('edges', 'all', 3, before => 1026, unread_only => true);
SELECT position FROM pgfeed.page('edges', 'all', 3, before => 2050, unread_only => true);
SELECT * FROM check_walks('edges');
SELECT * FROM check_walks('runs');
SELECT * FROM check_walks('edge_horizon');

\c :regress_database
DROP DATABASE pgfeed_chunk_boundaries WITH (FORCE);
