#!/usr/bin/env bash
# Write benchmark: how pgfeed's write path scales with concurrent writers, and how long a committed
# insert takes to show in pgfeed.page and in the Redis stream.
#
#   bench/feed/writes.sh             full run, about 6 minutes (BENCH_SECONDS=12 per pgbench case)
#   BENCH_QUICK=1 bench/feed/writes.sh   development run, about 2 minutes (3 s per case)
#
# Starts a throwaway PostgreSQL 15 with fsync on, synchronous_commit on and
# shared_preload_libraries = 'pgfeed, pg_stat_statements', loads 100,000 attached activities and
# 2,000 users, then:
#   1. write concurrency: pgbench (-M prepared) with 1, 8 and 32 clients, each case beside its
#      baseline in the same run: pgfeed.mark_read of one random item by a random user against an
#      INSERT ... ON CONFLICT DO NOTHING into a plain reads table with a primary key
#      (bench/feed/writes/mark_read*.sql), and one-row inserts into the attached table against the
#      same insert into an identical bare table (bench/feed/writes/insert_*.sql);
#   2. lag (bench/feed/lag.py): a paced generator commits one-row inserts at 100 and 1,000/s; the
#      time from COMMIT returning to the item showing in pgfeed.page, and to its event arriving in
#      the Redis stream through one pgfeed-notifier, beside a bare table and a direct XADD.
# Prints the report and writes it to build/bench/writes.txt (raw rows: build/bench/writes.tsv).
#
# Works with either write path: when pgfeed.flush() exists (numbering after commit), it is called
# after loading and after each insert case (its duration is the numbering backlog left by the case);
# without it, items are numbered at commit.
#
# Environment: BENCH_QUICK=1, BENCH_SECONDS (seconds per measured case), BENCH_WARMUP (seconds of
# warm-up before each case), BENCH_CLIENTS (default "1 8 32"), BENCH_LAG_SECONDS (per lag phase),
# KEEP_BENCH_DIR=1 keeps the temp dir (pgbench logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
if [ -n "${BENCH_QUICK:-}" ]; then
    SECONDS_PER_CASE=${BENCH_SECONDS:-3} WARMUP=${BENCH_WARMUP:-1} LAG_SECONDS=${BENCH_LAG_SECONDS:-4}
else
    SECONDS_PER_CASE=${BENCH_SECONDS:-12} WARMUP=${BENCH_WARMUP:-2} LAG_SECONDS=${BENCH_LAG_SECONDS:-15}
fi
read -r -a CLIENTS <<<"${BENCH_CLIENTS:-1 8 32}"
ITEMS=100000
USERS=2000
MARKS_PER_USER=50
[ -x build/notifier/pgfeed-notifier ] || { echo "build/notifier/pgfeed-notifier is missing: make notifier" >&2; exit 2; }
out_dir=$root/build/bench
mkdir -p "$out_dir"
tsv=$out_dir/writes.tsv
started=$(date +%s)

. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-bench-writes.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
cleanup() {
    pg_cluster_stop
    [ -n "${KEEP_BENCH_DIR:-}" ] || rm -rf "$work"
}
PG_FSYNC=on pg_cluster_start "$work/pg"
trap cleanup EXIT
mkdir -p "$work/logs"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
db=bench_writes
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
val() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }

# The feed benchmark's settings, durable commits, and pgfeed preloaded (its numbering worker, when
# the installed version has one, starts with the server); then restart so that they take effect.
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
ALTER SYSTEM SET shared_preload_libraries = 'pgfeed', 'pg_stat_statements';
ALTER SYSTEM SET synchronous_commit = on;
ALTER SYSTEM SET shared_buffers = '1GB';
ALTER SYSTEM SET max_wal_size = '8GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
SQL
"${PG_RUNAS[@]}" "$PG_BIN/pg_ctl" -D "$PG_CLUSTER_DIR/data" -l "$PG_CLUSTER_DIR/server.log" -w -t 120 restart >/dev/null

