#!/usr/bin/env bash
# The upgrade test, with real servers and the real libraries:
#   1. builds the 0.3.0 library from its release commit and installs it into a private copy of
#      PostgreSQL 15 (the system install is never touched);
#   2. makes a database with it (setup_0.3.0.sql) and records what the feed functions report
#      (state.sql);
#   3. starts the same data directory with the installed PostgreSQL, whose pgfeed library is this
#      tree's (make install), preloaded: the library refuses the 0.3.0 schema until
#      ALTER EXTENSION pgfeed UPDATE, after which the read state is unchanged and numbering, marks
#      and the worker work;
#   4. the other way round: a schema newer than the library is refused too.
# One PASS or FAIL line per check; exits non-zero if any failed.
#
# PGFEED_UPGRADE_NEW_ROOT: a directory holding usr/lib/postgresql/15 and usr/share/postgresql/15
# with the library to upgrade to, instead of the system install (/).
set -uo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
here=$repo/test/upgrade
old_commit=c7c56fb # release 0.3.0
old_version=0.3.0
pg=postgresql/15
new_root=${PGFEED_UPGRADE_NEW_ROOT:-}
new_bin=$new_root/usr/lib/$pg/bin
new_share=$new_root/usr/share/$pg
psql_bin=/usr/lib/$pg/bin/psql
port=5432
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGSERVICE PGOPTIONS

started=$SECONDS passes=0 failures=0 tmp="" server_bin="" data=""
pass() { passes=$((passes + 1)); echo "PASS: $*"; }
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }
die() { fail "$*"; exit 1; }

# initdb and pg_ctl refuse root: run them as the postgres system user then.
RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)

stop_server() {
    [ -n "$server_bin" ] || return 0
    local bin=$server_bin
    server_bin=""
    "${RUNAS[@]}" "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        { "${RUNAS[@]}" "$bin/pg_ctl" -D "$data" -m immediate -w -t 60 stop >/dev/null 2>&1; return 1; }
}

start_server() { # BIN LOGNAME
    "${RUNAS[@]}" "$1/pg_ctl" -D "$data" -l "$pgdir/$2" -w -t 60 start >/dev/null || {
        tail -30 "$pgdir/$2"
        return 1
    }
    server_bin=$1
}

exec 3>&1 4>&2 # the summary goes here even when a signal lands inside a redirected command
cleanup() {
    local rc=$?
    exec 1>&3 2>&4
    stop_server
    [ -n "$tmp" ] && rm -rf "$tmp"
    [ "$failures" -gt 0 ] && rc=1
    [ "$rc" != 0 ] && [ "$failures" = 0 ] && echo "FAIL: stopped early (exit status $rc)"
    echo "upgrade: $passes passed, $failures failed, $((SECONDS - started)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql_as() { # ROLE DB psql-arguments...
    local role=$1 db=$2
    shift 2
    "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U "$role" -d "$db" "$@"
}
sql() { sql_as postgres "$@"; }

expect() { # NAME DB SQL EXPECTED
    local got
    got=$(sql "$2" -c "$3" 2>&1)
    if [ "$got" = "$4" ]; then pass "$1"; else fail "$1: expected '$4', got '$got'"; fi
}

# The statement must fail with SQLSTATE STATE and a message or hint matching the pattern (grep -E).
expect_error() { # NAME ROLE DB SQL STATE PATTERN
    local out
    if out=$(sql_as "$2" "$3" -v VERBOSITY=verbose -c "$4" 2>&1); then
        fail "$1: it succeeded: $out"
    elif ! grep -q "^ERROR:  $5: " <<<"$out"; then
        fail "$1: not SQLSTATE $5: $out"
    elif ! grep -qE "^(ERROR|HINT):  .*$6" <<<"$out"; then
        fail "$1: nothing matches '$6': $out"
    else
        pass "$1 ($(grep -m1 -E "^(ERROR|HINT):  .*$6" <<<"$out"))"
    fi
}
# The library's refusal of a schema of another version: 55000, and a hint that says what to do.
expect_refusal() { # NAME DB SQL HINT-PATTERN
    expect_error "$1" postgres "$2" "$3" 55000 "$4"
}

