-- pgfeed 0.1.0: commit-ordered unread index and feed functions.
\echo Use "CREATE EXTENSION pgfeed" to load this file. \quit

-- Every object lives in schema pgfeed and every name below is schema-qualified: the functions run
-- as SECURITY DEFINER with search_path pinned, so a caller's search_path cannot redirect them.

-- Attached app tables and the columns pgfeed reads from them.
CREATE TABLE pgfeed.sources (
    source          regclass PRIMARY KEY,
    id_column       name   NOT NULL,
    topic_column    name   NOT NULL,
    created_column  name   NOT NULL,
    payload_columns name[] NOT NULL DEFAULT '{}'
);

-- The single row whose lock orders commits: a transaction that adds items holds it from the moment
-- it numbers them until its commit is visible, so positions follow commit order with no gaps.
CREATE TABLE pgfeed.sequencer (
    singleton     bool   PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 10);
INSERT INTO pgfeed.sequencer DEFAULT VALUES;

-- Topics such as 'mp_id:7'; last_seq numbers the items of each topic densely (tombstones included),
-- which turns "items of topic t above position p" into two index probes.
CREATE TABLE pgfeed.topics (
    topic_id int    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name     text   NOT NULL UNIQUE,
    last_seq bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

-- One row per feed item, numbered in commit order. A deleted item stays as a tombstone so that
-- positions and per-topic sequence numbers stay dense; the partial indexes count tombstones.
CREATE TABLE pgfeed.items (
    position    bigint      PRIMARY KEY,
    source      regclass    NOT NULL,
    activity_id bigint      NOT NULL,
    topic_id    int,
    topic_seq   bigint,
    created_at  timestamptz,
    deleted     bool        NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX items_live_activity ON pgfeed.items (activity_id, source) WHERE NOT deleted;
CREATE INDEX items_topic_position ON pgfeed.items (topic_id, position) INCLUDE (topic_seq);
CREATE INDEX items_tombstone_position ON pgfeed.items (position) WHERE deleted;
CREATE INDEX items_tombstone_topic ON pgfeed.items (topic_id, position) WHERE deleted;

-- Read state of a user: everything at or below horizon is read, except positions whose bit is set
-- in read_chunks; above horizon only set bits are read. net_total is (unset bits above horizon minus
-- set bits), kept so unread_count needs no scan. Rows of an older generation are void: mark_all_read
-- retires a whole history by bumping generation instead of deleting it.
CREATE TABLE pgfeed.readers (
    user_id    int    GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_key   text   NOT NULL UNIQUE,
    horizon    bigint NOT NULL DEFAULT 0,
    generation int    NOT NULL DEFAULT 0,
    net_total  bigint NOT NULL DEFAULT 0,
    bits_lo    bigint,
    bits_hi    bigint
) WITH (fillfactor = 70);

-- Flipped positions, 1024 per row, stored as a sorted array of offsets or a bitmap (read_bits.cpp).
CREATE TABLE pgfeed.read_chunks (
    user_id    int   NOT NULL,
    chunk_no   int   NOT NULL,
    generation int   NOT NULL,
    bits       bytea NOT NULL,
    PRIMARY KEY (user_id, chunk_no)
) WITH (fillfactor = 70);
-- Deleting an item finds the users whose chunk holds its bit.
CREATE INDEX read_chunks_chunk ON pgfeed.read_chunks (chunk_no);

-- Per user, the part of net_total that belongs to each topic: nets[topic_id % 64 + 1] of the row
-- with bucket = topic_id / 64. A row per topic would cost more than all of a user's read marks.
CREATE TABLE pgfeed.topic_nets (
    user_id    int    NOT NULL,
    bucket     int    NOT NULL,
    generation int    NOT NULL,
    nets       int4[] NOT NULL,
    PRIMARY KEY (user_id, bucket)
) WITH (fillfactor = 70);

-- Topics by name: following a topic that has no items yet creates nothing that an inserting
-- transaction would have to wait for.
CREATE TABLE pgfeed.follows (
    user_id int  NOT NULL,
    topic   text NOT NULL,
    PRIMARY KEY (user_id, topic)
);

-- Apps call the functions; only the functions (SECURITY DEFINER) touch the tables.
GRANT USAGE ON SCHEMA pgfeed TO PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pgfeed FROM PUBLIC;

-- C++ entry points. Multi-array unnest is syntax, not a function, so the C++ code names it bare:
-- the pinned search_path makes that safe. ---------------------------------------------------------------------------------

CREATE FUNCTION pgfeed._capture() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_capture';

CREATE FUNCTION pgfeed._sequence() RETURNS trigger
    LANGUAGE c SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_sequence';

CREATE FUNCTION pgfeed._refuse_truncate() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'pgfeed_refuse_truncate';

CREATE FUNCTION pgfeed._tombstone(source regclass, activity_id bigint) RETURNS bool
    LANGUAGE c STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_tombstone';
REVOKE ALL ON FUNCTION pgfeed._tombstone(regclass, bigint) FROM PUBLIC;

CREATE FUNCTION pgfeed.page(user_key text, feed text DEFAULT 'all', page_size int DEFAULT 20,
                            before bigint DEFAULT NULL, unread_only bool DEFAULT false)
    RETURNS TABLE ("position" bigint, activity_id bigint, source regclass, topic text,
                   created_at timestamptz, is_read bool)
    LANGUAGE c STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    ROWS 20 AS 'MODULE_PATHNAME', 'pgfeed_page';

CREATE FUNCTION pgfeed.unread_count(user_key text, feed text DEFAULT 'all') RETURNS bigint
    LANGUAGE c STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_unread_count';

CREATE FUNCTION pgfeed.count_since(user_key text, feed text, after bigint) RETURNS bigint
    LANGUAGE c STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_count_since';

CREATE FUNCTION pgfeed.is_read(user_key text, activity_id bigint, source regclass DEFAULT NULL)
    RETURNS bool
    LANGUAGE c STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_is_read';

CREATE FUNCTION pgfeed.mark_read(user_key text, activity_ids bigint[], source regclass DEFAULT NULL)
    RETURNS int
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_read';

CREATE FUNCTION pgfeed.mark_unread(user_key text, activity_ids bigint[], source regclass DEFAULT NULL)
    RETURNS int
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_unread';

CREATE FUNCTION pgfeed.mark_all_read(user_key text, feed text DEFAULT 'all', up_to bigint DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_all_read';

CREATE FUNCTION pgfeed.follow(user_key text, topic text) RETURNS bool
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_follow';

CREATE FUNCTION pgfeed.unfollow(user_key text, topic text) RETURNS bool
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_unfollow';

-- Attaching and detaching sources: administration, run with the caller's own rights (it creates
-- triggers on the table and writes pgfeed's tables), so not granted to PUBLIC. -------------------

CREATE FUNCTION pgfeed.attach(source regclass, topic_column name,
                              payload_columns name[] DEFAULT '{}',
                              id_column name DEFAULT 'id', created_column name DEFAULT 'created_at')
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col      name;
    col_type regtype;
    base     bigint;
    added    bigint;
BEGIN
    IF source IS NULL OR topic_column IS NULL OR id_column IS NULL OR created_column IS NULL
       OR payload_columns IS NULL THEN
        RAISE EXCEPTION 'pgfeed.attach: arguments must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = source) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pgfeed.attach: % is not a table', source
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF EXISTS (SELECT 1 FROM pgfeed.sources s WHERE s.source = attach.source) THEN
        RAISE EXCEPTION 'pgfeed.attach: table % is already attached', source
            USING ERRCODE = 'duplicate_object', HINT = 'Call pgfeed.detach first to attach it again.';
    END IF;
    FOREACH col IN ARRAY ARRAY[id_column, topic_column, created_column] || payload_columns LOOP
        SELECT a.atttypid::regtype INTO col_type FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pgfeed.attach: table % has no column "%"', source, col
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name existing columns with id_column, topic_column, created_column and payload_columns.';
        END IF;
        IF col = id_column AND col_type NOT IN ('smallint', 'integer', 'bigint') THEN
            RAISE EXCEPTION 'pgfeed.attach: id column "%" of % has type %, not an integer type', col, source, col_type
                USING ERRCODE = 'datatype_mismatch';
        END IF;
        IF col = created_column AND col_type <> 'timestamp with time zone'::regtype THEN
            RAISE EXCEPTION 'pgfeed.attach: created column "%" of % has type %, not timestamptz', col, source, col_type
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    IF pg_catalog.strpos(topic_column, ':') > 0 THEN
        RAISE EXCEPTION 'pgfeed.attach: topic column name "%" must not contain '':''', topic_column
            USING ERRCODE = 'invalid_name';
    END IF;

    INSERT INTO pgfeed.sources VALUES (source, id_column, topic_column, created_column, payload_columns);

    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pgfeed_capture AFTER INSERT OR DELETE OR UPDATE OF %I, %I, %I ON %s '
        'FOR EACH ROW EXECUTE FUNCTION pgfeed._capture(%L, %L, %L)',
        id_column, topic_column, created_column, source, id_column, topic_column, created_column);
    EXECUTE pg_catalog.format(
        'CREATE CONSTRAINT TRIGGER pgfeed_sequence AFTER INSERT OR DELETE OR UPDATE OF %I, %I, %I ON %s '
        'DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgfeed._sequence()',
        id_column, topic_column, created_column, source);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pgfeed_refuse_truncate BEFORE TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed._refuse_truncate()', source);

    -- Backfill: existing rows take the next positions in (created, id) order, under the sequencer lock.
    SELECT s.last_position INTO base FROM pgfeed.sequencer s FOR UPDATE;
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE pgfeed_backfill ON COMMIT DROP AS '
        'SELECT $1 + row_number() OVER (ORDER BY %2$I, %1$I) AS position, %1$I::bigint AS activity_id, '
        '       CASE WHEN %3$I IS NULL THEN NULL ELSE %4$L || '':'' || %3$I::text END AS topic, '
        '       %2$I AS created_at FROM %5$s',
        id_column, created_column, topic_column, topic_column, source) USING base;
    INSERT INTO pgfeed.topics (name)
        SELECT DISTINCT b.topic FROM pg_temp.pgfeed_backfill b WHERE b.topic IS NOT NULL
        ON CONFLICT (name) DO NOTHING;
    INSERT INTO pgfeed.items (position, source, activity_id, topic_id, topic_seq, created_at)
        SELECT b.position, attach.source, b.activity_id, t.topic_id,
               t.last_seq + row_number() OVER (PARTITION BY t.topic_id ORDER BY b.position),
               b.created_at
          FROM pg_temp.pgfeed_backfill b LEFT JOIN pgfeed.topics t ON t.name = b.topic;
    GET DIAGNOSTICS added = ROW_COUNT;
    UPDATE pgfeed.topics t SET last_seq = t.last_seq + n.added
      FROM (SELECT b.topic, count(*) AS added FROM pg_temp.pgfeed_backfill b
             WHERE b.topic IS NOT NULL GROUP BY b.topic) n
     WHERE t.name = n.topic;
    UPDATE pgfeed.sequencer SET last_position = base + added;
    DROP TABLE pg_temp.pgfeed_backfill;
    -- Fresh statistics, so the first plans of the feed functions see the backfilled size.
    ANALYZE pgfeed.items;
    ANALYZE pgfeed.topics;
    RETURN added;
END
$$;

CREATE FUNCTION pgfeed.detach(source regclass) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed bigint := 0;
    item    record;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'pgfeed.detach: source must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgfeed.sources s WHERE s.source = detach.source) THEN
        RAISE EXCEPTION 'pgfeed.detach: table % is not attached', source
            USING ERRCODE = 'undefined_object', HINT = 'pgfeed.sources lists the attached tables.';
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_capture ON %s', source);
    EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_sequence ON %s', source);
    EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_refuse_truncate ON %s', source);
    DELETE FROM pgfeed.sources s WHERE s.source = detach.source;
    -- Its items become tombstones, and read marks on them are withdrawn, as if each row were deleted.
    FOR item IN SELECT i.activity_id FROM pgfeed.items i
                 WHERE i.source = detach.source AND NOT i.deleted LOOP
        PERFORM pgfeed._tombstone(source, item.activity_id);
        removed := removed + 1;
    END LOOP;
    RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION pgfeed.attach(regclass, name, name[], name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgfeed.detach(regclass) FROM PUBLIC;

-- Deletes rows of retired generations; safe to run at any time, e.g. from cron.
CREATE FUNCTION pgfeed.compact() RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH chunks AS (
        DELETE FROM pgfeed.read_chunks c USING pgfeed.readers r
         WHERE c.user_id = r.user_id AND c.generation <> r.generation RETURNING 1
    ), nets AS (
        DELETE FROM pgfeed.topic_nets n USING pgfeed.readers r
         WHERE n.user_id = r.user_id AND n.generation <> r.generation RETURNING 1
    )
    SELECT (SELECT count(*) FROM chunks) + (SELECT count(*) FROM nets);
$$;
REVOKE ALL ON FUNCTION pgfeed.compact() FROM PUBLIC;
