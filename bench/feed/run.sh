#!/usr/bin/env bash
# Feed benchmark: pgfeed against a plain "user_activity_reads" table on the "parliament" data set.
#
#   bench/feed/run.sh [SIZE...]      SIZE: XS (development), S, M; default: S M
#
# Starts a throwaway PostgreSQL 15 (fsync on) in a temp dir, loads each size into its own database,
# runs every case with pgbench, and prints a plain-text report that is also written to
# build/bench/feed.txt (raw numbers per size: build/bench/feed-SIZE.tsv, pg_stat_statements
# breakdowns: build/bench/feed-SIZE-statements.txt).
#
# Environment: BENCH_SECONDS (default 10) per measured case, BENCH_WARMUP (default 1) seconds of
# warm-up before each read case, KEEP_BENCH_DIR=1 keeps the temp dir (pgbench scripts and logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(S M)
for size in "${sizes[@]}"; do
    case $size in XS | S | M) ;; *) echo "unknown size $size (XS, S or M)" >&2; exit 2 ;; esac
done
SECONDS_PER_CASE=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
out_dir=$root/build/bench
mkdir -p "$out_dir"
started=$(date +%s)

. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-bench.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
cleanup() {
    pg_cluster_stop
    [ -n "${KEEP_BENCH_DIR:-}" ] || rm -rf "$work"
}
PG_FSYNC=on pg_cluster_start "$work/pg"
trap cleanup EXIT
mkdir -p "$work/scripts" "$work/logs"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
val() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

# More memory than initdb's defaults, fewer checkpoints while loading, and nested statements in
# pg_stat_statements: then restart so that shared_buffers takes effect.
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
ALTER SYSTEM SET shared_buffers = '1GB';
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
ALTER SYSTEM SET pg_stat_statements.track = 'all';
ALTER SYSTEM SET pg_stat_statements.max = 10000;
SQL
runas=()
[ "$(id -u)" = 0 ] && runas=(runuser -u postgres --)
"${runas[@]}" "$PG_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/server.log" -w -t 120 restart >/dev/null

db=postgres
machine="nproc=$(nproc); CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1); memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
machine_pg="$(val 'SELECT version()' | sed 's/ on .*//'); fsync=$(val 'SHOW fsync'); synchronous_commit=$(val 'SHOW synchronous_commit'); wal_sync_method=$(val 'SHOW wal_sync_method'); shared_buffers=$(val 'SHOW shared_buffers'); pg_stat_statements.track=$(val 'SHOW pg_stat_statements.track')"

# ---------------------------------------------------------------------------------------------------
# Loading

