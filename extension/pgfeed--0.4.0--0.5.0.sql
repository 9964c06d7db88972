-- pgfeed 0.4.0 -> 0.5.0: a bound on the topics a call may see or change.
\echo Use "ALTER EXTENSION pgfeed UPDATE TO '0.5.0'" to load this file. \quit

-- within => text[]: LIKE patterns. A caller that serves a client with a limited grant (the
-- notifier, for a token whose topics are not "*") passes them, and the call then sees and changes
-- only items of topics LIKE one of them: 'following' is the followed topics within the bound, a
-- topic feed outside it is empty, and ids of items outside it are answered as missing ones. NULL
-- (the default) is no bound; 'all' takes none. A new argument is a new signature, so the
-- functions are created again; grants made to other roles than pgfeed's are to be made again.
DROP FUNCTION pgfeed.page(text, text, int, bigint, bool);
DROP FUNCTION pgfeed.unread_count(text, text);
DROP FUNCTION pgfeed.count_since(text, text, bigint);
DROP FUNCTION pgfeed.mark_read(text, bigint[], regclass);
DROP FUNCTION pgfeed.mark_unread(text, bigint[], regclass);
DROP FUNCTION pgfeed.mark_all_read(text, text, bigint);
DROP FUNCTION pgfeed.following(text);

CREATE FUNCTION pgfeed.page(user_key text, feed text DEFAULT 'all', page_size int DEFAULT 20,
                            before bigint DEFAULT NULL, unread_only bool DEFAULT false, within text[] DEFAULT NULL)
    RETURNS TABLE ("position" bigint, activity_id bigint, source regclass, topic text,
                   created_at timestamptz, is_read bool)
    LANGUAGE c STABLE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    ROWS 20 AS 'MODULE_PATHNAME', 'pgfeed_page';

CREATE FUNCTION pgfeed.unread_count(user_key text, feed text DEFAULT 'all', within text[] DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c STABLE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_unread_count';

CREATE FUNCTION pgfeed.count_since(user_key text, feed text, after bigint, within text[] DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c STABLE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_count_since';

CREATE FUNCTION pgfeed.mark_read(user_key text, activity_ids bigint[], source regclass DEFAULT NULL,
                                 within text[] DEFAULT NULL)
    RETURNS int
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_read';

CREATE FUNCTION pgfeed.mark_unread(user_key text, activity_ids bigint[], source regclass DEFAULT NULL,
                                   within text[] DEFAULT NULL)
    RETURNS int
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_unread';

CREATE FUNCTION pgfeed.mark_all_read(user_key text, feed text DEFAULT 'all', up_to bigint DEFAULT NULL,
                                     within text[] DEFAULT NULL)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'pgfeed_mark_all_read';

CREATE FUNCTION pgfeed.following(user_key text, within text[] DEFAULT NULL) RETURNS SETOF text
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
    IF pg_catalog.array_position(within, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'pgfeed: within must not contain NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'within => NULL means no bound; an empty array bounds the call to nothing.';
    END IF;
    RETURN QUERY SELECT f.topic FROM pgfeed.follows f JOIN pgfeed.readers r USING (user_id)
                  WHERE r.user_key = following.user_key AND (within IS NULL OR f.topic LIKE ANY (within))
                  ORDER BY f.topic;
END
$$;

REVOKE ALL ON FUNCTION pgfeed.page(text, text, int, bigint, bool, text[]), pgfeed.unread_count(text, text, text[]),
    pgfeed.count_since(text, text, bigint, text[]), pgfeed.following(text, text[]),
    pgfeed.mark_read(text, bigint[], regclass, text[]), pgfeed.mark_unread(text, bigint[], regclass, text[]),
    pgfeed.mark_all_read(text, text, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgfeed.page(text, text, int, bigint, bool, text[]), pgfeed.unread_count(text, text, text[]),
    pgfeed.count_since(text, text, bigint, text[]), pgfeed.following(text, text[]) TO pgfeed_reader;
GRANT EXECUTE ON FUNCTION pgfeed.mark_read(text, bigint[], regclass, text[]),
    pgfeed.mark_unread(text, bigint[], regclass, text[]), pgfeed.mark_all_read(text, text, bigint, text[])
    TO pgfeed_app;
