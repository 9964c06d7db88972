-- pgfeed 0.3.0 -> 0.4.0: items are numbered after commit, so writers share no lock.
\echo Use "ALTER EXTENSION pgfeed UPDATE TO '0.4.0'" to load this file. \quit

-- Changes of attached rows, written by the row trigger inside the transaction that makes them, so
-- they commit or roll back with it, savepoints included. The numbering step (the background
-- worker, or pgfeed.flush) moves what is committed into pgfeed.items in rounds: a round sees the
-- committed rows of one snapshot, so a transaction that commits late lands in a later round, above
-- every position handed out before. WAL-logged: a crash must not lose committed changes.
CREATE TABLE pgfeed.pending (
    change_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid        xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    op          "char"      NOT NULL CHECK (op IN ('i', 'd', 't')), -- insert, delete, new created_at
    source      oid         NOT NULL,
    activity_id bigint      NOT NULL,
    topic       text,
    created_at  timestamptz,
    payload     text,       -- inserts: the payload columns as JSON, NULL past kMaxPayloadBytes
    quiet       bool        NOT NULL DEFAULT false -- backfilled by attach: numbered without an event
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 20000);
-- mark_read of an item that is not numbered yet finds its pending insert here.
CREATE INDEX pending_activity ON pgfeed.pending (activity_id);

-- Marks made before their item was numbered (an author marks their own new item read): the
-- numbering step applies them once the item has a position, under the user's reader lock.
CREATE TABLE pgfeed.early_marks (
    user_key    text   NOT NULL,
    source      oid    NOT NULL,
    activity_id bigint NOT NULL,
    PRIMARY KEY (user_key, activity_id, source)
);
CREATE INDEX early_marks_activity ON pgfeed.early_marks (activity_id);
REVOKE ALL ON pgfeed.pending, pgfeed.early_marks FROM PUBLIC;

COMMENT ON TABLE pgfeed.sequencer IS
    'The last position given out; only the numbering step (worker or pgfeed.flush) updates it.';

-- The capture trigger now runs with the rights of the role that writes the row: the payload is
-- built as that role, and only the write into pgfeed.pending is done with pgfeed's rights.
-- It refuses every table that is not attached; and creating a trigger needs EXECUTE, which only
-- the administrators who attach tables have.
ALTER FUNCTION pgfeed._capture() SECURITY INVOKER;
REVOKE ALL ON FUNCTION pgfeed._capture(), pgfeed._refuse_truncate() FROM PUBLIC;

-- Payload columns become JSON in the capture trigger; json_build_object would call a cast to json
-- of a type someone else defined, so only built-in types (and domains and arrays of them) qualify.
CREATE FUNCTION pgfeed._publishable(column_type regtype) RETURNS bool
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE base(oid, basetype) AS (
        SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = column_type
        UNION ALL
        SELECT t.oid, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.basetype)
    SELECT b.oid::pg_catalog.int8 < 16384 FROM base b WHERE b.basetype = 0
$$;

-- The capture trigger of an attached table, with its columns as arguments: the id, topic and
-- created columns, then the payload columns. The trigger checks them against pgfeed.sources.
CREATE FUNCTION pgfeed._capture_trigger_sql(source regclass) RETURNS text
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format(
        'CREATE TRIGGER pgfeed_capture AFTER INSERT OR DELETE OR UPDATE OF %I, %I, %I ON %s '
        'FOR EACH ROW EXECUTE FUNCTION pgfeed._capture(%s)',
        s.id_column, s.topic_column, s.created_column, s.source,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(c), ', ' ORDER BY n)
           FROM unnest(ARRAY[s.id_column, s.topic_column, s.created_column] || s.payload_columns)
                WITH ORDINALITY AS u(c, n)))
      FROM pgfeed.sources s WHERE s.source = _capture_trigger_sql.source
$$;
REVOKE ALL ON FUNCTION pgfeed._publishable(regtype), pgfeed._capture_trigger_sql(regclass) FROM PUBLIC;

-- Existing sources: the commit-time sequencer trigger goes, and the capture trigger is recreated
-- with the payload columns among its arguments.
DO $$
DECLARE
    s    pgfeed.sources;
    item record;