load_size() {
    local n=$1 users=$2 heavy=$3 heavy_marks=$4
    local t0 t1
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
    export PGOPTIONS='-c synchronous_commit=off -c maintenance_work_mem=512MB -c work_mem=64MB'
    t0=$(date +%s.%N)
    psql_db >/dev/null <<SQL
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION pgfeed;
SELECT setseed(0.42);
CREATE TABLE mps (id int PRIMARY KEY, name text NOT NULL, party text NOT NULL);
INSERT INTO mps SELECT i, 'Member ' || i,
       (ARRAY['Labour', 'Conservative', 'Liberal Democrat', 'SNP', 'Green', 'Independent'])[1 + i % 6]
  FROM generate_series(1, 650) i;
CREATE TABLE bills (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO bills SELECT i, 'Bill ' || i || ': ' || md5(i::text) FROM generate_series(1, 2000) i;
CREATE TABLE activities (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL,
    mp_id      int NOT NULL,
    bill_id    int,
    created_at timestamptz NOT NULL
);
INSERT INTO activities (type, mp_id, bill_id, created_at)
SELECT (ARRAY['speech', 'vote', 'written_question', 'oral_question', 'bill_sponsored', 'committee'])[1 + (random() * 5)::int],
       1 + (random() * 649)::int,
       CASE WHEN random() < 0.5 THEN 1 + (random() * 1999)::int END,
       timestamptz '2020-01-01 00:00+00' + i * interval '1 minute'
  FROM generate_series(1, $n) i;
-- The same table without pgfeed, for the insert cases.
CREATE TABLE activities_bare (LIKE activities INCLUDING ALL);
CREATE SEQUENCE activities_bare_id_seq OWNED BY activities_bare.id;
ALTER TABLE activities_bare ALTER id SET DEFAULT nextval('activities_bare_id_seq');
INSERT INTO activities_bare SELECT * FROM activities;
SELECT setval('activities_bare_id_seq', $n);
SQL

    t1=$(date +%s.%N); load_times="activities $(secs "$t0" "$t1")"; t0=$t1
    psql_db -c "SELECT pgfeed.attach('activities', 'mp_id', ARRAY['type', 'bill_id']::name[])" \
            -c "CALL pgfeed.flush()" >/dev/null # the backfill is numbered after commit
    t1=$(date +%s.%N); load_times+=", attach $(secs "$t0" "$t1")"; t0=$t1
    # Heavy readers (users 1..heavy) read the newest heavy_marks activities; light readers ~300
    # scattered among the newest 5,000.
    psql_db >/dev/null <<SQL
SELECT setseed(0.17);
CREATE TABLE user_activity_reads (
    user_id     int NOT NULL,
    activity_id bigint NOT NULL,
    read_at     timestamptz NOT NULL
);
INSERT INTO user_activity_reads
SELECT u, a, timestamptz '2022-01-01 00:00+00' + a * interval '1 minute'
  FROM generate_series(1, $heavy) u, generate_series($n - $heavy_marks + 1, $n) a;
INSERT INTO user_activity_reads
SELECT DISTINCT u, $n - (random() * 4999)::int, timestamptz '2022-01-01 00:00+00'
  FROM generate_series($heavy + 1, $users) u, generate_series(1, 300);
ALTER TABLE user_activity_reads ADD PRIMARY KEY (user_id, activity_id);
SQL
    t1=$(date +%s.%N); load_times+=", baseline reads $(secs "$t0" "$t1")"; t0=$t1
    # The same marks in pgfeed: mark_read in batches of at most 10,000 ids, two sessions in parallel.
    local pids=()
    for part in 0 1; do
        psql_db -c "SELECT count(*) FROM (
                      SELECT pgfeed.mark_read('u' || user_id, array_agg(activity_id ORDER BY activity_id))
                        FROM user_activity_reads WHERE user_id % 2 = $part
                       GROUP BY user_id, activity_id / 10000) x" >/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(date +%s.%N); load_times+=", pgfeed marks $(secs "$t0" "$t1")"; t0=$t1
    psql_db -c "VACUUM ANALYZE" 
    psql_db -c "CHECKPOINT"
    t1=$(date +%s.%N); load_times+=", vacuum $(secs "$t0" "$t1")"
    unset PGOPTIONS
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f s", b - a}'; }

# ---------------------------------------------------------------------------------------------------
# Cases

# run_case NAME READERS CLIENTS PATTERN SCRIPT [EFFECT_SQL]
# Runs SCRIPT (pgbench syntax) for SECONDS_PER_CASE after a warm-up, with pg_stat_statements reset
# in between, and appends a row to the size's TSV. PATTERN picks the measured top-level statement.
# EFFECT_SQL, if given, is evaluated before and after: (before - after) / transactions is the
# fraction of calls that changed something.
run_case() {
    local name=$1 readers=$2 clients=$3 pattern=$4 script=$5 effect_sql=${6:-}
    local file=$work/scripts/$size-$name-$readers.sql prefix=$work/logs/$size-$name-$readers
    printf '%s\n' "$script" >"$file"
    local threads=1
    [ "$clients" -gt 1 ] && threads=2
    if [ "$case_warmup" != 0 ]; then
        pgbench -n -M prepared -c "$clients" -j "$threads" -T "$case_warmup" -f "$file" "$db" >/dev/null 2>"$prefix.warmup.err" ||
            { cat "$prefix.warmup.err" >&2; return 1; }
    fi
    local before=""
    [ -n "$effect_sql" ] && before=$(val "$effect_sql")
    val "SELECT pg_stat_statements_reset()" >/dev/null
    rm -f "$prefix".log*
    pgbench -n -M prepared -c "$clients" -j "$threads" -T "$SECONDS_PER_CASE" -f "$file" \
        --log --log-prefix="$prefix.log" "$db" >"$prefix.out" 2>"$prefix.err" ||
        { cat "$prefix.out" "$prefix.err" >&2; return 1; }
    local tps xacts
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$prefix.out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$prefix.out")
    local stats
    stats=$(val "SELECT calls || E'\t' || round(mean_exec_time::numeric, 4) FROM pg_stat_statements
                  WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND query LIKE '%' || \$q\$$pattern\$q\$ || '%' AND query NOT LIKE '%pg_stat_statements%'
                  ORDER BY calls DESC LIMIT 1")
    [ -n "$stats" ] || stats=$'0\t'
    local effect=""
    if [ -n "$effect_sql" ]; then
        local after
        after=$(val "$effect_sql")
        effect=$(awk -v b="$before" -v a="$after" -v n="$xacts" 'BEGIN {printf "%.1f", n ? 100 * (b - a) / n : 0}')
    fi
    # Client latency per transaction (µs, third field of the per-transaction log).
    local client
    client=$(cat "$prefix".log* | awk '{print $3}' | sort -n |
        awk '{v[NR] = $1; s += $1} END {if (NR == 0) {print "\t"; exit}
             i = int(NR * 0.95 + 0.5); if (i < 1) i = 1; if (i > NR) i = NR;
             printf "%.4f\t%.4f", s / NR / 1000, v[i] / 1000}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$name" "$readers" "$clients" "$stats" "$client" "$tps" "$xacts" "$effect" >>"$tsv"
    # Every statement of the case, nested ones included: which inner statement dominates.
    {
        echo "== $size $name ($readers readers, $clients clients): $xacts transactions, tps $tps"
        psql -X -q -A -F $'\t' -t -d "$db" -c "
            SELECT calls, round(mean_exec_time::numeric, 4) AS mean_ms,
                   round((100 * total_exec_time / nullif(sum(total_exec_time) FILTER (WHERE toplevel) OVER (), 0))::numeric, 1) AS pct,
                   CASE WHEN toplevel THEN 'top' ELSE 'nested' END,
                   left(regexp_replace(query, '\s+', ' ', 'g'), 160)
              FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND query NOT LIKE '%pg_stat_statements%'
             ORDER BY total_exec_time DESC LIMIT 12" |
            awk -F '\t' '{printf "  %8d calls %10.4f ms %6s%% %-6s  %s\n", $1, $2, $3, $4, $5}'
        echo
    } >>"$statements"
    log "$size $name $readers: server $(cut -f2 <<<"$stats") ms, tps $tps"
}

run_size() {
    size=$1
    local n users
    case $size in
    XS) n=30000 users=100 ;;
    S) n=100000 users=1000 ;;
    M) n=1000000 users=10000 ;;
    esac
    local heavy=$((users / 100)) heavy_marks=20000
    db=feed_$(tr '[:upper:]' '[:lower:]' <<<"$size")
    tsv=$out_dir/feed-$size.tsv
    statements=$out_dir/feed-$size-statements.txt
    : >"$tsv"
    : >"$statements"
    local size_started
    size_started=$(date +%s)
    log "size $size: loading $n activities, $users users ($heavy heavy)"
    load_size "$n" "$users" "$heavy" "$heavy_marks"
    log "size $size: loaded ($load_times)"

    # Storage right after loading: the baseline table with its index, pgfeed's per-user read state.
    local marks base_bytes feed_bytes feed_parts items_bytes
    marks=$(val "SELECT count(*) FROM user_activity_reads")
    base_bytes=$(val "SELECT pg_total_relation_size('user_activity_reads')")
    feed_bytes=$(val "SELECT pg_total_relation_size('pgfeed.readers') + pg_total_relation_size('pgfeed.read_chunks')
                           + pg_total_relation_size('pgfeed.topic_nets')")
    feed_parts=$(val "SELECT string_agg(t || ' ' || pg_size_pretty(pg_total_relation_size(('pgfeed.' || t)::regclass))
                                        || ' (' || (SELECT reltuples::bigint FROM pg_class WHERE oid = ('pgfeed.' || t)::regclass) || ' rows)', ', ')
                        FROM unnest(ARRAY['readers', 'read_chunks', 'topic_nets']) t")
    items_bytes=$(val "SELECT pg_total_relation_size('pgfeed.items') + pg_total_relation_size('pgfeed.topics')")
    local heavy_marks_total light_marks_total heavy_state light_state
    heavy_marks_total=$(val "SELECT count(*) FROM user_activity_reads WHERE user_id <= $heavy")
    light_marks_total=$((marks - heavy_marks_total))
    # Logical size of each class's read state (sum of row widths; page overhead and indexes excluded).
    heavy_state=$(val "SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM pgfeed.read_chunks c JOIN pgfeed.readers r USING (user_id)
                        WHERE substr(r.user_key, 2)::int <= $heavy")"/"$(val "SELECT coalesce(sum(pg_column_size(n.*)), 0) FROM pgfeed.topic_nets n JOIN pgfeed.readers r USING (user_id)
                        WHERE substr(r.user_key, 2)::int <= $heavy")
    light_state=$(val "SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM pgfeed.read_chunks c JOIN pgfeed.readers r USING (user_id)
                        WHERE substr(r.user_key, 2)::int > $heavy")"/"$(val "SELECT coalesce(sum(pg_column_size(n.*)), 0) FROM pgfeed.topic_nets n JOIN pgfeed.readers r USING (user_id)
                        WHERE substr(r.user_key, 2)::int > $heavy")
    {
        printf 'meta\tsize\t%s\n' "$size"
        printf 'meta\tactivities\t%s\n' "$n"
        printf 'meta\tusers\t%s\n' "$users"
        printf 'meta\theavy\t%s\n' "$heavy"
        printf 'meta\theavy_marks\t%s\n' "$heavy_marks"
        printf 'meta\tload\t%s\n' "$load_times"
        printf 'meta\tmarks\t%s\n' "$marks"
        printf 'meta\theavy_marks_total\t%s\n' "$heavy_marks_total"
        printf 'meta\tlight_marks_total\t%s\n' "$light_marks_total"
        printf 'meta\tbase_bytes\t%s\n' "$base_bytes"
        printf 'meta\tfeed_bytes\t%s\n' "$feed_bytes"
        printf 'meta\tfeed_parts\t%s\n' "$feed_parts"
        printf 'meta\titems_bytes\t%s\n' "$items_bytes"
        printf 'meta\theavy_state\t%s\n' "$heavy_state"
        printf 'meta\tlight_state\t%s\n' "$light_state"
    } >>"$tsv"

    local hv="\\set u random(1, $heavy)" lt="\\set u random($((heavy + 1)), $users)"
    local join_names="LEFT JOIN mps m ON m.id = a.mp_id LEFT JOIN bills b ON b.id = a.bill_id"
    local readers sel
    case_warmup=$WARMUP # only the read cases: warming up the others would change their state
    for readers in heavy light; do
        [ $readers = heavy ] && sel=$hv || sel=$lt
        run_case base_page_not_exists $readers 1 "FROM activities a" "$sel
SELECT a.*, m.name, b.title FROM activities a $join_names
 WHERE NOT EXISTS (SELECT 1 FROM user_activity_reads r WHERE r.user_id = :u AND r.activity_id = a.id)
 ORDER BY a.id DESC LIMIT 20;"
        run_case base_page_left_join $readers 1 "FROM activities a" "$sel
SELECT a.*, m.name, b.title FROM activities a
  LEFT JOIN user_activity_reads r ON r.user_id = :u AND r.activity_id = a.id $join_names
 WHERE r.activity_id IS NULL
 ORDER BY a.id DESC LIMIT 20;"
        run_case base_count_not_exists $readers 1 "FROM activities a" "$sel
SELECT count(*) FROM activities a
 WHERE NOT EXISTS (SELECT 1 FROM user_activity_reads r WHERE r.user_id = :u AND r.activity_id = a.id);"
        run_case base_count_left_join $readers 1 "FROM activities a" "$sel
SELECT count(*) FROM activities a LEFT JOIN user_activity_reads r ON r.user_id = :u AND r.activity_id = a.id
 WHERE r.activity_id IS NULL;"
        run_case feed_page $readers 1 "pgfeed.page(" "$sel
SELECT a.*, m.name, b.title, p.is_read FROM pgfeed.page('u' || :u, 'all', 20, NULL, true) p
  JOIN activities a ON a.id = p.activity_id $join_names
 ORDER BY p.position DESC;"
        run_case feed_unread_count $readers 1 "pgfeed.unread_count(" "$sel
SELECT pgfeed.unread_count('u' || :u);"
    done
    # Marks change the state, so they come after the reads. A random item below the user's marks
    # is unread (bar the rare repeat); EFFECT shows how many calls changed something.
    local below
    case_warmup=0
    for readers in heavy light; do
        [ $readers = heavy ] && sel=$hv below=$((n - heavy_marks)) || sel=$lt below=$((n - 5000))
        run_case base_mark_read $readers 1 "INSERT INTO user_activity_reads" "$sel
\\set a random(1, $below)
INSERT INTO user_activity_reads VALUES (:u, :a, now()) ON CONFLICT DO NOTHING;" \
            "SELECT -count(*) FROM user_activity_reads"
        run_case feed_mark_read $readers 1 "pgfeed.mark_read(" "$sel
\\set a random(1, $below)
SELECT pgfeed.mark_read('u' || :u, ARRAY[:a]::bigint[]);" \
            "SELECT sum(net_total) FROM pgfeed.readers"
        # Rolled back, so that every call retires a real history: client latency includes BEGIN
        # and ROLLBACK (and no commit); the server time is that of mark_all_read alone.
        run_case feed_mark_all_read $readers 1 "pgfeed.mark_all_read(" "$sel
BEGIN;
SELECT pgfeed.mark_all_read('u' || :u);
ROLLBACK;"
    done
    # Inserts, 8 clients: the bare copy, then the attached table; one row and ten rows a transaction.
    run_case insert_1_bare all 8 "INSERT INTO activities_bare" "\\set mp random(1, 650)
INSERT INTO activities_bare (type, mp_id, bill_id, created_at) VALUES ('speech', :mp, NULL, now());"
    run_case insert_1_feed all 8 "INSERT INTO activities" "\\set mp random(1, 650)
INSERT INTO activities (type, mp_id, bill_id, created_at) VALUES ('speech', :mp, NULL, now());"
    run_case insert_10_bare all 8 "INSERT INTO activities_bare" "INSERT INTO activities_bare (type, mp_id, bill_id, created_at)
SELECT 'vote', 1 + (random() * 649)::int, NULL, now() FROM generate_series(1, 10);"
    run_case insert_10_feed all 8 "INSERT INTO activities" "INSERT INTO activities (type, mp_id, bill_id, created_at)
SELECT 'vote', 1 + (random() * 649)::int, NULL, now() FROM generate_series(1, 10);"

    printf 'meta\tduration\t%s\n' "$(($(date +%s) - size_started))" >>"$tsv"
    psql -X -q -d postgres -c "DROP DATABASE $db" || true
}

tsvs=()
for size in "${sizes[@]}"; do
    run_size "$size"
    tsvs+=("$out_dir/feed-$size.tsv")
done

python3 bench/feed/report.py --machine "$machine" --postgres "$machine_pg" \
    --runtime "$(($(date +%s) - started))" "${tsvs[@]}" | tee "$out_dir/feed.txt"