# Polls SQL until it returns EXPECTED, for at most SECONDS.
wait_for() { # NAME DB SQL EXPECTED SECONDS
    local deadline=$((SECONDS + $5)) got=""
    while :; do
        got=$(sql "$2" -c "$3" 2>&1)
        [ "$got" = "$4" ] && { pass "$1"; return 0; }
        [ "$SECONDS" -ge "$deadline" ] && { fail "$1: still '$got' after $5 s, expected '$4'"; return 1; }
        sleep 0.05 # between polls, until the deadline
    done
}

tmp=$(mktemp -d -t pgfeed-upgrade.XXXXXX)
chmod 755 "$tmp" # the servers run as postgres when we are root

# --- 1. The 0.3.0 library, from git ------------------------------------------------------------
command -v pg_config >/dev/null || die "build $old_version: pg_config is not on PATH"
command -v git >/dev/null && git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 ||
    die "build $old_version: $repo is not a git checkout; the test builds release $old_version from commit $old_commit"
if ! git -C "$repo" cat-file -e "$old_commit^{commit}" 2>/dev/null &&
    [ "$(git -C "$repo" rev-parse --is-shallow-repository)" = true ]; then
    echo "commit $old_commit (release $old_version) is not in this shallow clone: trying git fetch --unshallow"
    GIT_TERMINAL_PROMPT=0 timeout 120 git -C "$repo" fetch --quiet --unshallow 2>&1 | tail -3
fi
git -C "$repo" cat-file -e "$old_commit^{commit}" 2>/dev/null ||
    die "build $old_version: commit $old_commit (release $old_version) is not in this clone and could not be fetched; the upgrade test needs the history (clone without --depth, or git fetch --unshallow)"
mkdir "$tmp/old" "$tmp/root"
git -C "$repo" archive "$old_commit" extension Makefile | tar -x -C "$tmp/old" ||
    die "build $old_version: git archive $old_commit failed"
make -C "$tmp/old" -j2 >"$tmp/old-build.log" 2>&1 || { tail -30 "$tmp/old-build.log"; die "build $old_version: make failed"; }
pass "build the $old_version library from commit $old_commit"

# --- 2. A private PostgreSQL tree with it ------------------------------------------------------
(cd / && cp -a --parents usr/include/postgresql "usr/lib/$pg" "usr/share/$pg" "$tmp/root"/) ||
    die "copy of the PostgreSQL install failed"
old_bin=$tmp/root/usr/lib/$pg/bin
rm -f "$tmp/root/usr/lib/$pg/lib/pgfeed.so" "$tmp/root/usr/share/$pg/extension/"pgfeed[.-]*
[ "$("$old_bin/pg_config" --pkglibdir)" = "$tmp/root/usr/lib/$pg/lib" ] ||
    die "the copied pg_config reports $("$old_bin/pg_config" --pkglibdir), not a directory of the copy"
make -C "$tmp/old" install PG_CONFIG="$old_bin/pg_config" >>"$tmp/old-build.log" 2>&1 ||
    { tail -30 "$tmp/old-build.log"; die "install of $old_version into the private tree failed"; }
[ -f "$tmp/root/usr/lib/$pg/lib/pgfeed.so" ] && grep -q "^default_version = '$old_version'" \
    "$tmp/root/usr/share/$pg/extension/pgfeed.control" ||
    die "the private tree has no pgfeed $old_version library and control file"
pass "install $old_version into a private PostgreSQL tree"

new_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$new_share/extension/pgfeed.control" 2>/dev/null)
[ -f "$new_root/usr/lib/$pg/lib/pgfeed.so" ] && [ -n "$new_version" ] ||
    die "no installed pgfeed library in $new_root/usr/lib/$pg/lib: run make install"
# ALTER EXTENSION follows the chain of scripts from the old version; each must be this tree's.
for script in "$repo"/extension/pgfeed--*--*.sql; do
    cmp -s "$script" "$new_share/extension/${script##*/}" ||
        die "the installed ${script##*/} is missing or differs from this tree's: run make install"