BEGIN
    -- A table dropped while attached left its row behind (0.3.0 allowed it): its items leave every
    -- feed, as if each row were deleted, and the row goes.
    FOR item IN SELECT i.source, i.activity_id FROM pgfeed.items i
                 WHERE NOT i.deleted AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = i.source) LOOP
        PERFORM pgfeed._tombstone(item.source, item.activity_id);
    END LOOP;
    DELETE FROM pgfeed.sources gone WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = gone.source);
    FOR s IN SELECT * FROM pgfeed.sources LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_sequence ON %s', s.source);
        EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_capture ON %s', s.source);
        EXECUTE pgfeed._capture_trigger_sql(s.source);
    END LOOP;
END
$$;
DROP FUNCTION pgfeed._sequence();

CREATE OR REPLACE FUNCTION pgfeed.attach(source regclass, topic_column name,
                                         payload_columns name[] DEFAULT '{}',
                                         id_column name DEFAULT 'id', created_column name DEFAULT 'created_at')
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col      name;
    col_type regtype;
    added    bigint;
BEGIN
    IF source IS NULL OR topic_column IS NULL OR id_column IS NULL OR created_column IS NULL
       OR payload_columns IS NULL THEN
        RAISE EXCEPTION 'pgfeed.attach: arguments must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the table and its topic column; the other arguments have defaults.';
    END IF;
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = source) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pgfeed.attach: % is not a table', source
            USING ERRCODE = 'wrong_object_type', HINT = 'Attach the table itself, not a view of it.';
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
                USING ERRCODE = 'datatype_mismatch', HINT = 'The id column must be smallint, integer or bigint.';
        END IF;
        IF col = created_column AND col_type <> 'timestamp with time zone'::regtype THEN
            RAISE EXCEPTION 'pgfeed.attach: created column "%" of % has type %, not timestamptz', col, source, col_type
                USING ERRCODE = 'datatype_mismatch', HINT = 'The created column must be timestamptz.';
        END IF;
        IF col = ANY (payload_columns) AND NOT pgfeed._publishable(col_type) THEN
            RAISE EXCEPTION 'pgfeed.attach: payload column "%" of % has type %, not a built-in type', col, source, col_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Payload columns need built-in types (or domains or arrays of them), whose JSON runs no code of another role.';
        END IF;
    END LOOP;
    IF pg_catalog.strpos(topic_column, ':') > 0 THEN
        RAISE EXCEPTION 'pgfeed.attach: topic column name "%" must not contain '':''', topic_column
            USING ERRCODE = 'invalid_name', HINT = 'Topics are written column:value; rename the column.';
    END IF;

    INSERT INTO pgfeed.sources VALUES (source, id_column, topic_column, created_column, payload_columns);
    EXECUTE pgfeed._capture_trigger_sql(source);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER pgfeed_refuse_truncate BEFORE TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION pgfeed._refuse_truncate()', source);

    -- Backfill: existing rows queue for numbering in (created, id) order, without events. The
    -- topic is the value's output function (format's %s), never a cast another role could define.
    EXECUTE pg_catalog.format(
        'INSERT INTO pgfeed.pending (op, source, activity_id, topic, created_at, quiet) '
        'SELECT ''i'', $1, %1$I::pg_catalog.int8, '
        '       CASE WHEN %3$I IS NULL THEN NULL ELSE pg_catalog.format(''%%s:%%s'', %4$L, %3$I) END, '
        '       %2$I, true FROM %5$s ORDER BY %2$I, %1$I',
        id_column, created_column, topic_column, topic_column, source) USING source;
    GET DIAGNOSTICS added = ROW_COUNT;
    RETURN added;
END
$$;

