#!/usr/bin/env bash
# Write benchmark: how pgfeed's write path scales with concurrent writers, and how long a committed
# insert takes to show in pgfeed.page and in the Redis stream.
#
#   bench/feed/writes.sh                 full run, about 5 minutes: 4 rounds of 3 s per case, 15 s per lag phase
#   BENCH_QUICK=1 bench/feed/writes.sh   development run, about 1.5 minutes: 2 rounds of 2 s, 4 s per lag phase
#
# Starts a throwaway PostgreSQL 15 with fsync on, synchronous_commit on and
# shared_preload_libraries = 'pgfeed, pg_stat_statements', loads 100,000 attached activities and
# 2,000 users, then:
#   1. write concurrency: pgbench (-M prepared) with 1, 8 and 32 clients, each case beside its
#      baseline in the same run, the two interleaved in short slices: pgfeed.mark_read of one
#      random item by a random user against an INSERT ... ON CONFLICT DO NOTHING into a plain reads
#      table with a primary key (bench/feed/writes/mark_read*.sql), and one-row inserts into the
#      attached table against the same insert into an identical bare table
#      (bench/feed/writes/insert_*.sql);
#   2. lag (bench/feed/lag.py): a paced generator commits one-row inserts at 100 and 1,000/s; the
#      time from COMMIT returning to the item showing in pgfeed.page, and to its event arriving in
#      the Redis stream through one pgfeed-notifier, beside a bare table and a direct XADD.
# Prints the report and writes it to build/bench/writes.txt (raw rows: build/bench/writes.tsv).
#
# Works with either write path: when pgfeed.flush() exists (numbering after commit), it is called
# after loading and after each slice of attached inserts (its duration is the numbering backlog the
# slice left);
# without it, items are numbered at commit.
#
# Environment: BENCH_QUICK=1, BENCH_ROUNDS (slices per case), BENCH_SECONDS (seconds per slice),
# BENCH_WARMUP (seconds of warm-up of each side before a pair), BENCH_CLIENTS (default "1 8 32"),
# BENCH_LAG_SECONDS (per lag phase), KEEP_BENCH_DIR=1 keeps the temp dir (pgbench logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
if [ -n "${BENCH_QUICK:-}" ]; then
    ROUNDS=${BENCH_ROUNDS:-2} SLICE_SECONDS=${BENCH_SECONDS:-2} WARMUP=${BENCH_WARMUP:-1} LAG_SECONDS=${BENCH_LAG_SECONDS:-4}