done

# --- 3. A database made by 0.3.0 ----------------------------------------------------------------
pgdir=$tmp/pg
data=$pgdir/data
mkdir "$pgdir"
[ "$(id -u)" = 0 ] && chown postgres: "$pgdir"
"${RUNAS[@]}" "$old_bin/initdb" -D "$data" -U postgres -A trust --no-sync >"$pgdir/initdb.log" 2>&1 ||
    { cat "$pgdir/initdb.log"; die "initdb failed"; }
cat >>"$data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$pgdir'
port = $port
fsync = off
max_connections = 20
shared_preload_libraries = 'pg_stat_statements'
log_min_messages = warning
CONF
start_server "$old_bin" server-old.log || die "the $old_version server did not start"
expect "the private server offers pgfeed $old_version only" postgres \
    "SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions WHERE name = 'pgfeed'" \
    "0.1.0,0.2.0,$old_version"
sql postgres -c "CREATE DATABASE app" || die "CREATE DATABASE failed"
sql app -f "$here/setup_$old_version.sql" >"$tmp/setup.log" 2>&1 ||
    { tail -30 "$tmp/setup.log"; die "the $old_version setup failed"; }
pass "$old_version database: attached table, 4,500 items, marks, follows, tombstones"
expect "$old_version: extversion" app "SELECT extversion FROM pg_extension WHERE extname = 'pgfeed'" "$old_version"
expect "$old_version: the table has its capture and sequence triggers" app \
    "SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
      WHERE tgrelid = 'public.activities'::regclass AND tgname IN ('pgfeed_capture', 'pgfeed_sequence')" \
    "pgfeed_capture,pgfeed_sequence"
expect "$old_version: read state spans five chunks" app "SELECT count(DISTINCT chunk_no) FROM pgfeed.read_chunks" 5
consistency="SELECT string_agg(u || ' ' || f || ' ' || c || '/' || w, ', ')
               FROM (SELECT u, f, pgfeed.unread_count(u, f) c, public.walk_unread(u, f) w
                       FROM unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'erin']) u,
                            unnest(ARRAY['all', 'mp_id:3', 'following']) f) s WHERE c <> w"
expect "$old_version: unread counts match a walk of the unread pages" app "$consistency" ""

sql app -f "$here/state.sql" >"$tmp/state-old.txt" 2>&1 || { tail "$tmp/state-old.txt"; die "state.sql failed at $old_version"; }
sql_as app_user app -f "$here/state.sql" >"$tmp/state-old-app.txt" 2>&1 ||
    { tail "$tmp/state-old-app.txt"; die "state.sql as app_user failed at $old_version"; }
if cmp -s "$tmp/state-old.txt" "$tmp/state-old-app.txt"; then
    pass "$old_version: app_user, a role without grants on pgfeed, reads the same state"
else
    fail "$old_version: app_user reads another state than the superuser"
fi
old_last=$(sql app -c "SELECT last_position FROM pgfeed.sequencer")
events_sql="SELECT count(*) || ' ' || md5(string_agg(event_id || kind || coalesce(topic, '') || coalesce(user_key, '')
                                                   || data, ',' ORDER BY event_id)) FROM pgfeed.events"
old_max_event=$(sql app -c "SELECT max(event_id) FROM pgfeed.events")
old_events=$(sql app -c "$events_sql")
old_kinds=$(sql app -c "SELECT string_agg(DISTINCT kind, ',') FROM pgfeed.events")
alice_all=$(sql app -c "SELECT pgfeed.unread_count('alice', 'all')")
alice_t3=$(sql app -c "SELECT pgfeed.unread_count('alice', 'mp_id:3')")
dave_following=$(sql app -c "SELECT pgfeed.unread_count('dave', 'following')")
if [ "$old_last" = 4501 ] && [ "$old_kinds" = "activity,read" ] && [ "$(wc -l <"$tmp/state-old.txt")" -gt 300 ]; then
    pass "$old_version: recorded $(wc -l <"$tmp/state-old.txt") lines of read state, last position $old_last, events ${old_events%% *} ($old_kinds), alice unread $alice_all"