CREATE OR REPLACE FUNCTION pgfeed.detach(source regclass) RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed bigint := 0;
    item    record;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'pgfeed.detach: source must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Name an attached table; pgfeed.sources lists them.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pgfeed.sources s WHERE s.source = detach.source) THEN
        RAISE EXCEPTION 'pgfeed.detach: table % is not attached', source
            USING ERRCODE = 'undefined_object', HINT = 'pgfeed.sources lists the attached tables.';
    END IF;
    EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_capture ON %s', source);
    EXECUTE pg_catalog.format('DROP TRIGGER pgfeed_refuse_truncate ON %s', source);
    DELETE FROM pgfeed.sources s WHERE s.source = detach.source;
    -- After any round in progress: what it numbered is removed below, what it left is dropped.
    PERFORM FROM pgfeed.sequencer FOR UPDATE;
    DELETE FROM pgfeed.pending p WHERE p.source = detach.source;
    DELETE FROM pgfeed.early_marks e WHERE e.source = detach.source;
    -- Its items become tombstones, and read marks on them are withdrawn, as if each row were deleted.
    FOR item IN SELECT i.activity_id FROM pgfeed.items i
                 WHERE i.source = detach.source AND NOT i.deleted LOOP
        PERFORM pgfeed._tombstone(source, item.activity_id);
        removed := removed + 1;
    END LOOP;
    RETURN removed;
END
$$;

