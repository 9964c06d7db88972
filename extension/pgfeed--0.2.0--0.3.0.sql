-- pgfeed 0.2.0 -> 0.3.0: what an HTTP feed API needs beyond pages and counts (pgfeed-notifier's
-- /v1/feed and /v1/follows): an item's payload, as push events carry it, and a user's follows.
\echo Use "ALTER EXTENSION pgfeed UPDATE TO '0.3.0'" to load this file. \quit

-- Which columns are published is not a secret (the catalogs show the triggers anyway); the rows
-- are, so payload() reads them with the caller's rights.
GRANT SELECT ON pgfeed.sources TO PUBLIC;

-- The payload columns of one item as a JSON object, built like an activity event's "payload":
-- NULL when the source publishes no columns, the row is gone, or the object exceeds 4000 bytes.
CREATE FUNCTION pgfeed.payload(source regclass, activity_id bigint) RETURNS json
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    published pgfeed.sources;
    object    json;
BEGIN
    SELECT * INTO published FROM pgfeed.sources s WHERE s.source = payload.source;
    IF NOT FOUND OR cardinality(published.payload_columns) = 0 THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT json_build_object(%s) FROM %s WHERE %I = $1',
                   (SELECT string_agg(format('%L, %I', c, c), ', ' ORDER BY n)
                      FROM unnest(published.payload_columns) WITH ORDINALITY AS u(c, n)),
                   published.source, published.id_column)
       INTO object USING activity_id;
    RETURN CASE WHEN octet_length(object::text) <= 4000 THEN object END;
END
$$;

-- The topics a user follows, in name order. An unknown user follows nothing.
CREATE FUNCTION pgfeed.following(user_key text) RETURNS SETOF text
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    ROWS 10
AS $$
BEGIN
    IF user_key IS NULL THEN
        RAISE EXCEPTION 'pgfeed: user_key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY SELECT f.topic FROM pgfeed.follows f JOIN pgfeed.readers r USING (user_id)
                  WHERE r.user_key = following.user_key ORDER BY f.topic;
END
$$;