else
    fail "$old_version: unexpected recording: last position $old_last, event kinds '$old_kinds', $(wc -l <"$tmp/state-old.txt") state lines"
fi
# 0.3.0 let an attached table be dropped, leaving its row in pgfeed.sources and its items counted.
sql postgres -c "CREATE DATABASE dropped" && sql dropped -c "CREATE EXTENSION pgfeed VERSION '$old_version'" \
    -c "CREATE TABLE doomed (id bigint PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL DEFAULT now())" \
    -c "SELECT pgfeed.attach('doomed', 'mp_id')" -c "INSERT INTO doomed (id, mp_id) SELECT g, 1 FROM generate_series(1, 30) g" \
    -c "SELECT pgfeed.mark_read('zoe', ARRAY[1, 2, 3])" -c "DROP TABLE doomed" >/dev/null ||
    fail "$old_version: the database with a dropped attached table could not be made"
expect "$old_version: a dropped attached table leaves its items counted" dropped "SELECT pgfeed.unread_count('zoe', 'all')" 27
stop_server || fail "the $old_version server did not stop cleanly"

# --- 4. The same data directory with the new library, preloaded --------------------------------
echo "shared_preload_libraries = 'pgfeed, pg_stat_statements'" >>"$data/postgresql.conf"
start_server "$new_bin" server-new.log || die "the server with the $new_version library did not start"
expect "$new_version server preloads pgfeed" app "SHOW shared_preload_libraries" "pgfeed, pg_stat_statements"
expect_refusal "before the update, an INSERT into the attached table is refused" app \
    "INSERT INTO public.activities VALUES (4501, 1, 'vote', 1, now())" "ALTER EXTENSION pgfeed UPDATE"
expect_refusal "before the update, pgfeed.mark_read is refused" app \
    "SELECT pgfeed.mark_read('alice', ARRAY[1])" "ALTER EXTENSION pgfeed UPDATE"
expect_refusal "before the update, pgfeed.unread_count is refused" app \
    "SELECT pgfeed.unread_count('alice', 'all')" "ALTER EXTENSION pgfeed UPDATE"
expect "the refused INSERT left no row" app "SELECT count(*) FROM public.activities WHERE id = 4501" 0

# The update, in a session the library has just refused; it goes on in that session.
out=$(sql app -v ON_ERROR_STOP=0 2>&1 <<'SQL'
INSERT INTO public.activities VALUES (4501, 1, 'vote', 1, now());
ALTER EXTENSION pgfeed UPDATE;
SELECT 'alice ' || pgfeed.unread_count('alice', 'all') || ' ' || pgfeed.is_read('alice', 11);
SQL
)
if [ "$(grep -c 'ERROR' <<<"$out")" = 1 ] && grep -q "^alice $alice_all true\$" <<<"$out"; then
    pass "ALTER EXTENSION pgfeed UPDATE, and pgfeed answers in the session it refused before"
else
    die "ALTER EXTENSION pgfeed UPDATE, in a session refused before: $out"
fi
expect "extversion after the update" app "SELECT extversion FROM pg_extension WHERE extname = 'pgfeed'" "$new_version"
expect "the update of a database whose attached table was dropped at $old_version" dropped \
    "ALTER EXTENSION pgfeed UPDATE; SELECT count(*) || ' sources, ' || pgfeed.unread_count('zoe', 'all') || ' unread'
       FROM pgfeed.sources" "0 sources, 0 unread"

# The read state, as 0.3.0 reported it.
if sql app -f "$here/state.sql" >"$tmp/state-new.txt" 2>&1 && cmp -s "$tmp/state-old.txt" "$tmp/state-new.txt"; then
    pass "read state unchanged: counts, count_since, is_read, following, pages ($(wc -l <"$tmp/state-new.txt") lines)"
else
    fail "read state changed by the update:"
    diff "$tmp/state-old.txt" "$tmp/state-new.txt" | head -40
fi
expect "unread counts match a walk of the unread pages after the update" app "$consistency" ""
expect "the sequencer is where 0.3.0 left it" app "SELECT last_position FROM pgfeed.sequencer" "$old_last"

