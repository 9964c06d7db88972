#!/usr/bin/env bash
# Runs the pg_regress suite and the concurrency tests against a throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-test.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
pg_cluster_start "$work/pg"
mkdir -p build/regress
failed=0
make -s installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres || {
    failed=1
    cat build/regress/regression.diffs 2>/dev/null | head -200
}
for t in test/concurrency/*.py; do
    [ -e "$t" ] || continue
    echo "== $t"
    python3 "$t" || failed=1
done
exit $failed