# ---------------------------------------------------------------------------------------------------
# Loading: the feed benchmark's activities (attached) and a bare copy, 2,000 users with 50 marks
# each (items leaning to the newest, like the measured marks) in pgfeed and in the baseline table.

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
has_flush() {
    [ "$(val "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'pgfeed' AND p.proname = 'flush' AND p.prokind = 'p'")" != 0 ]
}
# flush_ms: CALL pgfeed.flush() and its duration in ms, or "-" when the installed version has none.
flush_ms() {
    if [ "$flush" = yes ]; then
        local t0 t1
        t0=$(date +%s%N)
        val "CALL pgfeed.flush()" >/dev/null
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
    else
        echo -
    fi
}
log "loading $ITEMS activities, $USERS users"
t0=$(date +%s)
PGOPTIONS='-c synchronous_commit=off -c maintenance_work_mem=512MB' psql_db >/dev/null <<SQL
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION pgfeed;
SELECT setseed(0.42);
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
  FROM generate_series(1, $ITEMS) i;
CREATE TABLE activities_bare (LIKE activities INCLUDING ALL);
CREATE SEQUENCE activities_bare_id_seq OWNED BY activities_bare.id;
ALTER TABLE activities_bare ALTER id SET DEFAULT nextval('activities_bare_id_seq');
INSERT INTO activities_bare SELECT * FROM activities;
SELECT setval('activities_bare_id_seq', $ITEMS);
SELECT pgfeed.attach('activities', 'mp_id', ARRAY['type', 'bill_id']::name[]);
CREATE TABLE reads (
    user_id     int    NOT NULL,
    activity_id bigint NOT NULL,
    PRIMARY KEY (user_id, activity_id)
);
INSERT INTO reads
SELECT DISTINCT u, $ITEMS + 1 - least($ITEMS, ceil(-ln(1 - random() * (1 - exp(-20.0))) / 20 * $ITEMS))::bigint
  FROM generate_series(1, $USERS) u, generate_series(1, $MARKS_PER_USER);
SQL
flush=no
has_flush && flush=yes
[ $flush = no ] || flush_ms >/dev/null
psql_db -c "SELECT count(*) FROM (SELECT pgfeed.mark_read('u' || user_id, array_agg(activity_id ORDER BY activity_id))
                                    FROM reads GROUP BY user_id) x" >/dev/null
psql_db -c "VACUUM ANALYZE" -c "CHECKPOINT"
load_s=$(($(date +%s) - t0))
log "loaded in $load_s s (pgfeed.flush: $flush)"

machine="nproc=$(nproc); CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1); memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
settings=""
for s in fsync synchronous_commit wal_sync_method shared_buffers shared_preload_libraries max_wal_size checkpoint_timeout wal_level max_connections; do
    settings+="$s=$(val "SHOW $s"); "
done
pg_version=$(val 'SELECT version()' | sed 's/ on .*//')
pgfeed_version=$(val "SELECT extversion FROM pg_extension WHERE extname = 'pgfeed'")
code=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- extension 2>/dev/null || code+=" (extension/ modified)"
{
    printf 'meta\tdate\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'meta\tmachine\t%s\n' "$machine"
    printf 'meta\tpostgres\t%s\n' "$pg_version"
    printf 'meta\tsettings\t%s\n' "${settings%; }"
    printf 'meta\tpgfeed\t%s, code %s, pgfeed.flush() %s\n' "$pgfeed_version" "$code" \
        "$([ $flush = yes ] && echo 'present: numbering after commit' || echo 'absent: numbering at commit')"
    printf 'meta\tdata\t%s activities attached (and a bare copy), %s users with %s marks each (pgfeed and baseline), loaded in %s s\n' \
        "$ITEMS" "$USERS" "$MARKS_PER_USER" "$load_s"
    printf 'meta\tseconds\t%s\n' "$SECONDS_PER_CASE"
    printf 'meta\twarmup\t%s\n' "$WARMUP"
    printf 'meta\tloadavg\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$tsv"

# ---------------------------------------------------------------------------------------------------
# Write concurrency

# cpu_jiffies: jiffies of the whole machine (busy and total) from /proc/stat, for the busy share of a case.
cpu_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }

# run_case NAME CLIENTS SCRIPT PATTERN EFFECT_SQL
# A CHECKPOINT (every case starts from clean buffers), a warm-up, then SECONDS_PER_CASE of pgbench
# with pg_stat_statements reset; appends one TSV row. PATTERN picks the measured statement;
# EFFECT_SQL is evaluated before and after: its growth per transaction is the share that changed
# something.
run_case() {
    local name=$1 clients=$2 script=$root/bench/feed/writes/$3 pattern=$4 effect_sql=$5
    local prefix=$work/logs/$name-$clients threads=$((clients < 2 ? 1 : 2))
    local opts=(-n -M prepared -c "$clients" -j "$threads" -D users=$USERS -D items=$ITEMS -f "$script")
    val "CHECKPOINT" >/dev/null
    nice pgbench "${opts[@]}" -T "$WARMUP" "$db" >/dev/null 2>"$prefix.warmup.err" ||
        { cat "$prefix.warmup.err" >&2; return 1; }
    [ $flush = no ] || flush_ms >/dev/null
    local before after
    before=$(val "$effect_sql")
    val "SELECT pg_stat_statements_reset()" >/dev/null
    rm -f "$prefix".log*
    local cpu0 cpu1
    cpu0=$(cpu_jiffies)
    nice pgbench "${opts[@]}" -T "$SECONDS_PER_CASE" --log --log-prefix="$prefix.log" "$db" >"$prefix.out" 2>"$prefix.err" ||
        { cat "$prefix.out" "$prefix.err" >&2; return 1; }
    cpu1=$(cpu_jiffies)
    # The numbering backlog the case left (numbering after commit only): how long flush() waits.
    local backlog=-
    case $name in insert_feed) backlog=$(flush_ms) ;; esac
    after=$(val "$effect_sql")
    local tps xacts failed
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$prefix.out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$prefix.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$prefix.out")
    local server
    server=$(val "SELECT round(mean_exec_time::numeric, 4) FROM pg_stat_statements
                   WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND query LIKE '%' || \$q\$$pattern\$q\$ || '%' AND query NOT LIKE '%pg_stat_statements%'
                   ORDER BY calls DESC LIMIT 1")
    local effect busy latency
    effect=$(awk -v b="$before" -v a="$after" -v n="$xacts" 'BEGIN {printf "%.1f", n ? 100 * (a - b) / n : 0}')
    busy=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {split(a, x, " "); split(b, y, " ");
           printf "%.0f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0}')
    # Client latency per transaction (µs, third field of pgbench's per-transaction log): mean, p50, p99.
    latency=$(cat "$prefix".log* | awk '{print $3}' | sort -n |
        awk 'function at(p,  i) {i = int(NR * p + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000}
             {v[NR] = $1; s += $1} END {if (NR == 0) {print "\t\t"; exit}
             printf "%.3f\t%.3f\t%.3f", s / NR / 1000, at(0.5), at(0.99)}')
    printf 'case\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$clients" "$tps" "$xacts" "${failed:-0}" \
        "${server:-}" "$latency" "$effect" "$backlog" "$busy" >>"$tsv"
    log "$name, $clients clients: tps $tps (server $server ms, changed $effect%, flush after $backlog ms, cpu busy $busy%)"
}

log "write concurrency: ${CLIENTS[*]} clients, $SECONDS_PER_CASE s per case"
for clients in "${CLIENTS[@]}"; do
    # Each result right after its baseline, so that both see the same machine.
    run_case mark_base "$clients" mark_read_baseline.sql "INSERT INTO reads" "SELECT count(*) FROM reads"
    run_case mark_feed "$clients" mark_read.sql "pgfeed.mark_read(" "SELECT -sum(net_total) FROM pgfeed.readers"
    run_case insert_bare "$clients" insert_bare.sql "INSERT INTO activities_bare" "SELECT count(*) FROM activities_bare"
    run_case insert_feed "$clients" insert_attached.sql "INSERT INTO activities " "SELECT count(*) FROM activities"
done
psql -X -q -d postgres -c "DROP DATABASE $db" || true

# ---------------------------------------------------------------------------------------------------
# Lag

log "lag: 100 and 1,000 inserts/s, $LAG_SECONDS s per phase"
lag_out=$work/lag.txt
python3 bench/feed/lag.py --seconds "$LAG_SECONDS" --out "$lag_out" >/dev/null

python3 bench/feed/writes_report.py --runtime "$(($(date +%s) - started))" --lag "$lag_out" "$tsv" |
    tee "$out_dir/writes.txt"