# The app's role: 0.4.0 grants nothing per-user to PUBLIC, so a role that used pgfeed through
# PUBLIC at 0.3.0 needs pgfeed_app; with it, it reads what it read before and writes and marks.
expect_error "after the update, app_user without pgfeed_app is refused" app_user app \
    "SELECT pgfeed.unread_count('alice', 'all')" 42501 "permission denied"
sql app -c "GRANT pgfeed_app TO app_user" || fail "GRANT pgfeed_app failed"
if sql_as app_user app -f "$here/state.sql" >"$tmp/state-new-app.txt" 2>&1 &&
    cmp -s "$tmp/state-old.txt" "$tmp/state-new-app.txt"; then
    pass "with pgfeed_app, app_user reads the state it read at $old_version"
else
    fail "with pgfeed_app, app_user reads another state than at $old_version:"
    diff "$tmp/state-old.txt" "$tmp/state-new-app.txt" | head -20
fi

# The triggers.
expect "the pgfeed_sequence trigger is gone from the attached table" app \
    "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.activities'::regclass AND tgname = 'pgfeed_sequence'" 0
expect "pgfeed._sequence() is gone" app "SELECT to_regprocedure('pgfeed._sequence()') IS NULL" t
expect "the capture trigger names the payload columns" app \
    "SELECT tgnargs || ' ' || replace(encode(tgargs, 'escape'), '\\000', ',') FROM pg_trigger
      WHERE tgrelid = 'public.activities'::regclass AND tgname = 'pgfeed_capture'" \
    "5 id,mp_id,created_at,kind,bill_id,"

# The outbox.
expect "the events 0.3.0 wrote are still in pgfeed.events" app "$events_sql WHERE event_id <= $old_max_event" "$old_events"
expect "the bridge of 0.3.0 is offered every one of them, and a new bridge too" app \
    "SELECT string_agg(n::text, ' ' ORDER BY b) FROM unnest(ARRAY['redis', 'new']) b,
            LATERAL (SELECT count(*) FROM pgfeed.events_between(pgfeed.bridge_start(b), pg_current_snapshot(), 0, 100000)
                      WHERE event_id <= $old_max_event) e(n)" "${old_events%% *} ${old_events%% *}"

# New items: the worker comes with the first commit, and numbers without being asked.
sql app -c "INSERT INTO public.activities VALUES (5001, 5001 % 7, 'vote', 1, now())" || fail "INSERT after the update failed"
wait_for "the numbering worker serves the database after an insert" app "SELECT pgfeed.worker_running()" t 20
wait_for "the worker numbers the insert at the next position" app \
    "SELECT position FROM pgfeed.items WHERE activity_id = 5001 AND NOT deleted" $((old_last + 1)) 20
sql app -c "INSERT INTO public.activities
            SELECT g, g % 7, 'speech', 2, now() FROM generate_series(5002, 5011) g" &&
    sql_as app_user app -c "BEGIN; INSERT INTO public.activities VALUES (5012, 5, 'vote', 3, now());
                INSERT INTO public.activities SELECT g, g % 7, 'question', 4, now() FROM generate_series(5013, 5015) g;
                COMMIT" -c "CALL pgfeed.flush()" || fail "INSERTs after the update failed"
expect "new items take the next positions, in commit order" app \
    "SELECT string_agg(activity_id || '@' || (position - $old_last), ',' ORDER BY position)
       FROM pgfeed.items WHERE position > $old_last" \
    "$(for i in $(seq 1 15); do printf '%s@%s,' $((5000 + i)) "$i"; done | sed 's/,$//')"
expect "the sequencer went on from 0.3.0's last position" app "SELECT last_position FROM pgfeed.sequencer" $((old_last + 15))
expect "the new items wrote insert events with their payload" app \
    "SELECT count(*) FROM pgfeed.events e, LATERAL (SELECT e.data::json) d(j)
      WHERE e.event_id > $old_max_event AND e.kind = 'activity' AND d.j->>'op' = 'insert'
        AND (d.j->>'activity_id')::bigint > 5000 AND (d.j->>'position')::bigint > $old_last
        AND d.j->'payload'->>'kind' IS NOT NULL" 15
