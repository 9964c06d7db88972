#!/usr/bin/env bash
# Notifier benchmark: commit-to-stream latency at 100, 1,000 and 10,000 events/s and the maximum
# sustained rate of one pgfeed-notifier, against a throwaway PostgreSQL 15 with fsync on and a
# redis-server with AOF on (bench/notifier/latency.py does the measuring). Prints a report that is
# also written to build/bench/notifier.txt. About 2 minutes.
#
#   bench/notifier/run.sh [--seconds N]     N seconds per phase (default 20, or BENCH_SECONDS)
#
# Needs the installed extension (0.2.0 or later) and build/notifier/pgfeed-notifier (make notifier).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/notifier/pgfeed-notifier ] || { echo "build/notifier/pgfeed-notifier is missing: make notifier" >&2; exit 2; }
mkdir -p build/bench

. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-bench-notifier.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
cleanup() {
    pg_cluster_stop
    rm -rf "$work"
}
PG_FSYNC=on pg_cluster_start "$work/pg"
trap cleanup EXIT
# The maximum-rate phase writes a lot of WAL: checkpoints it forces would be the noise measured.
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "SELECT pg_reload_conf()" >/dev/null

python3 bench/notifier/latency.py --out build/bench/notifier.txt "$@"