-- Waits until every change committed before the call is numbered: by the background worker when
-- pgfeed is in shared_preload_libraries, else in this call (inside the caller's transaction), with
-- the settings the worker numbers with. It changes nothing that the worker would not: any role
-- may wait for it.
CREATE PROCEDURE pgfeed.flush()
    LANGUAGE c SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp SET synchronous_commit = on SET TimeZone = 'UTC'
    AS 'MODULE_PATHNAME', 'pgfeed_flush';

-- True while a numbering worker serves this database.
CREATE FUNCTION pgfeed.worker_running() RETURNS bool
    LANGUAGE c STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_worker_running';

-- Least privilege. Nothing that reads or changes a user's state is granted to PUBLIC; the
-- administrator grants these roles (like pg_monitor), which every database with pgfeed shares:
--   pgfeed_reader  pages, counts, is_read, following
--   pgfeed_app     pgfeed_reader, and marks, follows and flush
--   pgfeed_bridge  the notifier's bridge: moving the outbox into Redis
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgfeed_reader') THEN
        CREATE ROLE pgfeed_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgfeed_app') THEN
        CREATE ROLE pgfeed_app NOLOGIN IN ROLE pgfeed_reader;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgfeed_bridge') THEN
        CREATE ROLE pgfeed_bridge NOLOGIN;
    END IF;
END
$$;

-- The functions run with the caller's rights, so that they know who calls: a page shows, and a
-- mark touches, only items of tables the caller may SELECT. Their reads and writes of pgfeed's
-- tables run as pgfeed's owner, inside the C code (privilege.cpp).
ALTER FUNCTION pgfeed.page(text, text, int, bigint, bool) SECURITY INVOKER;
ALTER FUNCTION pgfeed.unread_count(text, text) SECURITY INVOKER;
ALTER FUNCTION pgfeed.count_since(text, text, bigint) SECURITY INVOKER;
ALTER FUNCTION pgfeed.is_read(text, bigint, regclass) SECURITY INVOKER;
ALTER FUNCTION pgfeed.mark_read(text, bigint[], regclass) SECURITY INVOKER;
ALTER FUNCTION pgfeed.mark_unread(text, bigint[], regclass) SECURITY INVOKER;
ALTER FUNCTION pgfeed.mark_all_read(text, text, bigint) SECURITY INVOKER;
ALTER FUNCTION pgfeed.follow(text, text) SECURITY INVOKER;
ALTER FUNCTION pgfeed.unfollow(text, text) SECURITY INVOKER;

-- following honours pgfeed.user_key like every other per-user function.
CREATE OR REPLACE FUNCTION pgfeed.following(user_key text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    ROWS 10
AS $$
DECLARE
    restricted text := pg_catalog.current_setting('pgfeed.user_key', true);
BEGIN
    IF user_key IS NULL THEN
        RAISE EXCEPTION 'pgfeed: user_key must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the app''s user id as text.';
    END IF;
    IF coalesce(restricted, '') <> '' AND restricted <> user_key THEN
        RAISE EXCEPTION 'pgfeed: pgfeed.user_key restricts this session to another user'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'The session may only read and change the state of the user named by pgfeed.user_key.';
    END IF;
    RETURN QUERY SELECT f.topic FROM pgfeed.follows f JOIN pgfeed.readers r USING (user_id)
                  WHERE r.user_key = following.user_key ORDER BY f.topic;
END
$$;

REVOKE ALL ON FUNCTION pgfeed.page(text, text, int, bigint, bool), pgfeed.unread_count(text, text),
    pgfeed.count_since(text, text, bigint), pgfeed.is_read(text, bigint, regclass), pgfeed.following(text),
    pgfeed.mark_read(text, bigint[], regclass), pgfeed.mark_unread(text, bigint[], regclass),
    pgfeed.mark_all_read(text, text, bigint), pgfeed.follow(text, text), pgfeed.unfollow(text, text),
    pgfeed.worker_running() FROM PUBLIC;
REVOKE ALL ON PROCEDURE pgfeed.flush() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfeed.page(text, text, int, bigint, bool), pgfeed.unread_count(text, text),
    pgfeed.count_since(text, text, bigint), pgfeed.is_read(text, bigint, regclass), pgfeed.following(text),
    pgfeed.worker_running() TO pgfeed_reader;
GRANT EXECUTE ON FUNCTION pgfeed.mark_read(text, bigint[], regclass), pgfeed.mark_unread(text, bigint[], regclass),
    pgfeed.mark_all_read(text, text, bigint), pgfeed.follow(text, text), pgfeed.unfollow(text, text)
    TO pgfeed_app;
GRANT EXECUTE ON PROCEDURE pgfeed.flush() TO pgfeed_app, pgfeed_bridge;
GRANT EXECUTE ON FUNCTION pgfeed.bridge_start(text), pgfeed.events_between(pg_snapshot, pg_snapshot, bigint, int),
    pgfeed.bridge_moved(text, pg_snapshot), pgfeed.drop_bridge(text) TO pgfeed_bridge;

-- A table dropped while attached is detached on the way: its items leave every feed.
CREATE FUNCTION pgfeed._forget_dropped() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid;
    item    record;
BEGIN
    FOR dropped IN SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
                      AND EXISTS (SELECT FROM pgfeed.sources s WHERE s.source::pg_catalog.oid = d.objid) LOOP
        PERFORM FROM pgfeed.sequencer FOR UPDATE; -- after any round in progress, as detach
        DELETE FROM pgfeed.sources s WHERE s.source::pg_catalog.oid = dropped;
        DELETE FROM pgfeed.pending p WHERE p.source = dropped;
        DELETE FROM pgfeed.early_marks e WHERE e.source = dropped;
        FOR item IN SELECT i.activity_id FROM pgfeed.items i WHERE i.source::pg_catalog.oid = dropped AND NOT i.deleted LOOP
            PERFORM pgfeed._tombstone(dropped::pg_catalog.regclass, item.activity_id);
        END LOOP;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION pgfeed._forget_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER pgfeed_forget_dropped ON sql_drop EXECUTE FUNCTION pgfeed._forget_dropped();

-- Without the worker, committed rows wait for CALL pgfeed.flush().
DO $$
BEGIN
    IF pg_catalog.strpos(pg_catalog.current_setting('shared_preload_libraries'), 'pgfeed') = 0 THEN
        RAISE NOTICE 'pgfeed is not in shared_preload_libraries: committed rows become feed items only at CALL pgfeed.flush()'
            USING HINT = 'Add pgfeed to shared_preload_libraries and restart, for the numbering worker.';
    END IF;
END
$$;

-- pg_dump carries pgfeed's state with the app's tables. The counter row is left out: CREATE
-- EXTENSION makes it at restore, and the numbering step raises it to the highest restored
-- position before it numbers anything (numbering.cpp).
DO $$
DECLARE
    t regclass;
BEGIN
    -- One statement each: every call rewrites pgfeed's row of pg_extension.
    FOREACH t IN ARRAY ARRAY['pgfeed.sources', 'pgfeed.topics', 'pgfeed.items', 'pgfeed.readers',
                             'pgfeed.read_chunks', 'pgfeed.topic_nets', 'pgfeed.follows', 'pgfeed.events',
                             'pgfeed.bridges', 'pgfeed.pending', 'pgfeed.early_marks', 'pgfeed.events_event_id_seq',
                             'pgfeed.pending_change_id_seq', 'pgfeed.topics_topic_id_seq',
                             'pgfeed.readers_user_id_seq']::regclass[] LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$$;