n3=$(sql app -c "SELECT count(*) FROM public.activities WHERE id > 5000 AND mp_id = 3")
n4=$(sql app -c "SELECT count(*) FROM public.activities WHERE id > 5000 AND mp_id = 4")
expect "counts include the new items" app \
    "SELECT pgfeed.unread_count('alice', 'all') || ' ' || pgfeed.unread_count('alice', 'mp_id:3') || ' '
            || pgfeed.unread_count('dave', 'following')" \
    "$((alice_all + 15)) $((alice_t3 + n3)) $((dave_following + n4))"

# Marks on items of both releases, on sparse and dense chunks and below a horizon.
expect "mark_read of a new and an old item, as app_user" app \
    "SET ROLE app_user; SELECT pgfeed.mark_read('alice', ARRAY[5001, 13])" 2
expect "they are read" app "SELECT pgfeed.is_read('alice', 5001) || ' ' || pgfeed.is_read('alice', 13)" "true true"
expect "mark_unread in a dense chunk" app "SELECT pgfeed.mark_unread('alice', ARRAY[3300])" 1
expect "alice's count follows" app "SELECT pgfeed.unread_count('alice', 'all')" $((alice_all + 15 - 2 + 1))
expect "mark_unread below bob's horizon" app "SELECT pgfeed.mark_unread('bob', ARRAY[100])" 1
expect "mark_read of an item unread below bob's horizon" app "SELECT pgfeed.mark_read('bob', ARRAY[97])" 1
expect "bob's marks read back" app "SELECT pgfeed.is_read('bob', 100) || ' ' || pgfeed.is_read('bob', 97)" "false true"
dave_all=$(sql app -c "SELECT pgfeed.unread_count('dave', 'all')")
expect "mark_all_read of dave's whole feed" app "SELECT pgfeed.mark_all_read('dave', 'all')" "$dave_all"
expect "dave has nothing unread" app "SELECT pgfeed.unread_count('dave', 'all')" 0
sql app -c "DELETE FROM public.activities WHERE id IN (22, 23)" -c "CALL pgfeed.flush()" || fail "DELETE after the update failed"
expect "deleting an old read and an old unread item" app \
    "SELECT pgfeed.unread_count('alice', 'all') || ' ' || coalesce(pgfeed.is_read('alice', 22)::text, 'null')" \
    "$((alice_all + 15 - 2 + 1 - 1)) null"
expect "unread counts match a walk of the unread pages after new marks" app "$consistency" ""

# --- 5. A schema newer than the library ---------------------------------------------------------
sql postgres -c "CREATE DATABASE scratch" && sql scratch -c "SET client_min_messages = warning; CREATE EXTENSION pgfeed" ||
    fail "CREATE EXTENSION pgfeed in a scratch database failed"
sql scratch -c "UPDATE pg_extension SET extversion = '0.9.0' WHERE extname = 'pgfeed'" || fail "UPDATE pg_extension failed"
expect_refusal "a 0.9.0 schema: pgfeed.unread_count is refused" scratch "SELECT pgfeed.unread_count('u', 'all')" \
    "pgfeed library of version 0\.9\.0"
expect_refusal "a 0.9.0 schema: pgfeed.flush is refused" scratch "CALL pgfeed.flush()" "pgfeed library of version 0\.9\.0"
sql scratch -c "UPDATE pg_extension SET extversion = '$new_version' WHERE extname = 'pgfeed'" || fail "restoring extversion failed"
expect "extversion restored: pgfeed answers again" scratch "SELECT pgfeed.unread_count('u', 'all')" 0

# --- The server's own account ---------------------------------------------------------------------
stop_server || fail "the $new_version server did not stop cleanly"
if grep -E 'PANIC|terminated by signal|numbering round failed' "$pgdir/server-new.log"; then
    fail "the $new_version server log shows a crash or a failed round"
else
    pass "the $new_version server log shows no crash and no failed round"
fi
exit 0