else
    ROUNDS=${BENCH_ROUNDS:-4} SLICE_SECONDS=${BENCH_SECONDS:-3} WARMUP=${BENCH_WARMUP:-2} LAG_SECONDS=${BENCH_LAG_SECONDS:-15}
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
work=$(mktemp -d -t pgfeed-bench-writes.XXXXXX)
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
ALTER SYSTEM SET track_wal_io_timing = on;
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
# What pgbench's sessions wait on: sampled every 20 ms during a slice, in a procedure that commits
# between samples (a fresh pg_stat_activity each time, no snapshot held across the slice).
psql_db >/dev/null <<'SQL'
CREATE PROCEDURE bench_waits(seconds float8, INOUT result text DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + make_interval(secs => seconds);
    waits    text[] := '{}';
BEGIN
    WHILE clock_timestamp() < deadline LOOP
        waits := waits || ARRAY(SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
                                 WHERE application_name = 'pgbench' AND state = 'active');
        COMMIT;
        PERFORM pg_sleep(0.02);
    END LOOP;
    SELECT coalesce(string_agg(w || '=' || n, ';' ORDER BY n DESC), '') INTO result
      FROM (SELECT w, count(*) AS n FROM unnest(waits) w GROUP BY w) x;
END $$;
SQL
psql_db -c "VACUUM ANALYZE" -c "CHECKPOINT"
load_s=$(($(date +%s) - t0))
log "loaded in $load_s s (pgfeed.flush: $flush)"

machine="nproc=$(nproc); CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1); memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); $(uname -sr)"
settings=""
for s in fsync synchronous_commit wal_sync_method track_wal_io_timing shared_buffers shared_preload_libraries max_wal_size checkpoint_timeout wal_level max_connections; do
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
    printf 'meta\trounds\t%s\n' "$ROUNDS"
    printf 'meta\tslice\t%s\n' "$SLICE_SECONDS"
    printf 'meta\twarmup\t%s\n' "$WARMUP"
    printf 'meta\tloadavg\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$tsv"

# ---------------------------------------------------------------------------------------------------
# Write concurrency

# cpu_jiffies: jiffies of the whole machine (busy and total) from /proc/stat, for the busy share of a slice.
cpu_jiffies() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
# wal_syncs: WAL flushes (fsync/fdatasync calls) and their total ms so far (pg_stat_wal, track_wal_io_timing).
wal_syncs() { val "SELECT wal_sync || ' ' || wal_sync_time FROM pg_stat_wal"; }
# A backend reports its WAL statistics as it exits: wait until pgbench's are gone.
pgbench_gone() {
    local deadline=$(($(date +%s) + 20))
    until [ "$(val "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")" = 0 ]; do
        [ "$(date +%s)" -lt $deadline ] || { echo "pgbench's sessions did not end within 20 s" >&2; return 1; }
        sleep 0.05 # polling interval of the condition above
    done
}
pgbench_opts() { # CLIENTS SCRIPT
    local threads=$(($1 < 2 ? 1 : 2))
    printf '%s ' -n -M prepared -c "$1" -j "$threads" -D users=$USERS -D items=$ITEMS -f "$root/bench/feed/writes/$2"
}

# run_slice NAME CLIENTS SCRIPT ROUND: SLICE_SECONDS of pgbench; appends a "slice" row to the TSV
# (tps, transactions, failures, CPU and WAL flushes during the slice, and for the attached inserts
# how long pgfeed.flush() then waited: the numbering backlog the slice left).
run_slice() {
    local name=$1 clients=$2 script=$3 round=$4
    local prefix=$work/logs/$name-$clients-r$round
    local cpu0 cpu1 wal0 wal1
    wal0=$(wal_syncs)
    cpu0=$(cpu_jiffies)
    val "CALL bench_waits($SLICE_SECONDS)" >"$prefix.waits" &
    local sampler=$!
    # shellcheck disable=SC2046 # the options are words
    nice pgbench $(pgbench_opts "$clients" "$script") -T "$SLICE_SECONDS" --log --log-prefix="$prefix.log" "$db" \
        >"$prefix.out" 2>"$prefix.err" || { cat "$prefix.out" "$prefix.err" >&2; return 1; }
    cpu1=$(cpu_jiffies)
    wait "$sampler"
    pgbench_gone
    wal1=$(wal_syncs)
    local backlog=-
    case $name in insert_feed) backlog=$(flush_ms) ;; esac
    local tps xacts failed
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$prefix.out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$prefix.out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$prefix.out")
    printf 'slice\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$clients" "$round" "$tps" "$xacts" "${failed:-0}" \
        "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {split(a, x, " "); split(b, y, " "); print y[1] - x[1] "\t" y[2] - x[2]}')" \
        "$(awk -v a="$wal0" -v b="$wal1" 'BEGIN {split(a, x, " "); split(b, y, " "); print y[1] - x[1] "\t" y[2] - x[2]}')" \
        "$backlog" "$(cat "$prefix.waits")" >>"$tsv"
    log "  $name, $clients clients, round $round: tps $tps, WAL flushes $(awk -v a="$wal0" -v b="$wal1" -v n="$xacts" \
        'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.2f per transaction", n ? (y[1] - x[1]) / n : 0}'), flush after: $backlog ms"
}

