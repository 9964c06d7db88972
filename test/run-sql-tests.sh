#!/usr/bin/env bash
# Runs the pg_regress suite and the concurrency tests against a throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-test.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
pg_cluster_start "$work/pg"
mkdir -p build/regress
passed=0 failed=0

make -s installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres 2>&1 | tee build/regress/summary.txt || true
passed=$((passed + $(grep -cE '^(ok|test) .* ok ' build/regress/summary.txt || true)))
failed=$((failed + $(grep -cE 'FAILED' build/regress/summary.txt || true)))
[ -f build/regress/regression.diffs ] && head -200 build/regress/regression.diffs

for t in test/concurrency/[!_]*.py; do
    [ -e "$t" ] || continue
    echo "== $t"
    if python3 "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done

echo "== test/upgrade/run.sh"; if test/upgrade/run.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: test/upgrade/run.sh"; fi
echo "sql: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
