-- Uninstall, as the README says: detach every table, drop the extension, drop its schema. Nothing
-- of pgfeed is left on the app's tables, and their rows stay. Last: it removes pgfeed.
CREATE TABLE kept (id bigint PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('kept', 'mp_id');
INSERT INTO kept VALUES (1, 1), (2, 2);
CALL pgfeed.flush();
SELECT refusal($$DROP EXTENSION pgfeed$$) LIKE '2BP01:%' AS refused_while_attached;
SELECT count(*) > 0 AS detached FROM (SELECT pgfeed.detach(source) FROM pgfeed.sources) d;
DROP EXTENSION pgfeed;
DROP SCHEMA pgfeed;
SELECT count(*) AS pgfeed_triggers FROM pg_trigger WHERE tgname LIKE 'pgfeed%';
SELECT count(*) AS pgfeed_event_triggers FROM pg_event_trigger WHERE evtname LIKE 'pgfeed%';
SELECT count(*) AS pgfeed_schemas FROM pg_namespace WHERE nspname = 'pgfeed';
SELECT count(*) AS rows_kept FROM kept;
DROP TABLE kept;