# run_pair CLIENTS BASE_NAME BASE_SCRIPT BASE_PATTERN BASE_EFFECT NAME SCRIPT PATTERN EFFECT
# A result against its baseline at one client count: a warm-up of each, a CHECKPOINT (the pair
# starts from clean buffers), then ROUNDS rounds of one slice each, in the order A B B A A B ...
# so that a change of the machine's load or of the disk's flush time during the pair falls on both
# alike. Appends a "case" row per side: client latency over its slices (pgbench --log), the
# pg_stat_statements mean time of the statement PATTERN picks, and the share of transactions that
# changed something (EFFECT_SQL's growth per transaction).
run_pair() {
    local clients=$1
    local names=("$2" "$6") scripts=("$3" "$7") patterns=("$4" "$8") effects=("$5" "$9")
    local i r before=() after=() xacts=(0 0)
    for i in 0 1; do
        # shellcheck disable=SC2046
        nice pgbench $(pgbench_opts "$clients" "${scripts[$i]}") -T "$WARMUP" "$db" >/dev/null 2>"$work/logs/warmup.err" ||
            { cat "$work/logs/warmup.err" >&2; return 1; }
    done
    pgbench_gone
    [ $flush = no ] || flush_ms >/dev/null
    val "CHECKPOINT" >/dev/null
    for i in 0 1; do before[i]=$(val "${effects[$i]}"); done
    val "SELECT pg_stat_statements_reset()" >/dev/null
    for ((r = 1; r <= ROUNDS; r++)); do
        local order=(0 1)
        [ $((r % 2)) = 1 ] || order=(1 0)
        for i in "${order[@]}"; do run_slice "${names[$i]}" "$clients" "${scripts[$i]}" "$r"; done
    done
    for i in 0 1; do
        after[i]=$(val "${effects[$i]}")
        local name=${names[$i]} n server latency effect
        n=$(cat "$work/logs/$name-$clients"-r*.out | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' |
            awk '{s += $1} END {print s + 0}')
        server=$(val "SELECT round((sum(total_exec_time) / nullif(sum(calls), 0))::numeric, 4) FROM pg_stat_statements
                       WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                         AND query LIKE '%' || \$q\$${patterns[$i]}\$q\$ || '%' AND query NOT LIKE '%pg_stat_statements%'")
        effect=$(awk -v b="${before[$i]}" -v a="${after[$i]}" -v n="$n" 'BEGIN {printf "%.1f", n ? 100 * (a - b) / n : 0}')
        # Client latency per transaction (µs, third field of pgbench's per-transaction log): mean, p50, p99.
        latency=$(cat "$work/logs/$name-$clients"-r*.log* | awk '{print $3}' | sort -n |
            awk 'function at(p,  i) {i = int(NR * p + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; return v[i] / 1000}
                 {v[NR] = $1; s += $1} END {if (NR == 0) {print "\t\t"; exit}
                 printf "%.3f\t%.3f\t%.3f", s / NR / 1000, at(0.5), at(0.99)}')
        printf 'case\t%s\t%s\t%s\t%s\t%s\n' "$name" "$clients" "${server:-}" "$latency" "$effect" >>"$tsv"
        log "$name, $clients clients: server $server ms, changed $effect%"
    done
}

log "write concurrency: ${CLIENTS[*]} clients, $ROUNDS rounds of $SLICE_SECONDS s per case"
for clients in "${CLIENTS[@]}"; do
    run_pair "$clients" mark_base mark_read_baseline.sql "INSERT INTO reads" "SELECT count(*) FROM reads" \
        mark_feed mark_read.sql "pgfeed.mark_read(" "SELECT -sum(net_total) FROM pgfeed.readers"
    run_pair "$clients" insert_bare insert_bare.sql "INSERT INTO activities_bare" "SELECT count(*) FROM activities_bare" \
        insert_feed insert_attached.sql "INSERT INTO activities " "SELECT count(*) FROM activities"
done
psql -X -q -d postgres -c "DROP DATABASE $db" || true

# ---------------------------------------------------------------------------------------------------
# Lag

log "lag: 100 and 1,000 inserts/s, $LAG_SECONDS s per phase"
lag_out=$work/lag.txt
python3 bench/feed/lag.py --seconds "$LAG_SECONDS" --out "$lag_out" >/dev/null

python3 bench/feed/writes_report.py --runtime "$(($(date +%s) - started))" --lag "$lag_out" "$tsv" |
    tee "$out_dir/writes.txt"
